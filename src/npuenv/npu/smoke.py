"""The smoke test of the target env: smoke_script.py run by the target interpreter with CANN sourced, its one
JSON object read back as a SmokeReport of Probes (each with a npuenv.results.Status), and a hint attached to
each failed probe.

Used by the `smoke` step (the last step of bootstrap) and by `invoke smoke`. Nothing here prints: the
table is npuenv.render.smoke's, the JSON each result's to_json().
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from ..cann import SET_ENV_VARIABLE as CANN_SET_ENV_VARIABLE, sourced
from ..data import TEST_VIDEO
from ..errors import NpuenvError, SmokeError, SmokeFailed, UsageError
from ..results import Status, count

SCRIPT = Path(__file__).with_name("smoke_script.py")
DEFAULT_TIMEOUT = 900.0  # the whole script: importing torch_npu, every device, the all-reduce
ALLREDUCE_TIMEOUT = 300.0
FOREIGN_VARS = ("VIRTUAL_ENV", "PYTHONHOME")  # the tool env's, when npuenv runs under `uv run`
TAIL_LINES = 20


# the script's `ok` for each status: True, False, or None (skipped: e.g. torch_npu did not import)
_OK = {Status.OK: True, Status.FAIL: False, Status.SKIP: None}
_STATUS = {ok: status for status, ok in _OK.items()}


@dataclass(frozen=True)
class Probe:
    name: str
    status: Status  # OK, FAIL or SKIP
    seconds: float = 0.0
    detail: str = ""
    error: Optional[str] = None
    log: str = ""
    hint: str = ""

    @property
    def ok(self) -> Optional[bool]:
        """The script's own word (True, False, None for skipped): the `ok` of the JSON and of the recorded state."""
        return _OK[self.status]

    def to_json(self) -> dict[str, Any]:
        """name, ok, seconds, detail, error; log and hint when there are any."""
        data = {"name": self.name, "ok": self.ok, "seconds": self.seconds, "detail": self.detail,
                "error": self.error, "log": self.log, "hint": self.hint}
        return {k: v for k, v in data.items() if v != "" or k == "detail"}


@dataclass(frozen=True)
class SmokeReport:
    probes: tuple[Probe, ...]
    python: str = ""
    executable: str = ""
    torch: Optional[str] = None
    torch_npu: Optional[str] = None
    devices: Optional[int] = None
    cann: Optional[str] = None  # ASCEND_TOOLKIT_HOME as the script saw it
    seconds: float = 0.0  # the script's own time
    facts: dict[str, Any] = field(default_factory=dict)  # the rest of the script's object
    wall: float = 0.0  # as the caller measured it: interpreter start and CANN sourcing included
    set_env: Optional[str] = None  # the set_env.sh sourced, if any
    set_env_missing: Optional[str] = None  # the set_env.sh looked for and not found
    stderr: str = ""  # what the libraries printed

    @property
    def failed(self) -> list[Probe]:
        return [p for p in self.probes if p.status is Status.FAIL]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def counts(self) -> dict[Status, int]:
        return count(p.status for p in self.probes)

    def to_json(self) -> dict[str, Any]:
        """`invoke smoke --json` (a user contract): passed, the script's facts, how it ran, and the probes."""
        data = {k: v for k, v in asdict(self).items() if k not in ("probes", "stderr")}
        return {"passed": self.passed, **data, "probes": [p.to_json() for p in self.probes]}


# --- where things are ---------------------------------------------------------------------------------

def npu_device_glob(env: Mapping[str, str]) -> str:
    from .procs import DEFAULT_DEVICE_GLOB, DEVICE_GLOB_VARIABLE

    return env.get(DEVICE_GLOB_VARIABLE) or DEFAULT_DEVICE_GLOB


def npu_devices(env: Mapping[str, str]) -> list[int]:
    """The NPU numbers of the device files here (kill-npu's glob: NPUENV_DEVICE_GLOB)."""
    from .procs import device_files

    return sorted(set(device_files(npu_device_glob(env)).values()))


def target_python(spec: Any, root: Path) -> Path:
    return root / spec.env.venv / "bin" / "python"


def project_dir(spec: Any, root: Path) -> Optional[Path]:
    """The target env's project checkout (MindSpeed-MM): training scripts run there, `megatron/` is there."""
    name = spec.env.project
    return root / spec.repos[name].path if name and name in spec.repos else None


