"""`invoke doctor --log` speed and memory on a big training log, printed as numbers (not a test):
`uv run python benchmarks/bench_logtriage.py [--mb 200] [--log FILE]`. Target: at least 100 MB/s, and memory
that does not grow with the log.

The log (unless --log names one): about --mb MB of what a MindSpeed-MM/Megatron run prints, made from a fixed
seed — mostly `iteration N/M | consumed samples ... | lm loss ... |` lines, every 100th step the memory and
timer lines, about 2 % coloured INFO/WARNING lines (ANSI colour codes, as launchers print them), and a few
hundred known-error lines (EJ0001, HCCL error code 7, NPU out of memory, a missing module, ERR00100, ...) and
some CANN error lines no rule knows (EZ9999) scattered through it.

Measured: `logtriage.report_file` in-process (best and median of REPEAT runs, MB/s), its peak Python
allocations (tracemalloc, a separate run) and, in a fresh interpreter, the peak RSS
(resource.getrusage ru_maxrss) of reading the log against the same interpreter that only imported the
module; and `invoke doctor --log FILE` end to end (start-up included), as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from npuenv.npu.logtriage import report_file  # noqa: E402

REPEAT = 3
TARGET_MB_S = 100.0
MB = 1 << 20
ERRORS_PER_MB = 1.5  # a few hundred in 200 MB
ESC = "\x1b"

KNOWN_LINES = (
    "EJ0001: 2024-05-21-11:57:54.167.645 Failed to initialize the HCCP process. Reason: Maybe the last training "
    "process is running.",
    f"[rank3]: {ESC}[31mRuntimeError{ESC}[0m: createHCCLComm:torch_npu/csrc/distributed/ProcessGroupHCCL.cpp:1925 "
    "HCCL function error: HcclCommInitRootInfo(numRanks, &hcclID, rank, &(comm->hcclComm_)), error code is 7",
    "[rank0]: RuntimeError: NPU out of memory. Tried to allocate 260.00 MiB (NPU 0; 28.50 GiB total capacity; "
    "10.24 GiB already allocated; 149.57 MiB free)",
    "EL0004: 2025-01-15-10:21:33.125.716 Failed to allocate memory.",
    "ModuleNotFoundError: No module named 'decorator'",
    "Failed to import decord module.",
    "[ERROR] 2025-11-18-10:35:31 (PID:833, Device:0, RankID:-1) ERR00100 PTA call acl api failed",
)
UNKNOWN_LINES = (
    "EZ9999: Inner Error!",
    "EZ9999: [PID: 775] 2025-02-16-12:18:25.258.321 Cannot find bin of op Range, integral key 0/1/|int64/ND/.",
)


def ordinary(rng: random.Random, step: int, steps: int) -> list[str]:
    """One training step's lines: Megatron's iteration line, and every 100th step its memory and timers."""
    lines = [f" [2025-01-15 10:{step // 60 % 60:02d}:{step % 60:02d}] iteration {step:8d}/{steps:8d} | consumed "
             f"samples: {step * 64:12d} | elapsed time per iteration (ms): {rng.uniform(900, 1300):.1f} | learning "
             f"rate: {rng.uniform(1e-6, 1e-4):E} | global batch size:    64 | lm loss: {rng.uniform(1, 3):E} | "
             f"loss scale: 1.0 | grad norm: {rng.uniform(0, 3):.3f} | number of skipped iterations:   0 | number "
             f"of nan iterations:   0 |"]
    if step % 100 == 0:
        lines.append(f"[Rank 0] (after {step} iterations) memory (MB) | allocated: {rng.uniform(1e4, 2e4):.1f} | "
                     f"max allocated: {rng.uniform(2e4, 3e4):.1f} | reserved: 31000.0 | max reserved: 31000.0")
        lines.append(f"(min, max) time across ranks (ms):\n    forward-backward ...............................: "
                     f"({rng.uniform(800, 900):.2f}, {rng.uniform(900, 1000):.2f})")
    if rng.random() < 0.02:
        colour, word = rng.choice(((32, "INFO"), (33, "WARNING")))
        lines.append(f"{ESC}[{colour}m[{word}]{ESC}[0m 2025-01-15 10:21:33 rank {step % 8}: saving checkpoint at "
                     f"iteration {step} to ./ckpt in torch format")
    return lines


def write_log(path: Path, megabytes: int, seed: int = 20250115) -> dict[str, int]:
    """Write the log; return how many error lines of each sort it holds."""
    rng = random.Random(seed)
    target, written, step = megabytes * MB, 0, 1
    counts = {"known": 0, "unknown": 0}
    every = max(1, int(MB / ERRORS_PER_MB / 300))  # steps between chances of an error line (~300 B a step)
    with open(path, "w", encoding="utf-8") as handle:
        while written < target:
            batch = []
            for _ in range(200):
                batch += ordinary(rng, step, 10_000_000)
                if step % every == 0:
                    sort = "unknown" if rng.random() < 0.1 else "known"
                    batch.append(rng.choice(UNKNOWN_LINES if sort == "unknown" else KNOWN_LINES))
                    counts[sort] += 1
                step += 1
            text = "\n".join(batch) + "\n"
            handle.write(text)
            written += len(text)
    return counts


def timed(path: Path) -> tuple[float, float, object]:
    """Wall and CPU seconds of one read (CPU time is what a busy shared box does not distort)."""
    start, cpu = time.perf_counter(), time.process_time()
    report = report_file(str(path))
    return time.perf_counter() - start, time.process_time() - cpu, report


def traced_peak(path: Path) -> int:
    tracemalloc.start()
    try:
        report_file(str(path))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


RSS_PROBE = """
import json, resource, sys
sys.path.insert(0, {src!r})
from npuenv.npu.logtriage import report_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if {read}:
    report_file({path!r})
