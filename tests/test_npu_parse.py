"""The npu-smi parsers on captured and constructed text: one table of layouts, one expected result each; and
the numbering they give (npu-smi's NPU ID and Chip ID -> the NPU number, /dev/davinciN) on each board of
UPSTREAM.md "NPU numbering": 910B (one chip per NPU ID), Atlas 300I Duo, A3, and two chips per NPU ID."""

from __future__ import annotations

import pytest

from npuenv.npu.smi import (NpuChip, NpuDevice, NpuProcess, Numbering, number_devices, parse_npu_smi_devices,
                        parse_npu_smi_idle, parse_npu_smi_info, parse_npu_smi_map, parse_npu_smi_processes)

# The two layouts quoted in UPSTREAM.md, verbatim.
NONE_RUNNING = """\
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
"""

ONE_RUNNING = """\
| NPU     Chip         | Process id    | Process name             | Process memory(MB)      |
+======================+===============+====================================================+
| 0       0            | 55115         | python                   | 30784                   |
"""

# A whole `npu-smi info` of an 8 x 910B box (driver 23.0), two NPUs busy, one with two processes.
FULL_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.rc3                 Version: 23.0.rc3                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B1               | OK            | 97.2        37                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          33778/ 65536         |
+===========================+===============+====================================================+
| 1     910B1               | OK            | 93.4        36                0    / 0             |
| 0                         | 0000:01:00.0  | 0           0    / 0          3377 / 65536         |
+===========================+===============+====================================================+
| 2     910B1               | Warning       | 95.0        35                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          61234/ 65536         |
+===========================+===============+====================================================+
| 3     910B1               | OK            | 92.8        36                0    / 0             |
| 0                         | 0000:02:00.0  | 0           0    / 0          3377 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       0                 | 55115         | python                   | 30784                   |
+===========================+===============+====================================================+
| No running processes found in NPU 1                                                            |
+===========================+===============+====================================================+
| 2       0                 | 60001         | python3.10               | 28672                   |
| 2       0                 | 60002         | python3.10               | 28672                   |
+===========================+===============+====================================================+
| No running processes found in NPU 3                                                            |
+===========================+===============+====================================================+
"""

# Atlas 300I Duo (310P): two chips per NPU, "Chip Device" under the name line.
DUO_310P = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.0                                   Version: 23.0.0                                       |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 8       310P3                 | OK              | NA           51                0     / 0             |
| 0       0                     | 0000:01:00.0    | 0            1685 / 44280                            |
| 1       1                     | 0000:01:00.0    | 0            1455 / 43693                            |
+===============================+=================+======================================================+
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Chip                  | Process id      | Process name             | Process memory(MB)        |
+===============================+=================+======================================================+
| 8       0                     | 40100           | python                   | 120                       |
| 8       1                     | 40101           | python                   | 98                        |
+===============================+=================+======================================================+
"""

