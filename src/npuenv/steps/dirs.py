"""dirs — the data folders training expects (logs, dataset, ckpt)."""

from __future__ import annotations

from typing import IO, Any

from .. import schema as s
from .base import OK, Checked, Context, Kind, Step, containing_repo, missing, step_ids


class DirsStep(Step):
    kind = "dirs"
    version = 1

    def __init__(self, dirs: tuple[str, ...], deps: tuple[str, ...] = ()) -> None:
        super().__init__("", deps)
        self.dirs = dirs

    def describe(self, ctx: Context) -> str:
        return ", ".join(self.dirs)

    def fingerprint(self, ctx: Context) -> Any:
        return list(self.dirs)

    def check(self, ctx: Context) -> Checked:
        absent = [d for d in self.dirs if not ctx.path(d).is_dir()]
        return missing("missing: " + ", ".join(absent)) if absent else OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        for folder in self.dirs:
            ctx.path(folder).mkdir(parents=True, exist_ok=True)
            log.write(f"ok {folder}\n")
        return {"dirs": list(self.dirs)}


def compile(spec: Any, machine: Any) -> list[Step]:
    """After the repos the folders lie in."""
    if not spec.dirs:
        return []
    return [DirsStep(spec.dirs, step_ids(*(containing_repo(spec, d) for d in spec.dirs)))]


def parse(ck: s.Checker, data: dict, parsed: dict) -> tuple[str, ...]:
    """dirs: [PATH, ...]: folders made in the workspace (checkpoints, data, logs)."""
    return tuple(s.scalar(ck, data, "dirs", s.list_of(s.relpath("the workspace root")), False) or ())


KIND = Kind("dirs", compile, section="dirs", parse=parse)
