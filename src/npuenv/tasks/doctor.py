"""`doctor`: independent checks of the box, the workspace and the target env; or a log's known failures.

Keep this module light: `invoke --list` imports it. The library is imported inside the task.
"""

from __future__ import annotations

import os
from typing import Any

from invoke import Exit, task

from ..defaults import DEFAULT_SPEC
from .boundary import boundary, mirrors_config


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
        "wheels": "the wheelhouse bootstrap used (default: the one it recorded in the workspace)",
        "log": "explain the known failures (and name unrecognised errors) in a training/inference log FILE "
               "instead of checking the box",
    },
    iterable=["check"],
)
@boundary
def doctor(c, root=None, spec=None, json_=False, list_checks=False, check=None, online=False, log=None,
           deep=False, wheels=None):
    """Check the box, workspace and target env (ok/warn/fail, each with its fix); --log explains a log."""
    from .. import doctor as library
    from ..render import doctor as render, to_json
    from ..render.console import Console

    console = Console()
    if log is not None:
        return _explain_log(console, log, json_, list_checks or check or online or deep)
    selected = library.select(list(check or []), online=online)
    if list_checks:
        shown = selected if check else list(library.REGISTRY.values())
        return console.lines([to_json(shown)] if json_ else render.check_list(shown, library.GROUPS))
    ctx = library.build_context(root=root, spec=spec, environ=os.environ, online=online, deep=deep,
                                mirrors_config=mirrors_config(c), wheels=wheels)
    outcomes = library.run_checks(selected, ctx)
    console.lines([to_json(outcomes)] if json_ else render.table(outcomes, library.GROUPS))
    if any(o.result.status.bad for o in outcomes):
        raise Exit(code=1)


def _explain_log(console: Any, path: str, as_json: bool, other_options: Any) -> None:
    """The log's known failures and its unrecognised error lines; exit 1 when there are any (an error no
    rule knows must not look like a clean log)."""
    from ..errors import UsageError
    from ..npu.logtriage import read_report
    from ..render import doctor as render, to_json

    if other_options:
        raise UsageError("--log reads a log and runs no check: leave out --check, --online, --deep and "
                         "--list-checks")
    report = read_report(path)
    console.lines([to_json(report.to_json(path))] if as_json else render.log_report(path, report))
    if report.failed:
        raise Exit(code=1)
