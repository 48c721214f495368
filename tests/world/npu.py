"""A stand-in NPU box for kill-npu: device files in a temp folder, an npu-smi script that prints the real
`npu-smi info` and `npu-smi info -m` formats of one of four boards (UPSTREAM.md "NPU numbering"), and real
processes that hold the device files.

Boards (`LAYOUTS`): "910b" (one chip per NPU ID, NPU ID = device number), "duo" (Atlas 300I Duo: two chips
per card, "Chip  Device" rows, non-contiguous NPU IDs), "a3" (two dies per NPU ID, "Chip  Phy-ID" rows, a
Chip Phy-ID column in `info -m`) and "two-chip" (two chips per NPU ID, and nothing but `info -m` to tell
their device numbers). Device files are named by device number (davinci0..N-1); `card(N)` is npu-smi's
(NPU ID, Chip ID) for device N; `info_m=False` makes `npu-smi info -m` fail, as on an old driver.

Every process here is started by the lab and recorded with its start time; `cleanup()` SIGKILLs only
those, and only while their PID still names the same process. The npu-smi stand-in lists only the PIDs
the test registered (plus `HOST_PID`, which can never exist: above the kernel's PID limit), and the
device glob points into the temp folder, so the code under test sees only the lab's processes. Each holder
writes "PID SIGTERM" to `signals.log` when SIGTERM reaches it (then dies of it, ignores it or respawns, as
its spec says), so a test can tell which processes were signalled, not only which died.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from npuenv.npu.kill import DEVICE_GLOB_VARIABLE, NPU_SMI_VARIABLE, Config
from npuenv.npu.procs import TAG_VARIABLE, read_stat

HOST_PID = 4194999  # > PID_MAX_LIMIT (4194304): no process here can have it

HOLDER = r'''
import json, os, signal, subprocess, sys, time

cfg = json.loads(sys.argv[1])
if cfg.get("comm"):
    with open("/proc/self/comm", "w") as handle:
        handle.write(cfg["comm"])
if cfg.get("new_pgrp"):
    os.setpgid(0, 0)


def respawn():  # a launcher that answers SIGTERM by starting a new worker on the same devices
    worker = dict(cfg, respawn=False, children=[])
    env = dict(os.environ)
    if "respawn_tag" in cfg:  # the worker's own tag (None: untagged)
        env.pop("NPUENV_USER", None)
        if cfg["respawn_tag"] is not None:
            env["NPUENV_USER"] = cfg["respawn_tag"]
    kid = subprocess.Popen([sys.executable, "-I", "-S", __file__, json.dumps(worker)], env=env,
                           stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    starttime = open(f"/proc/{kid.pid}/stat").read().rsplit(")", 1)[1].split()[19]
    with open(cfg["spawned_log"], "a") as log:
        log.write(f"{kid.pid} {starttime}\n")


def on_term(signum, frame):  # record the signal, then do what the spec says
    with open(cfg["signal_log"], "a") as log:
        log.write(f"{os.getpid()} SIGTERM\n")
    if cfg.get("respawn"):
        respawn()
    elif not cfg.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


signal.signal(signal.SIGTERM, on_term)
held = [open(path, "rb") for path in cfg.get("devices", [])]
info = {"pid": os.getpid(), "children": [], "zombie": None}
kids = []
for sub in cfg.get("children", []):
    env = dict(os.environ)
    if "tag" in sub:
        env.pop("NPUENV_USER", None)
        if sub["tag"] is not None:
            env["NPUENV_USER"] = sub["tag"]
    kids.append(subprocess.Popen([sys.executable, "-I", "-S", __file__, json.dumps(sub)], env=env,
                                 stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                 start_new_session=bool(sub.get("new_session"))))
for kid in kids:
    info["children"].append(json.loads(kid.stdout.readline()))
if cfg.get("zombie"):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    while open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.005)
    info["zombie"] = pid
print(json.dumps(info), flush=True)
if cfg.get("exit"):
    os._exit(0)
while True:
    time.sleep(3600)
'''

NPU_SMI = r'''#!__PYTHON__ -IS
"""Stand-in npu-smi: `npu-smi info` and `npu-smi info -m` like driver 23.0 on the board described in
npu-smi-box.json, with the registered PIDs that are alive (a zombie only when registered with "lag":
npu-smi lagging behind the driver). Anything else fails, as an unknown subcommand does."""
import json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "npu-smi-box.json")) as handle:
    box = json.load(handle)
with open(os.path.join(here, "npu-smi.json")) as handle:
    entries = json.load(handle)


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def listed(entry):
    if entry.get("host"):
        return True
    current = state(entry["pid"])
    return current is not None and (current != "Z" or entry.get("lag"))


def chip_map():
    """`npu-smi info -m`: NPU ID, Chip ID, Chip Logic ID, [Chip Phy-ID,] Chip Name; an Mcu row per card."""
    phy = box["column"] == "Phy-ID"
    columns = ["NPU ID", "Chip ID", "Chip Logic ID"] + (["Chip Phy-ID"] if phy else []) + ["Chip Name"]
    out = ["        " + "".join(f"{c:<31}" for c in columns).rstrip()]
    for card in box["cards"]:
        rows = [(chip["chip"], chip["device"], chip["device"], box["chip_name"]) for chip in card["chips"]]
        if box["mcu"]:
            rows.append((len(card["chips"]), "-", "-", "Mcu"))
        for chip, logic, physical, name in rows:
            values = [card["npu"], chip, logic] + ([physical] if phy else []) + [name]
            out.append("        " + "".join(f"{v:<31}" for v in values).rstrip())
    return out


if sys.argv[1:] == ["info", "-m"] and box["info_m"]:
    print("\n".join(chip_map()))
    sys.exit(0)
if sys.argv[1:] != ["info"]:
    sys.exit(f"Error: stand-in npu-smi: `npu-smi {' '.join(sys.argv[1:])}` is not supported")

column = box["column"]
line = "+" + "-" * 27 + "+" + "-" * 15 + "+" + "-" * 52 + "+"
double = "+" + "=" * 27 + "+" + "=" * 15 + "+" + "=" * 52 + "+"
second = {"Device": "Chip    Device", "Phy-ID": "Chip  Phy-ID"}.get(column, "Chip")
out = ["+" + "-" * 96 + "+", "| npu-smi 23.0.rc3                 Version: 23.0.rc3" + " " * 45 + "|", line,
       "| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|",
       f"| {second:<25} | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |",
       double]
for index, card in enumerate(box["cards"]):
    npu, name, bus = card["npu"], box["name"], f"0000:{(0xC1 + index) % 256:02X}:00.0"
    out.append(f"| {npu:<5} {name:<19} | OK            | 97.2        37                0    / 0             |")
    for chip in card["chips"]:
        first = f"{chip['chip']:<7} {chip['device']}" if column else str(chip["chip"])
        out.append(f"| {first:<25} | {bus}  | 0           0    / 0          3378 / 65536         |")
    out.append(double)
out += [line, "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |",
        double]
for card in box["cards"]:
    npu = card["npu"]
    rows = [e for e in entries if e["npu"] == npu and listed(e)]
    for e in rows:
        cells = f"{e['npu']:<7} {e['chip']:<17} | {e['pid']:<13} | {e['name']:<24} | {e['memory']:<23}"
        out.append(f"| {cells} |")
    if not rows:
        out.append(f"| No running processes found in NPU {npu}".ljust(97) + "|")
    out.append(double)
print("\n".join(out))
'''

# The boards (UPSTREAM.md "NPU numbering"): the card's name in `npu-smi info`, the chip's in `info -m`, chips
# per NPU ID, what the chip rows' second column is ("": none), whether `info -m` lists an Mcu, the NPU IDs.
DUO_NPU_IDS = [0, 32, 96, 32768, 32800, 32864, 33024, 33056]
LAYOUTS: Dict[str, Dict[str, object]] = {
    "910b": dict(name="910B1", chip_name="Ascend 910B1", chips=1, column="", mcu=True),
    "duo": dict(name="310P3", chip_name="Ascend 310P3", chips=2, column="Device", mcu=False, ids=DUO_NPU_IDS),
    "a3": dict(name="Ascend910", chip_name="Ascend910", chips=2, column="Phy-ID", mcu=True),
    "two-chip": dict(name="910B4", chip_name="Ascend 910B4", chips=2, column="", mcu=True),
}


@dataclass
class Started:
    """A process the lab started: its PID, start time, the children it started, its zombie child."""

    pid: int
    starttime: int
    children: List["Started"] = field(default_factory=list)
    zombie: Optional[int] = None
    popen: Optional[subprocess.Popen] = None

    def tree(self) -> List[int]:
        return [self.pid] + [pid for child in self.children for pid in child.tree()]


class NpuLab:
    """Stand-in devices, npu-smi and holder processes under `root`."""

    def __init__(self, root: Path, npus: int = 4, layout: str = "910b", info_m: bool = True) -> None:
        """`npus` device files (davinci0..npus-1) on a `layout` board (LAYOUTS); `info_m`: whether
        `npu-smi info -m` answers."""
        self.root = root
        self.dev = root / "dev"
        self.dev.mkdir(parents=True)
        for n in range(npus):
            (self.dev / f"davinci{n}").write_bytes(b"")
        (self.dev / "davinci_manager").write_bytes(b"")
        self.glob = str(self.dev / "davinci[0-9]*")
        self.layout = layout
        self.cards = self._board(npus, LAYOUTS[layout])
        box = {**LAYOUTS[layout], "cards": self.cards, "info_m": info_m}
        (root / "npu-smi-box.json").write_text(json.dumps(box))
        self.npu_smi = root / "npu-smi"
        self.npu_smi.write_text(NPU_SMI.replace("__PYTHON__", sys.executable))
        self.npu_smi.chmod(0o755)
        self.holder = root / "holder.py"
        self.holder.write_text(HOLDER)
        self.spawned_log = root / "spawned.log"  # "pid starttime" of workers a respawning launcher started
        self.signal_log = root / "signals.log"  # "pid SIGTERM" of every holder SIGTERM reached
        self.entries: List[Dict[str, object]] = []
        self._write_entries()
        self.started: List[Started] = []
        self._recorded: List[Tuple[int, int]] = []

    @staticmethod
    def _board(npus: int, layout: Dict[str, object]) -> List[Dict[str, object]]:
        """The cards: NPU ID and chips (chip number, device number); devices are numbered in card order."""
        per_card = int(layout["chips"])
        ids = list(layout.get("ids") or range(npus))
        cards: List[Dict[str, object]] = []
        for index in range((npus + per_card - 1) // per_card):
            chips = [{"chip": c, "device": index * per_card + c} for c in range(per_card)
                     if index * per_card + c < npus]
            cards.append({"npu": ids[index], "chips": chips})
        return cards

    def card(self, device: int) -> Tuple[int, int]:
        """npu-smi's (NPU ID, Chip ID) for device number `device`."""
        for card in self.cards:
            for chip in card["chips"]:
                if chip["device"] == device:
                    return card["npu"], chip["chip"]
        raise KeyError(device)

    def device(self, n: int) -> Path:
        return self.dev / f"davinci{n}"

    def config(self, npu_smi: bool = True) -> Config:
        return Config(npu_smi=str(self.npu_smi) if npu_smi else None, device_glob=self.glob)

    def env(self, user: Optional[str] = None) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != TAG_VARIABLE}
        env.update({NPU_SMI_VARIABLE: str(self.npu_smi), DEVICE_GLOB_VARIABLE: self.glob})
        if user is not None:
            env[TAG_VARIABLE] = user
        return env

    def list(self, pid: int, device: int, name: str = "python", memory: int = 1000, host: bool = False,
             lag: bool = False) -> None:
        """Have the stand-in npu-smi list `pid` on device number `device` (by its NPU ID and Chip ID)."""
        npu, chip = self.card(device)
        self.entries.append({"pid": pid, "npu": npu, "chip": chip, "name": name, "memory": memory,
                             "host": host, "lag": lag})
        self._write_entries()

    def list_host_pid(self, device: int) -> int:
        self.list(HOST_PID, device, host=True, memory=30784)
        return HOST_PID

    def _write_entries(self) -> None:
        (self.root / "npu-smi.json").write_text(json.dumps(self.entries))

    def start(self, **spec: object) -> Started:
        return self.start_many([spec])[0]

    def start_many(self, specs: List[Dict[str, object]]) -> List[Started]:
        """Start one holder per spec, all at once. Spec keys: tag (None: untagged), devices (device numbers),
        children (specs; a child's "tag" key, even None, replaces the inherited tag, as `env -u` would),
        ignore_term, respawn (on SIGTERM start a new worker instead of exiting; respawn_tag: the worker's
        tag), zombie (leave a dead child unreaped), exit (exit right away without being reaped),
        new_session, new_pgrp, comm, list (list it in npu-smi on its devices; default true; children are
        never listed)."""
        popens = []
        for spec in specs:
            env = {k: v for k, v in os.environ.items() if k != TAG_VARIABLE}
            if spec.get("tag") is not None:
                env[TAG_VARIABLE] = str(spec["tag"])
            popens.append(subprocess.Popen([sys.executable, "-I", "-S", str(self.holder), self._cfg(spec)],
                                           env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                           start_new_session=bool(spec.get("new_session"))))
        started = []
        for spec, popen in zip(specs, popens):
            info = json.loads(popen.stdout.readline())
            popen.stdout.close()
            process = self._record(info, popen)
            started.append(process)
            self.started.append(process)
            if spec.get("list", True):  # children hold their devices unlisted: /proc alone sees them
                for device in spec.get("devices", []):
                    self.list(process.pid, device, lag=bool(spec.get("exit")))
        return started

    def _cfg(self, spec: Dict[str, object]) -> str:
        def convert(s: Dict[str, object]) -> Dict[str, object]:
            out = {k: v for k, v in s.items() if k not in ("devices", "children", "list")}
            out["devices"] = [str(self.device(n)) for n in s.get("devices", [])]
            out["children"] = [convert(c) for c in s.get("children", [])]
            out["spawned_log"] = str(self.spawned_log)
            out["signal_log"] = str(self.signal_log)
            return out
        return json.dumps(convert(spec))

    def _record(self, info: Dict[str, object], popen: Optional[subprocess.Popen] = None) -> Started:
        pid = int(info["pid"])
        stat = read_stat(pid)
        starttime = stat.starttime if stat else -1
        self._recorded.append((pid, starttime))
        children = [self._record(c) for c in info.get("children", [])]
        return Started(pid, starttime, children, info.get("zombie"), popen)

    def alive(self, process: Started) -> bool:
        stat = read_stat(process.pid)
        return stat is not None and stat.starttime == process.starttime and not stat.zombie

    def gone(self, process: Started, timeout: float = 3.0, reap: bool = True) -> bool:
        """Wait for `process` to have exited (a zombie counts); reap it when it is the test's child."""
        deadline = time.monotonic() + timeout
        while self.alive(process):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        if reap and process.popen is not None:
            process.popen.wait(timeout=timeout)
        return True

    def signalled(self) -> Dict[int, List[str]]:
        """{pid: signals} for every holder SIGTERM reached (SIGKILL leaves no trace)."""
        if not self.signal_log.exists():
            return {}
        found: Dict[int, List[str]] = {}
        for entry in self.signal_log.read_text().splitlines():
            pid, name = entry.split()
            found.setdefault(int(pid), []).append(name)
        return found

    def spawned(self) -> List[Tuple[int, int]]:
        if not self.spawned_log.exists():
            return []
        return [(int(p), int(t)) for p, t in (line.split() for line in self.spawned_log.read_text().splitlines())]

    def cleanup(self) -> None:
        """SIGKILL what the lab started and is still running (same PID, same start time); reap its children."""
        for pid, starttime in [*reversed(self._recorded), *self.spawned()]:
            stat = read_stat(pid)
            if stat is not None and stat.starttime == starttime and not stat.zombie:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for process in self.started:
            if process.popen is not None:
                process.popen.wait(timeout=10)
