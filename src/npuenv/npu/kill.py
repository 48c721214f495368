"""kill-npu as data: discover who holds the NPUs, plan whom to stop, stop them, read the devices again.

Discovery merges two sources. npu-smi's process table names PIDs per NPU, but in a container those may
be the host's PIDs; /proc/*/fd shows which processes *here* have a device file open. Only processes seen
holding a device file here (and the members of their process trees) are ever signalled; an npu-smi PID
that is not visible here is reported as a host PID, one that is visible but holds no device file as
unverified. Everyone is `ma-user`, so ownership is the NPUENV_USER tag in a process's environment, or, for
an untagged process, its nearest tagged ancestor's (procs.ProcessTable.owner).

The table is the truth: a row says "stop" exactly when its process is signalled, and a process is signalled
only as a member of a tree whose owner is the one asked for (or with --all); anything that is someone
else's is never signalled, even inside a tree that is stopped.

One numbering: a device is named by its NPU number (npu.Numbering: /dev/davinciN, ASCEND_RT_VISIBLE_DEVICES,
torch), never by npu-smi's NPU ID, which names a card that may hold two chips. npu-smi's (NPU ID, Chip ID)
rows are mapped through `npu-smi info -m` (run beside `npu-smi info`) or the device table.

Where to look (both documented in the README): NPUENV_NPU_SMI names the npu-smi binary (default
/usr/local/bin/npu-smi, /usr/local/sbin/npu-smi, then PATH; none found: /proc only), NPUENV_DEVICE_GLOB
the device files (default /dev/davinci[0-9]*; the trailing digits of the name are the chip's physical ID,
which is its NPU number unless `npu-smi info -m` says otherwise).

One run (`invoke kill-npu`): survey() -> Plan, carry_out() -> KillResult (the StopReport and each
DeviceState afterwards). Nothing here prints: npuenv.render.kill_npu lays them out as text, and every
result's to_json() is the task's --json.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Optional

from ..errors import KillNpuError, UsageError
from .smi import NpuSmiInfo, Numbering, parse_npu_smi_info
from .procs import (DEFAULT_DEVICE_GLOB, DEVICE_GLOB_VARIABLE, PROC, TAG_VARIABLE, UNREADABLE, ProcessTable, Stat, device_files,
                    read_stat, scan_holders)

NPU_SMI_VARIABLE = "NPUENV_NPU_SMI"
NPU_SMI_LOCATIONS = ("/usr/local/bin/npu-smi", "/usr/local/sbin/npu-smi")
NPU_SMI_TIMEOUT = 30.0

STOP, SKIP = "stop", "skip"
HOST_PID = "host PID, not visible here"
# what a run did (KillResult.outcome)
NOTHING_TO_STOP, DRY_RUN, DECLINED, STOPPED = "nothing to stop", "dry run", "declined", "stopped"


def _tag_json(tag: Optional[str]) -> Optional[str]:
    """A tag in JSON: null when untagged, "?" when the environment could not be read (as the table shows it)."""
    return "?" if tag == UNREADABLE else tag


@dataclass(frozen=True)
class Config:
    """Where to look: the npu-smi binary (None: /proc only), the device files' glob, the /proc root."""

    npu_smi: Optional[str]
    device_glob: str = DEFAULT_DEVICE_GLOB
    proc: str = PROC

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        return cls(find_npu_smi(env), env.get(DEVICE_GLOB_VARIABLE) or DEFAULT_DEVICE_GLOB)


def find_npu_smi(env: Mapping[str, str]) -> Optional[str]:
    """$NPUENV_NPU_SMI, else /usr/local/bin/npu-smi, /usr/local/sbin/npu-smi, else npu-smi on PATH."""
    override = env.get(NPU_SMI_VARIABLE)
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise KillNpuError(f"{NPU_SMI_VARIABLE}={override}: not an executable file",
                               hint=f"point {NPU_SMI_VARIABLE} at npu-smi, or unset it to use "
                                    f"{' or '.join(NPU_SMI_LOCATIONS)} or PATH")
        return override
    for location in NPU_SMI_LOCATIONS:
        if os.path.isfile(location) and os.access(location, os.X_OK):
            return location
    return shutil.which("npu-smi", path=env.get("PATH"))


