"""Build speed, printed as numbers (not a test): `uv run python benchmarks/bench_builds.py`.

Bootstraps the hermetic world twice with apex and decord built from source: once cold, then in a new
workspace sharing the wheelhouse (a second box). Prints each build step's seconds, cold vs cached
(target: a cached rebuild under 2 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_builds_e2e import SOURCE_DECORD  # noqa: E402
from tests.world.fixtures import build_world, clean_env  # noqa: E402

WHEEL_CACHE = REPO / ".pytest_cache" / "d" / "npuenv-world-wheels"


def bootstrap(world, spec: Path, root: Path, wheels: Path) -> dict:
    argv = [sys.executable, "-m", "invoke", "bootstrap", "--root", str(root), "--wheels", str(wheels),
            "--spec", str(spec), "--ca-bundle", str(world.ca_pem), "--python", str(world.python310)]
    proc = subprocess.run(argv, env=clean_env(), cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(proc.stdout + proc.stderr)
    return json.loads((root / ".npuenv" / "state.json").read_text())["steps"]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="npuenv-bench-builds-"))
    world = build_world(tmp / "world", WHEEL_CACHE)
    try:
        if world.python310 is None:
            sys.exit("no CPython 3.10 found: the target env needs one")
        spec = world.write_spec(tmp / "source.yaml", builds=SOURCE_DECORD)
        cold = bootstrap(world, spec, tmp / "box1", tmp / "wheels")
        cached = bootstrap(world, spec, tmp / "box2", tmp / "wheels")
    finally:
        world.server.stop()
    print("npuenv build benchmark: seconds per build step (hermetic world, source builds)")
    print(f"{'step':<14} {'cold':>8} {'cached':>8}   target: cached < 2 s")
    for step in ("build:apex", "build:decord"):
        flag = cached[step]["resolved"].get("cached")
        print(f"{step:<14} {cold[step]['seconds']:8.2f} {cached[step]['seconds']:8.2f}   cache hit: {flag}")


if __name__ == "__main__":
    main()