PROCESS_CASES = [
    ("upstream-none", NONE_RUNNING, []),
    ("upstream-one", ONE_RUNNING, [(0, 0, 55115, "python", 30784)]),
    ("full-910b", FULL_910B, [(0, 0, 55115, "python", 30784), (2, 0, 60001, "python3.10", 28672),
                              (2, 0, 60002, "python3.10", 28672)]),
    ("duo-310p", DUO_310P, [(8, 0, 40100, "python", 120), (8, 1, 40101, "python", 98)]),
    ("wider-columns", """\
| NPU          Chip                  | Process id          | Process name                       | Process memory(MB)           |
+====================================+=====================+==============================================================+
| 5            0                     | 1234567             | torchrun                           | 65000                        |
""", [(5, 0, 1234567, "torchrun", 65000)]),
    ("narrow-no-padding", """\
|NPU Chip|Process id|Process name|Process memory(MB)|
+========+==========+=============================+
|1 0|77|python|12|
|3 0|78||0|
""", [(1, 0, 77, "python", 12), (3, 0, 78, "", 0)]),
    ("second-chip-continues-the-npu", """\
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 4       0                 | 1001          | python                   | 500                     |
|         1                 | 1002          | python                   | 600                     |
| 6                         | 1003          | infer                    | 700                     |
""", [(4, 0, 1001, "python", 500), (4, 1, 1002, "python", 600), (6, None, 1003, "infer", 700)]),
    ("chip-column-of-its-own", """\
| NPU   | Chip  | Process id    | Process name             | Process memory(MB)      |
+=======+=======+===============+==========================+=========================+
| 0     | 0     | 2001          | python                   | 1024                    |
|       | 1     | 2002          | python                   | 2048                    |
| 1     | 0     | 2003          | python                   | 4096                    |
""", [(0, 0, 2001, "python", 1024), (0, 1, 2002, "python", 2048), (1, 0, 2003, "python", 4096)]),
    ("extra-columns", """\
| NPU     Chip      | Process id    | Process type | Process name        | Process memory(MB) | Container ID |
+===================+===============+==============+=====================+====================+==============+
| 0       0         | 3001          | Train        | python              | 30000              | 9f0e1d2c3b4a |
| 1       0         | 3002          | Infer        |                     | 1200               |              |
""", [(0, 0, 3001, "python", 30000), (1, 0, 3002, "", 1200)]),
    ("blank-names-and-unknown-memory", """\
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       0                 | 4001          |                          | 30784                   |
| 0       0                 | 4002          |                          | -                       |
| 1       0                 | 4003          | python                   | NA                      |
""", [(0, 0, 4001, "", 30784), (0, 0, 4002, "", None), (1, 0, 4003, "python", None)]),
    ("names-with-spaces", """\
| NPU     Chip         | Process id    | Process name             | Process memory(MB)      |
+======================+===============+====================================================+
| 0       0            | 5001          | python train.py          | 100                     |
""", [(0, 0, 5001, "python train.py", 100)]),
    ("idle-and-busy-mixed", """\
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
+===========================+===============+====================================================+
| 1       0                 | 6001          | python                   | 10                      |
+===========================+===============+====================================================+
| No running processes found in NPU 2                                                            |
""", [(1, 0, 6001, "python", 10)]),
    ("rows-without-a-header", """\
| 0       0            | 7001          | python                   | 30784                   |
| 1       0            | 7002          | python                   | 1                       |
""", [(0, 0, 7001, "python", 30784), (1, 0, 7002, "python", 1)]),
    ("row-that-does-not-fit-its-header", """\
| NPU     Chip         | Process id    | Process name             | Process memory(MB)      |
+======================+===============+====================================================+
| 2 | 1 | 8001 | python | 512 |
""", [(2, 1, 8001, "python", 512)]),
    ("pid-header-and-uppercase", """\
| NPU ID  CHIP ID  | PID     | NAME        | MEMORY USAGE(MB) |
+==================+=========+=============+==================+
| 7       0        | 9001    | mindie      | 2048             |
""", [(7, 0, 9001, "mindie", 2048)]),
    ("crlf-line-ends", ONE_RUNNING.replace("\n", "\r\n"), [(0, 0, 55115, "python", 30784)]),
    ("driver-warnings-and-junk", """\
dcmi module initialize failed. ret is -8005
npu-smi: warning: something odd
| NPU     Chip         | Process id    | Process name             | Process memory(MB)      |
+======================+===============+====================================================+
| 0       0            | not-a-pid     | python                   | 1                       |
| 0       0            | 11            | python                   | 1                       |
""", [(0, 0, 11, "python", 1)]),
    ("empty-output", "", []),
    ("device-table-only", FULL_910B.split("+---------------------------+---------------+-----------------"
                                          "-----------------------------------+\n| NPU     Chip")[0], []),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in PROCESS_CASES], ids=[c[0] for c in PROCESS_CASES])
def test_process_table(text, expected):
    assert parse_npu_smi_processes(text) == [NpuProcess(*row) for row in expected]


IDLE_CASES = [
    ("upstream-none", NONE_RUNNING, [0]),
    ("upstream-one", ONE_RUNNING, []),
    ("full-910b", FULL_910B, [1, 3]),
    ("singular-and-spacing", "| No running process found in NPU12 |\n|no running processes found in npu 3|", [3, 12]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in IDLE_CASES], ids=[c[0] for c in IDLE_CASES])
def test_idle_npus(text, expected):
    assert parse_npu_smi_idle(text) == expected


