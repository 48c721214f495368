"""doctor as text: the table of checks by group, the list of checks, and a log's known failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import symbol

MAX_DETAILS = 12


def table(outcomes: Sequence[Any], groups: dict[str, str]) -> list[str]:
    """Each group's checks, one line each (a warning or failure also gets its details and its fix), then
    the summary line."""
    from ..doctor.base import count

    return [*rows(outcomes, groups), "", summary_line(count(outcomes), len(outcomes))]


def rows(outcomes: Sequence[Any], groups: dict[str, str]) -> list[str]:
    """The table without its summary line: under each group's title, its checks."""
    width = max((len(o.check.name) for o in outcomes), default=10)
    lines: list[str] = []
    for group, title in groups.items():
        members = [o for o in outcomes if o.check.group == group]
        if members:
            lines.append(title)
        for o in members:
            lines.append(f"  {symbol(o.result.status)} {o.check.name:<{width}}  {o.result.finding}")
            if o.result.status.value in ("fail", "warn", "crash"):
                lines += _details(o.result, " " * (width + 6))
    return lines


def _details(result: Any, pad: str) -> list[str]:
    lines = [f"{pad}· {detail}" for detail in result.details[:MAX_DETAILS]]
    if len(result.details) > MAX_DETAILS:
        lines.append(f"{pad}· ... {len(result.details) - MAX_DETAILS} more (--json shows all)")
    return lines + ([f"{pad}fix: {result.fix}"] if result.fix else [])


def summary_line(counts: dict[str, int], total: int) -> str:
    if not (counts["fail"] or counts["warn"] or counts["crash"]):
        head = f"doctor: {total} checks, no issues found"
    else:
        head = f"doctor: {total} checks, {counts['fail']} failed, {counts['warn']} warnings"
        if counts["crash"]:
            head += f", {counts['crash']} crashed"
    return head + (f" ({counts['skip']} skipped)" if counts["skip"] else "")


def check_list(checks: Sequence[Any], groups: dict[str, str]) -> list[str]:
    width = max((len(c.name) for c in checks), default=10)
    lines: list[str] = []
    for group, title in groups.items():
        rows = [c for c in checks if c.group == group]
        if rows:
            lines.append(f"{title} ({group})")
        lines += [f"  {c.name:<{width}}  {'(--online) ' if c.online else ''}{c.description}" for c in rows]
    return lines


def log_report(path: str, report: Any) -> list[str]:
    """A log's known failures and its unrecognised error lines, each with where, cause and fix."""
    lines = [_log_headline(path, report)]
    for f in [*report.findings, *([report.unrecognised] if report.unrecognised else [])]:
        times = f" (×{f.count})" if f.count > 1 else ""
        shown = f.line if len(f.line) <= 200 else f.line[:199] + "…"
        lines += ["", f"✗ {path}:{f.line_no}: {f.title}{times}", f"    | {shown}", f"    cause: {f.cause}",
                  f"    fix:   {f.fix}"]
    return lines


def _log_headline(path: str, report: Any) -> str:
    if not report.failed:
        return f"{path}: no known failure and no error line found ({report.lines} lines)"
    known = f"{len(report.findings)} known failure(s)" if report.findings else "no known failure"
    unknown = report.unrecognised
    return f"{path}: {known}" + (f", {unknown.count} unrecognised error line(s)" if unknown else "")
