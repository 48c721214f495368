"""`fleet.*`: the same tasks on many nodes over SSH (Fabric), what differs between the nodes, and whether
they are ready for one multi-node HCCL job. fleet.snapshot, fleet.hccn and fleet.port are what the others
run on each node (each also works alone, on this node)."""

from __future__ import annotations

from invoke import Collection, Exit, Task, task

from .boundary import boundary

_HOSTS = ("FILE: the nodes, a hosts.yaml (nodes: {name: {host, user, port, root, npuenv}}, defaults:) or a "
          "file of SSH aliases, one per line")
_JOBS = "how many nodes at once (SSH connections; default 16)"
_TIMEOUT = "seconds to wait for a node to answer when connecting (default 10)"
_SSH_CONFIG = "FILE: read this ssh_config instead of ~/.ssh/config"
_ROOT = "this node's workspace (default /home/ma-user/work/$NPUENV_USER)"


class _HostsTask(Task):
    """A task whose `hosts` option is also `-H`, as Fabric's and ssh tools' users expect."""

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        if name == "hosts":
            opts["names"] = ["hosts", "H"]
        return opts


def _fleet(c, hosts, jobs, timeout, ssh_config):
    import os
    from pathlib import Path

    from ..errors import UsageError
    from ..fleet.hosts import read_hosts
    from ..fleet.remote import Options
    from ..fleet.runs import Fleet
    from .boundary import positive_int

    if not hosts:
        raise UsageError("no nodes: -H FILE names them", hint="e.g. -H hosts.yaml (see the README, Many nodes)")
    if ssh_config and not Path(ssh_config).is_file():
        raise UsageError(f"--ssh-config {ssh_config}: no such file", hint="give an ssh_config file, or leave it out")
    nodes = read_hosts(Path(hosts))
    options = Options(timeout=float(positive_int(timeout, "--timeout", 10)), ssh_config=ssh_config)
    return Fleet(tuple(nodes), options, positive_int(jobs, "--jobs", 8), os.environ.get("NPUENV_USER") or None)


@task(
    klass=_HostsTask,
    help={"task": "bootstrap, doctor, smoke or kill-npu", "hosts": _HOSTS,
          "args": "the task's own options, as one quoted string: --args '--spec mindspeed-mm-internvl2.5 --json'",
          "jobs": _JOBS, "timeout": _TIMEOUT, "ssh-config": _SSH_CONFIG,
          "json": "print every node's outcome, with its whole output, as one JSON object"},
)
@boundary
def run(c, task, hosts=None, args="", jobs="16", timeout="10", ssh_config=None, json_=False):
    """Run bootstrap, doctor, smoke or kill-npu on every node at once: a live line per node, then a table."""
    import shlex

    from ..errors import UsageError
    from ..fleet.runs import TASKS, run_task
    from ..render import fleet as render
    from ..render.console import Console

    if task not in TASKS:
        raise UsageError(f"fleet.run {task}: not a task fleet.run carries", hint=f"one of {', '.join(TASKS)}")
    try:
        words = shlex.split(args or "")
    except ValueError as exc:
        raise UsageError(f"--args {args!r}: {exc}", hint="quote the task's options as one string") from None
    fleet = _fleet(c, hosts, jobs, timeout, ssh_config)
    console = Console()
    board = render.Board(console, [n.name for n in fleet.nodes], quiet=json_)
    outcomes = run_task(fleet, task, words, board.said, board.done)
    board.close()
    render.render_run(console, task, outcomes, json_)
    if not all(o.ok for o in outcomes):
        raise Exit(code=1)


@task(
    klass=_HostsTask,
    help={"hosts": _HOSTS, "lock": "FILE: compare what the lock pins against every node (a spec's .lock; its "
                                    ".uv.lock beside it), the rest by majority",
          "save": "FILE: also write every node's snapshot here, to compare with later (--against)",
          "against": "FILE: compare each node with its own snapshot saved there by --save",
          "spec": "the spec each node compares against (default: each workspace's own)",
          "jobs": _JOBS, "timeout": _TIMEOUT, "ssh-config": _SSH_CONFIG,
          "json": "print the differences and every node's snapshot as one JSON object"},
)
@boundary
def diff(c, hosts=None, lock=None, save=None, against=None, spec=None, jobs="16", timeout="10", ssh_config=None,
         json_=False):
    """Print only what differs between the nodes' environments: grouped, the majority against the outliers."""
    from ..errors import UsageError
    from ..fleet import compare
    from ..fleet.runs import snapshots
    from ..render import fleet as render
    from ..render.console import Console

    if lock and against:
        raise UsageError("--lock and --against: compare with one of them", hint="run fleet.diff once for each")
    fleet = _fleet(c, hosts, jobs, timeout, ssh_config)
    reference = compare.lock_reference(lock) if lock else None
    saved = compare.read_saved(against) if against else None
    console = Console()
    board = render.Board(console, [n.name for n in fleet.nodes], quiet=json_)
    outcomes = snapshots(fleet, spec, board.done)
    board.close()
    report = compare.compare(outcomes, reference, saved, lock or against)
    if save:
        compare.save(save, outcomes)
    render.render_diff(console, report, json_, save)
    if not report.same or not all(o.ok for o in outcomes):
        raise Exit(code=1)


