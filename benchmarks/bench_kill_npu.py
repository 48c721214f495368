"""kill-npu discovery speed with 1000 processes running, printed as numbers (not a test):
`uv run python benchmarks/bench_kill_npu.py [COUNT [BOARD]]`.

One Python process forks COUNT (default 1000) sleeping children; 10 of them hold stand-in device files.
BOARD is the stand-in npu-smi's layout (tests/world/npu.py LAYOUTS: 910b, the default, duo, a3,
two-chip). Measured: the /proc scan alone, discovery with the stand-in `npu-smi info` and `npu-smi info -m`
running beside it (target: under 0.5 s), planning on top of it, and `invoke kill-npu --all --dry-run` end
to end. Nothing is signalled: the children exit when the forker closes a pipe, and the forker when the
benchmark closes its stdin.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from npuenv.npu.kill import discover, make_plan  # noqa: E402
from npuenv.npu.procs import pids  # noqa: E402
from tests.world.npu import NpuLab  # noqa: E402

REPEAT = 5
HOLDING = 10

# Children block on a pipe whose write end only the forker keeps: when it closes it (or dies), they exit.
FORKER = r"""
import os, sys
count, holding, devices = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
read_end, write_end = os.pipe()
children = []
for index in range(count):
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        held = open(devices[index % len(devices)], "rb") if index < holding else None
        os.read(read_end, 1)
        os._exit(0)
    children.append(pid)
os.close(read_end)
print(" ".join(map(str, children)), flush=True)
sys.stdin.read()
os.close(write_end)
for pid in children:
    os.waitpid(pid, 0)
"""


def median_of(func) -> float:
    times = []
    for _ in range(REPEAT):
        began = time.perf_counter()
        func()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def row(name: str, seconds: float, note: str = "") -> None:
    print(f"{name:<52} {seconds:8.3f} s  {note}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    board = sys.argv[2] if len(sys.argv) > 2 else "910b"
    lab = NpuLab(Path(tempfile.mkdtemp(prefix="npuenv-bench-npu-")), layout=board)
    env = lab.env("bench")
    devices = [str(lab.device(n)) for n in range(4)]
    began = time.perf_counter()
    forker = subprocess.Popen([sys.executable, "-I", "-S", "-c", FORKER, str(count), str(HOLDING), *devices],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        children = [int(p) for p in forker.stdout.readline().split()]
        started = time.perf_counter() - began
        for index, pid in enumerate(children[:HOLDING]):
            lab.list(pid, index % 4)
        with_smi, proc_only = lab.config(), lab.config(npu_smi=False)
        snapshot = discover(proc_only)
        assert len(snapshot.holders) == HOLDING, f"expected {HOLDING} holders, found {len(snapshot.holders)}"
        running = len(pids())
        scan = median_of(lambda: discover(proc_only))
        full = median_of(lambda: discover(with_smi))
        plan = make_plan(discover(with_smi), user="bench")
        planning = median_of(lambda: make_plan(discover(with_smi), user="bench"))
        cli = median_of(lambda: subprocess.run(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO), "kill-npu", "--all", "--dry-run"],
            env=env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, check=True))
    finally:
        forker.stdin.close()
        try:
            forker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            forker.kill()  # our own child; its children see the pipe close and exit
            forker.wait()
    print(f"kill-npu discovery benchmark ({os.cpu_count()} cores; {running} processes in /proc; "
          f"{count} forked children, {HOLDING} holding stand-in devices on a {board} board; median of {REPEAT})")
    row(f"start {count} sleeping processes", started)
    row("/proc scan: holders + process table", scan, f"{len(snapshot.holders)} holders")
    row("discovery: /proc scan + stand-in npu-smi (info, -m)", full, "target < 0.5 s")
    row("discovery + plan (trees, tags, command lines)", planning,
        f"{len(plan.targets)} processes in {len(plan.roots)} tree(s)")
    row("invoke kill-npu --all --dry-run, wall incl. start-up", cli)


if __name__ == "__main__":
    main()