OLD_910A = """\
+------------------------------------------------------------------------------------+
| npu-smi 1.8.21                    Version: 20.2.2.spc001                           |
+----------------------+---------------+---------------------------------------------+
| NPU   Name           | Health        | Power(W)   Temp(C)                          |
| Chip                 | Bus-Id        | AICore(%)  Memory-Usage(MB)  HBM-Usage(MB)  |
+======================+===============+=============================================+
| 0     910A           | OK            | 68.2       36                               |
| 0                    | 0000:C1:00.0  | 0          2621 / 15089      0    / 32768   |
+======================+===============+=============================================+
| 1     910A           | Alarm         | 65.1       35                               |
| 0                    | 0000:81:00.0  | 0          2621 / 15089      0    / 32768   |
+======================+===============+=============================================+
"""

DEVICE_CASES = [
    ("full-910b", FULL_910B, [(0, "910B1", "OK", (0,)), (1, "910B1", "OK", (0,)), (2, "910B1", "Warning", (0,)),
                              (3, "910B1", "OK", (0,))]),
    ("duo-310p", DUO_310P, [(8, "310P3", "OK", (0, 1), (0, 1))]),
    ("old-910a", OLD_910A, [(0, "910A", "OK", (0,)), (1, "910A", "Alarm", (0,))]),
    ("process-table-only", ONE_RUNNING, []),
    ("empty", "", []),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in DEVICE_CASES], ids=[c[0] for c in DEVICE_CASES])
def test_device_table(text, expected):
    assert parse_npu_smi_devices(text) == [NpuDevice(*row) for row in expected]


def test_info_gathers_all_three():
    info = parse_npu_smi_info(FULL_910B)
    assert [d.npu for d in info.devices] == [0, 1, 2, 3]
    assert [p.pid for p in info.processes] == [55115, 60001, 60002]
    assert info.idle == [1, 3]


# --- device rows are recognised by their structure, whatever Health says and whatever the name is ---------

def _table(rows: str, borders: bool = True) -> str:
    """A 910B-style device table around `rows` (blank-line separated devices)."""
    head = """\
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
"""
    border = "+===========================+===============+====================================================+\n"
    blocks = [b.strip("\n") + "\n" for b in rows.strip("\n").split("\n\n")]
    return head + (border if borders else "").join(blocks) + border


ODD_HEALTH = _table("""\
| 0     910B1               | OK            | 97.2        37                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3377 / 65536         |

| 1     910B1               | NOT_EXIST     | NA          NA                NA   / NA            |
| 0                         | 0000:01:00.0  | NA          NA   / NA         NA   / NA            |

| 2     910B1               | Alarm(1)      | 95.0        35                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3377 / 65536         |

| 3     910B1               | Warning 2     | 92.8        36                0    / 0             |
| 0                         | 0000:02:00.0  | 0           0    / 0          3377 / 65536         |

| 4     910B1               |               | 92.8        36                0    / 0             |
| 0                         | 0000:82:00.0  | 0           0    / 0          3377 / 65536         |
""")

ASCEND_310 = _table("""\
| 0     310                 | OK            | 12.8        45                0    / 0             |
| 0                         | 0000:01:00.0  | 0           2703 / 8192                            |

| 1     310                 | Critical      | 12.8        45                0    / 0             |
| 0                         | 0000:02:00.0  | 0           2703 / 8192                            |
""")

DUO_DIGIT_NAME = _table("""\
| 8     310                 | OK            | NA          51                0     / 0            |
| 0     0                   | 0000:01:00.0  | 0           1685 / 44280                           |
| 1     1                   | 0000:01:00.0  | 0           1455 / 43693                           |

| 9     310                 | Alarm(2)      | NA          51                0     / 0            |
| 0     2                   | 0000:81:00.0  | 0           1685 / 44280                           |
| 1     3                   | 0000:81:00.0  | 0           1455 / 43693                           |
""")

NO_BORDERS_BETWEEN_NPUS = _table("""\
| 0     910B1               | Alarm(1)      | 97.2        37                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3377 / 65536         |
| 1     910B1               | OK            | 93.4        36                0    / 0             |
| 0                         | 0000:01:00.0  | 0           0    / 0          3377 / 65536         |
| 2     310                 | Warning 2     | 93.4        36                0    / 0             |
| 0                         | 0000:02:00.0  | 0           0    / 0          3377 / 65536         |
""", borders=False)

