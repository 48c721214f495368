"""overlay:<name> — one file copied from a repo into another, verified by content hash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import os
from pathlib import Path
from typing import IO, Any

from .. import git
from ..errors import NpuenvError
from ..digest import sha256_file
from .base import (OK, Checked, Context, Kind, Step, backup_path, drifted, fresh_tmp_sibling, missing, patches_of,
                   step_ids)
from .. import schema as s


# --- the spec section -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlay:
    name: str
    from_repo: str
    from_path: str
    to_repo: str
    to_path: str


def parse(ck: s.Checker, data: dict, parsed: dict) -> Dict[str, Overlay]:
    """overlays: {NAME: {from: {repo, path}, to: {repo, path}}}"""
    repos = parsed["repos"]
    end = {"repo": (s.ref(repos, "repo", "repos"), True), "path": (s.relpath("the repo"), True)}
    side: s.Check = lambda c, kp, value: s.fields(c, kp, value, end)  # noqa: E731
    schema = {"from": (side, True), "to": (side, True)}
    out = {}
    for name, item in s.entries(ck, ("overlays",), data.get("overlays")):
        f = s.fields(ck, ("overlays", name), item, schema)
        src, dst = f.get("from") or {}, f.get("to") or {}
        out[name] = Overlay(name, src.get("repo"), src.get("path"), dst.get("repo"), dst.get("path"))
    return out


# --- the step -----------------------------------------------------------------------------------------


class OverlayStep(Step):
    kind = "overlay"
    version = 1

    def __init__(self, overlay: Any, source_repo: Any, target_repo: Any, deps: tuple[str, ...] = ()) -> None:
        super().__init__(overlay.name, deps)
        self.overlay = overlay
        self.source_repo = source_repo
        self.target_repo = target_repo

    def source(self, ctx: Context) -> Path:
        return ctx.path(self.source_repo.path) / self.overlay.from_path

    def target(self, ctx: Context) -> Path:
        return ctx.path(self.target_repo.path) / self.overlay.to_path

    def describe(self, ctx: Context) -> str:
        return (f"{self.source_repo.path}/{self.overlay.from_path} -> "
                f"{self.target_repo.path}/{self.overlay.to_path}")

    def fingerprint(self, ctx: Context) -> Any:
        return {"from": [self.source_repo.commit, self.overlay.from_path],
                "to": [self.target_repo.commit, self.overlay.to_path]}

    def check(self, ctx: Context) -> Checked:
        source, target = self.source(ctx), self.target(ctx)
        if not target.is_file() or not source.is_file():
            return missing()
        if sha256_file(source) != sha256_file(target):
            return drifted(f"{self.overlay.to_path} differs from {self.overlay.from_path}")
        return OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        import shutil  # only when copying: an up-to-date run never needs it

        source, target = self.source(ctx), self.target(ctx)
        if not source.is_file():
            raise NpuenvError(
                f"overlay source {self.overlay.from_path} is missing in {self.source_repo.name} at "
                f"{self.source_repo.commit[:12]}",
                hint="upstream moved or deleted the file: pin a commit that has it",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        recorded = ctx.state.resolved(self.id).get("sha256")
        kept = None
        if recorded and target.is_file() and sha256_file(target) != recorded and not git.as_committed(
                ctx.path(self.target_repo.path), self.overlay.to_path, ctx.env):
            # someone edited the file after npuenv put it there (not a checkout putting the repo's own back)
            kept = backup_path(target)
            shutil.copy2(target, kept)
            log.write(f"{target} was edited: kept as {kept}\n")
        tmp = fresh_tmp_sibling(target, ctx.root)
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
        log.write(f"copied {source} -> {target}\n")
        digest = sha256_file(target)
        facts: dict[str, Any] = {"sha256": digest, "files": {self.overlay.to_path: digest}}
        if kept is not None:
            facts["note"] = f"{self.overlay.to_path} was edited: kept as {kept.relative_to(ctx.root)}"
        return facts


def compile(spec: Any, machine: Any) -> list[Step]:
    """After both repos and the target repo's patches, so the result does not depend on scheduling."""
    return [OverlayStep(o, spec.repos[o.from_repo], spec.repos[o.to_repo],
                        step_ids(f"repo:{o.from_repo}", f"repo:{o.to_repo}", *patches_of(spec, o.to_repo)))
            for o in spec.overlays.values()]


def uses(spec: Any, machine: Any) -> set[str]:
    return {o.from_repo for o in spec.overlays.values()} | {o.to_repo for o in spec.overlays.values()}


KIND = Kind("overlay", compile, section="overlays", parse=parse, uses=uses)
