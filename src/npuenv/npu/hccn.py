"""Pure parsers for what `hccn_tool` prints and /etc/hccn.conf holds, and the HCCL rank table (1.0) built
from them or checked against them: the facts a multi-node job needs before it starts.

hccn_tool (/usr/local/Ascend/driver/tools/hccn_tool) takes the device index with `-i N`. Its output is a
few `key:value` lines; the parsers are tolerant as for npu-smi: unknown lines are ignored, spacing and
case around the colon vary, and "hccn_tool is busy, please try again" is told apart from an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

BUSY = "hccn_tool is busy"
NO_IP = "no ip was preset"


class Busy(ValueError):
    """hccn_tool answered that it is busy: ask again."""


def _check_busy(text: str) -> None:
    if BUSY in text.lower():
        raise Busy(text.strip())


def _values(text: str) -> dict[str, str]:
    """`key: value` lines as {lowercased key: value}; `a:1, b:2` on one line gives both."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        for part in line.split(","):
            key, sep, value = part.partition(":")
            if sep and key.strip():
                found.setdefault(key.strip().lower(), value.strip())
    return found


@dataclass(frozen=True)
class DeviceIp:
    address: str
    netmask: str


def parse_ip(text: str) -> Optional[DeviceIp]:
    """`hccn_tool -i N -ip -g`: the device IP and netmask, or None when none was set."""
    _check_busy(text)
    if NO_IP in text.lower():
        return None
    values = _values(text)
    address, netmask = values.get("ipaddr"), values.get("netmask")
    return DeviceIp(address, netmask or "") if address else None


def parse_link(text: str) -> Optional[str]:
    """`hccn_tool -i N -link -g`: "UP", "DOWN" (as printed, upper-cased), or None when not said."""
    _check_busy(text)
    value = _values(text).get("link status")
    return value.upper() if value else None


def parse_net_health(text: str) -> Optional[str]:
    """`hccn_tool -i N -net_health -g`: "Success", "Fault", "Init", … as printed, or None."""
    _check_busy(text)
    return _values(text).get("net health status") or None


@dataclass(frozen=True)
class Ping:
    sent: int
    received: int
    loss_percent: float

    @property
    def ok(self) -> bool:
        return self.sent > 0 and self.received == self.sent


_PING_SUMMARY = re.compile(r"(\d+)\s+packets?\s+transmitted,\s*(\d+)\s+received,\s*([\d.]+)%\s*packet\s+loss", re.I)


def parse_ping(text: str) -> Optional[Ping]:
    """`hccn_tool -i N -ping -g address IP`: the summary line; without one, the replies and time-outs
    counted; None when the text has neither."""
    _check_busy(text)
    summary = _PING_SUMMARY.search(text)
    if summary:
        return Ping(int(summary.group(1)), int(summary.group(2)), float(summary.group(3)))
    replies = len(re.findall(r"(?im)^\s*recv seq=\d+", text))
    timeouts = len(re.findall(r"(?im)^\s*recv time out", text))
    sent = replies + timeouts
    return Ping(sent, replies, 100.0 * timeouts / sent) if sent else None


def parse_hccn_conf(text: str) -> dict[int, dict[str, str]]:
    """/etc/hccn.conf: {physical device index: {"address": …, "netmask": …, "netdetect": …, "gateway": …}}."""
    found: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s*([a-z_]+?)_(\d+)\s*=\s*(\S*)\s*", line)
        if match:
            found.setdefault(int(match.group(2)), {})[match.group(1)] = match.group(3)
    return found


# --- the rank table (HCCL's JSON, version 1.0: every value a string) ---------------------------------------


@dataclass(frozen=True)
class Server:
    server_id: str  # the node's host IP, as HCCL expects
    devices: tuple[tuple[int, str], ...]  # (physical device id, device IP), in device order


def rank_table(servers: list[Server]) -> dict:
    """Rank table 1.0: ranks numbered 0.. across servers in the given order, device by device."""
    rank = 0
    server_list = []
    for server in servers:
        devices = []
        for device_id, device_ip in server.devices:
            devices.append({"device_id": str(device_id), "device_ip": device_ip, "rank_id": str(rank)})
            rank += 1
        server_list.append({"server_id": server.server_id, "device": devices})
    return {"status": "completed", "version": "1.0", "server_count": str(len(servers)), "server_list": server_list}


def rank_table_problems(table: object, servers: list[Server]) -> list[str]:
    """What in an existing rank table does not match the devices found (HCCL's EI0004/EI0014 before the
    job starts): its shape, server count, each server's devices and IPs, unique and contiguous rank ids."""
    if not isinstance(table, dict) or not isinstance(table.get("server_list"), list):
        return ["not a rank table: no server_list"]
    problems = []
    if str(table.get("server_count")) != str(len(table["server_list"])):
        problems.append(f"server_count {table.get('server_count')!r} but {len(table['server_list'])} servers listed")
    listed = {str(s.get("server_id")): s for s in table["server_list"] if isinstance(s, dict)}
    ranks: list[int] = []
    for server in servers:
        entry = listed.get(server.server_id)
        if entry is None:
            problems.append(f"server {server.server_id}: not in the rank table")
            continue
        have = {str(d.get("device_id")): d for d in entry.get("device") or [] if isinstance(d, dict)}
        for device_id, device_ip in server.devices:
            device = have.pop(str(device_id), None)
            if device is None:
                problems.append(f"server {server.server_id} device {device_id}: not in the rank table")
            elif device.get("device_ip") != device_ip:
                problems.append(f"server {server.server_id} device {device_id}: device_ip {device.get('device_ip')} "
                                f"in the table, {device_ip} on the device")
        problems += [f"server {server.server_id} device {d}: in the rank table, not on the node" for d in sorted(have)]
        ranks += [int(d["rank_id"]) for d in entry.get("device") or [] if str(d.get("rank_id", "")).isdigit()]
    problems += [f"server {s}: in the rank table, not among the nodes" for s in sorted(set(listed) - {x.server_id for x in servers})]
    if sorted(ranks) != list(range(len(ranks))):
        problems.append(f"rank ids are not 0..{len(ranks) - 1}, each once: {sorted(ranks)}")
    return problems
