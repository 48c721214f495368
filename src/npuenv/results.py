"""The one result model: every task's outcome is a list of results with a Status and a `to_json()`.

Engine steps (done, up-to-date, fail, not-run), doctor checks (ok, warn, fail, skip, crash), smoke probes
(ok, fail, skip) and a person's isolation checks all use this enum; npuenv.render turns them into text or
JSON, so a task's text and its JSON always come from the same objects. Import-light: no third-party code.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    CRASH = "crash"  # a doctor check raised: a bug in the check, never the box's fault
    DONE = "done"  # an engine step did its work
    UP_TO_DATE = "up-to-date"  # an engine step had nothing to do
    NOT_RUN = "not-run"  # an engine step was not started (a dependency failed, or the run stopped)

    @property
    def bad(self) -> bool:
        """Does this status make the task exit non-zero?"""
        return self in (Status.FAIL, Status.CRASH)


def count(statuses: Iterable[Status]) -> dict[Status, int]:
    """How many of each status (every status present as a key, zero or not)."""
    counts = dict.fromkeys(Status, 0)
    for status in statuses:
        counts[status] += 1
    return counts
