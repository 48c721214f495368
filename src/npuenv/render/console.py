"""Rendering for people: the only place that writes to the terminal."""

from __future__ import annotations

import sys
import threading
import time
from typing import Optional, TextIO

from ..engine import Decision, Outcome, RunReport
from ..errors import NpuenvError

SYMBOLS = {"done": "✓", "up-to-date": "·", "failed": "✗", "not-run": "-"}


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class Console:
    """Step progress as lines; download progress as one rewritten line, only on a terminal."""

    def __init__(self, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tty = self.out.isatty()
        self._lock = threading.Lock()
        self._last_progress = 0.0
        self._live = False  # a status line is on screen, to be cleared by the next line

    def line(self, text: str = "") -> None:
        with self._lock:
            self._clear_live()
            self.out.write(text + "\n")
            self.out.flush()

    def lines(self, texts: list[str]) -> None:
        for text in texts:
            self.line(text)

    def _clear_live(self) -> None:
        if self._live:
            self.out.write("\r\033[K")
            self._live = False

    def _live_line(self, text: str) -> None:
        now = time.monotonic()
        if not self.tty or now - self._last_progress < 0.1:
            return
        self._last_progress = now
        with self._lock:
            self.out.write("\r\033[K" + text[:110])
            self.out.flush()
            self._live = True

    def status(self, step_id: str, text: str) -> None:
        """A long step's live one-liner (a build's elapsed time and last output line), on a terminal only."""
        self._live_line(f"  {step_id} {text}")

    def warn(self, text: str) -> None:
        with self._lock:
            self.err.write(f"warning: {text}\n")
            self.err.flush()

    def waiting(self, holder: str) -> None:
        self.line(f"waiting for another npuenv run to finish ({holder}) ...")

    def plan(self, decisions: list[tuple[str, Decision]]) -> None:
        width = max((len(i) for i, _ in decisions), default=10)
        self.line("plan (dry run, nothing changed):")
        for step_id, decision in decisions:
            verb = "run " if decision.run else "skip"
            self.line(f"  {verb}  {step_id:<{width}}  {decision.reason}")
            if decision.detail:
                self.line(f"        {'':<{width}}  {decision.detail}")
        count = sum(d.run for _, d in decisions)
        self.line(f"{count} of {len(decisions)} steps would run")

    def started(self, step_id: str, reason: str) -> None:
        self.line(f"→ {step_id} ({reason})")

    def finished(self, outcome: Outcome) -> None:
        if outcome.result == "done":
            note = f" ({outcome.note})" if outcome.note else ""
            self.line(f"{SYMBOLS['done']} {outcome.step_id} {outcome.seconds:.1f}s{note}")
        elif outcome.result == "failed":
            self.line(f"{SYMBOLS['failed']} {outcome.step_id}: {outcome.reason}")

    def progress(self, step_id: str, done: int, total: Optional[int]) -> None:
        if total:
            filled = int(30 * done / total)
            bar = "#" * filled + "." * (30 - filled)
            self._live_line(f"  {step_id} [{bar}] {human_bytes(done)} / {human_bytes(total)}")
        else:
            self._live_line(f"  {step_id} {human_bytes(done)}")

    def summary(self, report: RunReport) -> None:
        width = max((len(o.step_id) for o in report.outcomes), default=10)
        self.line("")
        self.line(f"{'step':<{width}}  {'result':<10}  {'seconds':>7}")
        for o in report.outcomes:
            note = f"  {o.note}" if o.note else ""
            self.line(f"{o.step_id:<{width}}  {o.result:<10}  {o.seconds:7.1f}{note}")
        busy = sum(o.seconds for o in report.outcomes if o.result in ("done", "failed"))
        counts = {r: sum(o.result == r for o in report.outcomes) for r in SYMBOLS}
        self.line(f"{counts['done']} done, {counts['up-to-date']} up to date, {counts['failed']} failed, "
                  f"{counts['not-run']} not run; wall {report.wall:.1f}s, step time {busy:.1f}s")

    def error(self, exc: NpuenvError) -> None:
        with self._lock:
            self.err.write(f"error: {exc.message}\n")
            if exc.hint:
                self.err.write(f"hint: {exc.hint}\n")
            self.err.flush()
