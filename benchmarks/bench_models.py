"""models.fetch on a complete model (the no-op) and models.config, printed as numbers (not a test):
`uv run python benchmarks/bench_models.py`. Goal: both well under a second.

The hub: the world's stand-in (tests/world/hub.py) on loopback, serving the tiny InternVL2.5-2B-shaped model
with shards of 16 MiB. Measured end to end as `invoke models.fetch NAME` (start-up included), side by side:
the first fetch (download and verify), the no-op re-run (reads the marker and stats the files: no network,
no hashing), and `invoke --list` (the floor of any task); then generating every kind of config for every
size in-process, and `invoke models.config --kind model` end to end. PYTHONDONTWRITEBYTECODE is unset for
every side, as on a box.
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

from npuenv.models.configs import KINDS, Paths, generate, read_facts  # noqa: E402
from tests.world import internvl_configs as shapes  # noqa: E402
from tests.world.ca import make_ca  # noqa: E402
from tests.world.fixtures import clean_env  # noqa: E402
from tests.world.hub import HubServer  # noqa: E402
from tests.world.mm_examples import EXAMPLE_FILES  # noqa: E402
from tests.world.tiny_internvl import make_tiny_internvl  # noqa: E402

REPEAT = 5
NAME, HUB_ID = "InternVL2_5-2B", "OpenGVLab/InternVL2_5-2B"


def timed(argv: list, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return took


def invoke(*args: str) -> list:
    return [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args]


def workspace(folder: Path) -> Path:
    """A folder shaped like a workspace's MindSpeed-MM checkout with the world's templates."""
    for name, text in EXAMPLE_FILES.items():
        (folder / "MindSpeed-MM" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "MindSpeed-MM" / name).write_text(text)
    return folder


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        tmp_path = Path(tmp)
        ca = make_ca(tmp_path / "ca")
        env = {k: v for k, v in clean_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        with HubServer(ca.server_context()) as hub:
            files = make_tiny_internvl(shard_bytes=16 * 1024 * 1024)
            hub.add(HUB_ID, files)
            env.update({"NPUENV_PERSISTENT_ROOT": str(tmp_path), "NPUENV_USER": "", "HF_ENDPOINT": hub.url})
            fetch = invoke("models.fetch", NAME, "--ca-bundle", str(ca.ca_pem))
            cold = timed(fetch, env)
            hub.clear_requests()
            noop = statistics.median(timed(fetch, env) for _ in range(REPEAT))
            assert hub.requests == [], "the no-op asked the hub"
            floor = statistics.median(timed(invoke("--list"), env) for _ in range(REPEAT))
        size = sum(len(v) for v in files.values()) / 2 ** 20
        print(f"models.fetch, {len(files)} files, {size:.0f} MiB: first {cold:.2f} s, complete (no-op) {noop:.3f} s "
              f"(median of {REPEAT}), invoke --list {floor:.3f} s; no-op / --list = {noop / floor:.2f}x, "
              f"first / no-op = {cold / noop:.1f}x")

        templates = workspace(tmp_path / "ws") / "MindSpeed-MM" / "examples" / "internvl2.5"
        paths = Paths(*(tmp_path / p for p in ("m", "c", "d.json", "d", "s", "mj", "dj")))
        start = time.perf_counter()
        count = 0
        for size_name in shapes.SIZES:
            facts = read_facts(shapes.write_model(tmp_path / "shapes" / size_name, size_name))
            for kind in KINDS:
                if kind == "inference" and facts.size.pp > 1:
                    continue  # refused: a checkpoint in 16 stages has no single-file inference
                generate(kind, facts, templates, paths, devices=8, master_port=6000)
                count += 1
        in_process = (time.perf_counter() - start) / count
        (tmp_path / "models" / NAME).mkdir(parents=True, exist_ok=True)
        shapes.write_model(tmp_path / "models" / NAME, "2B")
        config = invoke("models.config", NAME, "--kind", "model", "--root", str(tmp_path / "ws"))
        end_to_end = statistics.median(timed(config, env) for _ in range(REPEAT))
        print(f"models.config: {count} files ({len(KINDS)} kinds x {len(shapes.SIZES)} sizes, no 78B inference) at {in_process * 1000:.2f} ms "
              f"each in-process; `invoke models.config --kind model` {end_to_end:.3f} s end to end "
              f"(median of {REPEAT}), {end_to_end / floor:.2f}x invoke --list")


if __name__ == "__main__":
    main()
