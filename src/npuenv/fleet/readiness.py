"""`fleet.hccl`: is the fleet ready for one multi-node job? Three rounds over SSH:

1. every node's devices (`fleet.hccn`: IP, link, health, /etc/hccn.conf);
2. the pings: device N of each node pings device N of every other node (`fleet.hccn --ping`);
3. MASTER_ADDR:MASTER_PORT: the master listens on the port (`fleet.port --listen`), every node connects
   (`fleet.port --reach`).

Then the rank table is made from what was found, or a given one is checked against it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..npu import hccn
from . import hccl
from .hosts import Node
from .ports import LISTENING
from .remote import Outcome, run_on
from .runs import Fleet, each_node, reached, with_json


@dataclass(frozen=True)
class HcclRequest:
    port: int = 6000  # MASTER_PORT
    master: Optional[str] = None  # the node that will be rank 0 (default: the first reached)
    rank_table: Optional[Path] = None  # check this one, or write the generated one here when it is missing
    ping_timeout: float = 20.0  # per hccn_tool call
    port_timeout: float = 20.0  # how long the master waits for every node to connect


@dataclass
class Readiness:
    outcomes: dict[str, Outcome]  # each node's last round
    problems: list[str] = field(default_factory=list)
    pings: dict[str, list] = field(default_factory=dict)
    master: dict[str, Any] = field(default_factory=dict)
    rank_table: Optional[dict] = None
    rank_table_file: Optional[str] = None
    rank_table_written: bool = False
    rank_table_checked: bool = False

    @property
    def ready(self) -> bool:
        return not self.problems and all(o.ok for o in self.outcomes.values())

    def as_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "problems": self.problems,
                "nodes": {n: {**o.as_json(), "data": o.data} for n, o in self.outcomes.items()},
                "pings": self.pings, "master": self.master, "rank_table": self.rank_table,
                "rank_table_file": self.rank_table_file, "rank_table_written": self.rank_table_written}


def check(fleet: Fleet, request: HcclRequest, say: Callable[[str], None] = lambda text: None) -> Readiness:
    say("asking every node's hccn_tool for its devices")
    first = with_json(each_node(fleet, lambda node, root: ["fleet.hccn", "--timeout", f"{request.ping_timeout:.0f}"]),
                      "device report")
    result = Readiness({o.node: o for o in first})
    probes = reached(first)
    plan = hccl.ping_plan(probes)
    if any(plan.values()):
        say(f"pinging between nodes ({sum(len(p) for p in plan.values())} pings)")
        second = with_json(each_node(_reachable(fleet, probes), lambda node, root: [
            "fleet.hccn", "--timeout", f"{request.ping_timeout:.0f}",
            *[arg for device, address in plan[node.name] for arg in ("--ping", f"{device}={address}")]]),
            "ping report")
        result.outcomes.update({o.node: o for o in second})
        probes = reached(list(result.outcomes.values()))
    owner = {f.get("ip"): node for node, p in probes.items() for f in p.get("devices", {}).values() if f.get("ip")}
    for node, probed in probes.items():
        result.problems += hccl.device_problems(node, probed)
        result.pings[node] = probed.get("pings", [])
        result.problems += hccl.ping_problems(node, probed.get("pings", []), owner)
    if probes:
        say(f"checking MASTER_ADDR:{request.port} from every node")
        result.master = _master(_reachable(fleet, probes), request, result)
    _rank_table(result, probes, request)
    return result


def _reachable(fleet: Fleet, probes: dict[str, Any]) -> Fleet:
    from dataclasses import replace

    return replace(fleet, nodes=tuple(n for n in fleet.nodes if n.name in probes))


def _master(fleet: Fleet, request: HcclRequest, result: Readiness) -> dict[str, Any]:
    names = [n.name for n in fleet.nodes]
    if request.master and request.master not in names:
        result.problems.append(f"--master {request.master}: not a node that answered ({', '.join(names)})")
        return {}
    master = next(n for n in fleet.nodes if n.name == (request.master or names[0]))
    address = result.outcomes[master.name].address
    ready = threading.Event()
    listened: dict[str, Outcome] = {}

    def listener() -> None:
        argv = ["fleet.port", "--listen", str(request.port), "--expect", str(len(fleet.nodes)),
                "--timeout", f"{request.port_timeout:.0f}"]
        listened["outcome"] = run_on(master, fleet.root_of(master), [*master.npuenv, *argv], fleet.options,
                                     lambda line: ready.set() if line.startswith(LISTENING) else None)
        ready.set()  # it ended (could not listen, or the node went away): nobody waits for the line

    thread = threading.Thread(target=listener, daemon=True)
    thread.start()
    ready.wait()
    reaches = []
    if "outcome" not in listened:
        reaches = with_json(each_node(fleet, lambda node, root: [
            "fleet.port", "--reach", f"{address}:{request.port}", "--timeout", f"{request.port_timeout:.0f}"]),
            "port report")
    thread.join()
    [heard] = with_json([listened["outcome"]], "port report")
    info = {"node": master.name, "address": address, "port": request.port,
            "listening": bool(heard.ok and heard.data.get("listening")),
            "reach": {o.node: (o.data if o.ok else {"ok": False, "error": o.reason or o.detail}) for o in reaches}}
    if not heard.ok:
        result.problems.append(f"{master.name}: could not listen on {request.port}: {heard.reason or heard.detail}")
    elif not heard.data.get("listening"):
        result.problems.append(f"{master.name} (master): {heard.data.get('error')} (pick another --port, or stop "
                               "what holds it)")
    for node, said in info["reach"].items():
        if not said.get("ok"):
            result.problems.append(f"{node} -> master {address}:{request.port}: {said.get('error')}")
    return info


def _rank_table(result: Readiness, probes: dict[str, Any], request: HcclRequest) -> None:
    from ..atomic import write_atomic

    addresses = {name: result.outcomes[name].address for name in probes}
    servers = hccl.servers(probes, addresses)
    result.rank_table = hccn.rank_table(servers)
    path = request.rank_table
    if path is None:
        return
    result.rank_table_file = str(path)
    if path.is_file():
        try:
            given = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            result.problems.append(f"{path}: not a rank table (not JSON: {exc})")
            return
        result.problems += [f"{path}: {p}" for p in hccn.rank_table_problems(given, servers)]
        result.rank_table_checked = True
    elif not result.problems and len(probes) == len(result.outcomes):
        write_atomic(path, json.dumps(result.rank_table, indent=2) + "\n")
        result.rank_table_written = True
