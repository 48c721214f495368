"""A stand-in NPU box for kill-npu: device files in a temp folder, an npu-smi script that prints the real
`npu-smi info` format, and real processes that hold the device files.

Every process here is started by the lab and recorded with its start time; `cleanup()` SIGKILLs only
those, and only while their PID still names the same process. The npu-smi stand-in lists only the PIDs
the test registered (plus `HOST_PID`, which can never exist: above the kernel's PID limit), and the
device glob points into the temp folder, so the code under test sees only the lab's processes.

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

from npuenv.killnpu import DEVICE_GLOB_VARIABLE, NPU_SMI_VARIABLE, Config
from npuenv.procs import TAG_VARIABLE, read_stat

HOST_PID = 4194999  # > PID_MAX_LIMIT (4194304): no process here can have it

HOLDER = r'''
import json, os, signal, subprocess, sys, time

cfg = json.loads(sys.argv[1])
if cfg.get("comm"):
    with open("/proc/self/comm", "w") as handle:
        handle.write(cfg["comm"])
if cfg.get("new_pgrp"):
    os.setpgid(0, 0)
if cfg.get("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if cfg.get("respawn"):  # a launcher that answers SIGTERM by starting a new worker on the same devices
    def respawn(signum, frame):
        worker = dict(cfg, respawn=False, children=[])
        kid = subprocess.Popen([sys.executable, "-I", "-S", __file__, json.dumps(worker)],
                               stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        starttime = open(f"/proc/{kid.pid}/stat").read().rsplit(")", 1)[1].split()[19]
        with open(cfg["spawned_log"], "a") as log:
            log.write(f"{kid.pid} {starttime}\n")
    signal.signal(signal.SIGTERM, respawn)
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
                                 stdout=subprocess.PIPE, stdin=subprocess.DEVNULL))
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

NPU_SMI = r'''#!{python} -IS
"""Stand-in npu-smi: prints `npu-smi info` like driver 23.0 on a 910B box, with the registered PIDs that
are alive (a zombie only when registered with "lag": npu-smi lagging behind the driver)."""
import json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
if sys.argv[1:] != ["info"]:
    sys.exit("stand-in npu-smi: only `npu-smi info` is supported")
with open(os.path.join(here, "npu-smi.json")) as handle:
    entries = json.load(handle)


def state(pid):
    try:
        with open(f"/proc/{{pid}}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def listed(entry):
    if entry.get("host"):
        return True
    current = state(entry["pid"])
    return current is not None and (current != "Z" or entry.get("lag"))


line = "+" + "-" * 27 + "+" + "-" * 15 + "+" + "-" * 52 + "+"
double = "+" + "=" * 27 + "+" + "=" * 15 + "+" + "=" * 52 + "+"
out = ["+" + "-" * 96 + "+", "| npu-smi 23.0.rc3                 Version: 23.0.rc3" + " " * 45 + "|", line,
       "| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|",
       "| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |",
       double]
npus = {npus}
for npu in range(npus):
    out += [f"| {{npu:<5}} 910B1               | OK            | 97.2        37                0    / 0             |",
            f"| 0                         | 0000:C{{npu}}:00.0  | 0           0    / 0          3378 / 65536         |",
            double]
out += [line, "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |",
        double]
for npu in range(npus):
    rows = [e for e in entries if e["npu"] == npu and listed(e)]
    for e in rows:
        cells = f"{{e['npu']:<7}} {{e['chip']:<17}} | {{e['pid']:<13}} | {{e['name']:<24}} | {{e['memory']:<23}}"
        out.append(f"| {{cells}} |")
    if not rows:
        out.append(f"| No running processes found in NPU {{npu}}".ljust(97) + "|")
    out.append(double)
print("\n".join(out))
'''


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

    def __init__(self, root: Path, npus: int = 4) -> None:
        self.root = root
        self.dev = root / "dev"
        self.dev.mkdir(parents=True)
        for n in range(npus):
            (self.dev / f"davinci{n}").write_bytes(b"")
        (self.dev / "davinci_manager").write_bytes(b"")
        self.glob = str(self.dev / "davinci[0-9]*")
        self.npu_smi = root / "npu-smi"
        self.npu_smi.write_text(NPU_SMI.format(python=sys.executable, npus=npus))
        self.npu_smi.chmod(0o755)
        self.holder = root / "holder.py"
        self.holder.write_text(HOLDER)
        self.spawned_log = root / "spawned.log"  # "pid starttime" of workers a respawning launcher started
        self.entries: List[Dict[str, object]] = []
        self._write_entries()
        self.started: List[Started] = []
        self._recorded: List[Tuple[int, int]] = []

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

    def list(self, pid: int, npu: int, name: str = "python", memory: int = 1000, chip: int = 0,
             host: bool = False, lag: bool = False) -> None:
        """Have the stand-in npu-smi list `pid` on `npu`."""
        self.entries.append({"pid": pid, "npu": npu, "chip": chip, "name": name, "memory": memory,
                             "host": host, "lag": lag})
        self._write_entries()

    def list_host_pid(self, npu: int) -> int:
        self.list(HOST_PID, npu, host=True, memory=30784)
        return HOST_PID

    def _write_entries(self) -> None:
        (self.root / "npu-smi.json").write_text(json.dumps(self.entries))

    def start(self, **spec: object) -> Started:
        return self.start_many([spec])[0]

    def start_many(self, specs: List[Dict[str, object]]) -> List[Started]:
        """Start one holder per spec, all at once. Spec keys: tag (None: untagged), devices (NPU numbers),
        children (specs), ignore_term, respawn (on SIGTERM start a new worker instead of exiting), zombie
        (leave a dead child unreaped), exit (exit right away without being reaped), new_session, new_pgrp,
        comm, list (list it in npu-smi on its devices; default true)."""
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
            if spec.get("list", True):
                for npu in spec.get("devices", []):
                    self.list(process.pid, npu, lag=bool(spec.get("exit")))
        return started

    def _cfg(self, spec: Dict[str, object]) -> str:
        def convert(s: Dict[str, object]) -> Dict[str, object]:
            out = {k: v for k, v in s.items() if k not in ("devices", "children", "list", "new_session")}
            out["devices"] = [str(self.device(n)) for n in s.get("devices", [])]
            out["children"] = [convert(c) for c in s.get("children", [])]
            out["spawned_log"] = str(self.spawned_log)
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
