"""bootstrap as text or JSON: the engine's Reporter, rendered.

TextReporter prints a line as each step starts and ends, a live line for downloads and builds, then the
table; JsonReporter prints nothing until the end, then the plan or the run as one object (RunReport.to_json)
on stdout, warnings on stderr. Both render the same Decision, Outcome and RunReport objects.
"""

from __future__ import annotations

from typing import Optional

from ..engine import Decision, Outcome, RunReport
from ..results import Status, count
from . import symbol, to_json
from .console import Console, human_bytes


class TextReporter:
    def __init__(self, console: Console) -> None:
        self.console = console

    def plan(self, decisions: list[Decision]) -> None:
        self.console.lines(plan_lines(decisions))

    def started(self, step_id: str, reason: str) -> None:
        self.console.line(f"→ {step_id} ({reason})")

    def finished(self, outcome: Outcome) -> None:
        if outcome.status is Status.DONE:
            note = f" ({outcome.note})" if outcome.note else ""
            self.console.line(f"{symbol(outcome.status)} {outcome.step_id} {outcome.seconds:.1f}s{note}")
        elif outcome.status is Status.FAIL:
            self.console.line(f"{symbol(outcome.status)} {outcome.step_id}: {outcome.reason}")

    def summary(self, report: RunReport) -> None:
        self.console.lines(summary_lines(report))

    def progress(self, step_id: str, done: int, total: Optional[int]) -> None:
        if total:
            filled = int(30 * done / total)
            bar = "#" * filled + "." * (30 - filled)
            self.console.live(f"  {step_id} [{bar}] {human_bytes(done)} / {human_bytes(total)}")
        else:
            self.console.live(f"  {step_id} {human_bytes(done)}")

    def status(self, step_id: str, text: str) -> None:
        self.console.live(f"  {step_id} {text}")

    def warn(self, text: str) -> None:
        self.console.warn(text)

    def waiting(self, holder: str) -> None:
        self.console.line(f"waiting for another npuenv run to finish ({holder}) ...")


class JsonReporter(TextReporter):
    """One JSON object on stdout at the end; nothing else there, so a program can read it whole."""

    def plan(self, decisions: list[Decision]) -> None:
        self.console.line(to_json(RunReport(plan=list(decisions))))

    def started(self, step_id: str, reason: str) -> None:
        pass

    def finished(self, outcome: Outcome) -> None:
        pass

    def summary(self, report: RunReport) -> None:
        self.console.line(to_json(report))

    def progress(self, step_id: str, done: int, total: Optional[int]) -> None:
        pass

    def status(self, step_id: str, text: str) -> None:
        pass

    def waiting(self, holder: str) -> None:
        self.console.warn(f"waiting for another npuenv run to finish ({holder}) ...")


def plan_lines(decisions: list[Decision]) -> list[str]:
    width = max((len(d.step_id) for d in decisions), default=10)
    lines = ["plan (dry run, nothing changed):"]
    for d in decisions:
        lines.append(f"  {'run ' if d.run else 'skip'}  {d.step_id:<{width}}  {d.reason}")
        if d.detail:
            lines.append(f"        {'':<{width}}  {d.detail}")
    return [*lines, f"{sum(d.run for d in decisions)} of {len(decisions)} steps would run"]


def summary_lines(report: RunReport) -> list[str]:
    width = max((len(o.step_id) for o in report.outcomes), default=10)
    lines = ["", f"{'step':<{width}}  {'result':<10}  {'seconds':>7}"]
    for o in report.outcomes:
        note = f"  {o.note}" if o.note else ""
        lines.append(f"{o.step_id:<{width}}  {o.status.value:<10}  {o.seconds:7.1f}{note}")
    busy = sum(o.seconds for o in report.outcomes if o.status in (Status.DONE, Status.FAIL))
    counts = count(o.status for o in report.outcomes)
    return [*lines, f"{counts[Status.DONE]} done, {counts[Status.UP_TO_DATE]} up to date, {counts[Status.FAIL]} "
                    f"failed, {counts[Status.NOT_RUN]} not run; wall {report.wall:.1f}s, step time {busy:.1f}s"]
