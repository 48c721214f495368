"""Pure parsers for `npu-smi info` (the device table and the process table at its end) and `npu-smi info -m`
(the chip map), and the one numbering kill-npu and doctor show: the NPU number.

The NPU number is the device index: the N of /dev/davinciN and what ASCEND_RT_VISIBLE_DEVICES and torch
use (the chip's logic ID; on a bare host logic = physical). npu-smi keys its rows by NPU ID and Chip ID
instead, its "NPU" being a card that may hold two chips (Atlas 300I Duo, A3). `number_devices` maps
(NPU ID, Chip ID) to the NPU number: by `npu-smi info -m` where it answers, else by the device table's
Device or Phy-ID column, else by the NPU ID when every card has one chip, else by the chips' order in the
table (the order the driver counts them in; flagged as a guess).

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
from dataclasses import dataclass, field, replace
from typing import Optional

__all__ = ["NpuChip", "NpuDevice", "NpuProcess", "NpuSmiInfo", "Numbering", "number_devices", "parse_npu_smi_devices",
           "parse_npu_smi_idle", "parse_npu_smi_info", "parse_npu_smi_map", "parse_npu_smi_processes"]


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
    """One NPU (card) of the device table; `chips` are the chip numbers listed under it. When the chip rows
    carry a second number the header names, it is kept beside each chip: `logic_ids` for "Chip  Device"
    (Atlas 300I Duo), `phy_ids` for "Chip  Phy-ID" (A3); otherwise they are empty."""

    npu: int
    name: str
    health: str
    chips: tuple[int, ...] = ()
    logic_ids: tuple[Optional[int], ...] = ()
    phy_ids: tuple[Optional[int], ...] = ()


@dataclass(frozen=True)
class NpuChip:
    """One row of `npu-smi info -m`. `logic` is the Chip Logic ID (None for "-": an Mcu, not a device);
    `phy` the Chip Phy-ID where the table has that column (A3), else None."""

    npu: int
    chip: int
    logic: Optional[int]
    name: str
    phy: Optional[int] = None


@dataclass(frozen=True)
class NpuSmiInfo:
    devices: list[NpuDevice]
    processes: list[NpuProcess]
    idle: list[int]
    chips: list[NpuChip] = field(default_factory=list)  # `npu-smi info -m`, when it answered

    @property
    def numbering(self) -> Numbering:
        return number_devices(self.devices, self.chips)


@dataclass(frozen=True)
class Numbering:
    """npu-smi's (NPU ID, Chip ID) <-> the NPU number (the device index), and the device files' numbers.

    `by_chip` maps (NPU ID, Chip ID) to the NPU number; `physical` maps a /dev/davinciN's N to the NPU number
    where npu-smi says a chip's physical ID differs from its logic ID (elsewhere N is the NPU number);
    `several_chips` says a card has more than one chip (then an NPU ID alone names no device); `guessed`
    that some chips were numbered by their order in the table, nothing saying their number."""

    by_chip: dict[tuple[int, int], int] = field(default_factory=dict)
    physical: dict[int, int] = field(default_factory=dict)
    several_chips: bool = False
    guessed: bool = False

    def device(self, npu: int, chip: Optional[int] = None) -> Optional[int]:
        """The NPU number of npu-smi's (NPU ID, Chip ID); None when nothing tells it (a second chip of a card
        the device table does not list). A row without a chip number is chip 0."""
        chip = 0 if chip is None else chip
        number = self.by_chip.get((npu, chip))
        if number is None and chip == 0 and not self.several_chips:
            return npu  # one chip per card (910B, 910A, 310): the NPU ID is the logic ID
        return number

    def card(self, device: int) -> Optional[tuple[int, int]]:
        """npu-smi's (NPU ID, Chip ID) for an NPU number, when npu-smi listed it."""
        for key, number in self.by_chip.items():
            if number == device:
                return key
        return None

    def of_file(self, number: int) -> int:
        """The NPU number of /dev/davinci<number> (the chip's physical ID)."""
        return self.physical.get(number, number)

    def of_card(self, npu: int) -> list[int]:
        """The NPU numbers of a card's chips ("No running processes found in NPU N" names a card)."""
        numbers = sorted(n for (card, _), n in self.by_chip.items() if card == npu)
        if not numbers and not self.several_chips:
            return [npu]
        return numbers

    @property
    def devices(self) -> list[int]:
        return sorted(set(self.by_chip.values()))

    @property
    def identity(self) -> bool:
        """Every NPU number is its card's NPU ID, chip 0, and its device file's number: nothing to tell apart."""
        return (all(chip == 0 and npu == number for (npu, chip), number in self.by_chip.items())
                and all(n == number for n, number in self.physical.items()))


