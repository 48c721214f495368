"""Pure parsers for `npu-smi info`: the device table and the process table at its end.

The layout differs across driver versions and boards (column widths, one or two chips per NPU, a chip
column of its own, extra columns, blank process names), so rows are read through the header that
precedes them: each header cell gets a role (npu, chip, pid, host pid, name, memory, other) and each row's
cells are read by role. Text that is not a table row (warnings, banners) is ignored.

The device table is read by its structure, not by what the cells hold: each NPU is a row whose first cell
is its number and its name (the name may be digits only, "310"; the health may be anything, "NOT_EXIST",
"Alarm(1)"), followed by one row per chip whose first cell starts with the chip number and whose second is
a Bus-Id. Devices are separated by border lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

__all__ = ["NpuDevice", "NpuProcess", "NpuSmiInfo", "parse_npu_smi_devices", "parse_npu_smi_idle",
           "parse_npu_smi_info", "parse_npu_smi_processes"]


@dataclass(frozen=True)
class NpuProcess:
    """One row of the process table. `chip` is None when the layout has no chip number. `pid` is the PID in
    this PID namespace when the table tells it apart ("Process id" next to "Host PID"); `host_pid` is the
    host's PID when the table has a column of its own for it, else None."""

    npu: int
    chip: Optional[int]
    pid: int
    name: str
    memory_mb: Optional[int]
    host_pid: Optional[int] = None


@dataclass(frozen=True)
class NpuDevice:
    """One NPU of the device table; `chips` are the chip numbers listed under it."""

    npu: int
    name: str
    health: str
    chips: tuple[int, ...] = ()


@dataclass(frozen=True)
class NpuSmiInfo:
    devices: list[NpuDevice]
    processes: list[NpuProcess]
    idle: list[int]


_IDLE = re.compile(r"no\s+running\s+process(?:es)?\s+found\s+in\s+npu\s*(\d+)", re.IGNORECASE)
_PROCESS_HEADER = re.compile(r"process\s*id|\bpid\b", re.IGNORECASE)
_DEVICE_HEADER = re.compile(r"\bnpu\b.*\bname\b", re.IGNORECASE)
# a PCI address as npu-smi prints it in the chip rows' Bus-Id column: 0000:C1:00.0
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_INT = re.compile(r"\d+")

# The layout of the two process tables in the driver documentation, used when no header precedes the rows.
_DEFAULT_ROLES = ("npu+chip", "pid", "name", "memory")


def parse_npu_smi_info(text: str) -> NpuSmiInfo:
    return NpuSmiInfo(parse_npu_smi_devices(text), parse_npu_smi_processes(text), parse_npu_smi_idle(text))


def parse_npu_smi_idle(text: str) -> list[int]:
    """The NPUs reported as "No running processes found in NPU N"."""
    return sorted({int(m.group(1)) for m in _IDLE.finditer(text)})


def parse_npu_smi_processes(text: str) -> list[NpuProcess]:
    """Every process row of the process table(s) in `text`."""
    lines = text.splitlines()
    has_header = any(_is_process_header(line) for line in lines)
    layout: Optional[_Layout] = None if has_header else _Layout(_DEFAULT_ROLES, None)
    processes: list[NpuProcess] = []
    above: Optional[NpuProcess] = None
    for line in lines:
        if _is_process_header(line):
            layout, above = _Layout.from_header(_cells(line) or []), None
            continue
        cells = _cells(line)
        if layout is None or cells is None or _IDLE.search(line):
            continue
        row = layout.read(cells, above)
        if row is not None:
            processes.append(row)
            above = row
    return processes


def parse_npu_smi_devices(text: str) -> list[NpuDevice]:
    """The device table: per NPU an "N  Name | Health | ..." row, then one row per chip below it."""
    devices: list[NpuDevice] = []
    group: list[list[str]] = []  # the rows between two border lines: one NPU and its chips
    in_table = False
    for line in text.splitlines():
        cells = _cells(line)
        header = cells is not None and (_is_process_header(line) or
                                        (bool(_DEVICE_HEADER.search(cells[0])) and "health" in line.lower()))
        if cells is None or header:
            _read_device_group(group, devices)
            group = []
            if header:
                in_table = not _is_process_header(line)
        elif in_table and len(cells) >= 2:
            group.append([c.strip() for c in cells])
    _read_device_group(group, devices)
    return devices


def _read_device_group(rows: list[list[str]], devices: list[NpuDevice]) -> None:
    """One group of rows between borders. Its first numbered row is an NPU (unless its second cell is a
    Bus-Id: then it is one more chip of the NPU above); the rows after it are its chips. A later row is
    another NPU only when its first cell is a number and a name, its second is no Bus-Id, and a chip row
    follows it (a table printed without borders between NPUs). Health is whatever the cell says."""
    started = False
    for index, cells in enumerate(rows):
        first = cells[0].split()
        if not first or not first[0].isdigit():
            continue  # the header's second line ("Chip | Bus-Id"), or something unknown
        later = [r for r in rows[index + 1:] if r[0].split()]
        next_is_chip = bool(later) and later[0][0].split()[0].isdigit()
        bus_id = bool(_BUS_ID.match(cells[1]))
        if not started and not bus_id:
            is_device = True
        else:
            is_device = started and len(first) >= 2 and not bus_id and next_is_chip
        if is_device:
            devices.append(NpuDevice(int(first[0]), " ".join(first[1:]), cells[1]))
            started = True
        elif devices:
            last = devices[-1]
            devices[-1] = NpuDevice(last.npu, last.name, last.health, last.chips + (int(first[0]),))


