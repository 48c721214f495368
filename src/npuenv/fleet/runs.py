"""The controller: one npuenv command on every node at once (a bounded number of SSH connections), each
node's outcome kept apart, so that one unreachable or failing node never stops the others.

What runs on a node is the node's own npuenv (the hosts file's `npuenv:`, default `npuenv`), through the
person's init.sh there, with `--root` set to the node's workspace."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..workspace import PERSISTENT
from .hosts import Node
from .remote import Options, Outcome, run_on

# the tasks fleet.run carries to the nodes, and whether each takes --root
TASKS = {"bootstrap": True, "doctor": True, "smoke": True, "kill-npu": False}

OnLine = Callable[[str, str], None]  # (node, a line of its output)
OnDone = Callable[[Outcome], None]


@dataclass(frozen=True)
class Fleet:
    nodes: tuple[Node, ...]
    options: Options
    jobs: int = 16  # SSH connections open at once
    user: Optional[str] = None  # NPUENV_USER here: a node without `root` uses /home/ma-user/work/USER

    def root_of(self, node: Node) -> Optional[str]:
        if node.root:
            return node.root
        return f"{PERSISTENT}/{self.user}" if self.user else None  # the box's default, not this computer's


def each_node(fleet: Fleet, argv_of: Callable[[Node, Optional[str]], Sequence[str]],
              on_line: OnLine = lambda node, line: None, on_done: OnDone = lambda outcome: None) -> list[Outcome]:
    """`argv_of(node, root)` on every node, at most `fleet.jobs` at once; outcomes in the hosts file's order.
    Interrupted (Ctrl-C), every connection is closed at once and nothing more is started."""
    connections: list[Any] = []

    def one(node: Node) -> Outcome:
        root = fleet.root_of(node)
        outcome = run_on(node, root, [*node.npuenv, *argv_of(node, root)], fleet.options,
                         lambda line: on_line(node.name, line), connections.append)
        on_done(outcome)
        return outcome

    pool = ThreadPoolExecutor(max_workers=max(1, min(fleet.jobs, len(fleet.nodes))))
    try:
        return list(pool.map(one, fleet.nodes))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for conn in list(connections):
            conn.close()
        raise
    finally:
        pool.shutdown(wait=False)


def task_argv(task: str, args: Sequence[str], root: Optional[str]) -> list[str]:
    """The task's command line on a node: --root added when the task takes one and it was not given."""
    given = any(a == "--root" or a.startswith("--root=") for a in args)
    return [task, *(["--root", root] if root and TASKS[task] and not given else []), *args]


def run_task(fleet: Fleet, task: str, args: Sequence[str], on_line: OnLine = lambda n, l: None,
             on_done: OnDone = lambda o: None) -> list[Outcome]:
    return each_node(fleet, lambda node, root: task_argv(task, args, root), on_line, on_done)


def with_json(outcomes: list[Outcome], what: str) -> list[Outcome]:
    """Each successful outcome's stdout read as JSON into `data`; one that is not JSON becomes a failure."""
    for outcome in outcomes:
        if outcome.status != "ok":
            continue
        try:
            outcome.data = json.loads(outcome.stdout)
        except ValueError:
            outcome.status = "failed"
            first = (outcome.stdout.strip().splitlines() or ["nothing"])[0][:120]
            outcome.reason = (f"no {what} came back (stdout began with {first!r}): is npuenv on the node this "
                              "version? (`npuenv: ` in the hosts file)")
    return outcomes


def snapshots(fleet: Fleet, spec: Optional[str] = None, on_done: OnDone = lambda o: None) -> list[Outcome]:
    """Every node's `fleet.snapshot`, one round trip each."""
    extra = ["--spec", spec] if spec else []
    return with_json(each_node(fleet, lambda node, root: ["fleet.snapshot", *(["--root", root] if root else []),
                                                           *extra], on_done=on_done), "snapshot")


def reached(outcomes: list[Outcome]) -> dict[str, Any]:
    return {o.node: o.data for o in outcomes if o.ok}