@dataclass(frozen=True)
class TargetEnv:
    """A workspace's target env, as the smoke test runs it."""

    root: Path
    python: Path
    project: Optional[Path]  # the MindSpeed-MM checkout: the script runs there


def workspace_target(root: Optional[str], spec: Optional[str], env: Mapping[str, str]) -> TargetEnv:
    """The target env of the workspace `root` (default: $NPUENV_USER's) with `spec` (default: the spec it was
    made with). Raises UsageError (no such root, a spec without env) or NpuenvError (not bootstrapped yet)."""
    from .. import workspace
    from ..spec import load_spec

    if root and not Path(root).expanduser().is_dir():
        raise UsageError(f"--root {root}: no such folder", hint="pass the workspace that bootstrap made")
    folder = workspace.resolve_root(root, env)
    loaded = load_spec(workspace.spec_argument(spec, workspace.recorded_spec(folder)))
    if loaded.env is None:
        raise UsageError(f"the spec {loaded.name} has no env: there is no target env to test")
    python = target_python(loaded, folder)
    if not python.is_file():
        raise NpuenvError(f"no target env at {python.parent.parent}",
                          hint=f"make it first: invoke bootstrap --root {folder}")
    return TargetEnv(folder, python, project_dir(loaded, folder))


# --- running the script ---------------------------------------------------------------------------------

def smoke_argv(python: str, *, set_env: Optional[Path] = None, video: Optional[Path] = None,
               devices: Optional[int] = None, skip_distributed: bool = False, project: Optional[Path] = None,
               allreduce_timeout: float = ALLREDUCE_TIMEOUT) -> list[str]:
    """The command: the target interpreter on the script, through bash sourcing set_env.sh when given."""
    argv = [os.fspath(python), os.fspath(SCRIPT), "--timeout", str(allreduce_timeout)]
    if video is not None:
        argv += ["--video", os.fspath(video)]
    if devices is not None:
        argv += ["--devices", str(devices)]
    if skip_distributed:
        argv.append("--skip-distributed")
    if project is not None:
        argv += ["--project", os.fspath(project)]
    return sourced(argv, set_env, "npuenv-smoke")


def run_smoke(python: str, *, cann_set_env: Optional[Path], env: Mapping[str, str],
              video: Optional[Path] = TEST_VIDEO, timeout: float = DEFAULT_TIMEOUT, devices: Optional[int] = None,
              skip_distributed: bool = False, project: Optional[Path] = None,
              tmpdir: Optional[Path] = None) -> SmokeReport:
    """Run the smoke script with `python`, sourcing `cann_set_env` when that file exists.

    `tmpdir` (made when missing) holds what the script writes, e.g. torchrun's worker: the workspace's.

    Returns the report (failed probes carry hints); raises SmokeError when no report came back.
    """
    if not Path(python).is_file():
        raise SmokeError(f"the target interpreter {python} does not exist",
                         hint="run `invoke bootstrap` first: its env step makes the target env")
    sourced = cann_set_env if cann_set_env is not None and Path(cann_set_env).is_file() else None
    workdir = project if project is not None and Path(project).is_dir() else None
    argv = smoke_argv(python, set_env=sourced, video=video, devices=devices, skip_distributed=skip_distributed,
                      project=workdir, allreduce_timeout=min(ALLREDUCE_TIMEOUT, timeout / 2))
    child_env = {k: v for k, v in env.items() if k not in FOREIGN_VARS}
    if tmpdir is not None:
        Path(tmpdir).mkdir(parents=True, exist_ok=True)
        child_env["TMPDIR"] = os.fspath(tmpdir)
    began = time.monotonic()
    out, err, code = _run_group(argv, child_env, workdir, timeout)
    wall = time.monotonic() - began
    try:
        report = parse_report(out)
    except SmokeError as exc:
        raise crashed(exc.message, code, out, err) from None
    report = replace(report, wall=wall, set_env=os.fspath(sourced) if sourced else None,
                     set_env_missing=os.fspath(cann_set_env) if cann_set_env is not None and not sourced else None,
                     stderr=err)
    return attach_hints(report)


def run_target(target: TargetEnv, env: Mapping[str, str], devices: Optional[int] = None) -> SmokeReport:
    """run_smoke on a workspace's target env: CANN's set_env.sh from `env`, the workspace's temporary folder."""
    from ..cann import set_env_candidate
    from ..workspace import Layout

    return run_smoke(str(target.python), cann_set_env=set_env_candidate(env), env=env, devices=devices,
                     project=target.project, tmpdir=Layout(target.root).tmp)