STRUCTURE_CASES = [
    ("any-health-value", ODD_HEALTH, [(0, "910B1", "OK", (0,)), (1, "910B1", "NOT_EXIST", (0,)),
                                      (2, "910B1", "Alarm(1)", (0,)), (3, "910B1", "Warning 2", (0,)),
                                      (4, "910B1", "", (0,))]),
    ("digits-only-name", ASCEND_310, [(0, "310", "OK", (0,)), (1, "310", "Critical", (0,))]),
    ("digits-only-name-two-chips", DUO_DIGIT_NAME, [(8, "310", "OK", (0, 1)), (9, "310", "Alarm(2)", (0, 1))]),
    ("no-borders-between-npus", NO_BORDERS_BETWEEN_NPUS, [(0, "910B1", "Alarm(1)", (0,)), (1, "910B1", "OK", (0,)),
                                                          (2, "310", "Warning 2", (0,))]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in STRUCTURE_CASES], ids=[c[0] for c in STRUCTURE_CASES])
def test_device_rows_are_found_by_structure(text, expected):
    assert parse_npu_smi_devices(text) == [NpuDevice(*row) for row in expected]


def test_every_npu_keeps_its_own_chips_when_health_is_odd():
    """The bug: a dropped device row gave its chips to the NPU before it, and its bad health vanished."""
    devices = parse_npu_smi_devices(ODD_HEALTH)
    assert [d.chips for d in devices] == [(0,)] * 5
    assert [d.npu for d in devices if d.health != "OK"] == [1, 2, 3, 4]


# --- the process table: host PIDs, blank NPU cells -------------------------------------------------------

HOST_PID_TABLE = """\
| NPU     Chip         | Process id    | Host PID      | Process name             | Process memory(MB)      |
+======================+===============+===============+==========================+=========================+
| 0       0            | 312           | 1874411       | python                   | 30784                   |
| 1       0            | 313           | 1874412       | python                   | 30784                   |
"""

HOST_PID_FIRST = """\
| NPU     Chip         | Host PID      | Process id    | Process name             | Process memory(MB)      |
+======================+===============+===============+==========================+=========================+
| 0       0            | 1874411       | 312           | python                   | 30784                   |
"""

HOST_PID_ONLY = """\
| NPU     Chip         | Host PID      | Process name             | Process memory(MB)      |
+======================+===============+==========================+=========================+
| 0       0            | 1874411       | python                   | 30784                   |
"""

BLANK_NPU_CELL = """\
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 2       1                 | 1001          | python                   | 500                     |
|                           | 1002          | python                   | 600                     |
|                           | 1003          | python                   | 700                     |
| 3       0                 | 1004          | infer                    | 800                     |
"""

HOST_AND_BLANK_CASES = [
    ("process-id-and-host-pid", HOST_PID_TABLE, [(0, 0, 312, "python", 30784, 1874411),
                                                 (1, 0, 313, "python", 30784, 1874412)]),
    ("host-pid-column-first", HOST_PID_FIRST, [(0, 0, 312, "python", 30784, 1874411)]),
    ("host-pid-only", HOST_PID_ONLY, [(0, 0, 1874411, "python", 30784)]),
    ("blank-npu-chip-cell-repeats-the-row-above", BLANK_NPU_CELL, [
        (2, 1, 1001, "python", 500), (2, 1, 1002, "python", 600), (2, 1, 1003, "python", 700),
        (3, 0, 1004, "infer", 800)]),
    ("blank-cell-on-the-first-row-is-dropped", """\
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
|                           | 1001          | python                   | 500                     |
""", []),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in HOST_AND_BLANK_CASES],
                         ids=[c[0] for c in HOST_AND_BLANK_CASES])
def test_host_pids_and_blank_npu_cells(text, expected):
    assert parse_npu_smi_processes(text) == [NpuProcess(*row) for row in expected]


# --- one numbering: npu-smi's (NPU ID, Chip ID) -> the NPU number (/dev/davinciN, ASCEND_RT_VISIBLE_DEVICES) ---
# The layouts of UPSTREAM.md "NPU numbering": `npu-smi info` and `npu-smi info -m` of each board.