@dataclass
class Snapshot:
    """What discovery saw: device files and their holders in /proc (by NPU number), npu-smi's tables and the
    numbering they give, and the process table."""

    config: Config
    devices: dict[str, int]                # device file (real path) -> NPU number
    holders: dict[int, frozenset[int]]     # pid -> NPU numbers of the device files it holds
    smi: Optional[NpuSmiInfo]
    table: ProcessTable
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    numbering: Numbering = field(default_factory=Numbering)

    def known_devices(self) -> set[int]:
        """Every NPU number seen: device files, holders, and npu-smi's devices, idle cards and process rows."""
        known = set(self.devices.values())
        for held in self.holders.values():
            known |= held
        if self.smi is not None:
            known |= set(self.numbering.devices)
            for card in self.smi.idle:
                known |= set(self.numbering.of_card(card))
            for process in self.smi.processes:
                device = self.numbering.device(process.npu, process.chip)
                if device is not None:
                    known.add(device)
        return known


def discover(config: Config) -> Snapshot:
    """Run `npu-smi info` and `npu-smi info -m` and, while they run, scan /proc for processes holding the
    device files; then name every device by its NPU number."""
    began = time.perf_counter()
    notes: list[str] = []
    runners = _start_npu_smi(config.npu_smi, notes) if config.npu_smi else []
    files = device_files(config.device_glob)
    held = scan_holders(files, config.proc)
    for runner in runners:
        held.pop(runner.pid, None)  # npu-smi itself may have a device open while it reads
    table = ProcessTable(config.proc)
    smi = _finish_npu_smi(runners, notes) if runners else None
    numbering = smi.numbering if smi is not None else Numbering()
    devices = {path: numbering.of_file(n) for path, n in files.items()}
    holders = {pid: frozenset(numbering.of_file(n) for n in numbers) for pid, numbers in held.items()}
    if not config.npu_smi:
        notes.append(f"npu-smi not found ({NPU_SMI_VARIABLE}, {', '.join(NPU_SMI_LOCATIONS)}, PATH): "
                     "using /proc only")
    if not devices:
        notes.append(f"no device files match {config.device_glob} (set {DEVICE_GLOB_VARIABLE} if they live "
                     "elsewhere): nothing can be verified as holding an NPU here")
    return Snapshot(config, devices, holders, smi, table, notes, time.perf_counter() - began, numbering)


def _start_npu_smi(path: str, notes: list[str]) -> list[subprocess.Popen]:
    """`npu-smi info` and `npu-smi info -m`, started side by side; [] when npu-smi cannot be started."""
    runners: list[subprocess.Popen] = []
    for argv in ([path, "info"], [path, "info", "-m"]):
        try:
            runners.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, errors="replace"))
        except OSError as exc:
            if not runners:
                notes.append(f"npu-smi could not be started ({path}: {exc.strerror}): using /proc only")
                return []
    return runners


def _collect(runner: subprocess.Popen, deadline: float) -> Optional[tuple[int, str, str]]:
    """(exit code, stdout, stderr), or None when it did not finish by `deadline` (then it is killed)."""
    try:
        out, err = runner.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.communicate()
        return None
    return runner.returncode, out or "", err or ""


def _first_line(result: tuple[int, str, str]) -> str:
    first = (result[2] + result[1]).strip().splitlines()[:1]
    return f"exit {result[0]}" + (f": {first[0]}" if first else "")