def _run_group(argv: list[str], env: Mapping[str, str], cwd: Optional[Path],
               timeout: float) -> tuple[str, str, int]:
    """Run argv under npuenv's supervisor (npuenv.commands): on timeout or interrupt its whole group is stopped
    (ours alone), and it dies with npuenv if npuenv is killed."""
    from ..commands import finish, spawn

    try:
        proc = spawn(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, errors="replace")
    except OSError as exc:
        raise SmokeError(f"cannot run {argv[0]}: {exc.strerror}", hint="is the target env intact?") from None
    try:
        out, err = finish(proc, lambda: proc.communicate(timeout=timeout))
    except subprocess.TimeoutExpired:  # finish() has stopped its group already
        out, err = proc.communicate()
        raise SmokeError(f"the smoke test did not finish within {timeout:.0f} s" + _last_lines(out, err),
                         hint="a device held by another process can make torch_npu hang: `invoke kill-npu`, "
                              "then run it again") from None
    return out, err, proc.returncode


def _last_lines(out: str, err: str) -> str:
    lines = (err.rstrip() + "\n" + out.rstrip()).strip().splitlines()[-TAIL_LINES:]
    return ("\nlast lines of its output:\n" + "\n".join("  | " + line for line in lines)) if lines else ""


def crashed(why: str, code: int, out: str, err: str) -> SmokeError:
    """The script died before printing its result (a segfault in a native library, a broken interpreter)."""
    how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return SmokeError(f"the smoke script crashed ({how}): {why}" + _last_lines(out, err),
                      hint=hint_for(err + "\n" + out) or "the lines above are the end of its output")


# --- reading the result -----------------------------------------------------------------------------------

def parse_report(text: str) -> SmokeReport:
    """The smoke script's stdout -> SmokeReport. The object is the last line that is one JSON object."""
    data = None
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            break
    if not isinstance(data, dict) or not isinstance(data.get("probes"), list):
        raise SmokeError("its output holds no result object")
    probes = tuple(_probe(p, i) for i, p in enumerate(data["probes"]))
    known = {"python", "executable", "torch", "torch_npu", "devices", "cann", "seconds"}
    return SmokeReport(
        probes=probes, python=str(data.get("python") or ""), executable=str(data.get("executable") or ""),
        torch=data.get("torch"), torch_npu=data.get("torch_npu"), devices=data.get("devices"),
        cann=data.get("cann"), seconds=float(data.get("seconds") or 0.0),
        facts={k: v for k, v in data.items() if k not in known and k != "probes"},
    )


def _probe(item: Any, index: int) -> Probe:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or item.get("ok") not in (True, False, None):
        raise SmokeError(f"its result has a malformed probe #{index}: {json.dumps(item)[:200]}")
    return Probe(name=item["name"], status=_STATUS[item["ok"]], seconds=float(item.get("seconds") or 0.0),
                 detail=str(item.get("detail") or ""), error=item.get("error"), log=str(item.get("log") or ""))


# --- hints ------------------------------------------------------------------------------------------------

def hint_for(text: str) -> str:
    """The doctor's cause and fix for the first known error in `text` (npuenv.npu.logtriage's table), else ''."""
    from . import logtriage  # compiles its table: only when a probe failed, not in every bootstrap

    found = logtriage.triage(text)
    return f"{found[0].cause}; fix: {found[0].fix}" if found else ""


def attach_hints(report: SmokeReport) -> SmokeReport:
    probes = tuple(replace(p, hint=hint_for(f"{p.error}\n{p.log}")) if p.status is Status.FAIL else p
                   for p in report.probes)
    return replace(report, probes=probes)


# --- the error --------------------------------------------------------------------------------------------

def failure(report: SmokeReport) -> SmokeFailed:
    """One error naming the failed probes, with their errors and hints."""
    names = [p.name for p in report.failed]
    lines = [f"smoke test failed: {', '.join(names)}"]
    lines += [f"  {p.name}: {p.error or 'failed'}" for p in report.failed]
    hints = list(dict.fromkeys(p.hint for p in report.failed if p.hint))
    hint = "; ".join(hints) or "each probe's whole error is in the log (or in `invoke smoke --json`)"
    if report.set_env_missing and any("set_env.sh" in h for h in hints):
        hint += f" ({report.set_env_missing} does not exist: point {CANN_SET_ENV_VARIABLE} at CANN's set_env.sh)"
    return SmokeFailed("\n".join(lines), hint)
