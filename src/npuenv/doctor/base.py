"""What every doctor check shares: its result, its description, and the runner.

A check is a small function of the DoctorContext that returns a CheckResult. The runner starts every
selected check at once in a thread pool (most of them wait on a file or a subprocess), turns an
exception into a `crash` result instead of stopping, and returns the results in the listed order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Tuple

from .. import results
from ..results import Status


@dataclass(frozen=True)
class CheckResult:
    """status, a one-line finding, the fix (a command where possible) and optional detail lines."""

    status: Status
    finding: str
    fix: str = ""
    details: Tuple[str, ...] = ()


def ok(finding: str, details: Sequence[str] = ()) -> CheckResult:
    return CheckResult(Status.OK, finding, "", tuple(details))


def warn(finding: str, fix: str = "", details: Sequence[str] = ()) -> CheckResult:
    return CheckResult(Status.WARN, finding, fix, tuple(details))


def fail(finding: str, fix: str = "", details: Sequence[str] = ()) -> CheckResult:
    return CheckResult(Status.FAIL, finding, fix, tuple(details))


def skip(reason: str) -> CheckResult:
    return CheckResult(Status.SKIP, reason)


@dataclass(frozen=True)
class Check:
    """name (`group.what`), group, a one-line description, and the function. `online` checks reach the
    network and run only with --online (or when named with --check)."""

    name: str
    group: str
    description: str
    run: Callable[[Any], CheckResult]
    online: bool = False

    def to_json(self) -> dict:
        return {"name": self.name, "group": self.group, "description": self.description, "online": self.online}


def check(name: str, description: str, online: bool = False) -> Callable[[Callable[[Any], CheckResult]], Check]:
    """Decorator: `@check("system.arch", "...")` over `def arch(ctx) -> CheckResult` makes a Check."""
    group = name.split(".", 1)[0]

    def wrap(func: Callable[[Any], CheckResult]) -> Check:
        return Check(name, group, description, func, online)
    return wrap


@dataclass(frozen=True)
class Outcome:
    check: Check
    result: CheckResult
    seconds: float

    def to_json(self) -> dict:
        return {"name": self.check.name, "group": self.check.group, "status": self.result.status.value,
                "finding": self.result.finding, "fix": self.result.fix, "details": list(self.result.details),
                "seconds": round(self.seconds, 4)}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_one(item: Check, ctx: Any) -> Outcome:
    began = time.perf_counter()
    try:
        result = item.run(ctx)
        if not isinstance(result, CheckResult):
            raise TypeError(f"check returned {type(result).__name__}, not a CheckResult")
    except Exception as exc:  # noqa: BLE001 - a crashing check is reported, never fatal
        result = CheckResult(Status.CRASH, f"the check crashed: {_one_line(exc)}",
                             "this is a bug in npuenv's doctor: please report it with this line")
    return Outcome(item, result, time.perf_counter() - began)


def run_checks(checks: Sequence[Check], ctx: Any, workers: int = 32) -> list[Outcome]:
    """Run every check concurrently; results in the order of `checks`."""
    if not checks:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(checks))), thread_name_prefix="doctor") as pool:
        futures = [pool.submit(run_one, item, ctx) for item in checks]
        return [future.result() for future in futures]


def count(outcomes: Sequence[Outcome]) -> dict[str, int]:
    return {status.value: n for status, n in results.count(o.result.status for o in outcomes).items()}
