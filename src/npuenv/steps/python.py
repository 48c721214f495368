"""python — a CPython of the spec's version for the target env (found, or installed by uv).

Its identity is the version the spec asks for; the interpreter it resolved (path and exact version) is
what it records, and what the steps after it fingerprint. `--python` is probed once, before any step
(`given()`), so a wrong one is an error even in a dry run, and naming the interpreter the workspace
already uses changes nothing.
"""

from __future__ import annotations

import os
from typing import IO, Any, Optional

from .. import pythons
from ..errors import NpuenvError, UsageError
from .. import schema as s
from .base import OK, Checked, Context, Kind, Step, drifted, missing


def given(path: str, want: str, recorded: Optional[dict] = None) -> dict[str, Any]:
    """The facts of the interpreter --python names (executable, exact version); a usage error when it is
    not a CPython `want`. The interpreter the workspace recorded, unchanged on disk since (same file, size
    and mtime), is not run again: its recorded facts are the answer."""
    known = _unchanged(path, recorded or {})
    if known is not None and pythons.matches(known, want):
        return known
    facts = pythons.probe(path)
    if pythons.matches(facts, want):
        return facts
    if facts:
        problem = f"wanted CPython {want}, found {facts['implementation']} {facts['version']}"
    else:
        problem = "no such file" if not os.path.exists(path) else "it does not run"
    raise UsageError(f"--python {path}: {problem}", hint=f"pass the path of a python{want} interpreter")


def _file_stamp(path: str) -> Optional[list]:
    try:
        found = os.stat(os.path.realpath(path))
    except OSError:
        return None
    return [os.path.realpath(path), found.st_size, found.st_mtime_ns]


def _unchanged(path: str, recorded: dict) -> Optional[dict]:
    """The recorded facts when `path` is the recorded interpreter and its file has not changed."""
    stamp = recorded.get("stamp")
    if not stamp or not recorded.get("interpreter") or _file_stamp(path) != stamp:
        return None
    if os.path.realpath(recorded["interpreter"]) != stamp[0]:
        return None
    return {"executable": recorded["interpreter"], "version": recorded.get("version", ""),
            "machine": recorded.get("machine", ""), "implementation": "cpython"}


class PythonStep(Step):
    kind = "python"
    version = 1

    def __init__(self, version: str) -> None:
        super().__init__("")
        self.want = version

    def describe(self, ctx: Context) -> str:
        if ctx.python:
            return f"CPython {ctx.python['version']} at {ctx.python['executable']} (--python)"
        recorded = ctx.state.resolved(self.id)
        if recorded.get("interpreter"):
            return f"CPython {recorded.get('version')} at {recorded['interpreter']}"
        return f"CPython {self.want} (found, or installed by uv)"

    def fingerprint(self, ctx: Context) -> Any:
        return {"version": self.want}

    def check(self, ctx: Context) -> Checked:
        recorded = ctx.state.resolved(self.id).get("interpreter")
        if not recorded:
            return missing()
        if not os.access(recorded, os.X_OK):
            return drifted(f"{recorded} is gone")
        if ctx.python and os.path.realpath(ctx.python["executable"]) != os.path.realpath(recorded):
            return drifted(f"--python names {ctx.python['executable']}, the workspace uses {recorded}")
        return OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        if ctx.python:
            return self._found(ctx.python, "given", log)
        for how, candidate in self._candidates(ctx):
            facts = pythons.probe(candidate)
            log.write(f"{how}: {candidate}: {facts and facts['version']}\n")
            if pythons.matches(facts, self.want):
                return self._found(facts, how, log)
        interpreter, said = pythons.uv_install(ctx.uv, self.want, ctx.env)
        log.write(said + "\n")
        facts = pythons.probe(interpreter) if interpreter else None
        if pythons.matches(facts, self.want):
            return self._found(facts, "installed by uv", log)
        raise NpuenvError(
            f"no CPython {self.want} found, and uv could not install one (offline, or its download is blocked)",
            hint=f"install Python {self.want} (e.g. `conda create -p /home/ma-user/work/py{self.want} "
                 f"python={self.want}`) and pass --python /path/to/python{self.want}; or set a mirror for "
                 "uv's Python downloads (UV_PYTHON_INSTALL_MIRROR)",
        )

    def _candidates(self, ctx: Context):
        found = pythons.uv_find(ctx.uv, self.want, ctx.env)
        if found:
            yield "uv python find", found
        for path in pythons.known_locations(self.want, ctx.env):
            yield "known location", path

    def _found(self, facts: Optional[dict], how: str, log: IO[str]) -> dict[str, Any]:
        log.write(f"using {facts['executable']} (CPython {facts['version']}, {how})\n")
        return {"interpreter": facts["executable"], "version": facts["version"], "machine": facts["machine"],
                "how": how, "stamp": _file_stamp(facts["executable"])}


def compile(spec: Any, machine: Any) -> list[Step]:
    return [PythonStep(spec.python)]


def parse(ck: s.Checker, data: dict, parsed: dict) -> Optional[str]:
    """python: "3.10" (or "3.10.14"): the target env's interpreter version. Required."""
    return s.scalar(ck, data, "python", s.python, True)


KIND = Kind("python", compile, section="python", parse=parse)