# 910B, 8 NPUs, one chip each (info -m lists chip 0 and an Mcu per NPU): NPU ID = NPU number.
FULL_910B_8 = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.6                   Version: 23.0.6                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 95.1        36                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | 93.7        35                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
| 2     910B3               | OK            | 96.0        37                0    / 0             |
| 0                         | 0000:81:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
| 3     910B3               | OK            | 94.4        36                0    / 0             |
| 0                         | 0000:82:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
| 4     910B3               | OK            | 97.3        37                0    / 0             |
| 0                         | 0000:01:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
| 5     910B3               | OK            | 95.9        36                0    / 0             |
| 0                         | 0000:02:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
| 6     910B3               | OK            | 94.2        35                0    / 0             |
| 0                         | 0000:41:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
| 7     910B3               | OK            | 96.6        37                0    / 0             |
| 0                         | 0000:42:00.0  | 0           0    / 0          3394 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 5       0                 | 81005         | python                   | 30784                   |
+===========================+===============+====================================================+
"""

INFO_M_910B_8 = """\
        NPU ID                         Chip ID                        Chip Logic ID                  Chip Name
        0                              0                              0                              Ascend 910B3
        0                              1                              -                              Mcu
        1                              0                              1                              Ascend 910B3
        1                              1                              -                              Mcu
        2                              0                              2                              Ascend 910B3
        2                              1                              -                              Mcu
        3                              0                              3                              Ascend 910B3
        3                              1                              -                              Mcu
        4                              0                              4                              Ascend 910B3
        4                              1                              -                              Mcu
        5                              0                              5                              Ascend 910B3
        5                              1                              -                              Mcu
        6                              0                              6                              Ascend 910B3
        6                              1                              -                              Mcu
        7                              0                              7                              Ascend 910B3
        7                              1                              -                              Mcu
"""

# Atlas 300I Duo: two chips per card, "Chip  Device" rows, NPU IDs not contiguous.
DUO_TWO_CARDS = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.0                                   Version: 23.0.0                                       |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 6       310P3                 | OK              | NA           53                0     / 0             |
| 0       0                     | 0000:82:00.0    | 0            1689 / 44280                            |
| 1       1                     | 0000:82:00.0    | 0            8301 / 43693                            |
+===============================+=================+======================================================+
| 32      310P3                 | OK              | NA           51                0     / 0             |
| 0       2                     | 0000:85:00.0    | 0            1685 / 44280                            |
| 1       3                     | 0000:85:00.0    | 0            1455 / 43693                            |
+===============================+=================+======================================================+
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Chip                  | Process id      | Process name             | Process memory(MB)        |
+===============================+=================+======================================================+
| 6       1                     | 293029          | python3.11               | 6612                      |
+===============================+=================+======================================================+
| 32      0                     | 293100          | python3.11               | 120                       |
+===============================+=================+======================================================+
"""

INFO_M_DUO = """\
        NPU ID                         Chip ID                        Chip Logic ID                  Chip Name
        6                              0                              0                              Ascend 310P3
        6                              1                              1                              Ascend 310P3
        32                             0                              2                              Ascend 310P3
        32                             1                              3                              Ascend 310P3
"""

# A3: two dies per NPU ID, "Chip  Phy-ID" rows; info -m has a Chip Phy-ID column and an Mcu per NPU.
A3_TWO_NPUS = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.0                   Version: 24.1.0                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip  Phy-ID              | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     Ascend910           | OK            | 180.5       40                0    / 0             |
| 0     0                   | 0000:9D:00.0  | 0           0    / 0          3400 / 65536         |
| 1     1                   | 0000:9F:00.0  | 0           0    / 0          3400 / 65536         |
+===========================+===============+====================================================+
| 1     Ascend910           | OK            | 176.2       39                0    / 0             |
| 0     2                   | 0000:99:00.0  | 0           0    / 0          3400 / 65536         |
| 1     3                   | 0000:9B:00.0  | 0           0    / 0          3400 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       1                 | 71001         | python                   | 2048                    |
+===========================+===============+====================================================+
| 1       0                 | 71002         | python                   | 2048                    |
| 1       1                 | 71003         | python                   | 2048                    |
+===========================+===============+====================================================+
"""

INFO_M_A3 = """\
        NPU ID                         Chip ID                        Chip Logic ID                  Chip Phy-ID                    Chip Name
        0                              0                              0                              0                              Ascend910
        0                              1                              1                              1                              Ascend910
        0                              2                              -                              -                              Mcu
        1                              0                              2                              2                              Ascend910
        1                              1                              3                              3                              Ascend910
        1                              2                              -                              -                              Mcu
