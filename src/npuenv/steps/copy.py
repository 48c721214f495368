"""copy:<name> — a folder copied out of a checkout (Megatron's megatron/ into MindSpeed-MM).

What is at the destination is replaced only when it is npuenv's own copy, as recorded, or already holds what the
copy would; anything else (a folder someone made, an edited copy) is kept as `<to>.npuenv-backup`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import hashlib
import os
from pathlib import Path
from typing import IO, Any

from ..confine import remove
from ..errors import NpuenvError
from .base import (OK, Checked, Context, Kind, Step, backup_path, containing_repo, drifted, fresh_tmp_sibling, missing,
                   step_ids)
from .. import schema as s


# --- the spec section -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    name: str
    repo: str
    path: str
    to: str


def parse(ck: s.Checker, data: dict, parsed: dict) -> Dict[str, Copy]:
    """copies: {NAME: {repo, path, to}}: a folder of a repo copied into the workspace."""
    repos = parsed["repos"]
    schema = {"repo": (s.ref(repos, "repo", "repos"), True), "path": (s.relpath("the repo"), True),
              "to": (s.relpath("the workspace root"), True)}
    out = {}
    for name, item in s.entries(ck, ("copies",), data.get("copies")):
        f = s.fields(ck, ("copies", name), item, schema)
        out[name] = Copy(name, f.get("repo"), f.get("path"), f.get("to"))
    return out


# --- the step -----------------------------------------------------------------------------------------


IGNORED = ("__pycache__", "*.pyc")  # not copied (shutil.ignore_patterns)


def tree_digest(folder: Path) -> str:
    """A hash over relative paths and contents of every file below `folder` (caches excluded)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class CopyStep(Step):
    kind = "copy"
    version = 1

    def __init__(self, copy: Any, repo: Any, deps: tuple[str, ...] = ()) -> None:
        super().__init__(copy.name, deps)
        self.copy = copy
        self.repo = repo

    def describe(self, ctx: Context) -> str:
        return f"{self.repo.path}/{self.copy.path}/ -> {self.copy.to}/"

    def fingerprint(self, ctx: Context) -> Any:
        return {"repo": self.repo.name, "commit": self.repo.commit, "path": self.copy.path, "to": self.copy.to}

    def source(self, ctx: Context) -> Path:
        return ctx.path(self.repo.path) / self.copy.path

    def check(self, ctx: Context) -> Checked:
        target = ctx.path(self.copy.to)
        if not target.is_dir():
            return missing()
        recorded = ctx.state.resolved(self.id).get("tree")
        if recorded:
            return OK if tree_digest(target) == recorded else drifted(f"files in {self.copy.to} were changed")
        # never recorded: found in place only when it holds what a copy would
        source = self.source(ctx)
        if not source.is_dir() or tree_digest(target) != tree_digest(source):
            return drifted(f"{self.copy.to} differs from {self.repo.path}/{self.copy.path}")
        return OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        import shutil  # only when copying: an up-to-date run never needs it

        source = self.source(ctx)
        if not source.is_dir():
            raise NpuenvError(f"{self.copy.path}/ is missing in {self.repo.name} at {self.repo.commit[:12]}",
                              hint="check copies.{}.path in the spec".format(self.copy.name))
        target = ctx.path(self.copy.to)
        tmp = fresh_tmp_sibling(target, ctx.root)
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(*IGNORED))
        digest = tree_digest(tmp)
        old = target.parent / f".{target.name}.npuenv-old"
        remove(old, ctx.root)
        facts: dict[str, Any] = {"tree": digest}
        if os.path.lexists(target):
            foreign = self._foreign(ctx, target, digest)
            if foreign:
                # not what npuenv left there: kept beside the copy, never deleted
                old = backup_path(target)
                log.write(f"{target} {foreign}: kept as {old}\n")
                facts["note"] = f"{self.copy.to} {foreign}: kept as {old.relative_to(ctx.root)}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old.name.startswith("."):
            remove(old, ctx.root)
        log.write(f"copied {source} -> {target}\n")
        return facts

    def _foreign(self, ctx: Context, target: Path, digest: str) -> str:
        """Why what is at `target` must be kept ("" when it may go: npuenv's own copy as recorded, or the very
        content the fresh copy has)."""
        if target.is_dir() and tree_digest(target) == digest:
            return ""
        recorded = ctx.state.resolved(self.id).get("tree")
        if recorded and target.is_dir() and tree_digest(target) == recorded:
            return ""
        if recorded:
            return "was edited"
        return f"was there before npuenv (it differs from {self.repo.path}/{self.copy.path})"


def compile(spec: Any, machine: Any) -> list[Step]:
    """After its source repo, and after the repo its destination lies in."""
    return [CopyStep(copy, spec.repos[copy.repo], step_ids(f"repo:{copy.repo}", containing_repo(spec, copy.to)))
            for copy in spec.copies.values()]


def uses(spec: Any, machine: Any) -> set[str]:
    return {c.repo for c in spec.copies.values()}


KIND = Kind("copy", compile, section="copies", parse=parse, uses=uses)
