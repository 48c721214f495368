"""`doctor`: independent checks of the box, the workspace and the target env; or a log's known failures.

Keep this module light: `invoke --list` imports it. The library is imported inside the task.
"""

from __future__ import annotations

import os
from typing import Any

from invoke import Exit, task

from ..defaults import DEFAULT_SPEC
from .boundary import boundary, mirrors_config

SYMBOLS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-", "crash": "☠"}
MAX_DETAILS = 12


@task(
    help={
        "root": "workspace to check (default /home/ma-user/work/$NPUENV_USER; missing: its checks are skipped)",
        "spec": f"spec name in env_specs/ or a path to a YAML file (default: the spec this workspace was made with, else {DEFAULT_SPEC})",
        "json": "print one JSON object per check (or per log finding with --log) instead of the table",
        "list-checks": "list every check with its group and what it looks at; run none",
        "check": "NAME[,NAME]: run only these checks or groups, e.g. cann,npu or target.imports (comma-separated, repeatable)",
        "online": "also do a real TLS handshake with every host the spec uses, after mirrors",
        "deep": "target.imports really imports torch, torch_npu, apex, decord, mindspeed and megatron with CANN "
                "sourced (slow: `import torch` alone takes seconds); by default it only finds them",
        "log": "explain the known failures (and name unrecognised errors) in a training/inference log FILE "
               "instead of checking the box",
    },
    iterable=["check"],
)
@boundary
def doctor(c, root=None, spec=None, json_=False, list_checks=False, check=None, online=False, log=None,
           deep=False):
    """Check the box, workspace and target env (ok/warn/fail, each with its fix); --log explains a log."""
    from ..errors import UsageError
    from ..render.console import Console

    console = Console()
    if log is not None:
        if list_checks or check or online or deep:
            raise UsageError("--log reads a log and runs no check: leave out --check, --online, --deep and "
                             "--list-checks")
        if _render_log(console, log, json_):
            raise Exit(code=1)
        return
    from .. import doctor as library

    selected = library.select(list(check or []), online=online)
    if list_checks:
        _render_list(console, selected if check else list(library.REGISTRY.values()), json_)
        return
    ctx = library.build_context(root=root, spec=spec, environ=os.environ, online=online, deep=deep,
                                mirrors_config=mirrors_config(c))
    outcomes = library.run_checks(selected, ctx)
    if json_:
        import json

        console.line(json.dumps([o.to_json() for o in outcomes], indent=2))
    else:
        _render_table(console, outcomes, library.GROUPS)
    counts = library.count(outcomes)
    if counts["fail"] or counts["crash"]:
        raise Exit(code=1)


def summary_line(counts: dict[str, int], total: int) -> str:
    if not (counts["fail"] or counts["warn"] or counts["crash"]):
        head = f"doctor: {total} checks, no issues found"
    else:
        head = f"doctor: {total} checks, {counts['fail']} failed, {counts['warn']} warnings"
        if counts["crash"]:
            head += f", {counts['crash']} crashed"
    return head + (f" ({counts['skip']} skipped)" if counts["skip"] else "")


def _render_table(console: Any, outcomes: list, groups: dict[str, str]) -> None:
    from ..doctor import count

    width = max((len(o.check.name) for o in outcomes), default=10)
    pad = " " * (width + 6)
    for group, title in groups.items():
        rows = [o for o in outcomes if o.check.group == group]
        if not rows:
            continue
        console.line(title)
        for o in rows:
            status = o.result.status.value
            console.line(f"  {SYMBOLS[status]} {o.check.name:<{width}}  {o.result.finding}")
            if status in ("fail", "warn", "crash"):
                for detail in o.result.details[:MAX_DETAILS]:
                    console.line(f"{pad}· {detail}")
                if len(o.result.details) > MAX_DETAILS:
                    console.line(f"{pad}· ... {len(o.result.details) - MAX_DETAILS} more (--json shows all)")
                if o.result.fix:
                    console.line(f"{pad}fix: {o.result.fix}")
    console.line("")
    console.line(summary_line(count(outcomes), len(outcomes)))


def _render_list(console: Any, checks: list, as_json: bool) -> None:
    from ..doctor import GROUPS

    if as_json:
        import json

        console.line(json.dumps([{"name": c.name, "group": c.group, "description": c.description,
                                  "online": c.online} for c in checks], indent=2))
        return
    width = max((len(c.name) for c in checks), default=10)
    for group, title in GROUPS.items():
        rows = [c for c in checks if c.group == group]
        if rows:
            console.line(f"{title} ({group})")
        for c in rows:
            console.line(f"  {c.name:<{width}}  {'(--online) ' if c.online else ''}{c.description}")


def _render_log(console: Any, path: str, as_json: bool) -> bool:
    """Print the log's known failures and its unrecognised error lines; True when there are any (exit 1:
    an error no rule knows must not look like a clean log)."""
    from ..errors import UsageError
    from ..npu.logtriage import report_file

    try:
        report = report_file(path)
    except FileNotFoundError:
        raise UsageError(f"--log {path}: no such file", hint="pass the path of a training or inference log") from None
    except IsADirectoryError:
        raise UsageError(f"--log {path}: is a folder, not a log file", hint="pass one log file") from None
    except OSError as exc:
        raise UsageError(f"--log {path}: cannot be read ({exc.strerror})") from None
    shown = [*report.findings, *([report.unrecognised] if report.unrecognised else [])]
    if as_json:
        import json
        from dataclasses import asdict

        # one object per finding, as before; unrecognised errors are one more, of kind "unrecognised"
        console.line(json.dumps([{"file": path, **asdict(f)} for f in shown], indent=2))
        return report.failed
    console.line(_log_headline(path, report))
    for f in shown:
        _render_log_finding(console, path, f)
    return report.failed


def _log_headline(path: str, report: Any) -> str:
    if not report.failed:
        return f"{path}: no known failure and no error line found ({report.lines} lines)"
    known = f"{len(report.findings)} known failure(s)" if report.findings else "no known failure"
    unknown = report.unrecognised
    return f"{path}: {known}" + (f", {unknown.count} unrecognised error line(s)" if unknown else "")


def _render_log_finding(console: Any, path: str, f: Any) -> None:
    times = f" (×{f.count})" if f.count > 1 else ""
    console.line("")
    console.line(f"✗ {path}:{f.line_no}: {f.title}{times}")
    console.line(f"    | {f.line if len(f.line) <= 200 else f.line[:199] + '…'}")
    console.line(f"    cause: {f.cause}")
    console.line(f"    fix:   {f.fix}")
