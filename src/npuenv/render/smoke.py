"""smoke as text: the probes' table and its summary line (`invoke smoke` and the smoke step's log)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..cann import SET_ENV_VARIABLE
from ..results import Status
from . import symbol


def table(report: Any, *, hints: bool = True) -> list[str]:
    """The report as a table (probe, result, seconds, detail or error) and a summary line."""
    width = max([len("probe"), *(len(p.name) for p in report.probes)])
    lines = [f"python {report.python or '?'} ({report.executable or '?'}); CANN: {_cann_text(report)}", "",
             f"{'probe':<{width}}  result  {'seconds':>7}  detail"]
    for p in report.probes:
        text = (p.error or "failed") if p.status is Status.FAIL else p.detail
        lines.append(f"{p.name:<{width}}  {symbol(p.status):^6}  {p.seconds:7.1f}  {text}")
        if hints and p.hint:
            lines.append(f"{'':<{width}}  {'':6}  {'':7}  hint: {p.hint}")
    counts = report.counts
    verdict = "smoke test passed" if report.passed else "smoke test FAILED"
    lines += ["", f"{verdict}: {counts[Status.OK]} ok, {counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped "
                  f"in {report.wall or report.seconds:.1f}s"]
    return lines


def _cann_text(report: Any) -> str:
    if report.set_env:
        return f"sourced {report.set_env}"
    if report.set_env_missing:
        return f"{report.set_env_missing} not found, not sourced (set {SET_ENV_VARIABLE})"
    return f"already in the environment (ASCEND_TOOLKIT_HOME={report.cann})" if report.cann else "not sourced"


def device_note(devices: Sequence[int], glob: str) -> list[str]:
    """A note before the run when this machine has no NPU device files (the probes will say what torch_npu saw)."""
    return [] if devices else [f"note: no NPU device files match {glob} on this machine"]
