"""The /proc side of kill-npu: which processes hold device files, whose they are, and their trees.

Reads only what is needed: one scandir of /proc, the fd links of each process, one `stat` line per
process (for parents and trees), and the environment and command line only of processes that matter.
Entries that vanish or cannot be read (EACCES: another UNIX user, ESRCH/ENOENT: the process exited) are
skipped, never fatal.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Optional

PROC = "/proc"
DEFAULT_DEVICE_GLOB = "/dev/davinci[0-9]*"
DEVICE_GLOB_VARIABLE = "NPUENV_DEVICE_GLOB"  # where the device files are (tests point it elsewhere)
TAG_VARIABLE = "NPUENV_USER"
# A tag no environment can carry (values never contain NUL): the process's environment could not be read.
UNREADABLE = "\0unreadable"

_TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat that kill-npu uses. `starttime` tells a reused PID from the original."""

    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    session: int
    starttime: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def device_files(pattern: str = DEFAULT_DEVICE_GLOB) -> dict[str, int]:
    """{real path: device number} for the files the glob matches; the number is the name's trailing digits."""
    found: dict[str, int] = {}
    for path in glob.glob(pattern):
        match = _TRAILING_NUMBER.search(os.path.basename(path))
        if match:
            found[os.path.realpath(path)] = int(match.group(1))
    return found


def pids(proc: str = PROC) -> list[int]:
    try:
        with os.scandir(proc) as entries:
            return [int(e.name) for e in entries if e.name.isdigit()]
    except FileNotFoundError:
        return []


def scan_holders(devices: Mapping[str, int], proc: str = PROC) -> dict[int, frozenset[int]]:
    """{pid: device numbers} for every process with an open fd on one of `devices` (real path -> number)."""
    holders: dict[int, frozenset[int]] = {}
    if not devices:
        return holders
    readlink = os.readlink
    for pid in pids(proc):
        held = set()
        try:
            with os.scandir(f"{proc}/{pid}/fd") as fds:
                for fd in fds:
                    try:
                        number = devices.get(readlink(fd.path))
                    except OSError:
                        continue
                    if number is not None:
                        held.add(number)
        except (OSError, ValueError):
            continue
        if held:
            holders[pid] = frozenset(held)
    return holders


def read_stat(pid: int, proc: str = PROC) -> Optional[Stat]:
    try:
        with open(f"{proc}/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    # comm is in parentheses and may itself contain spaces and parentheses: split after the last ')'.
    close = raw.rfind(")")
    fields = raw[close + 2:].split()
    if close < 0 or len(fields) < 20:
        return None
    return Stat(pid=pid, comm=raw[raw.find("(") + 1:close], state=fields[0], ppid=int(fields[1]),
                pgrp=int(fields[2]), session=int(fields[3]), starttime=int(fields[19]))


def read_tag(pid: int, proc: str = PROC, variable: str = TAG_VARIABLE) -> Optional[str]:
    """The process's NPUENV_USER: its value, None when it has none, UNREADABLE when we may not look."""
    try:
        with open(f"{proc}/{pid}/environ", "rb") as handle:
            data = handle.read()
    except (OSError, ValueError):
        return UNREADABLE
    prefix = variable.encode() + b"="
    for entry in data.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix):].decode("utf-8", "replace")
    return None


def read_cmdline(pid: int, proc: str = PROC) -> str:
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as handle:
            data = handle.read()
    except (OSError, ValueError):
        return ""
    return " ".join(part.decode("utf-8", "replace") for part in data.rstrip(b"\0").split(b"\0") if part)


def short_command(text: str, width: int = 60) -> str:
    """A command line as a table shows it: its program's folder dropped (`/x/.venv/bin/python train.py` ->
    `python train.py`), cut to `width` characters."""
    head, _, rest = (text or "?").partition(" ")
    shown = f"{os.path.basename(head) if head.startswith('/') else head} {rest}".strip()
    return shown if len(shown) <= width else shown[: width - 1] + "…"