def _finish_npu_smi(runners: list[subprocess.Popen], notes: list[str]) -> Optional[NpuSmiInfo]:
    deadline = time.monotonic() + NPU_SMI_TIMEOUT
    results = [_collect(runner, deadline) for runner in runners]
    info, chip_map = results[0], (results[1] if len(results) > 1 else None)
    if info is None:
        notes.append(f"npu-smi did not answer within {NPU_SMI_TIMEOUT:.0f} s: using /proc only")
        return None
    if info[0] != 0:
        notes.append(f"npu-smi info failed ({_first_line(info)}): using /proc only")
        return None
    mapped = chip_map is not None and chip_map[0] == 0
    parsed = parse_npu_smi_info(info[1], chip_map[1] if mapped else "")
    if parsed.numbering.guessed:
        why = ("did not answer" if chip_map is None else
               f"failed ({_first_line(chip_map)})" if not mapped else "gave no chip map")
        notes.append(f"npu-smi info -m {why}: the chips of cards with several chips are numbered in table "
                     "order (0, 1, ... as the driver counts them); check against `npu-smi info -m`")
    return parsed


@dataclass(frozen=True)
class Row:
    """One PID on one device (its NPU number), as shown in the table; `action` is STOP or SKIP (with a
    reason), and says exactly whether the PID is signalled."""

    device: int
    pid: int
    root: Optional[int]
    tag: Optional[str]
    command: str
    memory_mb: Optional[int]
    seen_by: str
    action: str
    reason: str = ""
    host_pid: Optional[int] = None  # the host's PID, when npu-smi shows it next to this namespace's
    card: Optional[tuple[int, int]] = None  # npu-smi's (NPU ID, Chip ID) for `device`, when npu-smi lists it

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {**data, "tag": _tag_json(self.tag), "card": list(self.card) if self.card is not None else None}


@dataclass(frozen=True)
class Target:
    """A process to signal. `starttime` guards against a PID reused since discovery."""

    pid: int
    ppid: int
    starttime: int
    root: int
    tag: Optional[str]
    command: str
    devices: frozenset[int] = frozenset()
    owner: Optional[str] = None  # its tag, or (untagged) its nearest tagged ancestor's

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "ppid": self.ppid, "root": self.root, "tag": _tag_json(self.tag),
                "owner": _tag_json(self.owner), "command": self.command, "devices": sorted(self.devices)}


@dataclass
class Plan:
    rows: list[Row]
    targets: list[Target]        # in signal order: each tree deepest first, its root last
    zombies: list[Target]        # exited processes found on a device or in a tree: reaped or reported
    devices: list[int]           # the devices in scope, for the report afterwards
    scope: Optional[frozenset[int]]
    user: Optional[str]
    all_users: bool
    caller: int
    protected: frozenset[int]
    proc: str = PROC
    notes: list[str] = field(default_factory=list)
    numbering: Numbering = field(default_factory=Numbering)
    config: Optional[Config] = None  # where discovery looked: recheck() looks there again

    @property
    def roots(self) -> list[int]:
        return list(dict.fromkeys(t.root for t in self.targets))

    def to_json(self) -> dict[str, Any]:
        """Whose processes, which NPUs, the table's rows, and what is signalled (targets, tree roots, zombies)."""
        return {"user": self.user, "all_users": self.all_users,
                "scope": sorted(self.scope) if self.scope is not None else None, "devices": list(self.devices),
                "notes": list(self.notes), "rows": [r.to_json() for r in self.rows],
                "targets": [t.to_json() for t in self.targets], "roots": self.roots,
                "zombies": [z.to_json() for z in self.zombies]}