def _is_process_header(line: str) -> bool:
    return line.lstrip().startswith("|") and bool(_PROCESS_HEADER.search(line)) and "npu" in line.lower()


def _cells(line: str) -> Optional[list[str]]:
    """The raw (unstripped) cells of a `| a | b |` row, or None for borders and other text."""
    line = line.strip()
    if not line.startswith("|"):
        return None
    body = line[1:-1] if line.endswith("|") and len(line) > 1 else line[1:]
    return body.split("|")


def _role(cell: str) -> str:
    text = cell.lower()
    if _PROCESS_HEADER.search(text):
        return "host_pid" if "host" in text else "pid"
    if "mem" in text:
        return "memory"
    if "name" in text:
        return "name"
    if "npu" in text and "chip" in text:
        return "npu+chip"
    if "npu" in text or "device" in text:
        return "npu"
    if "chip" in text:
        return "chip"
    return "other"


def _ints(cell: str) -> list[tuple[int, int]]:
    """(value, offset in the cell) for every integer in a cell."""
    return [(int(m.group()), m.start()) for m in _INT.finditer(cell)]


class _Layout:
    """Where each field sits in a row, learned from the table's header line."""

    def __init__(self, roles: tuple[str, ...], chip_offset: Optional[int]) -> None:
        self.roles = roles
        self.chip_offset = chip_offset  # where "Chip" starts inside a combined "NPU  Chip" header cell

    @classmethod
    def from_header(cls, cells: list[str]) -> _Layout:
        roles = tuple(_role(c) for c in cells)
        if "pid" not in roles:  # the host's PID is the only one shown: it is the PID
            roles = tuple("pid" if r == "host_pid" else r for r in roles)
        chip_offset = None
        for cell, role in zip(cells, roles):
            if role == "npu+chip":
                chip_offset = cell.lower().index("chip")
        return cls(roles, chip_offset)

    def read(self, cells: list[str], above: Optional[NpuProcess]) -> Optional[NpuProcess]:
        """The process in `cells`; `above` is the row before it in the same table (blank NPU cells repeat it)."""
        if len(cells) != len(self.roles) or "pid" not in self.roles:
            return _guess(cells)
        fields = dict(zip(self.roles, cells))
        pid = fields["pid"].strip()
        if not pid.isdigit():
            return None
        npu, chip = self._npu_chip(fields, above)
        if npu is None:
            return None
        host = fields.get("host_pid", "").strip()
        return NpuProcess(npu, chip, int(pid), fields.get("name", "").strip(), _memory(fields.get("memory", "")),
                          int(host) if host.isdigit() else None)

    def _npu_chip(self, fields: dict[str, str], above: Optional[NpuProcess]) -> tuple[Optional[int], Optional[int]]:
        last_npu = above.npu if above is not None else None
        if "npu+chip" in fields:
            numbers = _ints(fields["npu+chip"])
            if len(numbers) >= 2:
                return numbers[0][0], numbers[1][0]
            if len(numbers) == 1:
                value, offset = numbers[0]
                # A lone number under "Chip" continues the NPU of the row above (second chip of a board).
                if last_npu is not None and self.chip_offset and offset >= self.chip_offset - 1:
                    return last_npu, value
                return value, None
            # A blank NPU/Chip cell: one more process on the NPU and chip of the row above.
            return (last_npu, above.chip) if above is not None else (None, None)
        npu_cell = _ints(fields.get("npu", ""))
        chip_cell = _ints(fields.get("chip", ""))
        npu = npu_cell[0][0] if npu_cell else last_npu
        return npu, (chip_cell[0][0] if chip_cell else None)


def _memory(cell: str) -> Optional[int]:
    match = _INT.search(cell)
    return int(match.group()) if match else None


def _guess(cells: list[str]) -> Optional[NpuProcess]:
    """A row that does not match its header: leading all-number cells are NPU [chip] PID; then name, memory."""
    numbers: list[int] = []
    used = 0
    for cell in cells:
        tokens = cell.split()
        if not tokens or not all(t.isdigit() for t in tokens):
            break
        numbers.extend(int(t) for t in tokens)
        used += 1
    if len(numbers) < 2 or len(numbers) > 3 or used >= len(cells):
        return None
    chip = numbers[1] if len(numbers) == 3 else None
    rest = [c.strip() for c in cells[used:]]
    memory = _memory(rest[1]) if len(rest) > 1 else None
    return NpuProcess(numbers[0], chip, numbers[-1], rest[0], memory)
