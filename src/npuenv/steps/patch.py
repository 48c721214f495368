"""patch:<name> — a unified diff from patches/ applied to a checkout, detected when already applied.

A patch with a `when:` condition is applied only where the condition holds; where it stops holding (another
FFmpeg on the box), an applied patch is reversed, so the checkout is what the spec says for this machine.

When the patch file changes (a refreshed patch, a user's edited one), the version npuenv applied before is
taken out first: the state records each applied patch's text and the content it left in each file, so the
earlier version is reversed exactly, and only from files nobody edited since.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

from typing import IO, Any, Optional

from .. import git, toolchain
from ..atomic import write_atomic
from ..confine import remove
from ..errors import PatchError
from ..digest import sha256_file
from .base import OK, Checked, Context, Kind, Step, drifted, fresh_tmp_sibling, missing
from .. import schema as s


# --- the spec section -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """`when: {pkgconfig: libavcodec, version: ">=59"}`: true when the installed module's version matches."""

    pkgconfig: str
    version: str


@dataclass(frozen=True)
class Patch:
    name: str
    repo: str
    file: Path
    when: Optional[Condition] = None


CONDITION = {"pkgconfig": (s.package, True), "version": (s.specifier, True)}


def _condition(ck: s.Checker, kp: s.KeyPath, value: Any) -> Optional[Condition]:
    f = s.fields(ck, kp, value, CONDITION)
    return Condition(f["pkgconfig"], f["version"]) if f.get("pkgconfig") and f.get("version") else None


def parse(ck: s.Checker, data: dict, parsed: dict) -> Dict[str, Patch]:
    """patches: {NAME: {repo, file, when?}}"""
    repos = parsed["repos"]
    schema = {"repo": (s.ref(repos, "repo", "repos"), True), "file": (s.patch_file, True),
              "when": (_condition, False)}
    out = {}
    for name, item in s.entries(ck, ("patches",), data.get("patches")):
        f = s.fields(ck, ("patches", name), item, schema)
        out[name] = Patch(name, f.get("repo"), f.get("file"), f.get("when"))
    return out


# --- the step -----------------------------------------------------------------------------------------


# zero-context hunks are allowed: some patches only know the exact lines they change
APPLY = ["apply", "--unidiff-zero", "--whitespace=nowarn"]


