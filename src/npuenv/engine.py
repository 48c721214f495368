"""The engine: decides which steps must run, runs independent ones in parallel, records each one.

A step runs when it has no record, its fingerprint changed, its check fails, or it is forced. After a
failure no new step starts; running ones finish; dependents are reported as not run.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Protocol

from .commands import stop_all
from .errors import CommandFailed, NpuenvError, StepFailed, UsageError
from .results import Status, count
from .steps.base import Context, Step


@dataclass(frozen=True)
class Decision:
    step_id: str
    run: bool
    reason: str
    detail: str = ""  # what the step pins, for the plan

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step_id, "run": self.run, "reason": self.reason, "detail": self.detail}


@dataclass
class Outcome:
    step_id: str
    status: Status  # DONE | UP_TO_DATE | FAIL | NOT_RUN
    reason: str
    seconds: float = 0.0
    error: Optional[BaseException] = None
    log: Optional[Path] = None
    note: str = ""  # e.g. why a step had nothing to do ("skipped: no NPU devices on this machine")

    def to_json(self) -> dict[str, Any]:
        data = {"step": self.step_id, "status": self.status.value, "reason": self.reason,
                "seconds": round(self.seconds, 3), "note": self.note, "log": str(self.log) if self.log else None}
        if self.error is not None:
            data["error"] = getattr(self.error, "message", None) or _first_line(self.error)
            data["hint"] = getattr(self.error, "hint", "")
        return data


@dataclass
class RunReport:
    outcomes: list[Outcome] = field(default_factory=list)
    wall: float = 0.0
    plan: Optional[list[Decision]] = None  # a dry run's decisions (then no outcomes); None: a run

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is Status.FAIL]

    def by_id(self, step_id: str) -> Outcome:
        return next(o for o in self.outcomes if o.step_id == step_id)

    def to_json(self) -> dict[str, Any]:
        if self.plan is not None:
            return {"dry_run": True, "plan": [d.to_json() for d in self.plan],
                    "would_run": sum(d.run for d in self.plan)}
        counts = count(o.status for o in self.outcomes)
        return {"dry_run": False, "ok": not self.failed, "wall": round(self.wall, 3),
                "counts": {s.value: counts[s] for s in (Status.DONE, Status.UP_TO_DATE, Status.FAIL, Status.NOT_RUN)},
                "steps": [o.to_json() for o in self.outcomes]}


class Reporter(Protocol):
    """Everything bootstrap and the engine tell whoever renders their progress."""

    def plan(self, decisions: list[Decision]) -> None: ...
    def started(self, step_id: str, reason: str) -> None: ...
    def finished(self, outcome: Outcome) -> None: ...
    def summary(self, report: RunReport) -> None: ...
    def progress(self, step_id: str, done: int, total: Optional[int]) -> None: ...  # a download's bytes
    def status(self, step_id: str, text: str) -> None: ...  # a long step's live one-liner
    def warn(self, text: str) -> None: ...
    def waiting(self, holder: str) -> None: ...  # another run holds the workspace lock


class NullReporter:
    """Tells nobody: for library use and tests."""

    def plan(self, decisions: list[Decision]) -> None:
        pass

    def started(self, step_id: str, reason: str) -> None:
        pass

    def finished(self, outcome: Outcome) -> None:
        pass

    def summary(self, report: RunReport) -> None:
        pass

    def progress(self, step_id: str, done: int, total: Optional[int]) -> None:
        pass

    def status(self, step_id: str, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass

    def waiting(self, holder: str) -> None:
        pass


def topo_order(steps: list[Step]) -> list[Step]:
    """Steps in a stable dependency order (input order among equals); unknown deps and cycles are errors."""
    by_id = {s.id: s for s in steps}
    for step in steps:
        for dep in step.deps:
            if dep not in by_id:
                raise NpuenvError(f"step {step.id} depends on unknown step {dep}")
    order: list[Step] = []
    state: dict[str, int] = {}

    def visit(step: Step, trail: tuple[str, ...]) -> None:
        mark = state.get(step.id)
        if mark == 2:
            return
        if mark == 1:
            raise NpuenvError("dependency cycle: " + " -> ".join((*trail, step.id)))
        state[step.id] = 1
        for dep in step.deps:
            visit(by_id[dep], (*trail, step.id))
        state[step.id] = 2
        order.append(step)

    for step in steps:
        visit(step, ())
    return order


def select(steps: list[Step], only: list[str], force: list[str]) -> tuple[list[Step], set[str]]:
    """Apply --only (those steps and what they need) and --force; unknown ids are a usage error."""
    known = {s.id for s in steps}
    unknown = [i for i in [*only, *force] if i not in known]
    if unknown:
        raise UsageError(
            f"unknown step id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint="valid ids: " + ", ".join(s.id for s in steps),
        )
    if not only:
        return steps, set(force)
    by_id = {s.id: s for s in steps}
    wanted: set[str] = set()
    todo = list(only)
    while todo:
        step_id = todo.pop()
        if step_id not in wanted:
            wanted.add(step_id)
            todo.extend(by_id[step_id].deps)
    return [s for s in steps if s.id in wanted], set(force)


class Engine:
    def __init__(self, ctx: Context, steps: list[Step], *, log_dir: Path,
                 reporter: Optional[Reporter] = None, jobs: int = 4) -> None:
        self.ctx = ctx
        self.steps = topo_order(steps)
        self.by_id = {s.id: s for s in self.steps}
        self.log_dir = log_dir
        self.reporter = reporter or NullReporter()
        self.jobs = max(1, jobs)
        self._fingerprints: dict[str, str] = {}

    def log_path(self, step_id: str) -> Path:
        return self.log_dir / (step_id.replace(":", "_").replace("/", "_") + ".log")

    def fingerprint(self, step: Step) -> str:
        """The step's own data plus its dependencies' fingerprints, hashed. Cached per run."""
        if step.id not in self._fingerprints:
            data = {
                "kind": step.kind,
                "version": step.version,
                "data": step.fingerprint(self.ctx),
                "deps": {d: self.fingerprint(self.by_id[d]) for d in step.deps},
            }
            blob = json.dumps(data, sort_keys=True, default=str).encode()
            self._fingerprints[step.id] = hashlib.sha256(blob).hexdigest()
        return self._fingerprints[step.id]

    def decide(self, step: Step, forced: set[str]) -> Decision:
        if step.id in forced:
            return Decision(step.id, True, "forced")
        record = self.ctx.state.record(step.id)
        if record is not None and record.get("fingerprint") != self.fingerprint(step):
            return Decision(step.id, True, "spec changed")
        checked = step.check(self.ctx)
        if not checked.ok:
            # a step that never ran is simply missing, whatever its check saw half-made
            return Decision(step.id, True, "missing" if record is None else checked.reason or "missing")
        if record is None:
            return Decision(step.id, True, "not recorded yet (found in place)")
        return Decision(step.id, False, "up to date")

    def plan(self, forced: set[str] = frozenset()) -> list[Decision]:
        """Dry run: what would run and why. A step after one that would run waits for it."""
        decisions: list[Decision] = []
        would_run: set[str] = set()
        for step in self.steps:
            pending = [d for d in step.deps if d in would_run]
            if pending:
                decision = Decision(step.id, True, f"after {', '.join(pending)}")
            else:
                decision = self._safe_decide(step, forced)
            if decision.run:
                would_run.add(step.id)
            decisions.append(replace(decision, detail=step.describe(self.ctx)))
        return decisions

    def _safe_decide(self, step: Step, forced: set[str]) -> Decision:
        try:
            return self.decide(step, forced)
        except NpuenvError as exc:
            return Decision(step.id, True, f"check failed: {exc.message}")

    def run(self, forced: set[str] = frozenset()) -> RunReport:
        report = RunReport()
        start = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        done: set[str] = set()
        pending = list(self.steps)
        running: dict[Future, Step] = {}
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            try:
                self._schedule(pool, pending, running, done, forced, report)
            except BaseException:  # an interrupt: stop what running steps started, or the pool waits on it
                stop_all()
                raise
        for step in pending:
            blocked = [d for d in step.deps if d not in done]
            reason = f"needs {', '.join(blocked)}" if blocked else "stopped after a failure"
            outcome = Outcome(step.id, Status.NOT_RUN, reason)
            report.outcomes.append(outcome)
            self.reporter.finished(outcome)
        report.wall = time.monotonic() - start
        return report

    def _schedule(self, pool: ThreadPoolExecutor, pending: list, running: dict, done: set, forced: set[str],
                  report: RunReport) -> None:
        """Start steps whose dependencies are done, up to `jobs` at once; after a failure, start none."""
        failed = False
        while pending or running:
            if not failed:
                for step in [s for s in pending if all(d in done for d in s.deps)]:
                    if len(running) >= self.jobs:
                        break
                    pending.remove(step)
                    running[pool.submit(self._run_step, step, forced)] = step
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                outcome = future.result()
                report.outcomes.append(outcome)
                self.reporter.finished(outcome)
                if outcome.status is Status.FAIL:
                    failed = True
                else:
                    done.add(step.id)

    def _run_step(self, step: Step, forced: set[str]) -> Outcome:
        began = time.monotonic()
        log_path = self.log_path(step.id)
        try:
            decision = self.decide(step, forced)
            if not decision.run:
                return Outcome(step.id, Status.UP_TO_DATE, decision.reason, time.monotonic() - began,
                               note=_note(self.ctx.state.resolved(step.id)))
            self.reporter.started(step.id, decision.reason)
            with open(log_path, "w", encoding="utf-8") as log:
                log.write(f"# {step.id}: {decision.reason}\n")
                log.flush()
                try:
                    resolved = step.apply(self.ctx, log) or {}
                    self.ctx.state.stage(step.id, resolved)
                    after = step.check(self.ctx)
                    if not after.ok:
                        raise NpuenvError(
                            f"{step.id} finished but its check still fails: {after.reason}",
                            hint="this is a bug in npuenv or something changed the workspace meanwhile",
                        )
                except BaseException as exc:
                    self.ctx.state.stage(step.id, None)
                    log.write(_describe(exc))
                    raise
            seconds = time.monotonic() - began
            self.ctx.state.save_step(step.id, self.fingerprint(step), resolved, seconds)
            return Outcome(step.id, Status.DONE, decision.reason, seconds, log=log_path, note=_note(resolved))
        except Exception as exc:  # reported by the caller, with the log
            return Outcome(step.id, Status.FAIL, _first_line(exc), time.monotonic() - began,
                           error=exc, log=log_path if log_path.exists() else None)


def _note(resolved: dict) -> str:
    """What a step wants said beside its result: why it had nothing to do, what it could not verify."""
    if resolved.get("skipped"):
        return f"skipped: {resolved['skipped']}"
    return str(resolved.get("note") or "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CommandFailed):
        tail = f"\n{exc.output.rstrip()}" if exc.output else ""
        return f"\nerror: {exc.message}{tail}\n"
    if isinstance(exc, NpuenvError):
        return f"\nerror: {exc.message}\n" + (f"hint: {exc.hint}\n" if exc.hint else "")
    return "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def tail(path: Optional[Path], lines: int = 15) -> list[str]:
    if path is None or not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace").rstrip("\n")
    return text.splitlines()[-lines:]


def failure(report: RunReport) -> StepFailed:
    """One error for the first failed step: its message, its log's last lines, the log path, a hint."""
    first = report.failed[0]
    exc = first.error
    hint = getattr(exc, "hint", "")
    lines = [f"step {first.step_id} failed: {getattr(exc, 'message', None) or _first_line(exc)}"]
    last = tail(first.log)
    if last:
        lines.append(f"last lines of {first.log}:")
        lines.extend("  | " + line for line in last)
    elif first.log:
        lines.append(f"log: {first.log}")
    others = [o.step_id for o in report.failed[1:]]
    if others:
        lines.append("also failed: " + ", ".join(others))
    hint = (hint + "; " if hint else "") + "fix the cause and run the same command again: finished steps are kept"
    return StepFailed("\n".join(lines), hint)