def make_plan(snapshot: Snapshot, user: Optional[str], all_users: bool = False,
              devices: Optional[Iterable[int]] = None, caller: Optional[int] = None) -> Plan:
    """Decide, per PID on each device (`devices`: NPU numbers), whether its process tree is stopped, and build
    the signal list; then make every row say what happens to its PID.

    Never selected: PID 1, `caller` (default: this process) and its ancestors, zombies, PIDs not visible
    here, PIDs not seen holding a device file here (unless they are in a tree that is stopped), and
    (without `all_users`) processes whose owner is not `user`: their tag, or for an untagged process its
    nearest tagged ancestor's."""
    if not all_users and not user:
        raise UsageError(f"whose processes? {TAG_VARIABLE} is not set and no user was given",
                         hint="pass --user NAME to stop processes tagged NAME, or --all for everyone's "
                              "(see them first with --dry-run)")
    caller = os.getpid() if caller is None else caller
    table = snapshot.table
    protected = frozenset({0, 1, caller, *table.ancestors(caller)})
    scope = frozenset(devices) if devices is not None else None
    known = snapshot.known_devices()
    if scope is not None and not scope <= known:
        missing = ", ".join(str(d) for d in sorted(scope - known))
        raise UsageError(f"no NPU {missing} on this machine",
                         hint=f"NPUs found: {', '.join(map(str, sorted(known))) or 'none'} "
                              f"(from npu-smi and {snapshot.config.device_glob})")
    plan = Plan([], [], [], sorted(known if scope is None else scope), scope, user, all_users, caller,
                protected, snapshot.config.proc, list(snapshot.notes), snapshot.numbering, snapshot.config)
    roots: list[int] = []
    outside: list[tuple[int, int, tuple[Optional[int], str, Optional[int]]]] = []
    for (device, pid), finding in sorted(_findings(snapshot, plan.notes).items()):
        if scope is not None and device not in scope:
            outside.append((device, pid, finding))
            continue
        row = _judge(snapshot, plan, device, pid, *finding)
        plan.rows.append(row)
        if row.action == STOP and row.root not in roots:
            roots.append(row.root)
    for root in roots:
        _add_tree(snapshot, plan, root)
    _agree(plan)
    _show_outside(snapshot, plan, outside)
    _note_unverified(snapshot, plan)
    return plan


def _findings(snapshot: Snapshot, notes: list[str]) -> dict[tuple[int, int], tuple[Optional[int], str, Optional[int]]]:
    """{(NPU number, pid): (memory MB, "npu-smi" / "/proc" / "npu-smi, /proc", host PID)} from both sources.
    npu-smi's rows are keyed by (NPU ID, Chip ID): they are mapped to NPU numbers first."""
    seen: dict[tuple[int, int], tuple[Optional[int], list[str], Optional[int]]] = {}
    for process in (snapshot.smi.processes if snapshot.smi else []):
        device = snapshot.numbering.device(process.npu, process.chip)
        if device is None:
            notes.append(f"npu-smi lists PID {process.pid} on its NPU ID {process.npu}, chip {process.chip}, "
                         "which no NPU number matches (see `npu-smi info -m`): left out of the table")
            continue
        entry = seen.setdefault((device, process.pid), (process.memory_mb, [], process.host_pid))
        entry[1].append("npu-smi")
    for pid, held in snapshot.holders.items():
        for device in held:
            seen.setdefault((device, pid), (None, [], None))[1].append("/proc")
    return {key: (memory, ", ".join(dict.fromkeys(sources)), host)
            for key, (memory, sources, host) in seen.items()}


