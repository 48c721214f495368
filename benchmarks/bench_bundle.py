"""Offline bundle vs online, printed as numbers (not a test): `uv run python benchmarks/bench_bundle.py`.

In the hermetic world:
- `invoke lock` and `invoke bundle` on a connected workspace that was bootstrapped once (so its wheelhouse
  holds the built apex and decord, as a team's build machine does): the time to make each, the bundle's size;
- a cold bootstrap of the whole stack from the bundle, in a network namespace with no interface
  (`unshare --net`, root only), against a cold online bootstrap of the same locked spec: each in a fresh
  root, with a fresh wheelhouse and a fresh uv cache, interleaved, medians and their ratio.

What differs between the sides is what a bundle is for: it carries every file (the online side downloads
them from the world's server on loopback, so real networks only widen the gap) and the built wheels (the
online side compiles apex and decord).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_bootstrap import timed  # noqa: E402
from tests.world.fixtures import build_world, clean_env  # noqa: E402
from tests.world.wheels import torch_npu_filename  # noqa: E402

WHEEL_CACHE = REPO / ".pytest_cache" / "d" / "npuenv-world-wheels"
ROUNDS = 3  # a cold bootstrap takes tens of seconds; the sides alternate, so load hits both alike


def row(name: str, value: str, note: str = "") -> None:
    print(f"{name:<52} {value:>12}  {note}")


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("the offline side runs in a network namespace (unshare --net): run as root")
    tmp = Path(tempfile.mkdtemp(prefix="npuenv-bench-bundle-"))
    world = build_world(tmp / "world", WHEEL_CACHE)
    try:
        if world.python310 is None:
            sys.exit("no CPython 3.10 found: the target env needs one")
        env = {k: v for k, v in clean_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        files = {arch: {"filename": torch_npu_filename(arch), "sha256": world.wheel_sha256[torch_npu_filename(arch)]}
                 for arch in ("aarch64", "x86_64")}
        spec = world.write_spec(tmp / "world.yaml", wheels={"torch_npu": {"files": files}})
        invoke = [sys.executable, "-m", "invoke", "--search-root", str(REPO)]
        common = ["--spec", str(spec), "--python", str(world.python310)]
        connected = ["--root", str(tmp / "connected"), "--wheels", str(tmp / "connected-wheels"),
                     "--ca-bundle", str(world.ca_pem)]
        timed([*invoke, "bootstrap", *connected, *common], env)  # the build machine, bootstrapped once
        lock_seconds = timed([*invoke, "lock", *connected, *common], env)
        bundle = tmp / "world.bundle"
        bundle_seconds = timed([*invoke, "bundle", "--out", str(bundle), *connected, *common], env)
        online, offline = [], []
        for round_ in range(ROUNDS):
            fresh = tmp / f"round{round_}"
            fresh.mkdir()
            online_env = {**env, "NPUENV_UV_CACHE": str(fresh / "online-uv-cache")}
            online.append(timed([*invoke, "bootstrap", "--locked", "--root", str(fresh / "online"), "--wheels",
                                 str(fresh / "online-wheels"), "--ca-bundle", str(world.ca_pem), *common], online_env))
            offline_env = {**env, "NPUENV_UV_CACHE": str(fresh / "offline-uv-cache")}
            offline.append(timed(["unshare", "--net", "--", *invoke, "bootstrap", "--bundle", str(bundle), "--root",
                                  str(fresh / "offline"), "--wheels", str(fresh / "offline-wheels"), *common],
                                 offline_env))
    finally:
        world.server.stop()
    print(f"npuenv bundle benchmark ({os.cpu_count()} cores; cold bootstraps: medians of {ROUNDS})")
    row("invoke lock (sources up to date, universal uv lock)", f"{lock_seconds:.1f} s")
    row("invoke bundle (make it)", f"{bundle_seconds:.1f} s")
    row("bundle size", f"{bundle.stat().st_size / 1e6:.1f} MB")
    online_median, offline_median = statistics.median(online), statistics.median(offline)
    row("cold bootstrap, online, --locked", f"{online_median:.1f} s", " ".join(f"{s:.1f}" for s in online))
    row("cold bootstrap, from the bundle, no network", f"{offline_median:.1f} s",
        " ".join(f"{s:.1f}" for s in offline))
    row("ratio online / bundle", f"{online_median / offline_median:.2f} x", "goal > 1 (the bundle is faster)")


if __name__ == "__main__":
    main()
