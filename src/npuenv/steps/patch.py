"""patch:<name> — a unified diff from patches/ applied to a checkout, detected when already applied.

A patch with a `when:` condition is applied only where the condition holds; where it stops holding (another
FFmpeg on the box), an applied patch is reversed, so the checkout is what the spec says for this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict

from typing import IO, Any, Optional

from .. import git, toolchain
from ..errors import PatchError
from ..digest import sha256_file
from .base import OK, Checked, Context, Kind, Step, drifted, missing
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

    def _git_apply(self, ctx: Context, *extra: str, log: Optional[IO[str]] = None, check: bool = False):
        return git.git([*APPLY, *extra, str(self.patch.file)], cwd=ctx.path(self.repo.path), env=ctx.env,
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
        if not wanted:
            condition = f"{found}; applies when {self.patch.when.pkgconfig} {self.patch.when.version}"
            if self._applied(ctx):
                self._git_apply(ctx, "--reverse", log=log, check=True)
                log.write(f"reversed {self.patch.file.name}: its condition no longer holds ({condition})\n")
            else:
                log.write(f"not needed here ({condition})\n")
            return {"sha256": sha256_file(self.patch.file), "applied": False, "found": found, **self._when_record(ctx)}
        if self._git_apply(ctx, "--reverse", "--check").returncode != 0:
            probe = self._git_apply(ctx, "--check")
            if probe.returncode != 0:
                edited = self._edited_locally(ctx)
                if edited:
                    root = ctx.path(self.repo.path)
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
            self._git_apply(ctx, log=log, check=True)
        return {"sha256": sha256_file(self.patch.file), "applied": True, "files": self._files(ctx),
                **({"found": found} if found else {}), **self._when_record(ctx)}

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


def compile(spec: Any, machine: Any) -> list[Step]:
    return [PatchStep(patch, spec.repos[patch.repo], (f"repo:{patch.repo}",)) for patch in spec.patches.values()]


KIND = Kind("patch", compile, section="patches", parse=parse)
