"""kill-npu as text: the table of holders and what will be stopped, how the stop went, and each NPU afterwards.

Pure functions from npuenv.npu.kill's results (Plan, StopReport, DeviceState, KillResult) to lists of lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional

from ..npu.kill import DECLINED, DRY_RUN, HOST_PID, STOP, STOPPED
from ..npu.procs import UNREADABLE, short_command

HEADER = ["NPU", "PID", "ROOT", "USER", "MEMORY", "COMMAND", "ACTION"]


def plan_lines(plan: Any, grace: float) -> list[str]:
    """Notes, the table (one row per PID per NPU, with its action), then what is stopped, tree by tree."""
    lines = [f"note: {note}" for note in plan.notes]
    if not plan.rows:
        return [*lines, "no process holds an NPU" + (" in scope" if plan.scope else "")]
    lines += [*_holders(plan), ""]
    if not plan.targets:
        return lines + _nothing_to_stop(plan)
    lines.append(f"to stop: {len(plan.targets)} process(es) in {len(plan.roots)} tree(s); SIGTERM, then "
                 f"SIGKILL after {grace:g} s")
    for root in plan.roots:
        members = [t for t in plan.targets if t.root == root]
        head = next((t for t in members if t.pid == root), members[-1])
        lines.append(f"  tree {root} ({_user_text(head.owner if head.owner is not None else head.tag)}): "
                     f"{short_command(head.command, 60)}")
        for t in members:
            held = f"  [NPU {', '.join(map(str, sorted(t.devices)))}]" if t.devices else ""
            lines.append(f"    {t.pid:>7}  {short_command(t.command, 60)}{held}")
    return lines + [f"  zombie {z.pid} (parent {z.ppid}): already exited, holds no device file; not signalled"
                    for z in plan.zombies]


def _holders(plan: Any) -> list[str]:
    """The table: NPU, [CARD/CHIP,] PID, [HOST PID,] ROOT, USER, MEMORY, COMMAND, ACTION."""
    rows = [[str(r.device), str(r.pid), str(r.root) if r.root else "-", _user_text(r.tag),
             f"{r.memory_mb} MB" if r.memory_mb is not None else "-", short_command(r.command, 48),
             r.action + (f": {r.reason}" if r.reason else "")] for r in plan.rows]
    header = list(HEADER)
    if any(r.host_pid is not None for r in plan.rows):  # npu-smi shows the host's PIDs in a column of their own
        header.insert(2, "HOST PID")
        for cells, r in zip(rows, plan.rows):
            cells.insert(2, str(r.host_pid) if r.host_pid is not None else "-")
    if not plan.numbering.identity:  # npu-smi's NPU ID is a card of several chips, or not the NPU number
        header.insert(1, "CARD/CHIP")
        for cells, r in zip(rows, plan.rows):
            cells.insert(1, f"{r.card[0]}/{r.card[1]}" if r.card is not None else "-")
    return _table(header, rows, right={header.index("MEMORY")})


def _nothing_to_stop(plan: Any) -> list[str]:
    skipped = sum(r.action != STOP for r in plan.rows)
    whose = "everyone's" if plan.all_users else f"tagged {plan.user!r}"
    lines = [f"nothing to stop: none of the {skipped} process(es) above may be stopped ({whose})"]
    if not plan.all_users and any(r.reason.endswith("--all includes it") for r in plan.rows):
        lines.append("hint: other people's processes, and untagged ones that are not part of one of your "
                     "jobs, are left alone; --all includes them (check with the owner first)")
    return lines


def _table(header: list[str], rows: list[list[str]], right: Iterable[int] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    return [fmt(cells) for cells in [header, *rows]]


def question(plan: Any) -> str:
    """What kill-npu asks on a terminal before it signals anything."""
    return f"Stop {len(plan.targets)} process(es) in {len(plan.roots)} tree(s)? [y/N] "


def result_lines(result: Any) -> list[str]:
    """After the plan: what happened (a dry run, a no, or how the stop went) and, where it matters, each NPU."""
    identity = result.plan.numbering.identity
    if result.outcome == DRY_RUN:
        return ["dry run: nothing was signalled"]
    if result.outcome == DECLINED:
        return ["nothing was signalled"]
    done = stop_lines(result.report) if result.outcome == STOPPED else []
    return [*done, *state_lines(result.states, identity)]


def stop_lines(report: Any) -> list[str]:
    """One line: how many exited on SIGTERM, needed SIGKILL, had gone, were refused, survived; then zombies."""
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
    lines = [f"stopped in {report.seconds:.1f} s: " + "; ".join(parts)]
    for z in report.zombies:
        parent = f" {z.parent_command}" if z.parent_command else ""
        lines.append(f"zombie {z.pid} (parent {z.ppid}{parent}): {z.fate}")
    return lines


def state_lines(states: Sequence[Any], identity: bool = True) -> list[str]:
    """`NPU N: free` or `NPU N: held by ...`; unless the numbering is the identity, with npu-smi's card and chip."""
    lines = []
    for state in states:
        name = f"NPU {state.device}"
        if not identity and state.card is not None:
            name += f" (card {state.card[0]} chip {state.card[1]})"
        if state.free:
            lines.append(f"{name}: free")
        else:
            lines.append(f"{name}: held by " + ", ".join(f"{r.pid} ({_holder_text(r)})" for r in state.holders))
    return lines


def _user_text(tag: Optional[str]) -> str:
    return "-" if tag is None else ("?" if tag == UNREADABLE else tag)


def _holder_text(row: Any) -> str:
    if row.reason == HOST_PID:
        return HOST_PID
    user = "untagged" if row.tag is None else _user_text(row.tag)
    return f"{user}: {short_command(row.command, 40)}"
