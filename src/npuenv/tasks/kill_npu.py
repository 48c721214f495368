"""`kill-npu`: stop the process trees that hold NPUs, by default only the caller's own (NPUENV_USER)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, Optional

from invoke import task

from .boundary import boundary


@task(
    help={
        "all": "stop everyone's processes, not only those tagged with your NPUENV_USER",
        "device": "N[,M]: only processes on these NPUs, by NPU number: /dev/davinciN, ASCEND_RT_VISIBLE_DEVICES "
                  "(repeatable; default all)",
        "dry-run": "show the table and what would be stopped; signal nothing",
        "yes": "stop without asking (needed when stdin is not a terminal)",
        "grace": "seconds between SIGTERM and SIGKILL (default 10)",
        "user": "stop processes tagged NPUENV_USER=NAME (default $NPUENV_USER)",
    },
    iterable=["device"],
)
@boundary
def kill_npu(c, all_=False, device=None, dry_run=False, yes=False, grace="10", user=None):
    """Stop the processes holding NPUs (yours by default), SIGTERM then SIGKILL, and check the NPUs are free."""
    from ..npu import kill as killnpu
    from ..errors import UsageError
    from ..npu.procs import TAG_VARIABLE
    from ..render.console import Console

    console = Console()
    grace = _grace(grace)
    if all_ and user:
        raise UsageError(f"--all and --user {user} contradict each other: --all stops everyone's processes, "
                         f"--user only those tagged {user}",
                         hint=f"pass --user {user} for {user}'s processes, or --all (without --user) for everyone's")
    config = killnpu.Config.from_env(os.environ)
    plan = killnpu.make_plan(killnpu.discover(config), user or os.environ.get(TAG_VARIABLE) or None, all_,
                             _device_numbers(device or []))
    _render_plan(console, plan, grace)
    identity = plan.numbering.identity
    if not plan.targets:
        _render_states(console, killnpu.device_states(plan), identity)
        return
    if dry_run:
        console.line("dry run: nothing was signalled")
        return
    if not yes and not _confirm(plan):
        console.line("nothing was signalled")
        return
    report = killnpu.stop(plan, grace)
    _render_report(console, report)
    _render_states(console, killnpu.recheck(config, plan, stopped=[t.pid for t in plan.targets]), identity)
    if report.survivors:
        raise killnpu.KillNpuError(
            f"{len(report.survivors)} process(es) survived SIGKILL: {', '.join(map(str, report.survivors))}",
            hint="a process stuck inside the driver (state D) dies when the driver lets go; wait and run "
                 "kill-npu again, or restart the container")


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


def _confirm(plan: Any) -> bool:
    from ..errors import UsageError

    count, trees = len(plan.targets), len(plan.roots)
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to stop {count} process(es) without confirmation: stdin is not a terminal",
                         hint="look first with --dry-run, then run again with --yes")
    try:
        answer = input(f"Stop {count} process(es) in {trees} tree(s)? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _user_text(tag: Any) -> str:
    from ..npu.procs import UNREADABLE

    return "-" if tag is None else ("?" if tag == UNREADABLE else tag)


def _table(console: Any, header: list[str], rows: list[list[str]], right: Iterable[int] = ()) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    for cells in [header, *rows]:
        console.line(fmt(cells))


def _render_plan(console: Any, plan: Any, grace: float) -> None:
    from ..npu.procs import short_command

    for note in plan.notes:
        console.line(f"note: {note}")
    if not plan.rows:
        console.line("no process holds an NPU" + (" in scope" if plan.scope else ""))
        return
    rows = [[str(r.device), str(r.pid), str(r.root) if r.root else "-", _user_text(r.tag),
             f"{r.memory_mb} MB" if r.memory_mb is not None else "-", short_command(r.command, 48),
             r.action + (f": {r.reason}" if r.reason else "")] for r in plan.rows]
    header = ["NPU", "PID", "ROOT", "USER", "MEMORY", "COMMAND", "ACTION"]
    if any(r.host_pid is not None for r in plan.rows):  # npu-smi shows the host's PIDs in a column of their own
        header.insert(2, "HOST PID")
        for cells, r in zip(rows, plan.rows):
            cells.insert(2, str(r.host_pid) if r.host_pid is not None else "-")
    if not plan.numbering.identity:  # npu-smi's NPU ID is a card of several chips, or not the NPU number
        header.insert(1, "CARD/CHIP")
        for cells, r in zip(rows, plan.rows):
            cells.insert(1, f"{r.card[0]}/{r.card[1]}" if r.card is not None else "-")
    _table(console, header, rows, right={header.index("MEMORY")})
    console.line("")
    if not plan.targets:
        skipped = sum(r.action != "stop" for r in plan.rows)
        whose = "everyone's" if plan.all_users else f"tagged {plan.user!r}"
        console.line(f"nothing to stop: none of the {skipped} process(es) above may be stopped ({whose})")
        if not plan.all_users and any(r.reason.endswith("--all includes it") for r in plan.rows):
            console.line("hint: other people's processes, and untagged ones that are not part of one of your "
                         "jobs, are left alone; --all includes them (check with the owner first)")
        return
    console.line(f"to stop: {len(plan.targets)} process(es) in {len(plan.roots)} tree(s); SIGTERM, then "
                 f"SIGKILL after {grace:g} s")
    for root in plan.roots:
        members = [t for t in plan.targets if t.root == root]
        head = next((t for t in members if t.pid == root), members[-1])
        console.line(f"  tree {root} ({_user_text(head.owner if head.owner is not None else head.tag)}): "
                     f"{short_command(head.command, 60)}")
        for t in members:
            held = f"  [NPU {', '.join(map(str, sorted(t.devices)))}]" if t.devices else ""
            console.line(f"    {t.pid:>7}  {short_command(t.command, 60)}{held}")
    for z in plan.zombies:
        console.line(f"  zombie {z.pid} (parent {z.ppid}): already exited, holds no device file; not signalled")


def _render_report(console: Any, report: Any) -> None:
    parts = [f"{len(report.terminated)} exited on SIGTERM"]
    if report.killed:
        parts.append(f"{len(report.killed)} killed with SIGKILL after {report.grace:g} s "
                     f"({', '.join(map(str, report.killed))})")
    if report.gone:
        parts.append(f"{len(report.gone)} had already exited")
    if report.denied:
        parts.append(f"{len(report.denied)} not permitted ({', '.join(map(str, report.denied))})")
    if report.survivors:
        parts.append(f"{len(report.survivors)} survived ({', '.join(map(str, report.survivors))})")
    console.line(f"stopped in {report.seconds:.1f} s: " + "; ".join(parts))
    for z in report.zombies:
        parent = f" {z.parent_command}" if z.parent_command else ""
        console.line(f"zombie {z.pid} (parent {z.ppid}{parent}): {z.fate}")


def _render_states(console: Any, states: list[Any], identity: bool = True) -> None:
    """`NPU N: free` or `NPU N: held by ...`; unless the numbering is the identity, with npu-smi's card and chip."""
    for state in states:
        name = f"NPU {state.device}"
        if not identity and state.card is not None:
            name += f" (card {state.card[0]} chip {state.card[1]})"
        if state.free:
            console.line(f"{name}: free")
            continue
        holders = ", ".join(f"{r.pid} ({_holder_text(r)})" for r in state.holders)
        console.line(f"{name}: held by {holders}")


def _holder_text(row: Any) -> str:
    from ..npu.kill import HOST_PID
    from ..npu.procs import short_command

    if row.reason == HOST_PID:
        return HOST_PID
    user = "untagged" if row.tag is None else _user_text(row.tag)
    return f"{user}: {short_command(row.command, 40)}"