def _judge(snapshot: Snapshot, plan: Plan, device: int, pid: int, memory: Optional[int], seen_by: str,
           host_pid: Optional[int] = None) -> Row:
    table = snapshot.table
    stat = table.get(pid)

    def row(action: str, reason: str = "", root: Optional[int] = None) -> Row:
        tag = table.tag(pid) if stat is not None else None
        command = table.command(pid) if stat is not None else _smi_name(snapshot, device, pid)
        return Row(device, pid, root, tag, command, memory, seen_by, action, reason, host_pid,
                   snapshot.numbering.card(device))

    if stat is None:
        return row(SKIP, HOST_PID if "/proc" not in seen_by else "exited")
    if pid == 1:
        return row(SKIP, "PID 1 (init): never stopped")
    if pid == plan.caller:
        return row(SKIP, "kill-npu itself")
    if pid in plan.protected:
        return row(SKIP, "an ancestor of kill-npu (its shell or launcher)")
    if stat.zombie:
        if all(z.pid != pid for z in plan.zombies):
            plan.zombies.append(_target(table, stat, pid, plan.protected))
        parent = table.get(stat.ppid)
        return row(SKIP, f"zombie: exited, not reaped by its parent {stat.ppid} ({parent.comm if parent else '?'})")
    if pid not in snapshot.holders:
        return row(SKIP, "visible here but holds no device file here (a host PID?)")
    root = table.tree_root(pid, plan.protected)
    tag = table.tag(pid)
    owner, carrier = table.owner(pid, plan.protected)
    if not plan.all_users and owner != plan.user:
        return row(SKIP, _whose(tag, owner, carrier), root)
    if tag is not None:
        return row(STOP, "", root)
    return row(STOP, f"untagged, in {owner}'s job {root}" if owner is not None else "untagged: --all", root)


def _whose(tag: Optional[str], owner: Optional[str], carrier: Optional[int]) -> str:
    """Why a process is not the asked-for user's: its own tag, or for an untagged one its owner's."""
    if tag == UNREADABLE:
        return "environment unreadable (another UNIX user?)"
    if tag is not None:
        return f"{tag}'s: --all includes it"
    if owner is None:
        return "untagged (no NPUENV_USER in its environment or its parents'): --all includes it"
    return f"untagged, in {owner}'s job (below {owner}'s PID {carrier}): --all includes it"


def _add_tree(snapshot: Snapshot, plan: Plan, root: int) -> None:
    """Add the tree under `root` to the plan: every member whose owner is the root's (all of them with
    --all). Someone else's process, and an untagged one below it, is left alone even here."""
    table = snapshot.table
    owner = table.owner(root, plan.protected)[0]
    taken = {t.pid for t in plan.targets} | {z.pid for z in plan.zombies}
    for pid in [*table.descendants(root), root]:
        stat = table.get(pid)
        if stat is None or pid in taken or pid in plan.protected:
            continue
        target = _target(table, stat, root, plan.protected, snapshot.holders.get(pid, frozenset()))
        if stat.zombie:  # its environment is gone: it is part of the tree, nobody's in particular
            plan.zombies.append(target)
        elif plan.all_users or target.owner == owner:
            plan.targets.append(target)
        else:
            plan.notes.append(f"PID {pid} in the tree of {root} is {_owner_text(table, pid, plan.protected)}, "
                              f"not {_tag_text(owner)}'s: left alone")


def _agree(plan: Plan) -> None:
    """The table is the truth: a row says stop exactly when its PID is a target. A PID npu-smi lists but that
    holds no device file here is stopped when it is a member of a tree that is stopped: its row says so."""
    targets = {t.pid: t for t in plan.targets}
    for index, row in enumerate(plan.rows):
        target = targets.get(row.pid)
        if target is not None and row.action != STOP:
            unheld = "; it holds no device file here" if row.reason.startswith("visible here but") else ""
            plan.rows[index] = replace(row, action=STOP, root=target.root,
                                       reason=f"in {_job(target)}, stopped with it{unheld}")
        elif target is None and row.action == STOP:
            plan.rows[index] = replace(row, action=SKIP, reason="not in the tree of its root any more: left alone")


def _show_outside(snapshot: Snapshot, plan: Plan,
                  outside: list[tuple[int, int, tuple[Optional[int], str, Optional[int]]]]) -> None:
    """A process on an NPU outside --device that is stopped with its job (a worker of the same run on
    another NPU) gets its row too: the table shows everything that is stopped."""
    targets = {t.pid: t for t in plan.targets}
    for device, pid, finding in outside:
        target = targets.get(pid)
        if target is not None:
            row = _judge(snapshot, plan, device, pid, *finding)
            plan.rows.append(replace(row, action=STOP, root=target.root,
                                     reason=f"outside --device, in {_job(target)}: stopped with it"))
    plan.rows.sort(key=lambda r: (r.device, r.pid))


