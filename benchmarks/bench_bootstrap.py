"""Bootstrap speed, printed as numbers (not a test): run `uv run python benchmarks/bench_bootstrap.py`.

- the cold hermetic bootstrap: wall time beside the sum of its step times (parallelism shows);
- `uv run invoke bootstrap` on an up-to-date workspace against the floor: `uv run invoke --list` on a
  one-task tasks.py (what any Invoke task costs to start). Both run in one loop, interleaved, and the
  ratio of their medians is printed (goal: at most 1.5x).

This machine sets PYTHONDONTWRITEBYTECODE=1, which makes every run recompile every import; the benchmark
unsets it for both sides (a user's box keeps .pyc files), and runs each side once before measuring.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.world.fixtures import build_world, clean_env  # noqa: E402

WHEEL_CACHE = REPO / ".pytest_cache" / "d" / "npuenv-world-wheels"
REPEAT = 15  # this 2-core VM is noisy: single runs vary by ±20 %
FLOOR_TASKS = '''from invoke import task


@task
def hello(c):
    """Say hello."""
    print("hello")
'''


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
    return seconds


def row(name: str, seconds: float, note: str = "") -> None:
    print(f"{name:<46} {seconds:8.3f} s  {note}")


def side_by_side(first: list[str], second: list[str], env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Each command once to warm up, then REPEAT rounds of both, interleaved (load hits both alike)."""
    timed(first, env)
    timed(second, env)
    a, b = [], []
    for _ in range(REPEAT):
        a.append(timed(first, env))
        b.append(timed(second, env))
    return a, b


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="npuenv-bench-"))
    world = build_world(tmp / "world", WHEEL_CACHE)
    try:
        if world.python310 is None:
            sys.exit("no CPython 3.10 found: the target env needs one")
        env = {k: v for k, v in clean_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        uv = os.environ.get("UV", "uv")
        bootstrap = [uv, "run", "--project", str(REPO), "invoke", "--search-root", str(REPO), "bootstrap",
                     "--root", str(tmp / "ws"), "--wheels", str(tmp / "wheels"),
                     "--spec", str(world.write_spec(tmp / "world.yaml")), "--ca-bundle", str(world.ca_pem),
                     "--python", str(world.python310)]
        cold = timed(bootstrap, env)
        state = json.loads((tmp / "ws" / ".npuenv" / "state.json").read_text())
        step_sum = sum(s["seconds"] for s in state["steps"].values())
        floor_dir = tmp / "floor"
        floor_dir.mkdir()
        (floor_dir / "tasks.py").write_text(FLOOR_TASKS)
        floor = [uv, "run", "--project", str(REPO), "invoke", "--search-root", str(floor_dir), "--list"]
        warm, bare = side_by_side(bootstrap, floor, env)
        listing = [timed([uv, "run", "--project", str(REPO), "invoke", "--search-root", str(REPO), "--list"], env)
                   for _ in range(REPEAT)]
    finally:
        world.server.stop()
    print(f"npuenv bootstrap benchmark ({os.cpu_count()} cores; medians of {REPEAT}; .pyc files kept)")
    row("cold hermetic bootstrap, wall", cold, f"sum of step times {step_sum:.3f} s "
        f"(x{step_sum / cold:.2f} from parallel steps)")
    up_to_date, floor_median = statistics.median(warm), statistics.median(bare)
    row("up-to-date bootstrap (uv run invoke bootstrap)", up_to_date)
    row("floor: uv run invoke --list, one-task tasks.py", floor_median)
    print(f"{'ratio up-to-date bootstrap / floor':<46} {up_to_date / floor_median:8.2f} x  goal <= 1.5 x")
    row("uv run invoke --list (npuenv's tasks)", statistics.median(listing))


if __name__ == "__main__":
    main()
