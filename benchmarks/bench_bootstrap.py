"""Bootstrap speed, printed as numbers (not a test): run `uv run python benchmarks/bench_bootstrap.py`.

- the cold hermetic bootstrap: wall time beside the sum of its step times (parallelism shows);
- `invoke bootstrap` on an up-to-date workspace, start-up included (target: under 1 s);
- `uv run invoke --list` (target: under 0.5 s).
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
REPEAT = 5


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
    return seconds


def row(name: str, seconds: float, note: str = "") -> None:
    print(f"{name:<46} {seconds:8.3f} s  {note}")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="npuenv-bench-"))
    world = build_world(tmp / "world", WHEEL_CACHE)
    try:
        if world.python310 is None:
            sys.exit("no CPython 3.10 found: the target env needs one")
        env = clean_env()
        bootstrap = [sys.executable, "-m", "invoke", "bootstrap", "--root", str(tmp / "ws"),
                     "--wheels", str(tmp / "wheels"), "--spec", str(world.write_spec(tmp / "world.yaml")),
                     "--ca-bundle", str(world.ca_pem), "--python", str(world.python310)]
        cold = timed(bootstrap, env)
        state = json.loads((tmp / "ws" / ".npuenv" / "state.json").read_text())
        step_sum = sum(s["seconds"] for s in state["steps"].values())
        warm = [timed(bootstrap, env) for _ in range(REPEAT)]
        uv = os.environ.get("UV", "uv")
        listing = [timed([uv, "run", "invoke", "--list"], env) for _ in range(REPEAT)]
    finally:
        world.server.stop()
    print(f"npuenv bootstrap benchmark ({os.cpu_count()} cores; median of {REPEAT} where repeated)")
    row("cold hermetic bootstrap, wall", cold, f"sum of step times {step_sum:.3f} s "
        f"(x{step_sum / cold:.2f} from parallel steps)")
    row("up-to-date bootstrap, wall incl. start-up", statistics.median(warm), "target < 1 s")
    row("uv run invoke --list", statistics.median(listing), "target < 0.5 s")


if __name__ == "__main__":
    main()