class ProcessTable:
    """A snapshot of every process's stat line, with environment tags and command lines read on demand."""

    def __init__(self, proc: str = PROC, pid_list: Optional[Iterable[int]] = None) -> None:
        self.proc = proc
        self.stats: dict[int, Stat] = {}
        for pid in (pids(proc) if pid_list is None else pid_list):
            stat = read_stat(pid, proc)
            if stat is not None:
                self.stats[pid] = stat
        self._children: Optional[dict[int, list[int]]] = None
        self._tags: dict[int, Optional[str]] = {}
        self._cmdlines: dict[int, str] = {}
        self._owners: dict[frozenset[int], dict[int, tuple[Optional[str], Optional[int]]]] = {}

    def get(self, pid: int) -> Optional[Stat]:
        return self.stats.get(pid)

    def tag(self, pid: int) -> Optional[str]:
        if pid not in self._tags:
            self._tags[pid] = read_tag(pid, self.proc)
        return self._tags[pid]

    def command(self, pid: int) -> str:
        """The command line, or [comm] when it has none (zombies, kernel threads)."""
        if pid not in self._cmdlines:
            stat = self.stats.get(pid)
            self._cmdlines[pid] = read_cmdline(pid, self.proc) or (f"[{stat.comm}]" if stat else "")
        return self._cmdlines[pid]

    def children(self, pid: int) -> list[int]:
        if self._children is None:
            self._children = {}
            for stat in self.stats.values():
                self._children.setdefault(stat.ppid, []).append(stat.pid)
        return self._children.get(pid, [])

    def descendants(self, pid: int) -> list[int]:
        """Every process below `pid`, deepest first (children before their parents)."""
        order: list[int] = []
        seen = {pid}
        stack = [(pid, iter(sorted(self.children(pid))))]
        while stack:
            node, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                if node != pid:
                    order.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(sorted(self.children(child)))))
        return order

    def ancestors(self, pid: int) -> list[int]:
        """Parent, grandparent, ... up to PID 1 (or the first one not visible)."""
        chain: list[int] = []
        stat = self.stats.get(pid)
        while stat is not None and stat.ppid > 0 and stat.ppid not in chain and stat.ppid != pid:
            chain.append(stat.ppid)
            stat = self.stats.get(stat.ppid)
        return chain

    def owner(self, pid: int, protected: Iterable[int] = ()) -> tuple[Optional[str], Optional[int]]:
        """Whose job `pid` is part of, and the PID that says so: its own NPUENV_USER tag, else the tag of its
        nearest tagged ancestor (`env -u NPUENV_USER` or a launcher that scrubs the environment does not make a
        process someone else's). The climb never looks at or past PID 1, a `protected` process (kill-npu and
        its ancestors) or an ancestor whose environment is unreadable (another UNIX user's): they pass nothing
        on. (None, None): untagged up to there, nobody's. The process's own tag may be UNREADABLE."""
        protected = frozenset(protected)
        known = self._owners.setdefault(protected, {})
        chain: list[int] = []  # the untagged processes climbed through: they share the answer
        node = pid
        while True:
            if node != pid and (node <= 1 or node in protected):
                found: tuple[Optional[str], Optional[int]] = (None, None)
                break
            if node in known:
                found = known[node]
                break
            stat = self.stats.get(node)
            tag = self.tag(node) if stat is not None else None
            if tag is not None:  # an ancestor we may not read (another UNIX user's: sshd, a root init) is no owner
                found = (tag, node) if tag != UNREADABLE or node == pid else (None, None)
                break
            chain.append(node)
            if stat is None or stat.ppid in chain:
                found = (None, None)
                break
            node = stat.ppid
        for member in chain:
            if member not in protected and member > 1:
                known[member] = found
        return found

    def tree_root(self, pid: int, protected: Iterable[int] = ()) -> int:
        """The top of the job `pid` belongs to: climb through parents while the parent is not PID 1, not
        protected (kill-npu and its ancestors), not a session leader (a login or terminal shell, a tmux
        pane, a setsid'd launcher), and is part of the same owner's job (`owner`: its tag, or its nearest
        tagged ancestor's). A process that is nobody's (untagged, no tagged ancestor) climbs only within its
        process group, so such a job never reaches a server such as Jupyter; an unreadable one never climbs."""
        protected = frozenset(protected)
        owner = self.owner(pid, protected)[0]
        node = pid
        while True:
            stat = self.stats.get(node)
            parent = self.stats.get(stat.ppid) if stat else None
            if stat is None or parent is None or parent.pid <= 1 or parent.pid in protected:
                return node
            if parent.session == parent.pid or owner == UNREADABLE:
                return node
            if self.owner(parent.pid, protected)[0] != owner:
                return node
            if owner is None and parent.pgrp != stat.pgrp:
                return node
            node = parent.pid