"""

# Two chips per NPU ID and a plain "Chip" column: nothing in `npu-smi info` says which device a chip is.
TWO_CHIP = """\
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B4               | OK            | 97.2        37                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3378 / 32768         |
| 1                         | 0000:C1:00.0  | 0           0    / 0          3378 / 32768         |
+===========================+===============+====================================================+
| 1     910B4               | OK            | 93.4        36                0    / 0             |
| 0                         | 0000:01:00.0  | 0           0    / 0          3377 / 32768         |
| 1                         | 0000:01:00.0  | 0           0    / 0          3377 / 32768         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       1                 | 91001         | python                   | 1000                    |
+===========================+===============+====================================================+
| 1       0                 | 91002         | python                   | 1000                    |
+===========================+===============+====================================================+
"""

INFO_M_TWO_CHIP = """\
        NPU ID                         Chip ID                        Chip Logic ID                  Chip Name
        0                              0                              0                              Ascend 910B4
        0                              1                              1                              Ascend 910B4
        0                              2                              -                              Mcu
        1                              0                              2                              Ascend 910B4
        1                              1                              3                              Ascend 910B4
        1                              2                              -                              Mcu
"""

# info -m numbering the chips other than in table order: it is what counts
INFO_M_TWO_CHIP_CROSSED = """\
        NPU ID                         Chip ID                        Chip Logic ID                  Chip Name
        0                              0                              0                              Ascend 910B4
        0                              1                              3                              Ascend 910B4
        1                              0                              2                              Ascend 910B4
        1                              1                              1                              Ascend 910B4
"""

MAP_CASES = [
    ("910b-8", INFO_M_910B_8, [row for npu in range(8) for row in [(npu, 0, npu, "Ascend 910B3"),
                                                                   (npu, 1, None, "Mcu")]]),
    ("duo", INFO_M_DUO, [(6, 0, 0, "Ascend 310P3"), (6, 1, 1, "Ascend 310P3"), (32, 0, 2, "Ascend 310P3"),
                         (32, 1, 3, "Ascend 310P3")]),
    ("a3-phy-id", INFO_M_A3, [(0, 0, 0, "Ascend910", 0), (0, 1, 1, "Ascend910", 1), (0, 2, None, "Mcu"),
                              (1, 0, 2, "Ascend910", 2), (1, 1, 3, "Ascend910", 3), (1, 2, None, "Mcu")]),
    ("banner-warnings-and-pipes", """\
npu-smi 24.1.0: warning: something odd
| NPU ID | Chip ID | Chip Logic ID | Chip Name    |
| 0      | 0       | 0             | Ascend 910B3 |
| 0      | 1       | -             | Mcu          |
not a row 1 2 3
""", [(0, 0, 0, "Ascend 910B3"), (0, 1, None, "Mcu")]),
    ("phy-id-before-logic", """\
