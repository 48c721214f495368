"""git, driven through argument lists. Probes return facts; parsers are pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Optional
from urllib.parse import urlsplit

from .errors import CommandFailed, GitError, GitUnreachable
from .commands import run


def git(args: list[str], *, cwd: Optional[Path] = None, env: Mapping[str, str],
        log: Optional[IO[str]] = None, check: bool = True):
    return run(["git", *args], cwd=cwd, env=env, log=log, check=check)


def is_checkout(path: Path) -> bool:
    return (path / ".git").exists()


def head(path: Path, env: Mapping[str, str]) -> Optional[str]:
    """The commit checked out. npuenv's checkouts are detached, so .git/HEAD holds the sha itself: a file
    read answers without a subprocess; anything else (a branch, a .git file) asks git."""
    try:
        text = (path / ".git" / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    if re.fullmatch(r"[0-9a-f]{40}", text):
        return text
    proc = git(["rev-parse", "--verify", "-q", "HEAD"], cwd=path, env=env, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def has_commit(path: Path, commit: str, env: Mapping[str, str]) -> bool:
    proc = git(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=path, env=env, check=False)
    return proc.returncode == 0


def as_committed(path: Path, file: str, env: Mapping[str, str]) -> bool:
    """Whether `file` (relative to the checkout at `path`) is byte for byte what HEAD holds: a checkout put it
    there, nobody edited it. An untracked file is not."""
    committed = git(["rev-parse", "-q", "--verify", f"HEAD:{file}"], cwd=path, env=env, check=False)
    if committed.returncode != 0:
        return False
    here = git(["hash-object", "--", file], cwd=path, env=env, check=False)
    return here.returncode == 0 and here.stdout.strip() == committed.stdout.strip()


def on_no_ref(path: Path, env: Mapping[str, str]) -> bool:
    """Whether no branch, tag or remote-tracking ref holds HEAD: a commit made on a detached checkout, which
    only the reflog would remember once HEAD moves."""
    proc = git(["for-each-ref", "--contains", "HEAD", "--count=1", "--format=%(refname)",
                "refs/heads", "refs/tags", "refs/remotes"], cwd=path, env=env, check=False)
    return proc.returncode == 0 and not proc.stdout.strip()


def parse_porcelain(text: str) -> list[str]:
    """Paths from `git status --porcelain=v1 -z` output (renames give the new path)."""
    paths: list[str] = []
    entries = text.split("\0")
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        paths.append(path)
        if "R" in status or "C" in status:
            index += 1  # the original path follows
    return paths


def changed_files(path: Path, env: Mapping[str, str]) -> list[str]:
    """Tracked files that differ from HEAD (untracked files are not ours to judge)."""
    proc = git(["status", "--porcelain=v1", "-z", "--untracked-files=no"], cwd=path, env=env)
    return parse_porcelain(proc.stdout)


def parse_ls_remote(text: str) -> dict[str, str]:
    """ref name -> commit; an annotated tag's peeled line (`^{}`) wins over the tag object."""
    refs: dict[str, str] = {}
    for line in text.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref:
            continue
        if ref.endswith("^{}"):
            refs[ref[:-3]] = sha
        else:
            refs.setdefault(ref, sha)
    return refs


def ref_commit(refs: dict[str, str], ref: str) -> Optional[str]:
    for full in (ref, f"refs/tags/{ref}", f"refs/heads/{ref}"):
        if full in refs:
            return refs[full]
    return None


def explain(output: str, url: str) -> Optional[GitError]:
    """A user-facing error for the network failures git reports in `output`, or None."""
    host = urlsplit(url).netloc or url
    if "certificate" in output.lower() or "SSL" in output:
        return GitError(f"certificate verify failed for {host} (git: {_first_match(output, 'SSL')})",
                        hint="pass the CA that signs it with --ca-bundle FILE (or NPUENV_CA_BUNDLE)")
    for needle in ("Could not resolve host", "Failed to connect", "Connection refused", "Connection timed out",
                   "Could not connect"):
        if needle in output:
            return GitUnreachable(f"cannot reach {host} ({needle.lower()})",
                            hint=f"set a mirror: NPUENV_MIRRORS='{_prefix(url)}=https://your-mirror/...'")
    status = re.search(r"The requested URL returned error: (\d{3})", output)
    if status:
        code = int(status.group(1))
        hint = ("the server is failing or overloaded: run again later (finished steps are kept), or use a mirror"
                if code >= 500 else "check the repository URL (and any mirror rewriting it) and your access to it")
        return GitError(f"{host} answered HTTP {code} for {url}", hint=hint)
    for needle in ("early EOF", "unexpected disconnect", "transfer closed", "RPC failed", "Connection reset",
                   "the remote end hung up unexpectedly"):
        if needle in output:
            return GitError(f"the connection to {host} was cut during the transfer ({needle})",
                            hint="run again: git starts the fetch anew; on a flaky link use a closer mirror")
    return None


def _prefix(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _first_match(output: str, needle: str) -> str:
    return next((line.strip() for line in output.splitlines() if needle in line), output.strip()[:200])


def remote_url(path: Path, env: Mapping[str, str]) -> str:
    return git(["remote", "get-url", "origin"], cwd=path, env=env).stdout.strip()


def fetch_commit(path: Path, commit: str, env: Mapping[str, str], log: IO[str]) -> None:
    """Fetch one commit: shallow by sha (protocol v2), else a full fetch (dumb HTTP, old servers)."""
    try:
        git(["fetch", "--depth", "1", "origin", commit], cwd=path, env=env, log=log)
    except CommandFailed:
        log.write("shallow fetch by sha failed; fetching everything\n")
        proc = git(["fetch", "--tags", "origin"], cwd=path, env=env, check=False)
        log.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise explain(proc.stdout + proc.stderr, remote_url(path, env)) or CommandFailed(
                ["git", "fetch", "--tags", "origin"], proc.returncode, proc.stdout + proc.stderr)
    if not has_commit(path, commit, env):
        raise GitError(f"commit {commit} is not on {remote_url(path, env)} (the remote of {path})",
                       hint="check the commit in the spec, or the mirror serves an outdated copy")
