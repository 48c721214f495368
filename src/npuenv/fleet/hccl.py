"""Multi-node HCCL readiness: what hccn_tool says on one node (device IPs, links, health, pings), and, from all
nodes' answers, the ping pairs, the rank table and its problems.

The node side runs in `invoke fleet.hccn` (one node, JSON out); the controller side in `fleet.hccl`.
hccn_tool is $NPUENV_HCCN_TOOL, else /usr/local/Ascend/driver/tools/hccn_tool, else on PATH. It answers
"hccn_tool is busy" to concurrent calls: each call is asked again a few times before it counts as failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..npu import hccn

HCCN_TOOL_VARIABLE = "NPUENV_HCCN_TOOL"
HCCN_TOOL = "/usr/local/Ascend/driver/tools/hccn_tool"
HCCN_CONF_VARIABLE = "NPUENV_HCCN_CONF"
HCCN_CONF = "/etc/hccn.conf"
BUSY_TRIES = 5


def find_hccn_tool(environ: Mapping[str, str]) -> Optional[str]:
    given = environ.get(HCCN_TOOL_VARIABLE)
    if given:
        return given if os.access(given, os.X_OK) else None
    if os.access(HCCN_TOOL, os.X_OK):
        return HCCN_TOOL
    return shutil.which("hccn_tool", path=environ.get("PATH"))


@dataclass(frozen=True)
class Tool:
    path: str
    timeout: float = 20.0

    def ask(self, device: int, *args: str, parse: Callable[[str], Any]) -> tuple[Any, str]:
        """(parsed answer, "") or (None, why): asked again while hccn_tool says it is busy."""
        for attempt in range(BUSY_TRIES):
            try:
                proc = subprocess.run([self.path, "-i", str(device), *args], stdin=subprocess.DEVNULL,
                                      capture_output=True, text=True, errors="replace", timeout=self.timeout)
            except subprocess.TimeoutExpired:
                return None, f"hccn_tool {' '.join(args)} gave no answer within {self.timeout:.0f} s"
            except OSError as exc:
                return None, f"{self.path}: {exc.strerror}"
            try:
                return parse(proc.stdout + proc.stderr), ""
            except hccn.Busy:
                time.sleep(0.2 * (attempt + 1))  # back off: another caller holds the device's tool
        return None, "hccn_tool stayed busy"


def devices_here(environ: Mapping[str, str]) -> list[int]:
    """The device numbers of this node's /dev/davinciN files (NPUENV_DEVICE_GLOB), as kill-npu finds them."""
    from ..npu.procs import DEFAULT_DEVICE_GLOB, DEVICE_GLOB_VARIABLE, device_files

    return sorted(set(device_files(environ.get(DEVICE_GLOB_VARIABLE) or DEFAULT_DEVICE_GLOB).values()))


def probe(environ: Mapping[str, str], pings: list[tuple[int, str]] = (), timeout: float = 20.0) -> dict[str, Any]:
    """This node: every device's IP, netmask, link and health; /etc/hccn.conf; then each (device, address)
    ping. Devices are asked side by side, each device's own questions one after another."""
    path = find_hccn_tool(environ)
    conf_path = Path(environ.get(HCCN_CONF_VARIABLE) or HCCN_CONF)
    conf = hccn.parse_hccn_conf(conf_path.read_text(errors="replace")) if conf_path.is_file() else {}
    out: dict[str, Any] = {"hccn_tool": path, "hccn_conf": {str(k): v for k, v in sorted(conf.items())},
                           "devices": {}, "pings": []}
    if path is None:
        out["note"] = (f"hccn_tool not found ({HCCN_TOOL_VARIABLE}, {HCCN_TOOL}, PATH): "
                       "it comes with the NPU driver")
        return out
    tool = Tool(path, timeout)
    devices = devices_here(environ)
    with ThreadPoolExecutor(max_workers=max(1, len(devices))) as pool:
        found = list(pool.map(lambda d: _device(tool, d, [a for dev, a in pings if dev == d]), devices))
    for device, (facts, results) in zip(devices, found):
        out["devices"][str(device)] = facts
        out["pings"] += results
    return out