NPU ID   Chip ID   Chip Phy-ID   Chip Logic ID   Chip Name
4        0         6             0               Ascend910
""", [(4, 0, 0, "Ascend910", 6)]),
    ("rows-without-a-header-are-not-trusted", "        0     0     0     Ascend 910B3\n", []),
    ("a-process-table-is-no-chip-map", ONE_RUNNING, []),
    ("empty", "", []),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in MAP_CASES], ids=[c[0] for c in MAP_CASES])
def test_chip_map(text, expected):
    assert parse_npu_smi_map(text) == [NpuChip(*row) for row in expected]


NEW_DEVICE_CASES = [
    ("910b-8", FULL_910B_8, [(n, "910B3", "OK", (0,)) for n in range(8)]),
    ("duo-device-column", DUO_TWO_CARDS, [(6, "310P3", "OK", (0, 1), (0, 1)), (32, "310P3", "OK", (0, 1), (2, 3))]),
    ("a3-phy-id-column", A3_TWO_NPUS, [(0, "Ascend910", "OK", (0, 1), (), (0, 1)),
                                      (1, "Ascend910", "OK", (0, 1), (), (2, 3))]),
    ("two-chip-plain-chip-column", TWO_CHIP, [(0, "910B4", "OK", (0, 1)), (1, "910B4", "OK", (0, 1))]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in NEW_DEVICE_CASES], ids=[c[0] for c in NEW_DEVICE_CASES])
def test_device_table_keeps_each_chips_device_or_physical_id(text, expected):
    assert parse_npu_smi_devices(text) == [NpuDevice(*row) for row in expected]


# (npu-smi info, npu-smi info -m, {(NPU ID, Chip ID): NPU number}, NPU numbers of the process rows, guessed)
NUMBERING_CASES = [
    ("910b-8", FULL_910B_8, INFO_M_910B_8, {(n, 0): n for n in range(8)}, [5], False),
    ("910b-8-no-info-m", FULL_910B_8, "", {(n, 0): n for n in range(8)}, [5], False),
    ("duo", DUO_TWO_CARDS, INFO_M_DUO, {(6, 0): 0, (6, 1): 1, (32, 0): 2, (32, 1): 3}, [1, 2], False),
    ("duo-no-info-m-device-column", DUO_TWO_CARDS, "", {(6, 0): 0, (6, 1): 1, (32, 0): 2, (32, 1): 3}, [1, 2], False),
    ("duo-one-card", DUO_310P, "", {(8, 0): 0, (8, 1): 1}, [0, 1], False),
    ("a3", A3_TWO_NPUS, INFO_M_A3, {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}, [1, 2, 3], False),
    ("a3-no-info-m-phy-id-column", A3_TWO_NPUS, "", {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}, [1, 2, 3], False),
    ("two-chip", TWO_CHIP, INFO_M_TWO_CHIP, {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}, [1, 2], False),
    ("two-chip-no-info-m-table-order", TWO_CHIP, "", {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}, [1, 2], True),
    ("info-m-wins-over-table-order", TWO_CHIP, INFO_M_TWO_CHIP_CROSSED,
     {(0, 0): 0, (0, 1): 3, (1, 0): 2, (1, 1): 1}, [3, 2], False),
]


@pytest.mark.parametrize("info, chip_map, expected, process_devices, guessed", [c[1:] for c in NUMBERING_CASES],
                         ids=[c[0] for c in NUMBERING_CASES])
def test_numbering_maps_npu_and_chip_to_the_npu_number(info, chip_map, expected, process_devices, guessed):
    parsed = parse_npu_smi_info(info, chip_map)
    numbering = parsed.numbering
    assert numbering.by_chip == expected
    assert [numbering.device(p.npu, p.chip) for p in parsed.processes] == process_devices
    assert numbering.guessed is guessed
    assert all(numbering.card(device) == key for key, device in expected.items())
    assert numbering.devices == sorted(expected.values())


def test_one_numbering_the_holder_of_davinci1_is_on_npu_1_only():
    """The bug: on a two-chip table, npu-smi's "NPU 0 chip 1" and /dev/davinci1 were shown as NPU 0 and NPU 1."""
    numbering = parse_npu_smi_info(TWO_CHIP, INFO_M_TWO_CHIP).numbering
    assert numbering.device(0, 1) == numbering.of_file(1) == 1
    assert numbering.of_card(0) == [0, 1] and numbering.of_card(1) == [2, 3]
    assert not numbering.identity and numbering.several_chips


def test_numbering_of_a_one_chip_box_is_the_npu_id():
    numbering = parse_npu_smi_info(FULL_910B_8).numbering
    assert numbering.identity and not numbering.several_chips
    assert numbering.device(9, None) == 9 and numbering.of_card(9) == [9]  # a card the table did not list
    assert numbering.of_file(3) == 3


def test_numbering_without_npu_smi_is_the_device_files():
    numbering = Numbering()
    assert numbering.identity and numbering.devices == []
    assert numbering.device(2) == 2 and numbering.card(2) is None and numbering.of_file(2) == 2


def test_numbering_reads_a_physical_id_that_differs_from_the_logic_id():
    """/dev/davinciN is the physical ID; where `info -m` tells it apart, the device file maps to the logic ID."""
    chips = parse_npu_smi_map("NPU ID  Chip ID  Chip Logic ID  Chip Phy-ID  Chip Name\n"
                              "0       0        0              4            Ascend910\n"
                              "0       1        1              5            Ascend910\n")
    numbering = number_devices([], chips)
    assert numbering.of_file(4) == 0 and numbering.of_file(5) == 1
    assert numbering.physical == {4: 0, 5: 1} and not numbering.identity


def test_numbering_prefers_what_npu_smi_says_to_a_guess_and_never_gives_a_number_twice():
    numbering = number_devices([NpuDevice(0, "x", "OK", (0, 1)), NpuDevice(1, "x", "OK", (0,), (1,))])
    # card 1's Device column says 1; chip (0, 1) would be 1 by table order: the guess gives way
    assert numbering.by_chip == {(1, 0): 1, (0, 0): 0} and numbering.guessed
    assert numbering.device(0, 1) is None        # nothing numbers it: not shown under a wrong number
    assert numbering.device(7, 0) is None        # several chips per card: an NPU ID alone names no device