print(json.dumps([before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))
"""


def peak_rss_kib(path: Path, read: bool) -> tuple[int, int]:
    """(peak RSS after the import, peak RSS at the end) of a fresh interpreter, in KiB (Linux)."""
    code = RSS_PROBE.format(src=str(REPO / "src"), path=str(path), read=read)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after = json.loads(out)
    return before, after


def end_to_end(path: Path) -> tuple[float, int]:
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "doctor", "--log", str(path)]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the generated log in MB (default 200)")
    parser.add_argument("--log", type=Path, help="measure this log instead of generating one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-logtriage-") as tmp:
        path = args.log or Path(tmp) / "train.log"
        if args.log is None:
            start = time.perf_counter()
            counts = write_log(path, args.mb)
            print(f"generated {path.stat().st_size / MB:.0f} MB in {time.perf_counter() - start:.1f} s: "
                  f"{counts['known']} known-error lines, {counts['unknown']} unrecognised ones")
        measure(path)


def measure(path: Path) -> None:
    size = path.stat().st_size / MB
    runs = [timed(path) for _ in range(REPEAT)]
    seconds = [wall for wall, _cpu, _r in runs]
    cpu = min(c for _wall, c, _r in runs)
    report = runs[0][2]
    best, median = min(seconds), statistics.median(seconds)
    print(f"log: {size:.0f} MB, {report.lines} lines")
    print("findings: " + ", ".join(f"{f.kind} ×{f.count} (first line {f.line_no})" for f in report.findings))
    if report.unrecognised:
        print(f"unrecognised: ×{report.unrecognised.count} (first line {report.unrecognised.line_no})")
    verdict = "ok" if size / best >= TARGET_MB_S else f"BELOW the {TARGET_MB_S:.0f} MB/s target"
    print(f"report_file, {REPEAT} runs: best {best:.2f} s = {size / best:.0f} MB/s, median {median:.2f} s = "
          f"{size / median:.0f} MB/s, CPU {cpu:.2f} s = {size / cpu:.0f} MB/s ({verdict})")
    print(f"peak Python allocations while reading (tracemalloc): {traced_peak(path) / MB:.2f} MB")
    _start, idle = peak_rss_kib(path, read=False)
    before, after = peak_rss_kib(path, read=True)
    print(f"peak RSS (ru_maxrss), fresh interpreter: {idle / 1024:.1f} MB having only imported the module, "
          f"{after / 1024:.1f} MB having read the log (+{(after - before) / 1024:.1f} MB for a {size:.0f} MB log)")
    seconds, code = end_to_end(path)
    print(f"invoke doctor --log FILE end to end: {seconds:.2f} s = {size / seconds:.0f} MB/s, exit code {code}")


if __name__ == "__main__":
    main()
