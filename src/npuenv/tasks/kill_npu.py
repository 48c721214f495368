"""`kill-npu`: stop the process trees that hold NPUs, by default only the caller's own (NPUENV_USER)."""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

from invoke import task

from .boundary import boundary


@task(
    help={
        "all": "stop everyone's processes, not only those tagged with your NPUENV_USER",
        "device": "N[,M]: only processes on these NPUs, by NPU number: /dev/davinciN, ASCEND_RT_VISIBLE_DEVICES "
                  "(repeatable; default all)",
        "dry-run": "show the table and what would be stopped; signal nothing",
        "yes": "stop without asking (needed when stdin is not a terminal, and with --json)",
        "grace": "seconds between SIGTERM and SIGKILL (default 10)",
        "user": "stop processes tagged NPUENV_USER=NAME (default $NPUENV_USER)",
        "json": "print the plan, what was stopped and each NPU afterwards as one JSON object instead of the table",
    },
    iterable=["device"],
)
@boundary
def kill_npu(c, all_=False, device=None, dry_run=False, yes=False, grace="10", user=None, json_=False):
    """Stop the processes holding NPUs (yours by default), SIGTERM then SIGKILL, and check the NPUs are free."""
    from ..npu import kill as killnpu
    from ..render import kill_npu as render, to_json
    from ..render.console import Console

    console = Console()
    seconds = _grace(grace)
    plan = killnpu.survey(os.environ, user, all_, _device_numbers(device or []))
    if not json_:
        console.lines(render.plan_lines(plan, seconds))
    result = killnpu.carry_out(plan, seconds, dry_run=dry_run, confirm=lambda p: yes or _confirm(p, json_))
    console.lines([to_json(result)] if json_ else render.result_lines(result))
    error = killnpu.failure(result)
    if error is not None:
        raise error


def _grace(value: Any) -> float:
    # a string option on purpose: invoke casts a float option itself and dies with a traceback on "--grace x"
    import math

    from ..errors import UsageError

    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--grace {value}: expected a number of seconds", hint="e.g. --grace 10") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageError(f"--grace {value}: expected 0 or more seconds", hint="e.g. --grace 10")
    return seconds


def _device_numbers(values: list[str]) -> Optional[list[int]]:
    from ..errors import UsageError

    numbers = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if not part.isdigit():
                raise UsageError(f"--device expects NPU numbers such as 0 or 0,1; got {value!r}",
                                 hint="the NPU number is N of /dev/davinciN (as in ASCEND_RT_VISIBLE_DEVICES), "
                                      "not npu-smi's NPU ID")
            numbers.append(int(part))
    return numbers or None


def _confirm(plan: Any, json_: bool) -> bool:
    """y/N on a terminal. Without one, and with --json (whose stdout is one JSON object), only --yes stops."""
    from ..errors import UsageError
    from ..render.kill_npu import question

    why = "--json asks nothing" if json_ else ("" if sys.stdin.isatty() else "stdin is not a terminal")
    if why:
        raise UsageError(f"refusing to stop {len(plan.targets)} process(es) without confirmation: {why}",
                         hint="look first with --dry-run, then run again with --yes")
    try:
        answer = input(question(plan))
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
