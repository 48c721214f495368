"""The smoke test of the target env: smoke_script.py run by the target interpreter with CANN sourced, its one
JSON object read back, a hint attached to each failed probe, and the result laid out as table lines.

Used by the `smoke` step (the last step of bootstrap) and by `invoke smoke`. Nothing here prints.
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
from ..errors import SmokeError, SmokeFailed

SCRIPT = Path(__file__).with_name("smoke_script.py")
DEFAULT_TIMEOUT = 900.0  # the whole script: importing torch_npu, every device, the all-reduce
ALLREDUCE_TIMEOUT = 300.0
FOREIGN_VARS = ("VIRTUAL_ENV", "PYTHONHOME")  # the tool env's, when npuenv runs under `uv run`
SYMBOLS = {"ok": "✓", "failed": "✗", "skipped": "-"}
TAIL_LINES = 20


@dataclass(frozen=True)
class Probe:
    name: str
    ok: Optional[bool]  # None: skipped
    seconds: float = 0.0
    detail: str = ""
    error: Optional[str] = None
    log: str = ""
    hint: str = ""

    @property
    def status(self) -> str:
        return {True: "ok", False: "failed", None: "skipped"}[self.ok]


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
        return [p for p in self.probes if p.ok is False]

    @property
    def passed(self) -> bool:
        return not self.failed

    def count(self, status: str) -> int:
        return sum(p.status == status for p in self.probes)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("probes", "stderr")}
        probes = [{k: v for k, v in asdict(p).items() if v != "" or k in ("detail",)} for p in self.probes]
        return {"passed": self.passed, **data, "probes": probes}


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
    return Probe(name=item["name"], ok=item["ok"], seconds=float(item.get("seconds") or 0.0),
                 detail=str(item.get("detail") or ""), error=item.get("error"), log=str(item.get("log") or ""))


# --- hints ------------------------------------------------------------------------------------------------

def hint_for(text: str) -> str:
    """The doctor's cause and fix for the first known error in `text` (npuenv.npu.logtriage's table), else ''."""
    from . import logtriage  # compiles its table: only when a probe failed, not in every bootstrap

    found = logtriage.triage(text)
    return f"{found[0].cause}; fix: {found[0].fix}" if found else ""


def attach_hints(report: SmokeReport) -> SmokeReport:
    probes = tuple(replace(p, hint=hint_for(f"{p.error}\n{p.log}")) if p.ok is False else p for p in report.probes)
    return replace(report, probes=probes)


# --- presenting -------------------------------------------------------------------------------------------

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


def render_lines(report: SmokeReport, *, hints: bool = True) -> list[str]:
    """The report as a table (probe, result, seconds, detail or error) and a summary line."""
    width = max([len("probe"), *(len(p.name) for p in report.probes)])
    lines = [f"python {report.python or '?'} ({report.executable or '?'}); CANN: {_cann_text(report)}", "",
             f"{'probe':<{width}}  result  {'seconds':>7}  detail"]
    for p in report.probes:
        text = (p.error or "failed") if p.ok is False else p.detail
        lines.append(f"{p.name:<{width}}  {SYMBOLS[p.status]:^6}  {p.seconds:7.1f}  {text}")
        if hints and p.hint:
            lines.append(f"{'':<{width}}  {'':6}  {'':7}  hint: {p.hint}")
    counts = f"{report.count('ok')} ok, {report.count('failed')} failed, {report.count('skipped')} skipped"
    verdict = "smoke test passed" if report.passed else "smoke test FAILED"
    lines += ["", f"{verdict}: {counts} in {report.wall or report.seconds:.1f}s"]
    return lines


def _cann_text(report: SmokeReport) -> str:
    if report.set_env:
        return f"sourced {report.set_env}"
    if report.set_env_missing:
        return f"{report.set_env_missing} not found, not sourced (set {CANN_SET_ENV_VARIABLE})"
    return f"already in the environment (ASCEND_TOOLKIT_HOME={report.cann})" if report.cann else "not sourced"
