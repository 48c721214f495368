"""fleet.* as text: the live board (a line per node), the per-node table, the differences, HCCL readiness."""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

from . import symbol, to_json

class Board:
    """A live line per node while a fleet command runs: on a terminal, redrawn in place; elsewhere (a log,
    a pipe) one line per node as it finishes. Called from the node threads."""

    def __init__(self, console: Any, nodes: Sequence[str], quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.width = max((len(n) for n in nodes), default=4)
        self.began = time.monotonic()
        self.state = {n: "connecting" for n in nodes}
        self._lock = threading.Lock()

    def said(self, node: str, line: str) -> None:
        with self._lock:
            self.state[node] = line.strip()
        self._draw()

    def done(self, outcome: Any) -> None:
        text = f"{symbol('ok' if outcome.ok else 'fail')} {_status(outcome)} in {outcome.seconds:.1f} s"
        with self._lock:
            self.state[outcome.node] = text
        if not self.quiet and not self.console.tty:
            self.console.line(f"{outcome.node:<{self.width}}  {text}")
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        if self.quiet:
            return
        with self._lock:
            lines = [f"{n:<{self.width}}  {s}" for n, s in self.state.items()]
        self.console.block(lines, force)

    def close(self) -> None:
        self._draw(force=True)


def _status(outcome: Any) -> str:
    if outcome.status == "unreachable":
        return f"unreachable ({outcome.reason})"
    if outcome.status == "failed":
        return f"failed (exit {outcome.exit_code})" if outcome.exit_code is not None else "failed"
    return "ok"


def outcome_rows(outcomes: Sequence[Any]) -> list[str]:
    """The per-node table: status, time, and the first failure (with the fix for an unreachable node)."""
    from ..fleet.remote import UNREACHABLE_HINTS

    width = max([len("node"), *(len(o.node) for o in outcomes)])
    status_width = max((len(_status(o)) for o in outcomes), default=2) + 2
    lines = [f"  {'node':<{width}}  {'status':<{status_width}}  {'time':>8}  first failure"]
    for o in outcomes:
        said = o.reason if o.status == "failed" else (o.detail if o.status == "unreachable" else "")
        lines.append(f"  {o.node:<{width}}  {symbol('ok' if o.ok else 'fail')} {_status(o):<{status_width - 2}}  "
                     f"{o.seconds:>6.1f} s  {said}".rstrip())
        if o.status == "unreachable":
            lines.append(f"  {'':<{width}}  fix: {UNREACHABLE_HINTS.get(o.reason, '').replace('NODE', o.host)}")
    return lines


def _count_line(outcomes: Sequence[Any], what: str) -> str:
    bad = [o for o in outcomes if not o.ok]
    if not bad:
        return f"{what} succeeded on all {len(outcomes)} node(s)"
    return f"{what}: {len(bad)} of {len(outcomes)} node(s) did not succeed"


def render_run(console: Any, task: str, outcomes: Sequence[Any], as_json: bool) -> None:
    if as_json:
        console.line(to_json({"task": task, "ok": all(o.ok for o in outcomes), "nodes": [o.as_json() for o in outcomes]}))
        return
    console.lines(["", f"fleet.run {task}", *outcome_rows(outcomes), "", _count_line(outcomes, task)])


def _shown(value: Any) -> str:
    from ..fleet.diff import MISSING

    if value is None:
        return "(none)"
    if value == MISSING:
        return MISSING
    text = value if isinstance(value, str) else to_json(value).replace("\n", " ")
    return text if len(text) <= 64 else text[:61] + "..."


def diff_lines(report: Any) -> list[str]:
    from ..fleet.diff import grouped

    lines = []
    for category, items in grouped(report.found).items():
        lines.append(category)
        for d in items:
            key = d.key.split(".", 1)[1] if "." in d.key else d.key
            if d.expected is None and not d.reference:
                lines.append(f"  {key}: no majority")
            else:
                who = report.reference_name if d.reference else f"{len(d.holders)} node(s)"
                lines.append(f"  {key}: {_shown(d.expected)}  ({who})")
            for node, value in sorted(d.outliers.items()):
                lines.append(f"    {node}: {_shown(value)}")
    return lines


def render_diff(console: Any, report: Any, as_json: bool, saved_to: Any = None) -> None:
    if as_json:
        console.line(to_json(report.as_json()))
        return
    reached = [o for o in report.outcomes if o.ok]
    lines = [""]
    if len(reached) < len(report.outcomes):
        lines += ["not compared (no snapshot):", *outcome_rows([o for o in report.outcomes if not o.ok]), ""]
    lines += diff_lines(report) + [f"note: {n}" for n in report.notes]
    against = f" against {report.against}" if report.against else ""
    if report.same:
        lines.append(f"no differences{against} across {len(reached)} node(s)")
    else:
        lines.append(f"{len(report.found)} difference(s){against} across {len(reached)} node(s)")
    if saved_to:
        lines.append(f"snapshots saved to {saved_to} (compare later: fleet.diff --against {saved_to})")
    console.lines(lines)


def render_hccl(console: Any, result: Any, as_json: bool) -> None:
    if as_json:
        console.line(to_json(result.as_json()))
        return
    lines = [""]
    bad = [o for o in result.outcomes.values() if not o.ok]
    if bad:
        lines += ["not checked:", *outcome_rows(bad), ""]
    for node, outcome in result.outcomes.items():
        if not outcome.ok:
            continue
        devices = (outcome.data or {}).get("devices", {})
        up = sum(1 for f in devices.values() if f.get("link") == "UP" and f.get("ip"))
        pings = result.pings.get(node, [])
        good = sum(1 for p in pings if p.get("ok"))
        lines.append(f"  {node:<12} {up}/{len(devices)} device(s) with an IP and link up, "
                     f"{good}/{len(pings)} ping(s) answered")
    if result.master:
        m = result.master
        reach = m.get("reach", {})
        lines.append(f"  master {m['node']} {m['address']}:{m['port']}: "
                     f"{'listening' if m.get('listening') else 'not listening'}, reached from "
                     f"{sum(1 for r in reach.values() if r.get('ok'))}/{len(reach)} node(s)")
    lines.append("")
    lines += [f"{symbol('fail')} {p}" for p in result.problems]
    if result.rank_table_written:
        lines.append(f"rank table written to {result.rank_table_file} (RANK_TABLE_FILE)")
    elif result.rank_table_checked and not any(p.startswith(result.rank_table_file) for p in result.problems):
        lines.append(f"{result.rank_table_file} matches the devices found")
    lines.append("ready for a multi-node job" if result.ready else f"not ready: {len(result.problems)} problem(s)"
                 + (f", {len(bad)} node(s) not checked" if bad else ""))
    console.lines(lines)
