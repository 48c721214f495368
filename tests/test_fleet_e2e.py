"""The fleet end to end: `fleet.run bootstrap` brings three real sshd nodes up from the hermetic world at once
(two share a wheelhouse, as nodes on one shared disk do; the third compiles apex and decord in its own), while
a fourth node's bootstrap fails and a fifth cannot be reached; then `fleet.diff` finds the three identical,
and after one node moves MindSpeed to another commit and another loses a package, names exactly those
differences and the node with another CANN. The NPU side of each node is a stand-in (tests/world/fleet.py);
everything else is real."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from npuenv.spec import load_spec
from npuenv.workspace import uv_binary
from tests.test_fleet import PATH, Nodes
from tests.world.fixtures import DEFAULT_SPEC
from tests.world.sshd import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(world, tmp_path_factory):
    if not world.python310:
        raise RuntimeError("the fleet end-to-end test needs a CPython 3.10 for the target env (.ci/run finds one)")
    tmp = tmp_path_factory.mktemp("fleet")
    nodes = Nodes(tmp, 4, cann={"n1": "8.0.RC2"}, start=False)
    for index, node in enumerate(nodes.hw, start=2):
        # no device files: the world's stand-in torch_npu wheel has no NPUs to smoke-test (tests/test_smoke.py
        # runs the smoke test on stand-in NPUs); npu-smi still answers for fleet.diff
        env = {**node.env(nodes.network, PATH), "NPUENV_DEVICE_GLOB": str(tmp / "no-devices" / "davinci[0-9]*")}
        if node.name == "n4":  # its network to the world is broken: every fetch goes to a dead proxy
            env.update(HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
        nodes.ssh.start(node.name, index, env)
    (nodes.ssh.ssh_dir / "config").open("a").write(f"Host n5\n  HostName 127.0.0.9\n  Port {free_port('127.0.0.9')}\n\n")
    roots = {f"n{i}": {"root": str(tmp / "nodes" / f"n{i}" / "ws")} for i in range(1, 6)}
    nodes.hosts = nodes.ssh.hosts_file(tmp / "hosts.yaml", roots)
    spec = world.write_spec(tmp / "world.yaml")
    args = f"--spec {spec} --python {world.python310} --ca-bundle {world.ca_pem} --wheels"
    # n3 compiles apex and decord in a wheelhouse of its own, at the same time: a node with its own disk
    apart = nodes.ssh.hosts_file(tmp / "apart.yaml", {"n3": roots["n3"]})
    shared = nodes.ssh.hosts_file(tmp / "shared.yaml", {n: r for n, r in roots.items() if n != "n3"})
    with ThreadPoolExecutor(1) as pool:
        alone = pool.submit(nodes.json, "fleet.run", "bootstrap", "-H", str(apart),
                            "--args", f"{args} {tmp / 'n3-wheels'}")
        together = nodes.json("fleet.run", "bootstrap", "-H", str(shared), "--args", f"{args} {tmp / 'wheels'}")
        nodes.bootstrapped = [together, alone.result()]
    yield nodes
    nodes.stop()


def test_bootstrap_runs_on_every_node_at_once_and_each_outcome_is_its_own(fleet):
    (code, report), (alone_code, alone) = fleet.bootstrapped
    by_node = {n["node"]: n for n in report["nodes"] + alone["nodes"]}
    assert (code, alone_code) == (1, 0)
    for name in ("n1", "n2", "n3"):
        assert by_node[name]["status"] == "ok", by_node[name]["stdout"][-2000:] + by_node[name]["stderr"][-2000:]
        assert (Path(fleet.hosts.parent) / "nodes" / name / "ws" / "MindSpeed-MM" / ".venv" / "bin" / "python").exists()
    assert by_node["n4"]["status"] == "failed" and by_node["n4"]["exit_code"] != 0
    # the first failure is bootstrap's own error line: the first step that needed the network
    assert by_node["n4"]["reason"].startswith("step repo:") and "cannot reach" in by_node["n4"]["reason"]
    assert (by_node["n5"]["status"], by_node["n5"]["reason"]) == ("unreachable", "refused")


def test_diff_finds_the_bootstrapped_nodes_identical_then_names_exactly_what_was_changed(fleet, tmp_path):
    three = fleet.ssh.hosts_file(tmp_path / "three.yaml", {
        f"n{i}": {"root": str(Path(fleet.hosts.parent) / "nodes" / f"n{i}" / "ws")} for i in (1, 2, 3)})
    code, report = fleet.json("fleet.diff", "-H", str(three))
    assert [(d["key"], d["outliers"]) for d in report["differences"]] == [("system.cann", {"n1": "8.0.RC2"})]
    snapshot = report["nodes"]["n2"]["snapshot"]
    assert snapshot["workspace"]["repos"]["mindspeed"] and snapshot["target"]["packages"]["torch"].startswith("2.1.0")
    assert snapshot["system"]["python"].startswith("3.10")
    # compiled twice, in two places (n3 apart): the same build by its content key, not by its bytes
    assert snapshot["target"]["records"]["apex"] == f"built {snapshot['workspace']['builds']['apex'][0]}"

    ws = Path(fleet.hosts.parent) / "nodes"
    mindspeed = ws / "n2" / "ws" / load_spec(DEFAULT_SPEC).repos["mindspeed"].path
    subprocess.run(["git", "-C", str(mindspeed), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "a local commit on n2"], check=True)
    moved = subprocess.run(["git", "-C", str(mindspeed), "rev-parse", "HEAD"], capture_output=True, text=True,
                           check=True).stdout.strip()
    gone = sorted(p for p in snapshot["target"]["packages"] if p not in ("torch", "torch-npu"))[0]
    venv_python = ws / "n3" / "ws" / "MindSpeed-MM" / ".venv" / "bin" / "python"
    subprocess.run([uv_binary(), "pip", "uninstall", "-q", "--python", str(venv_python), gone], check=True)

    code, report = fleet.json("fleet.diff", "-H", str(three))
    assert code == 1
    assert sorted((d["key"], d["expected"], tuple(d["outliers"].items())) for d in report["differences"]) == sorted([
        ("system.cann", "8.0.RC3", (("n1", "8.0.RC2"),)),
        ("workspace.repos.mindspeed", snapshot["workspace"]["repos"]["mindspeed"], (("n2", moved),)),
        (f"target.packages.{gone}", snapshot["target"]["packages"][gone], (("n3", "(missing)"),)),
        (f"target.records.{gone}", snapshot["target"]["records"][gone], (("n3", "(missing)"),))])