@task(
    klass=_HostsTask,
    help={"hosts": _HOSTS, "port": "MASTER_PORT to check (default 6000)",
          "master": "NODE: the node that will be rank 0, whose address is MASTER_ADDR (default: the first)",
          "rank-table": "FILE: check this rank table against what was found; a missing FILE is written "
                        "(only when everything is ready)",
          "ping-timeout": "seconds for one hccn_tool call, a ping included (default 20)",
          "jobs": _JOBS, "timeout": _TIMEOUT, "ssh-config": _SSH_CONFIG,
          "json": "print every device, ping, the master check and the rank table as one JSON object"},
)
@boundary
def hccl(c, hosts=None, port="6000", master=None, rank_table=None, ping_timeout="20", jobs="16", timeout="10",
         ssh_config=None, json_=False):
    """Check multi-node HCCL readiness: device IPs, links, health, pings, MASTER_ADDR:port, the rank table."""
    from pathlib import Path

    from ..fleet.readiness import HcclRequest, check
    from ..render import fleet as render
    from ..render.console import Console
    from .boundary import positive_int

    fleet = _fleet(c, hosts, jobs, timeout, ssh_config)
    number = positive_int(port, "--port", 6000)
    request = HcclRequest(port=number, master=master, rank_table=Path(rank_table) if rank_table else None,
                          ping_timeout=float(positive_int(ping_timeout, "--ping-timeout", 20)))
    console = Console()
    result = check(fleet, request, (lambda text: None) if json_ else console.line)
    render.render_hccl(console, result, json_)
    if not result.ready:
        raise Exit(code=1)


# --- what runs on each node ----------------------------------------------------------------------------


@task(help={"root": _ROOT, "spec": "the spec to compare with (default: the workspace's own)"})
@boundary
def snapshot(c, root=None, spec=None):
    """This node's environment as JSON (what fleet.diff collects from every node; like a dump to compare)."""
    import json
    import os

    from ..doctor import build_context
    from ..fleet.snapshot import take
    from ..render.console import Console
    from .boundary import mirrors_config

    ctx = build_context(root=root, spec=spec, environ=os.environ, mirrors_config=mirrors_config(c))
    Console().line(json.dumps(take(ctx), indent=1, sort_keys=True))


@task(help={"ping": "DEVICE=ADDRESS: also ping ADDRESS from that device (repeatable)",
            "timeout": "seconds for one hccn_tool call (default 20)"}, iterable=["ping"])
@boundary
def hccn(c, ping=None, timeout="20"):
    """This node's NPU network as JSON: each device's IP, link and health from hccn_tool, and pings."""
    import json
    import os

    from ..errors import UsageError
    from ..fleet.hccl import probe
    from ..render.console import Console
    from .boundary import positive_int

    pings = []
    for item in ping or []:
        device, sep, address = item.partition("=")
        if not sep or not device.isdigit() or not address:
            raise UsageError(f"--ping {item}: expected DEVICE=ADDRESS", hint="e.g. --ping 0=10.10.101.10")
        pings.append((int(device), address))
    result = probe(os.environ, pings, float(positive_int(timeout, "--timeout", 20)))
    Console().line(json.dumps(result, indent=1))


@task(help={"listen": "PORT: listen on it until --expect nodes connected or --timeout passed",
            "expect": "how many connections to wait for (default 1)",
            "reach": "ADDRESS:PORT: connect to it",
            "timeout": "seconds (default 20)"})
@boundary
def port(c, listen=None, expect="1", reach=None, timeout="20"):
    """Listen on a port, or connect to one, and say how it went as JSON (fleet.hccl's MASTER_ADDR check)."""
    import json

    from ..errors import UsageError
    from ..fleet import ports
    from ..render.console import Console
    from .boundary import positive_int

    console = Console()
    seconds = float(positive_int(timeout, "--timeout", 20))
    if (listen is None) == (reach is None):
        raise UsageError("give --listen PORT or --reach ADDRESS:PORT", hint="e.g. --reach 192.168.0.1:6000")
    if listen is not None:
        result = ports.listen(positive_int(listen, "--listen", 6000), positive_int(expect, "--expect", 2), seconds,
                              console.note)
    else:
        address, sep, number = reach.rpartition(":")
        if not sep or not address:
            raise UsageError(f"--reach {reach}: expected ADDRESS:PORT", hint="e.g. --reach 192.168.0.1:6000")
        result = ports.reach(address, positive_int(number, "--reach PORT", 6000), seconds)
    console.line(json.dumps(result))


ns = Collection("fleet")
for _task in (run, diff, hccl, snapshot, hccn, port):
    ns.add_task(_task)