def number_devices(devices: list[NpuDevice], chips: list[NpuChip] = ()) -> Numbering:
    """The numbering of `npu-smi info`'s device table (`devices`) and `npu-smi info -m` (`chips`, may be empty).

    Per chip, what says its number: `info -m`'s Chip Logic ID, else the table's Device column (a logic ID),
    else its Phy-ID column (on a bare host logic = physical). Only then, for chips nothing numbered: the NPU
    ID when every card has one chip, else the chip's position among all chips of the table (0, 1, ... in
    table order, the order the driver counts them in; `guessed`). A number already given is not given again."""
    by_chip: dict[tuple[int, int], int] = {}
    physical: dict[int, int] = {}
    for chip in chips:
        if chip.logic is not None and (chip.npu, chip.chip) not in by_chip:
            by_chip[(chip.npu, chip.chip)] = chip.logic
            if chip.phy is not None:
                physical[chip.phy] = chip.logic
    rows = [(d.npu, chip, _at(d.logic_ids, i), _at(d.phy_ids, i))
            for d in devices for i, chip in enumerate(d.chips or (0,))]
    several = (any(len(d.chips) > 1 for d in devices)
               or len({card for card, _ in by_chip}) < len(by_chip))
    taken = set(by_chip.values())
    for npu, chip, logic, phy in rows:  # what the table says
        number = logic if logic is not None else phy
        if (npu, chip) in by_chip:
            if phy is not None:
                physical.setdefault(phy, by_chip[(npu, chip)])
        elif number is not None and number not in taken:
            by_chip[(npu, chip)] = number
            taken.add(number)
    guessed = False
    for position, (npu, chip, _, _) in enumerate(rows):  # what nothing said
        if (npu, chip) in by_chip:
            continue
        number = position if several else npu
        if number not in taken:
            by_chip[(npu, chip)] = number
            taken.add(number)
            guessed = guessed or several
    physical = {n: number for n, number in physical.items() if n != number}
    return Numbering(by_chip, physical, several, guessed)


def _at(values: tuple[Optional[int], ...], index: int) -> Optional[int]:
    return values[index] if index < len(values) else None


_IDLE = re.compile(r"no\s+running\s+process(?:es)?\s+found\s+in\s+npu\s*(\d+)", re.IGNORECASE)
_PROCESS_HEADER = re.compile(r"process\s*id|\bpid\b", re.IGNORECASE)
_DEVICE_HEADER = re.compile(r"\bnpu\b.*\bname\b", re.IGNORECASE)
# a PCI address as npu-smi prints it in the chip rows' Bus-Id column: 0000:C1:00.0
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_INT = re.compile(r"\d+")

# The layout of the two process tables in the driver documentation, used when no header precedes the rows.
_DEFAULT_ROLES = ("npu+chip", "pid", "name", "memory")


def parse_npu_smi_info(text: str, map_text: str = "") -> NpuSmiInfo:
    """`npu-smi info`'s tables, and the chip map from `npu-smi info -m`'s output when given."""
    return NpuSmiInfo(parse_npu_smi_devices(text), parse_npu_smi_processes(text), parse_npu_smi_idle(text),
                      parse_npu_smi_map(map_text))


