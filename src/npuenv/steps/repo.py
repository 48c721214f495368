"""repo:<name> — a git checkout at the pinned commit, cloned atomically, never clobbered silently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import os
from pathlib import Path
from typing import IO, Any

from .. import git
from ..errors import GitError, Unreachable
from ..digest import sha256_file
from .base import OK, Checked, Context, Kind, Step, containing_repo, drifted, fresh_tmp_sibling, missing, step_ids
from .. import schema as s


# --- the spec section -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repo:
    name: str
    url: str
    commit: str
    path: str
    ref: Optional[str] = None
    submodules: bool = False


REPO = {"url": (s.https, True), "ref": (s.nonempty, False), "commit": (s.commit, True),
        "path": (s.relpath("the workspace root"), True), "submodules": (s.boolean, False)}


def parse(ck: s.Checker, data: dict, parsed: dict) -> Dict[str, Repo]:
    """repos: {NAME: {url, commit, path, ref?, submodules?}}"""
    repos = {}
    for name, item in s.entries(ck, ("repos",), data.get("repos")):
        f = s.fields(ck, ("repos", name), item, REPO)
        repos[name] = Repo(name, f.get("url"), f.get("commit"), f.get("path"), f.get("ref"),
                           bool(f.get("submodules") or False))
    _check_repo_paths(ck, repos)
    return repos


def _check_repo_paths(ck: s.Checker, repos: Dict[str, Repo]) -> None:
    seen: Dict[str, str] = {}
    for name, repo in repos.items():
        if repo.path is None:
            continue
        if repo.path in seen:
            other = ("repos", seen[repo.path], "path")
            loc = ck.loc(other)
            ck.add(("repos", name, "path"), f"{repo.path!r} is also the path of repo {seen[repo.path]!r} "
                                            f"({loc.shown}:{loc.line}): each repo needs its own folder")
        else:
            seen[repo.path] = name


# --- the step -----------------------------------------------------------------------------------------


class RepoStep(Step):
    kind = "repo"
    version = 1

    def __init__(self, repo: Any, deps: tuple[str, ...] = (), owned_by: tuple[str, ...] = ()) -> None:
        super().__init__(repo.name, deps)
        self.repo = repo
        self.owned_by = owned_by  # ids of steps that legitimately change files in this checkout

    def url(self, ctx: Context) -> str:
        return ctx.mirrors.rewrite(self.repo.url)

    def describe(self, ctx: Context) -> str:
        ref = f" ({self.repo.ref})" if self.repo.ref else ""
        return f"{self.repo.path} @ {self.repo.commit}{ref} from {self.url(ctx)}"

    def fingerprint(self, ctx: Context) -> Any:
        return {"url": self.repo.url, "commit": self.repo.commit, "path": self.repo.path,
                "submodules": self.repo.submodules}

    def check(self, ctx: Context) -> Checked:
        path = ctx.path(self.repo.path)
        if not git.is_checkout(path):
            return missing()
        found = git.head(path, ctx.env)
        if found != self.repo.commit:
            return drifted(f"{self.repo.path} is at {str(found)[:12]}, the spec pins {self.repo.commit[:12]}")
        return OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        try:
            return self._apply(ctx, log)
        except GitError as exc:
            url = self.url(ctx)
            if url != self.repo.url and isinstance(exc, Unreachable):
                exc.hint = (f"{self.repo.url} is fetched through the mirror {url}: check that the mirror is up, "
                            "or change the mirror (spec mirrors:, NPUENV_MIRRORS)")
            raise

    def _apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        path = ctx.path(self.repo.path)
        kept: dict[str, Any] = {}
        if git.is_checkout(path):
            kept = self._move(ctx, path, log)
        elif path.exists() and any(path.iterdir()):
            raise GitError(f"{path} exists and is not a git checkout",
                           hint="move it away (npuenv never deletes what it did not make) and run again")
        else:
            self._clone(ctx, path, log)
        return {"commit": self.repo.commit, "url": self.url(ctx), **kept, **self._verify_ref(ctx, path, log)}

    def _clone(self, ctx: Context, path: Path, log: IO[str]) -> None:
        tmp = fresh_tmp_sibling(path, ctx.root)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        git.git(["init", "-q", str(tmp)], env=ctx.env, log=log)
        git.git(["remote", "add", "origin", self.url(ctx)], cwd=tmp, env=ctx.env, log=log)
        git.fetch_commit(tmp, self.repo.commit, ctx.env, log)
        git.git(["checkout", "-q", "--detach", self.repo.commit], cwd=tmp, env=ctx.env, log=log)
        self._submodules(ctx, tmp, log)
        if path.exists():
            path.rmdir()  # an empty folder the user made
        os.replace(tmp, path)

    def _move(self, ctx: Context, path: Path, log: IO[str]) -> dict[str, Any]:
        """Move the checkout to the pin; what it returns (a kept branch) goes into the step's facts."""
        if git.remote_url(path, ctx.env) != self.url(ctx):
            # the spec now names another remote (a fork, a mirror): fetch from it, and keep it as origin
            log.write(f"origin is now {self.url(ctx)}\n")
            git.git(["remote", "set-url", "origin", self.url(ctx)], cwd=path, env=ctx.env, log=log)
        found = git.head(path, ctx.env)
        if found == self.repo.commit:
            self._submodules(ctx, path, log)
            return {}
        changed = git.changed_files(path, ctx.env)
        foreign = [f for f in changed if not self._ours(ctx, path, f)]
        if foreign:
            listing = "\n".join(f"  {f}" for f in foreign[:20])
            raise GitError(
                f"{path} has local changes npuenv did not make, so it will not move it to "
                f"{self.repo.commit[:12]}:\n{listing}",
                hint=f"commit or stash them (git -C {path} stash), or move the folder away, then run again",
            )
        kept = self._keep(ctx, path, found, log)
        if not git.has_commit(path, self.repo.commit, ctx.env):
            git.fetch_commit(path, self.repo.commit, ctx.env, log)
        # only npuenv's own patches and overlays are discarded here; their steps re-apply them
        flag = ["--force"] if changed else []
        git.git(["checkout", "-q", *flag, "--detach", self.repo.commit], cwd=path, env=ctx.env, log=log)
        self._submodules(ctx, path, log)
        return kept

    def _keep(self, ctx: Context, path: Path, found: Optional[str], log: IO[str]) -> dict[str, Any]:
        """Someone committed on the detached checkout (npuenv's checkouts have no branch): moving to the pin
        would leave those commits to the reflog alone, so they get a branch first. The commit npuenv itself
        checked out last is not someone's work."""
        if not found or found == ctx.state.resolved(self.id).get("commit") or not git.on_no_ref(path, ctx.env):
            return {}
        branch = f"npuenv-kept-{found[:12]}"
        git.git(["branch", "--", branch, found], cwd=path, env=ctx.env, log=log)
        note = f"{self.repo.path} was at {found[:12]}, on no branch: kept as branch {branch}"
        log.write(note + "\n")
        return {"kept_branch": branch, "note": note}

    def _ours(self, ctx: Context, path: Path, relative: str) -> bool:
        """A changed file is ours when a patch or overlay step recorded exactly its current content."""
        target = path / relative
        if not target.is_file():
            return False
        digest = sha256_file(target)
        for step_id in self.owned_by:
            if ctx.state.resolved(step_id).get("files", {}).get(relative) == digest:
                return True
        return False

    def _submodules(self, ctx: Context, path: Path, log: IO[str]) -> None:
        if self.repo.submodules:
            git.git(["submodule", "update", "--init", "--recursive", "--depth", "1"],
                    cwd=path, env=ctx.env, log=log)

    def _verify_ref(self, ctx: Context, path: Path, log: IO[str]) -> dict[str, Any]:
        """The human-readable ref, checked against the pin: a moved tag is an error, a moved branch a note."""
        ref = self.repo.ref
        if not ref:
            return {}
        proc = git.git(["ls-remote", "origin", ref], cwd=path, env=ctx.env, log=None)
        refs = git.parse_ls_remote(proc.stdout)
        found = git.ref_commit(refs, ref)
        tag = f"refs/tags/{ref}" in refs
        log.write(f"ref {ref} -> {found}\n")
        if found == self.repo.commit:
            return {"ref": ref, "ref_matches": True}
        if tag:
            raise GitError(f"tag {ref} of {self.repo.url} points at {found}, the spec pins {self.repo.commit}",
                           hint="a tag moved upstream: check which commit you want and pin it")
        note = f"ref {ref} now points at {found or 'nothing'}; the pinned commit is checked out"
        log.write(note + "\n")
        return {"ref": ref, "ref_matches": False, "ref_note": note}


def compile(spec: Any, machine: Any) -> list[Step]:
    """Each repo after the repo whose folder holds it; owned by the patches and overlays that change it."""
    changers: dict[str, list[str]] = {name: [] for name in spec.repos}
    for patch in spec.patches.values():
        changers[patch.repo].append(f"patch:{patch.name}")
    for overlay in spec.overlays.values():
        changers[overlay.to_repo].append(f"overlay:{overlay.name}")
    return [RepoStep(repo, step_ids(containing_repo(spec, repo.path, exclude=repo.name)),
                     owned_by=tuple(changers[repo.name])) for repo in spec.repos.values()]


KIND = Kind("repo", compile, section="repos", parse=parse)
