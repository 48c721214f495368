"""`user.*` as text: what user.add did, the list of people, the SSH and VS Code snippets, user.check."""

from __future__ import annotations

from typing import Any

from . import doctor


def check(report: Any) -> list[str]:
    """user.check: the isolation checks as doctor shows them, under NAME, then how many issues."""
    note = [f"note: {report.missing} does not exist here (not a ModelArts box?): checking against "
            f"{report.persistent}"] if report.missing else []
    title = f"isolation of {report.paths.name} (the environment {report.paths.init_sh} gives)"
    issues = sum(o.result.status.value in ("warn", "fail", "crash") for o in report.outcomes)
    summary = (f"{issues} issue{'s' if issues != 1 else ''} found" if issues
               else f"everything lives under {report.persistent}")
    return [*note, *doctor.rows(report.outcomes, {"isolation": title}), "", summary]
