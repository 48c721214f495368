"""Start-up against another commit, printed as numbers (not a test):
`uv run python benchmarks/bench_against.py [REF]` (default REF: HEAD~1).

A refactoring must not make the everyday commands slower. REF is checked out into a temporary git worktree
with its own environment; both checkouts bootstrap the same hermetic world once (cold), then REPEAT rounds
interleave, for each checkout, an up-to-date `invoke bootstrap` and `invoke --list`. The medians and their
ratio (this checkout / REF) are printed; 1.00 means no change.

This machine sets PYTHONDONTWRITEBYTECODE=1, which makes every run recompile every import; the benchmark
unsets it for both sides (a user's box keeps .pyc files), and runs each command once before measuring.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_bootstrap import REPEAT, WHEEL_CACHE, timed  # noqa: E402
from tests.world.fixtures import build_world, clean_env  # noqa: E402


def commands(checkout: Path, tmp: Path, world, name: str) -> tuple[list[str], list[str], list[str]]:
    """(cold bootstrap, up-to-date bootstrap, --list) run by `checkout`'s own code."""
    uv = os.environ.get("UV", "uv")
    base = [uv, "run", "--project", str(checkout), "invoke", "--search-root", str(checkout)]
    boot = [*base, "bootstrap", "--root", str(tmp / f"ws-{name}"), "--wheels", str(tmp / f"wheels-{name}")]
    cold = [*boot, "--spec", str(world.write_spec(tmp / "world.yaml")), "--ca-bundle", str(world.ca_pem),
            "--python", str(world.python310)]
    return cold, boot, [*base, "--list"]


def main() -> None:
    ref = sys.argv[1] if len(sys.argv) > 1 else "HEAD~1"
    tmp = Path(tempfile.mkdtemp(prefix="npuenv-bench-against-"))
    old = tmp / "old"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(old), ref], check=True)
    # its environment is made here, in the caller's environment (the index may need the box's CA settings)
    subprocess.run([os.environ.get("UV", "uv"), "sync", "--quiet", "--locked", "--project", str(old)], check=True)
    world = build_world(tmp / "world", WHEEL_CACHE)
    try:
        if world.python310 is None:
            sys.exit("no CPython 3.10 found: the target env needs one")
        env = {k: v for k, v in clean_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        sides = {"this": commands(REPO, tmp, world, "this"), ref: commands(old, tmp, world, "old")}
        for cold, boot, listing in sides.values():
            timed(cold, env)
            timed(boot, env)
            timed(listing, env)
        found: dict[str, list[float]] = {}
        for _ in range(REPEAT):
            for name, (_cold, boot, listing) in sides.items():
                found.setdefault(f"{name} bootstrap", []).append(timed(boot, env))
                found.setdefault(f"{name} list", []).append(timed(listing, env))
    finally:
        world.server.stop()
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    median = {k: statistics.median(v) for k, v in found.items()}
    print(f"this checkout against {ref} ({os.cpu_count()} cores; medians of {REPEAT}; .pyc files kept)")
    for what, label in (("bootstrap", "up-to-date invoke bootstrap"), ("list", "invoke --list")):
        mine, theirs = median[f"this {what}"], median[f"{ref} {what}"]
        print(f"{label:<30} this {mine:7.3f} s   {ref} {theirs:7.3f} s   ratio {mine / theirs:5.2f} x")


if __name__ == "__main__":
    main()
