"""Pure parsers for `npu-smi info`: the device table and the process table at its end.

The layout differs across driver versions and boards (column widths, one or two chips per NPU, a chip
column of its own, extra columns, blank process names), so rows are read through the header that
precedes them: each header cell gets a role (npu, chip, pid, name, memory, other) and each row's cells
are read by role. Text that is not a table row (warnings, banners) is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

__all__ = ["NpuDevice", "NpuProcess", "NpuSmiInfo", "parse_npu_smi_devices", "parse_npu_smi_idle",
           "parse_npu_smi_info", "parse_npu_smi_processes"]


@dataclass(frozen=True)
class NpuProcess:
    """One row of the process table. `chip` is None when the layout has no chip number."""

    npu: int
    chip: Optional[int]
    pid: int
    name: str
    memory_mb: Optional[int]


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
_HEALTH = re.compile(r"^[A-Za-z][A-Za-z ]*$")
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
    last_npu: Optional[int] = None
    for line in lines:
        if _is_process_header(line):
            layout, last_npu = _Layout.from_header(_cells(line) or []), None
            continue
        cells = _cells(line)
        if layout is None or cells is None or _IDLE.search(line):
            continue
        row = layout.read(cells, last_npu)
        if row is not None:
            processes.append(row)
            last_npu = row.npu
    return processes


def parse_npu_smi_devices(text: str) -> list[NpuDevice]:
    """The device table: an "NPU  Name | Health | ..." line per NPU, then one line per chip below it."""
    devices: list[NpuDevice] = []
    in_table = False
    for line in text.splitlines():
        cells = _cells(line)
        if cells is None:
            continue
        if _is_process_header(line):
            in_table = False
        elif _DEVICE_HEADER.search(cells[0]) and "health" in line.lower():
            in_table = True
        elif in_table and len(cells) >= 2:
            _read_device_line([c.strip() for c in cells], devices)
    return devices


def _read_device_line(cells: list[str], devices: list[NpuDevice]) -> None:
    first = cells[0].split()
    if len(first) >= 2 and first[0].isdigit() and not first[1].isdigit() and _HEALTH.match(cells[1]):
        devices.append(NpuDevice(int(first[0]), " ".join(first[1:]), cells[1]))
    elif first and first[0].isdigit() and devices:
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
        return "pid"
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
        chip_offset = None
        for cell, role in zip(cells, roles):
            if role == "npu+chip":
                chip_offset = cell.lower().index("chip")
        return cls(roles, chip_offset)

    def read(self, cells: list[str], last_npu: Optional[int]) -> Optional[NpuProcess]:
        if len(cells) != len(self.roles) or "pid" not in self.roles:
            return _guess(cells)
        fields = dict(zip(self.roles, cells))
        pid = fields["pid"].strip()
        if not pid.isdigit():
            return None
        npu, chip = self._npu_chip(fields, last_npu)
        if npu is None:
            return None
        return NpuProcess(npu, chip, int(pid), fields.get("name", "").strip(), _memory(fields.get("memory", "")))

    def _npu_chip(self, fields: dict[str, str], last_npu: Optional[int]) -> tuple[Optional[int], Optional[int]]:
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
            return None, None
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
