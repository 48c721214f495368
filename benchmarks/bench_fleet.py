"""fleet.diff over 8 nodes against over 1, printed as numbers (not a test): `uv run python
benchmarks/bench_fleet.py` (as root, like the tests: it starts private sshd instances on 127.0.0.2..9).

Each node is a real sshd with its own stand-in NPUs, CANN and hccn_tool (tests/world/fleet.py), reached
through Fabric with host keys checked; each answers with npuenv's own `fleet.snapshot`. Measured end to end
(`npuenv fleet.diff -H hosts`, start-up included), side by side, the median of a few runs each: one node,
8 nodes, and `npuenv --list` (the floor of any task). Goal: 8 nodes under 2 s, and under 1.5x one node, since
nodes are asked at once. PYTHONDONTWRITEBYTECODE is unset for every side, as on a box.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.world.fixtures import clean_env  # noqa: E402
from tests.world.fleet import make_node, write_network  # noqa: E402
from tests.world.sshd import SshFleet  # noqa: E402

REPEAT = 5
NODES = 8
NPUENV = str(Path(sys.executable).parent / "npuenv")
PATH = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"


def timed(argv: list, env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children here)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(argv: list, env: dict) -> tuple[float, float]:
    timed(argv, env)  # warm: the nodes' first run writes their bytecode, as a box's first run does
    runs = [timed(argv, env) for _ in range(REPEAT)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ssh = SshFleet(base)
        try:
            hw = [make_node(base / "hw" / f"n{i}", f"n{i}", i) for i in range(1, NODES + 1)]
            network = write_network(base / "network.json", hw)
            for index, node in enumerate(hw, start=2):
                ssh.start(node.name, index, {**node.env(network, PATH)})
            one = ssh.hosts_file(base / "one.yaml", {"n1": {}})
            many = ssh.hosts_file(base / "many.yaml", {n.name: {} for n in hw})
            env = ssh.client_env(clean_env())
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env.pop("NPUENV_USER", None)
            floor, _ = median([NPUENV, "--list"], env)
            single, _ = median([NPUENV, "fleet.diff", "-H", str(one)], env)
            fleet, controller = median([NPUENV, "fleet.diff", "-H", str(many)], env)
            node_env = {**clean_env(), **hw[0].env(network, PATH), "HOME": str(base / "nodes" / "n1" / "home")}
            node_env.pop("PYTHONDONTWRITEBYTECODE", None)
            _, snapshot_cpu = median([NPUENV, "fleet.snapshot"], node_env)
        finally:
            ssh.stop()
    cores = os.cpu_count() or 1
    shared = (NODES - 1) * snapshot_cpu / cores  # what 7 more nodes' npuenv cost on the cores they share here
    print(f"npuenv --list (floor)                     {floor:6.2f} s")
    print(f"fleet.diff, 1 node                        {single:6.2f} s")
    print(f"fleet.diff, {NODES} nodes                       {fleet:6.2f} s   "
          f"({fleet / single:.2f}x one node; goal: under 2 s and under 1.5x)")
    print(f"  the controller's own CPU ({NODES} nodes)        {controller:6.2f} s")
    print(f"  one node's fleet.snapshot, CPU            {snapshot_cpu:6.2f} s")
    print(f"  {NODES - 1} more nodes' snapshots on {cores} shared cores {shared:6.2f} s (own cores on a real fleet)")
    print(f"{NODES} nodes less that, against 1 node         {(fleet - shared) / single:6.2f}x")


if __name__ == "__main__":
    main()
