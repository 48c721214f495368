"""Start the hermetic test world and keep it up, to try npuenv by hand against it.

    uv run python benchmarks/world_shell.py
prints the world's URL, a spec pointing at it, the CA to pass with --ca-bundle and a Python 3.10.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.world.fixtures import build_world  # noqa: E402

WHEEL_CACHE = REPO / ".pytest_cache" / "d" / "npuenv-world-wheels"


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="npuenv-world-"))
    world = build_world(root, WHEEL_CACHE)
    spec = world.write_spec(root / "world.yaml")
    print(f"world at {world.url}\nspec {spec}\nca {world.ca_pem}\npython {world.python310}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        world.server.stop()


if __name__ == "__main__":
    main()