def _job(target: Target) -> str:
    """"alice's job 4242", or "job 4242" for nobody's."""
    whose = f"{_tag_text(target.owner)}'s " if target.owner is not None else ""
    return f"{whose}job {target.root}"


def _target(table: ProcessTable, stat: Stat, root: int, protected: frozenset[int],
            devices: frozenset[int] = frozenset()) -> Target:
    return Target(stat.pid, stat.ppid, stat.starttime, root, table.tag(stat.pid), table.command(stat.pid),
                  devices, table.owner(stat.pid, protected)[0])


def _owner_text(table: ProcessTable, pid: int, protected: frozenset[int]) -> str:
    tag = table.tag(pid)
    if tag is not None:
        return f"tagged {_tag_text(tag)}"
    owner, carrier = table.owner(pid, protected)
    return f"untagged, below {_tag_text(owner)}'s PID {carrier}" if owner is not None else "untagged"


def _note_unverified(snapshot: Snapshot, plan: Plan) -> None:
    unverified = [r for r in plan.rows if r.reason.startswith("visible here but")]
    if unverified and not snapshot.holders:
        plan.notes.append(f"npu-smi lists {len(unverified)} PID(s) seen here that hold none of "
                          f"{snapshot.config.device_glob}: if the device files have other names, set "
                          f"{DEVICE_GLOB_VARIABLE}")


def _smi_name(snapshot: Snapshot, device: int, pid: int) -> str:
    for process in (snapshot.smi.processes if snapshot.smi else []):
        if process.pid == pid and snapshot.numbering.device(process.npu, process.chip) == device:
            return process.name
    return ""


def _tag_text(tag: Optional[str]) -> str:
    return "nobody" if tag is None else ("unreadable" if tag == UNREADABLE else tag)


@dataclass(frozen=True)
class ZombieFate:
    pid: int
    ppid: int
    parent_command: str
    fate: str


@dataclass
class StopReport:
    terminated: list[int] = field(default_factory=list)   # exited after SIGTERM
    killed: list[int] = field(default_factory=list)       # needed SIGKILL after the grace period
    survivors: list[int] = field(default_factory=list)    # still there after SIGKILL
    gone: list[int] = field(default_factory=list)         # had exited before they were signalled
    denied: list[int] = field(default_factory=list)       # not ours to signal (EPERM)
    zombies: list[ZombieFate] = field(default_factory=list)
    grace: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def stop(plan: Plan, grace: float = 10.0, *, poll: float = 0.05, kill_wait: float = 5.0,
         settle: float = 0.5) -> StopReport:
    """SIGTERM every target (children before parents), wait up to `grace` seconds, SIGKILL the rest
    (and any child they started meanwhile), then reap or report zombies."""
    began = time.monotonic()
    report = StopReport(grace=grace)
    pending: dict[int, Target] = {}
    for target in plan.targets:
        outcome = _send(plan, target, signal.SIGTERM)
        if outcome == "sent":
            pending[target.pid] = target
        else:
            (report.denied if outcome == "denied" else report.gone).append(target.pid)
    report.terminated = _wait(plan, pending, began + grace, poll)
    if pending:
        for late in _late_children(plan, pending):
            pending[late.pid] = late
        for target in list(pending.values()):
            if _send(plan, target, signal.SIGKILL) == "sent":
                report.killed.append(target.pid)
            else:
                report.terminated.append(pending.pop(target.pid).pid)
        _wait(plan, pending, time.monotonic() + kill_wait, poll)
        report.survivors = sorted(pending)
    stopped = [t for t in plan.targets if t.pid not in pending]
    report.zombies = _settle_zombies(plan, [*plan.zombies, *stopped], settle, poll)
    report.seconds = time.monotonic() - began
    return report