# `npu-smi info -m` columns, found in its header line by these patterns; the name is the rest of a row
_MAP_COLUMNS = (("npu", re.compile(r"npu\s*id", re.IGNORECASE)),
                ("chip", re.compile(r"chip\s*id", re.IGNORECASE)),
                ("logic", re.compile(r"logic", re.IGNORECASE)),
                ("phy", re.compile(r"phy", re.IGNORECASE)),
                ("name", re.compile(r"chip\s*name", re.IGNORECASE)))


def parse_npu_smi_map(text: str) -> list[NpuChip]:
    """The rows of `npu-smi info -m`: "NPU ID  Chip ID  Chip Logic ID  [Chip Phy-ID]  Chip Name", read by the
    header's column order. A row is its numbers ("-" for none) followed by the chip name (which may have
    spaces: "Ascend 910B3"). Rows count only below such a header (a wrong map is worse than none); anything
    else (banners, warnings, borders) is ignored."""
    roles: Optional[tuple[str, ...]] = None
    chips: list[NpuChip] = []
    for line in text.splitlines():
        header = _map_header(line)
        if header:
            roles = header
            continue
        chip = _map_row(line.replace("|", " ").split(), roles) if roles else None
        if chip is not None:
            chips.append(chip)
    return chips


def _map_header(line: str) -> Optional[tuple[str, ...]]:
    found = [(m.start(), role) for role, pattern in _MAP_COLUMNS for m in [pattern.search(line)] if m]
    roles = tuple(role for _, role in sorted(found))
    return roles if {"npu", "chip", "logic"} <= set(roles) else None


def _map_row(tokens: list[str], roles: tuple[str, ...]) -> Optional[NpuChip]:
    numbered = [r for r in roles if r != "name"]
    if len(tokens) < len(numbered):
        return None
    values = dict(zip(numbered, tokens))
    if not all(v.isdigit() or v == "-" for v in values.values()):
        return None
    if not (values["npu"].isdigit() and values["chip"].isdigit()):
        return None

    def number(role: str) -> Optional[int]:
        value = values.get(role, "-")
        return int(value) if value.isdigit() else None

    return NpuChip(int(values["npu"]), int(values["chip"]), number("logic"), " ".join(tokens[len(numbered):]),
                   number("phy"))


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
    """The device table: per NPU an "N  Name | Health | ..." row, then one row per chip below it. The header's
    second line says what a chip row's second number is: "Chip  Device" a logic ID, "Chip  Phy-ID" a
    physical ID, plain "Chip" nothing (a second number there is ignored)."""
    devices: list[NpuDevice] = []
    group: list[list[str]] = []  # the rows between two border lines: one NPU and its chips
    in_table = False
    second: Optional[str] = None  # "logic" or "phy": what the second number of a chip row is
    for line in text.splitlines():
        cells = _cells(line)
        header = cells is not None and (_is_process_header(line) or
                                        (bool(_DEVICE_HEADER.search(cells[0])) and "health" in line.lower()))
        if cells is None or header:
            _read_device_group(group, devices, second)
            group = []
            if header:
                in_table = not _is_process_header(line)
        elif in_table and len(cells) >= 2:
            first = cells[0].strip().lower()
            if first.startswith("chip"):
                second = "phy" if "phy" in first else ("logic" if "device" in first else None)
            group.append([c.strip() for c in cells])
    _read_device_group(group, devices, second)
    return devices


def _read_device_group(rows: list[list[str]], devices: list[NpuDevice], second: Optional[str] = None) -> None:
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
            devices[-1] = _add_chip(devices[-1], first, second)


def _add_chip(device: NpuDevice, first: list[str], second: Optional[str]) -> NpuDevice:
    """`device` with one more chip: the row's first number, and its second where the header names it."""
    number = int(first[1]) if len(first) >= 2 and first[1].isdigit() else None
    logic = device.logic_ids + (number,) if second == "logic" else device.logic_ids
    phy = device.phy_ids + (number,) if second == "phy" else device.phy_ids
    return replace(device, chips=device.chips + (int(first[0]),), logic_ids=logic, phy_ids=phy)


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
