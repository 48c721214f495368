"""Stand-in NPU nodes for the fleet tests: each node has its own device files and npu-smi (NpuLab), its own
CANN and driver (make_cann), and its own hccn_tool, reached over its own real sshd (sshd.py).

The hccn_tool stand-in prints the captured formats of hccn.py for `-i N -ip -g`, `-link -g`, `-net_health -g`
and `-ping -g address IP`, from the node's `hccn.json` ({device: {ip, netmask, link, health}}). A ping is
answered when the address is in the fleet's shared `network.json` (the HCCL network: every device IP whose
link is up, less the ones a test cuts off). It answers "hccn_tool is busy" to the first call of a device
whose `busy` count is set, as the real tool does to concurrent callers.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from .cann import StandInCann, make_cann
from .npu import NpuLab

HCCN_TOOL = r'''#!__PYTHON__ -IS
"""Stand-in hccn_tool (see tests/world/fleet.py): the captured output formats, from hccn.json."""
import json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "hccn.json")) as handle:
    devices = json.load(handle)
with open(os.environ.get("STAND_IN_NETWORK") or os.path.join(here, "network.json")) as handle:
    network = set(json.load(handle))
args = sys.argv[1:]
if len(args) < 4 or args[0] != "-i" or args[1] not in devices:
    sys.exit(f"Error: stand-in hccn_tool: unsupported call {' '.join(args)}")
device = devices[args[1]]
what = args[2:]
busy = os.path.join(here, f"busy-{args[1]}")
if os.path.exists(busy):
    os.remove(busy)
    print("hccn_tool is busy, please try again")
    sys.exit(1)
if what == ["-ip", "-g"]:
    if device.get("ip"):
        print(f"ipaddr:{device['ip']}\nnetmask:{device.get('netmask', '255.255.255.0')}")
    else:
        print("Get ipconf failed, because no ip was preset there!")
        sys.exit(1)
elif what == ["-link", "-g"]:
    print(f"link status: {device.get('link', 'UP')}")
elif what == ["-net_health", "-g"]:
    print(f"net health status: {device.get('health', 'Success')}")
elif what[:3] == ["-ping", "-g", "address"] and len(what) == 4:
    address = what[3]
    print(f"device {args[1]} PING {address}")
    answered = device.get("link", "UP") == "UP" and address in network
    for seq in range(3):
        print(f"recv seq={seq},time=0.06{seq}000ms" if answered else f"recv time out seq={seq}")
    print(f"3 packets transmitted, {3 if answered else 0} received, {0 if answered else 100}.00% packet loss")
else:
    sys.exit(f"Error: stand-in hccn_tool: unsupported call {' '.join(args)}")
'''


@dataclass
class StandInNode:
    """One node's hardware stand-ins and the environment its sshd gives every session."""

    name: str
    folder: Path
    lab: NpuLab
    cann: StandInCann
    devices: Dict[str, Dict[str, str]]

    def env(self, network: Path, path: str) -> Dict[str, str]:
        return {"PATH": path, "NPUENV_NPU_SMI": str(self.lab.npu_smi), "NPUENV_DEVICE_GLOB": self.lab.glob,
                "NPUENV_HCCN_TOOL": str(self.folder / "hccn_tool"), "STAND_IN_NETWORK": str(network),
                "NPUENV_HCCN_CONF": str(self.folder / "hccn.conf"), **self.cann.env()}

    def set_device(self, device: int, **facts: str) -> None:
        self.devices[str(device)].update(facts)
        (self.folder / "hccn.json").write_text(json.dumps(self.devices))

    def make_busy(self, device: int) -> None:
        (self.folder / f"busy-{device}").write_text("")


def device_ip(node_index: int, device: int) -> str:
    return f"10.10.{100 + device}.{node_index}"


def make_node(folder: Path, name: str, index: int, npus: int = 2, cann_version: str = "8.0.RC3") -> StandInNode:
    folder.mkdir(parents=True)
    lab = NpuLab(folder / "npu", npus=npus)
    cann = make_cann(folder / "Ascend", version=cann_version)
    devices = {str(d): {"ip": device_ip(index, d), "netmask": "255.255.255.0", "link": "UP", "health": "Success"}
               for d in range(npus)}
    (folder / "hccn.conf").write_text("".join(f"address_{d}={f['ip']}\nnetmask_{d}={f['netmask']}\n"
                                               for d, f in devices.items()))
    tool = folder / "hccn_tool"
    tool.write_text(HCCN_TOOL.replace("__PYTHON__", sys.executable))
    tool.chmod(0o755)
    node = StandInNode(name, folder, lab, cann, devices)
    node.set_device(0)
    return node


def write_network(path: Path, nodes: List[StandInNode], cut: Optional[List[str]] = None) -> Path:
    """The HCCL network: every device IP whose link is up answers pings, less `cut`."""
    up = [f["ip"] for n in nodes for f in n.devices.values() if f.get("ip") and f.get("link", "UP") == "UP"]
    path.write_text(json.dumps([ip for ip in up if ip not in (cut or [])]))
    return path