class PatchStep(Step):
    kind = "patch"
    version = 1

    def __init__(self, patch: Any, repo: Any, deps: tuple[str, ...] = ()) -> None:
        super().__init__(patch.name, deps)
        self.patch = patch
        self.repo = repo
        self._wanted: Optional[tuple[bool, str]] = None

    def describe(self, ctx: Context) -> str:
        return f"{self.patch.file.name} on {self.repo.path}"

    def wanted(self, ctx: Context) -> tuple[bool, str]:
        """Whether the patch's `when:` condition holds here, and what was found (asked once per run: the
        fingerprint and the check both need it)."""
        when = self.patch.when
        if when is None:
            return True, ""
        if self._wanted is None:
            found = toolchain.pkgconfig_version(when.pkgconfig, ctx.env)
            self._wanted = (self._holds(ctx, found), f"{when.pkgconfig} {found or 'not found'}")
        return self._wanted

    def _holds(self, ctx: Context, found: Optional[str]) -> bool:
        """Does `found` meet the condition? The same question as last time has the recorded answer."""
        if found is None:
            return False
        answer = {"condition": self.patch.when.version, "version": found}
        seen = ctx.state.resolved(self.id).get("when") or {}
        if {k: seen.get(k) for k in answer} == answer and isinstance(seen.get("holds"), bool):
            return seen["holds"]
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(self.patch.when.version).contains(found, prereleases=True)

    def _when_record(self, ctx: Context) -> dict[str, Any]:
        if self.patch.when is None:
            return {}
        holds, found = self.wanted(ctx)
        version = found.split(" ", 1)[1] if " " in found else found
        return {"when": {"condition": self.patch.when.version, "version": version, "holds": holds}}

    def fingerprint(self, ctx: Context) -> Any:
        return {"repo": self.repo.name, "commit": self.repo.commit, "sha256": sha256_file(self.patch.file),
                "wanted": self.wanted(ctx)[0]}

    def _git_apply(self, ctx: Context, *extra: str, log: Optional[IO[str]] = None, check: bool = False,
                   patch: Optional[Path] = None):
        return git.git([*APPLY, *extra, str(patch or self.patch.file)], cwd=ctx.path(self.repo.path), env=ctx.env,
                       log=log, check=check)

    def _applied(self, ctx: Context) -> bool:
        """Is the patch in the checkout? When every file it touched still has the content recorded after
        applying it, yes: a few file reads instead of a `git apply --check` subprocess."""
        recorded = ctx.state.resolved(self.id)
        files = recorded.get("files") if recorded.get("sha256") == sha256_file(self.patch.file) else None
        root = ctx.path(self.repo.path)
        if files and all((root / name).is_file() and sha256_file(root / name) == digest
                         for name, digest in files.items()):
            return True
        return self._git_apply(ctx, "--reverse", "--check").returncode == 0

    def check(self, ctx: Context) -> Checked:
        wanted = self.wanted(ctx)[0]
        if wanted == self._applied(ctx):
            return OK
        return missing("not applied") if wanted else drifted("applied, but its `when:` condition no longer holds")

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        wanted, found = self.wanted(ctx)
        before = self._take_out_earlier(ctx, log)
        try:
            if not wanted:
                return self._leave_out(ctx, log, found)
            self._put_in(ctx, log)
        except BaseException:
            self._put_back(ctx, before, log)  # the earlier version stays in, as the state says
            raise
        data = self.patch.file.read_bytes()
        return {"sha256": _sha256(data), "applied": True, "repo": self.repo.name, "files": self._files(ctx),
                "text": _text(data),
                **({"found": found} if found else {}), **self._when_record(ctx)}

    def _leave_out(self, ctx: Context, log: IO[str], found: str) -> dict[str, Any]:
        """Where the `when:` condition does not hold: reverse the patch if it is in."""
        condition = f"{found}; applies when {self.patch.when.pkgconfig} {self.patch.when.version}"
        if self._applied(ctx):
            self._git_apply(ctx, "--reverse", log=log, check=True)
            log.write(f"reversed {self.patch.file.name}: its condition no longer holds ({condition})\n")
        else:
            log.write(f"not needed here ({condition})\n")
        return {"sha256": sha256_file(self.patch.file), "applied": False, "found": found, **self._when_record(ctx)}

    def _put_in(self, ctx: Context, log: IO[str]) -> None:
        """Apply the patch unless it is in already; refuse, naming the cause, when it does not apply."""
        if self._git_apply(ctx, "--reverse", "--check").returncode == 0:
            return
        probe = self._git_apply(ctx, "--check")
        if probe.returncode == 0:
            self._git_apply(ctx, log=log, check=True)
            return
        root = ctx.path(self.repo.path)
        edited = self._edited_locally(ctx)
        owners = self._left_by_others(ctx, edited)
        if owners:
            names = " ".join(edited)
            gone = [o for o in owners if o.split(":", 1)[1] not in (getattr(ctx.spec, "patches", None) or {})]
            raise PatchError(
                f"{self.patch.file.name} cannot be applied: {', '.join(edited)} in {self.repo.path} "
                f"{'holds' if len(edited) == 1 else 'hold'} what npuenv's {', '.join(owners)} applied"
                + (", a patch this spec no longer has" if gone else ""),
                hint=(f"if {self.patch.file.name} replaces it (a renamed patch), take the old one out with "
                      f"`git -C {root} checkout -- {names}` (it holds only what npuenv wrote), then run again"
                      if gone else f"{', '.join(owners)} and {self.id} change the same lines: make them one patch"))
        if edited:
            raise PatchError(
                f"{self.patch.file.name} cannot be applied: {', '.join(edited)} in {self.repo.path} was "
                "changed locally (the checkout is at the pinned commit)",
                hint=f"restore it with `git -C {root} checkout -- {' '.join(edited)}` (keep a copy of "
                     "your change first), then run again",
            )
        raise PatchError(
            f"upstream changed: {self.patch.file.name} no longer applies to {self.repo.name} at "
            f"{self.repo.commit[:12]}\n{probe.stdout}{probe.stderr}".rstrip(),
            hint=f"refresh the patch against {self.repo.path}, or pin the commit it was made for",
        )

    # --- an earlier version of this patch (a refreshed patch file, a user's edited one) ---------------------

    def _take_out_earlier(self, ctx: Context, log: IO[str]) -> dict[str, bytes]:
        """Reverse the earlier version of this patch that npuenv applied, when its files are still exactly as
        npuenv left them; refuse when they were edited since (the edit is never lost). Returns the files'
        content before, to put back should the new version fail."""
        recorded = ctx.state.resolved(self.id)
        files: dict[str, str] = recorded.get("files") or {}
        if (not recorded.get("applied") or not files or recorded.get("repo", self.repo.name) != self.repo.name
                or recorded.get("sha256") in (None, sha256_file(self.patch.file))):
            return {}
        root = ctx.path(self.repo.path)
        kept = [n for n, digest in files.items() if (root / n).is_file() and sha256_file(root / n) == digest]
        others = [n for n in files if n not in kept]
        edited = sorted(set(others) & set(self._differ_from_head(ctx, others))) if others else []
        if edited:
            names = " ".join(edited)
            raise PatchError(
                f"patch {self.name} changed, but npuenv will not take its earlier version out of {self.repo.path}: "
                f"{', '.join(edited)} {'was' if len(edited) == 1 else 'were'} edited after npuenv applied it",
                hint=f"keep your change (`git -C {root} diff -- {names} > my-change.diff`), restore the pinned "
                     f"file{'s' if len(edited) > 1 else ''} (`git -C {root} checkout -- {names}`, which takes the "
                     "earlier patch out too), run again, then re-apply your change")
        if not kept:
            return {}  # not in any more (restored by hand, or the repo moved to another commit): nothing to take out
        before = {n: (root / n).read_bytes() for n in kept}
        text = recorded.get("text")
        legacy = not isinstance(text, str) or _sha256(_bytes(text)) != recorded["sha256"]
        if legacy:
            # recorded by an npuenv that did not keep the patch's text: the files' difference from the pinned
            # commit is what npuenv left there; it is taken out, and kept
            text = self._diff_from_head(ctx, kept)
            kept_as = ctx.path(f".npuenv/backups/{self.id.replace(':', '_')}.{recorded['sha256'][:12]}.diff")
            write_atomic(kept_as, text)
        scratch = ctx.path(f".npuenv/tmp/{self.id.replace(':', '_')}.earlier.patch")
        scratch.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_bytes(_bytes(text))
        try:
            only = [f"--include={_glob_escape(n)}" for n in kept] if others else []
            self._git_apply(ctx, "--reverse", *only, log=log, check=True, patch=scratch)
        finally:
            remove(scratch, ctx.root)
        log.write(f"took out the earlier version of patch {self.name} from {', '.join(kept)} in {self.repo.path}"
                  + (f" (restored as the pinned commit has them; what was taken out is kept in {kept_as})"
                     if legacy else "") + "\n")
        return before

    def _put_back(self, ctx: Context, before: dict[str, bytes], log: IO[str]) -> None:
        """Files as they were before the earlier version was taken out (each replaced atomically)."""
        root = ctx.path(self.repo.path)
        for name, data in before.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = fresh_tmp_sibling(path, ctx.root)
            tmp.write_bytes(data)
            if path.exists():
                shutil.copymode(path, tmp)
            os.replace(tmp, path)
        if before:
            log.write(f"put the earlier version of patch {self.name} back into {', '.join(before)}\n")

    def _differ_from_head(self, ctx: Context, names: list[str]) -> list[str]:
        """Which of these files differ from the pinned commit (changed, deleted, or new and untracked)."""
        proc = git.git(["--literal-pathspecs", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--",
                        *names], cwd=ctx.path(self.repo.path), env=ctx.env)
        return git.parse_porcelain(proc.stdout)

    def _diff_from_head(self, ctx: Context, names: list[str]) -> str:
        proc = git.git(["--literal-pathspecs", "diff", "--no-color", "--no-ext-diff", "--no-textconv",
                        "--no-renames", "--binary", "--src-prefix=a/", "--dst-prefix=b/", "HEAD", "--", *names],
                       cwd=ctx.path(self.repo.path), env=ctx.env)
        return proc.stdout

    def _left_by_others(self, ctx: Context, names: list[str]) -> list[str]:
        """Other patch steps whose record says they left exactly these files' content (a renamed patch's old
        step, or two patches changing the same lines)."""
        root = ctx.path(self.repo.path)
        digests = {n: sha256_file(root / n) for n in names if (root / n).is_file()}
        owners = []
        for step_id in ctx.state.step_ids():
            recorded = ctx.state.resolved(step_id)
            if (step_id.startswith("patch:") and step_id != self.id and recorded.get("applied")
                    and recorded.get("repo", self.repo.name) == self.repo.name
                    and any((recorded.get("files") or {}).get(n) == d for n, d in digests.items())):
                owners.append(step_id)
        return owners

    # --- what the patch touches ----------------------------------------------------------------------------

    def _edited_locally(self, ctx: Context) -> list[str]:
        """Files the patch touches that differ from the pinned commit (edits npuenv did not make)."""
        numstat = self._git_apply(ctx, "--numstat").stdout
        names = [line.split("\t")[-1] for line in numstat.splitlines() if line.strip()]
        changed = set(git.changed_files(ctx.path(self.repo.path), ctx.env))
        return [name for name in names if name in changed]

    def _files(self, ctx: Context) -> dict[str, str]:
        """The patched files and their content hashes, so the repo step can tell our changes from others'."""
        numstat = self._git_apply(ctx, "--numstat", "--reverse").stdout
        names = [line.split("\t")[-1] for line in numstat.splitlines() if line.strip()]
        root = ctx.path(self.repo.path)
        return {name: sha256_file(root / name) for name in names if (root / name).is_file()}


def _text(data: bytes) -> str:
    """A patch's bytes as JSON-safe text (bytes that are not UTF-8 survive the round trip)."""
    return data.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _glob_escape(name: str) -> str:
    """A path as a literal `git apply --include` pattern."""
    return re.sub(r"([*?\[\\])", r"\\\1", name)


def compile(spec: Any, machine: Any) -> list[Step]:
    return [PatchStep(patch, spec.repos[patch.repo], (f"repo:{patch.repo}",)) for patch in spec.patches.values()]


KIND = Kind("patch", compile, section="patches", parse=parse)