def _device(tool: Tool, device: int, addresses: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ip, why_ip = tool.ask(device, "-ip", "-g", parse=hccn.parse_ip)
    link, why_link = tool.ask(device, "-link", "-g", parse=hccn.parse_link)
    health, why_health = tool.ask(device, "-net_health", "-g", parse=hccn.parse_net_health)
    facts = {"ip": ip.address if ip else None, "netmask": ip.netmask if ip else None, "link": link,
             "health": health, "errors": [w for w in (why_ip, why_link, why_health) if w]}
    results = []
    for address in addresses:
        answer, why = tool.ask(device, "-ping", "-g", "address", address, parse=hccn.parse_ping)
        results.append({"device": device, "address": address, "sent": answer.sent if answer else 0,
                        "received": answer.received if answer else 0, "ok": bool(answer and answer.ok),
                        "error": why or ("" if answer else "no ping summary in hccn_tool's answer")})
    return facts, results


# --- the controller: all nodes' answers together ---------------------------------------------------------


def device_problems(node: str, probed: Mapping[str, Any]) -> list[str]:
    """Per device: no IP, link not UP, health not Success, an IP other than /etc/hccn.conf's address."""
    if probed.get("note"):
        return [f"{node}: {probed['note']}"]
    problems = []
    if not probed.get("devices"):
        problems.append(f"{node}: no NPU devices found (/dev/davinciN)")
    conf = probed.get("hccn_conf") or {}
    for device, facts in sorted(probed.get("devices", {}).items(), key=lambda kv: int(kv[0])):
        where = f"{node} device {device}"
        problems += [f"{where}: {why}" for why in facts.get("errors", [])]
        if not facts.get("ip") and not facts.get("errors"):
            problems.append(f"{where}: no device IP set (hccn_tool -i {device} -ip -s address IP netmask MASK)")
        if facts.get("link") not in (None, "UP"):
            problems.append(f"{where}: link {facts['link']}")
        if facts.get("health") not in (None, "Success"):
            problems.append(f"{where}: net health {facts['health']}")
        wanted = (conf.get(device) or {}).get("address")
        if wanted and facts.get("ip") and wanted != facts["ip"]:
            problems.append(f"{where}: IP {facts['ip']} but /etc/hccn.conf says {wanted} (HCCL: ra rdev init failed)")
    return problems


def ping_plan(probes: Mapping[str, Mapping[str, Any]]) -> dict[str, list[tuple[int, str]]]:
    """For each node, (device, address) to ping: device N of every node pings device N of every other node
    (the peers HCCL's rings and halving-doubling connect across nodes)."""
    ips = {node: {int(d): f.get("ip") for d, f in p.get("devices", {}).items()} for node, p in probes.items()}
    plan: dict[str, list[tuple[int, str]]] = {}
    for node, mine in ips.items():
        plan[node] = [(device, theirs[device]) for other, theirs in ips.items() if other != node
                      for device in sorted(mine) if mine.get(device) and theirs.get(device)]
    return plan


def ping_problems(node: str, pings: list[Mapping[str, Any]], owner: Mapping[str, str]) -> list[str]:
    """Each failed ping, naming the node that owns the address."""
    return [f"{node} device {p['device']} -> {owner.get(p['address'], '?')} {p['address']}: "
            + (p.get("error") or f"{p['received']} of {p['sent']} replies")
            for p in pings if not p.get("ok")]


def servers(probes: Mapping[str, Mapping[str, Any]], addresses: Mapping[str, str]) -> list[hccn.Server]:
    """The rank table's servers, in the hosts file's order: server_id is the node's host IP."""
    out = []
    for node, probed in probes.items():
        devices = tuple((int(d), f.get("ip") or "") for d, f in sorted(probed.get("devices", {}).items(),
                                                                        key=lambda kv: int(kv[0])))
        out.append(hccn.Server(addresses.get(node, node), devices))
    return out
