"""The terminal: the only place that writes to it. Lines, one live line (only on a terminal), errors."""

from __future__ import annotations

import sys
import threading
import time
from typing import Optional, TextIO

from ..errors import NpuenvError


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class Console:
    """Lines to stdout, warnings and errors to stderr, and one live line that the next line replaces."""

    def __init__(self, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tty = self.out.isatty()
        self._lock = threading.Lock()
        self._last_progress = 0.0
        self._live = False  # a status line is on screen, to be cleared by the next line
        self._block = 0  # lines of the live block on screen (board), redrawn in place

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

    def live(self, text: str) -> None:
        """A line rewritten in place (progress, a build's last output), at most ten times a second, on a
        terminal only: a log file or a pipe gets the finished lines alone."""
        now = time.monotonic()
        if not self.tty or now - self._last_progress < 0.1:
            return
        self._last_progress = now
        with self._lock:
            self.out.write("\r\033[K" + text[:110])
            self.out.flush()
            self._live = True

    def block(self, texts: list[str], force: bool = False) -> None:
        """Several live lines (one per node), redrawn in place at most ten times a second (`force`: now), on a
        terminal only. The last drawing stays on screen above what follows."""
        now = time.monotonic()
        if not self.tty or (not force and now - self._last_progress < 0.1):
            return
        self._last_progress = now
        with self._lock:
            self._clear_live()
            self.out.write((f"\033[{self._block}F" if self._block else "")
                           + "".join("\033[K" + text[:110] + "\n" for text in texts))
            self.out.flush()
            self._block = len(texts)

    def note(self, text: str) -> None:
        """A line to stderr, as it is: what a program reading stdout must not get (stdout stays JSON)."""
        with self._lock:
            self.err.write(text + "\n")
            self.err.flush()

    def warn(self, text: str) -> None:
        with self._lock:
            self.err.write(f"warning: {text}\n")
            self.err.flush()

    def error(self, exc: NpuenvError) -> None:
        with self._lock:
            self.err.write(f"error: {exc.message}\n")
            if exc.hint:
                self.err.write(f"hint: {exc.hint}\n")
            self.err.flush()