def _send(plan: Plan, target: Target, sig: int) -> str:
    """Signal `target` if it is still the process the plan saw: "sent", "gone" or "denied"."""
    if target.pid <= 1 or target.pid in plan.protected or target.pid == os.getpid():
        raise KillNpuError(f"refusing to signal PID {target.pid}: PID 1, kill-npu and its ancestors are "
                           "never stopped")
    stat = read_stat(target.pid, plan.proc)
    if stat is None or stat.starttime != target.starttime or stat.zombie:
        return "gone"
    try:
        os.kill(target.pid, sig)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "denied"
    return "sent"


def _state(plan: Plan, target: Target) -> Optional[Stat]:
    """The target's stat while it is still the same process, else None (exited and reaped, PID reused)."""
    stat = read_stat(target.pid, plan.proc)
    return stat if stat is not None and stat.starttime == target.starttime else None


def _wait(plan: Plan, pending: dict[int, Target], deadline: float, poll: float) -> list[int]:
    """Wait until every pending target has exited (a zombie counts) or the deadline; return the exited."""
    exited: list[int] = []
    while True:
        for pid, target in list(pending.items()):
            stat = _state(plan, target)
            if stat is None or stat.zombie:
                if stat is not None:
                    _reap_if_ours(stat)
                exited.append(pending.pop(pid).pid)
        if not pending or time.monotonic() >= deadline:
            return exited
        time.sleep(poll)


def _late_children(plan: Plan, pending: dict[int, Target]) -> list[Target]:
    """Children the survivors started during the grace period (a launcher restarting its workers)."""
    table = ProcessTable(plan.proc)
    known = {t.pid for t in plan.targets}
    late: list[Target] = []
    for target in list(pending.values()):
        stat = table.get(target.pid)
        if stat is None or stat.starttime != target.starttime:
            continue
        for pid in table.descendants(target.pid):
            child = table.get(pid)
            if pid in known or pid in plan.protected or child is None or child.zombie:
                continue
            late_target = _target(table, child, target.root, plan.protected)
            if plan.all_users or late_target.owner == target.owner:  # someone else's: never, even here
                known.add(pid)
                late.append(late_target)
    return late


def _reap_if_ours(stat: Stat) -> bool:
    if stat.ppid != os.getpid():
        return False
    try:
        os.waitpid(stat.pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True


def _settle_zombies(plan: Plan, candidates: list[Target], settle: float, poll: float) -> list[ZombieFate]:
    """Reap zombies whose parent is this process; give the others `settle` seconds to be reaped by their
    parent (or by init, when the parent was stopped too); report the rest with their parent."""
    fates: dict[int, ZombieFate] = {}
    deadline = time.monotonic() + settle
    watching = {t.pid: t for t in candidates}
    while watching:
        for pid, target in list(watching.items()):
            stat = _state(plan, target)
            if stat is None or not stat.zombie:
                watching.pop(pid)
                if target in plan.zombies:
                    fates[pid] = ZombieFate(pid, target.ppid, "", "reaped")
            elif _reap_if_ours(stat):
                watching.pop(pid)
                fates[pid] = ZombieFate(pid, stat.ppid, "kill-npu", "reaped by kill-npu (its parent)")
            elif time.monotonic() >= deadline:
                watching.pop(pid)
                parent = read_stat(stat.ppid, plan.proc)
                fates[pid] = ZombieFate(pid, stat.ppid, parent.comm if parent else "?",
                                        f"still a zombie: its parent {stat.ppid} has not reaped it (a zombie "
                                        "holds no device; stopping or fixing the parent clears it)")
        if watching:
            time.sleep(poll)
    return [fates[pid] for pid in sorted(fates)]


@dataclass(frozen=True)
class DeviceState:
    device: int
    holders: tuple[Row, ...]
    card: Optional[tuple[int, int]] = None  # npu-smi's (NPU ID, Chip ID), when npu-smi lists the device

    @property
    def free(self) -> bool:
        return not self.holders

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "card": list(self.card) if self.card is not None else None,
                "free": self.free, "holders": [r.to_json() for r in self.holders]}


