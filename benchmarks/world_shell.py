"""Start the hermetic test world and keep it up (for trying npuenv by hand): prints its spec and env."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.world.fixtures import build_world  # noqa: E402


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="npuenv-world-"))
    world = build_world(root, Path(__file__).resolve().parents[1] / ".pytest_cache" / "d" / "npuenv-world-wheels")
    arch = os.uname().machine
    spec = {
        "extends": str(Path(__file__).resolve().parents[1] / "env_specs" / "mindspeed-mm-internvl2.5.yaml"),
        "mirrors": world.mirrors,
        "repos": {n: {"commit": c} for n, c in world.commits.items()},
        "wheels": {"torch_npu": {"files": {arch: {"filename": world.torch_npu_file,
                                                  "sha256": world.wheel_sha256[world.torch_npu_file]}}}},
    }
    (root / "world.yaml").write_text(json.dumps(spec, indent=2))
    print(f"world at {world.url}\nspec {root / 'world.yaml'}\nca {world.ca_pem}\npython {world.python310}",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        world.server.stop()


if __name__ == "__main__":
    main()