def device_states(plan: Plan) -> list[DeviceState]:
    """Per device in the plan's scope: the rows holding it (none: free)."""
    return [DeviceState(d, tuple(r for r in plan.rows if r.device == d), plan.numbering.card(d))
            for d in plan.devices]


def recheck(config: Config, plan: Plan, stopped: Iterable[int] = (), settle: float = 3.0,
            poll: float = 0.25) -> list[DeviceState]:
    """Read npu-smi and /proc again and report each device free or held. npu-smi may list a process for a
    moment after it exits: while a device is still listed for a `stopped` PID, read again up to `settle` s."""
    stopped = set(stopped)
    deadline = time.monotonic() + settle
    while True:
        again = make_plan(discover(config), plan.user, plan.all_users, plan.scope, plan.caller)
        again.devices = sorted(set(plan.devices) | (set(again.devices) if plan.scope is None else set()))
        states = device_states(again)
        lagging = any(r.pid in stopped for s in states for r in s.holders)
        if not lagging or time.monotonic() >= deadline:
            return states
        time.sleep(poll)


# --- one run: survey, stop, read again -------------------------------------------------------------------


@dataclass
class KillResult:
    """What one kill-npu run did: `outcome` (NOTHING_TO_STOP, DRY_RUN, DECLINED or STOPPED), the plan, how the
    stop went (STOPPED only), and each device in scope afterwards (as the plan saw them unless STOPPED)."""

    outcome: str
    plan: Plan
    grace: float
    report: Optional[StopReport] = None
    states: list[DeviceState] = field(default_factory=list)

    @property
    def survivors(self) -> list[int]:
        return self.report.survivors if self.report is not None else []

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "grace": self.grace, "plan": self.plan.to_json(),
                "stop": self.report.to_json() if self.report is not None else None,
                "devices": [s.to_json() for s in self.states]}


def survey(env: Mapping[str, str], user: Optional[str] = None, all_users: bool = False,
           devices: Optional[Iterable[int]] = None) -> Plan:
    """Discover where `env` says to look (Config.from_env) and plan: `user`'s processes (default
    $NPUENV_USER), or everyone's with `all_users`, on `devices` (NPU numbers; default all)."""
    if all_users and user:
        raise UsageError(f"--all and --user {user} contradict each other: --all stops everyone's processes, "
                         f"--user only those tagged {user}",
                         hint=f"pass --user {user} for {user}'s processes, or --all (without --user) for everyone's")
    return make_plan(discover(Config.from_env(env)), user or env.get(TAG_VARIABLE) or None, all_users, devices)


def carry_out(plan: Plan, grace: float, *, dry_run: bool = False,
              confirm: Callable[[Plan], bool] = lambda plan: True) -> KillResult:
    """Stop the plan's targets (SIGTERM, `grace` seconds, SIGKILL) and read the devices again where make_plan's
    discovery looked, unless there is nothing to stop, it is a dry run, or `confirm(plan)` says no (asked only
    when there is something to stop)."""
    if not plan.targets:
        return KillResult(NOTHING_TO_STOP, plan, grace, states=device_states(plan))
    if dry_run or not confirm(plan):
        return KillResult(DRY_RUN if dry_run else DECLINED, plan, grace, states=device_states(plan))
    report = stop(plan, grace)
    states = recheck(plan.config, plan, stopped=[t.pid for t in plan.targets])
    return KillResult(STOPPED, plan, grace, report, states)


def failure(result: KillResult) -> Optional[KillNpuError]:
    """The error for processes that survived SIGKILL, if any did."""
    if not result.survivors:
        return None
    return KillNpuError(
        f"{len(result.survivors)} process(es) survived SIGKILL: {', '.join(map(str, result.survivors))}",
        hint="a process stuck inside the driver (state D) dies when the driver lets go; wait and run "
             "kill-npu again, or restart the container")
