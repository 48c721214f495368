"""The fleet tasks against real OpenSSH servers: a private sshd per node on 127.0.0.x (tests/world/sshd.py),
Fabric connecting for real with a key made here and host keys checked, and npuenv itself answering on each
node. The NPU side of each node is a stand-in (tests/world/fleet.py: device files, npu-smi, hccn_tool, CANN),
so that nodes can be made to differ; everything between the nodes is real."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from npuenv.fleet.remote import remote_line
from tests.test_reaper import holders, wait_for
from tests.world.fixtures import clean_env
from tests.world.fleet import device_ip, make_node, write_network
from tests.world.sshd import SshFleet, free_port, keygen

NPUENV = str(Path(sys.executable).parent / "npuenv")
PATH = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"


class Nodes:
    """`count` stand-in nodes n1.. behind their own sshd; `cann` maps a node to another CANN version."""

    def __init__(self, tmp_path: Path, count: int, cann: dict = None, start: bool = True) -> None:
        self.tmp = tmp_path
        self.ssh = SshFleet(tmp_path)
        self.hw = [make_node(tmp_path / "hw" / f"n{i}", f"n{i}", i, cann_version=(cann or {}).get(f"n{i}", "8.0.RC3"))
                   for i in range(1, count + 1)]
        self.network = write_network(tmp_path / "network.json", self.hw)
        if start:
            for index, node in enumerate(self.hw, start=2):
                self.ssh.start(node.name, index, node.env(self.network, PATH))
        self.hosts = self.ssh.hosts_file(tmp_path / "hosts.yaml", {n.name: {} for n in self.hw})

    def npuenv(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = self.ssh.client_env(clean_env())
        env.pop("NPUENV_USER", None)
        return subprocess.run([NPUENV, *argv], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout)

    def json(self, *argv: str) -> tuple[int, dict]:
        proc = self.npuenv(*argv, "--json")
        return proc.returncode, json.loads(proc.stdout)

    def stop(self) -> None:
        self.ssh.stop()


@pytest.fixture
def nodes(tmp_path):
    made = []

    def make(count: int, **kwargs) -> Nodes:
        made.append(Nodes(tmp_path, count, **kwargs))
        return made[-1]

    yield make
    for fleet in made:
        fleet.stop()


def test_the_remote_line_carries_every_argument_unchanged_through_a_real_shell(tmp_path):
    words = ["printf", "%s\\n", "two words", "it's", '"quoted"', "$(touch pwned)", "`id`", "a;b", "*", ""]
    line = remote_line(None, words)
    proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout.split("\n")[:-1] == words[2:]
    assert not (tmp_path / "pwned").exists()


def test_fleet_run_reports_each_node_apart_and_the_others_finish(nodes, tmp_path):
    fleet = nodes(1)
    wrong = tmp_path / "other-key"
    fleet.ssh.start("badkey", 3, fleet.hw[0].env(fleet.network, PATH), authorized=keygen(wrong))
    (fleet.ssh.ssh_dir / "config").open("a").write(
        f"Host refused\n  HostName 127.0.0.4\n  Port {free_port('127.0.0.4')}\n\n"
        "Host nodns\n  HostName no-such-node.invalid\n\n")
    silent = socket.socket()  # accepts TCP, never says a word of SSH: a hung node
    silent.bind(("127.0.0.5", 0))
    silent.listen(8)
    (fleet.ssh.ssh_dir / "config").open("a").write(f"Host hung\n  HostName 127.0.0.5\n  Port {silent.getsockname()[1]}\n\n")
    unknown = fleet.ssh.start("unknown", 6, fleet.hw[0].env(fleet.network, PATH))
    known = (fleet.ssh.ssh_dir / "known_hosts").read_text().splitlines()
    (fleet.ssh.ssh_dir / "known_hosts").write_text("\n".join(l for l in known if f":{unknown.port} " not in l) + "\n")
    hosts = fleet.ssh.hosts_file(tmp_path / "all.yaml", {n: {} for n in ("n1", "badkey", "refused", "nodns", "hung",
                                                                           "unknown")})
    try:
        code, report = fleet.json("fleet.run", "doctor", "-H", str(hosts), "--args", "--check npu.smi",
                                  "--timeout", "2")
    finally:
        silent.close()
    by_node = {n["node"]: n for n in report["nodes"]}
    assert code == 1 and report["ok"] is False
    assert list(by_node) == ["n1", "badkey", "refused", "nodns", "hung", "unknown"]  # the hosts file's order
    assert by_node["n1"]["status"] == "ok" and "npu.smi" in by_node["n1"]["stdout"]
    assert {n: (v["status"], v["reason"]) for n, v in by_node.items() if n != "n1"} == {
        "badkey": ("unreachable", "auth"), "refused": ("unreachable", "refused"), "nodns": ("unreachable", "dns"),
        "hung": ("unreachable", "timeout"), "unknown": ("unreachable", "hostkey")}
    assert "ssh NODE" in by_node["unknown"]["hint"] and "known_hosts" in by_node["unknown"]["detail"]


def test_fleet_run_names_each_failed_node_and_its_first_failure(nodes):
    fleet = nodes(2)
    proc = fleet.npuenv("fleet.run", "doctor", "-H", str(fleet.hosts), "--args", "--check cann.sourced,npu.smi")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("  n1 ", "  n2 "))]
    assert len(rows) == 2 and all("failed (exit 1)" in r and "cann.sourced" in r and "set_env.sh" in r for r in rows)
    assert "doctor: 2 of 2 node(s) did not succeed" in proc.stdout


def test_fleet_run_refuses_a_task_it_does_not_carry_and_a_bad_hosts_file(nodes, tmp_path):
    fleet = nodes(1, start=False)
    proc = fleet.npuenv("fleet.run", "lock", "-H", str(fleet.hosts))
    assert proc.returncode == 2 and "not a task fleet.run carries" in proc.stderr and "bootstrap" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes:\n  n1: {hots: x}\n")
    proc = fleet.npuenv("fleet.run", "doctor", "-H", str(bad))
    assert proc.returncode == 2 and f"{bad}:2" in proc.stderr and "did you mean 'host'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = fleet.npuenv("fleet.run", "doctor")
    assert proc.returncode == 2 and "-H FILE" in proc.stderr


def test_fleet_diff_names_exactly_the_node_with_another_cann(nodes, tmp_path):
    fleet = nodes(3, cann={"n3": "8.0.RC2"})
    code, report = fleet.json("fleet.diff", "-H", str(fleet.hosts))
    assert code == 1
    assert [(d["key"], d["expected"], d["outliers"]) for d in report["differences"]] == [
        ("system.cann", "8.0.RC3", {"n3": "8.0.RC2"})]
    assert report["nodes"]["n1"]["snapshot"]["npu"] == {"count": 2, "health": {"0": "OK", "1": "OK"}}
    proc = fleet.npuenv("fleet.diff", "-H", str(fleet.hosts))
    assert "system\n  cann: 8.0.RC3  (2 node(s))\n    n3: 8.0.RC2\n" in proc.stdout
    assert "1 difference(s) across 3 node(s)" in proc.stdout


def test_fleet_diff_saves_snapshots_and_names_what_changed_since(nodes, tmp_path):
    fleet = nodes(2)
    saved = tmp_path / "before.json"
    proc = fleet.npuenv("fleet.diff", "-H", str(fleet.hosts), "--save", str(saved))
    assert proc.returncode == 0 and "no differences across 2 node(s)" in proc.stdout, proc.stdout + proc.stderr
    assert set(json.loads(saved.read_text())["nodes"]) == {"n1", "n2"}
    (fleet.hw[1].cann.driver / "version.info").write_text("Version=24.1.0\n")
    code, report = fleet.json("fleet.diff", "-H", str(fleet.hosts), "--against", str(saved))
    assert code == 1 and report["against"] == str(saved)
    assert [(d["key"], d["expected"], d["outliers"]) for d in report["differences"]] == [
        ("system.driver", "24.1.rc3", {"n2": "24.1.0"})]
    proc = fleet.npuenv("fleet.diff", "-H", str(fleet.hosts), "--against", str(saved))
    assert "system\n  driver: 24.1.rc3  (saved)\n    n2: 24.1.0\n" in proc.stdout
    assert f"1 difference(s) against {saved} across 2 node(s)" in proc.stdout
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{}")
    proc = fleet.npuenv("fleet.diff", "-H", str(fleet.hosts), "--against", str(garbage))
    assert proc.returncode == 2 and "not a snapshot file" in proc.stderr


def test_fleet_hccl_names_a_link_down_and_an_unreachable_device_ip(nodes):
    fleet = nodes(3)
    fleet.hw[1].set_device(1, link="DOWN")
    write_network(fleet.network, fleet.hw, cut=[device_ip(3, 0)])
    code, report = fleet.json("fleet.hccl", "-H", str(fleet.hosts), "--port", str(free_port("0.0.0.0")))
    assert code == 1 and report["ready"] is False
    assert sorted(report["problems"]) == sorted([
        "n2 device 1: link DOWN",
        f"n1 device 0 -> n3 {device_ip(3, 0)}: 0 of 3 replies",
        f"n2 device 0 -> n3 {device_ip(3, 0)}: 0 of 3 replies",
        f"n1 device 1 -> n2 {device_ip(2, 1)}: 0 of 3 replies",
        f"n3 device 1 -> n2 {device_ip(2, 1)}: 0 of 3 replies",
        f"n2 device 1 -> n1 {device_ip(1, 1)}: 0 of 3 replies",
        f"n2 device 1 -> n3 {device_ip(3, 1)}: 0 of 3 replies"])
    assert report["master"]["listening"] and all(r["ok"] for r in report["master"]["reach"].values())


def test_fleet_hccl_writes_the_rank_table_when_ready_and_checks_it_later(nodes, tmp_path):
    fleet = nodes(2)
    fleet.hw[0].make_busy(1)  # answered "busy" once: asked again, not a failure
    table = tmp_path / "rank_table.json"
    port = str(free_port("0.0.0.0"))
    proc = fleet.npuenv("fleet.hccl", "-H", str(fleet.hosts), "--port", port, "--rank-table", str(table))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ready for a multi-node job" in proc.stdout and f"rank table written to {table}" in proc.stdout
    written = json.loads(table.read_text())
    assert written["server_count"] == "2"
    assert [[(d["device_id"], d["device_ip"], d["rank_id"]) for d in s["device"]] for s in written["server_list"]] == [
        [("0", device_ip(1, 0), "0"), ("1", device_ip(1, 1), "1")],
        [("0", device_ip(2, 0), "2"), ("1", device_ip(2, 1), "3")]]
    assert [s["server_id"] for s in written["server_list"]] == ["127.0.0.2", "127.0.0.3"]
    fleet.hw[1].set_device(1, ip="10.10.101.77")  # re-addressed since: the table no longer matches
    write_network(fleet.network, fleet.hw)
    code, report = fleet.json("fleet.hccl", "-H", str(fleet.hosts), "--port", port, "--rank-table", str(table))
    assert code == 1 and json.loads(table.read_text()) == written  # a given table is checked, never rewritten
    assert any(p.startswith(str(table)) and "10.10.101.77" in p for p in report["problems"]), report["problems"]
    assert "n2 device 1: IP 10.10.101.77 but /etc/hccn.conf says" in " ".join(report["problems"])


def test_fleet_hccl_names_a_master_port_already_taken(nodes):
    fleet = nodes(2)
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen(1)
    try:
        code, report = fleet.json("fleet.hccl", "-H", str(fleet.hosts), "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert code == 1 and not report["master"]["listening"]
    assert any(p.startswith("n1 (master): cannot listen on port") for p in report["problems"]), report["problems"]


def test_the_node_side_tasks_answer_alone(tmp_path):
    hw = make_node(tmp_path / "hw", "solo", 1)
    network = write_network(tmp_path / "network.json", [hw])
    env = {**clean_env(), **hw.env(network, PATH)}
    proc = subprocess.run([NPUENV, "fleet.hccn", "--ping", f"1={device_ip(1, 1)}", "--ping", "0=10.9.9.9"],
                          env=env, capture_output=True, text=True, check=True)
    probed = json.loads(proc.stdout)
    assert probed["devices"]["0"] == {"ip": device_ip(1, 0), "netmask": "255.255.255.0", "link": "UP",
                                      "health": "Success", "errors": []}
    assert [(p["device"], p["address"], p["ok"]) for p in probed["pings"]] == [
        (0, "10.9.9.9", False), (1, device_ip(1, 1), True)]
    proc = subprocess.run([NPUENV, "fleet.hccn", "--ping", "zero=1.2.3.4"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "--ping zero=1.2.3.4: expected DEVICE=ADDRESS" in proc.stderr
    port = str(free_port("0.0.0.0"))
    listener = subprocess.Popen([NPUENV, "fleet.port", "--listen", port, "--expect", "1"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert listener.stderr.readline() == f"listening on port {port}\n"  # the event: it listens now
    reached = subprocess.run([NPUENV, "fleet.port", "--reach", f"127.0.0.1:{port}"], env=env, capture_output=True,
                             text=True, check=True)
    assert json.loads(reached.stdout) == {"address": "127.0.0.1", "port": int(port), "ok": True, "error": ""}
    out, _ = listener.communicate(timeout=60)
    assert json.loads(out) == {"listening": True, "port": int(port), "peers": ["127.0.0.1"]}


def test_a_node_with_a_persons_init_sh_runs_the_task_through_it_and_its_json_arrives_clean(nodes, tmp_path):
    fleet = nodes(2)
    work = tmp_path / "work"
    work.mkdir()
    env = {**clean_env(), **fleet.hw[0].env(fleet.network, PATH)}
    subprocess.run([NPUENV, "user.add", "alice", "--root", str(work), "--shell", "bash"], env=env, check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)
    hosts = fleet.ssh.hosts_file(tmp_path / "alice.yaml", {"n1": {"root": str(work / "alice")}, "n2": {}})
    code, report = fleet.json("fleet.run", "doctor", "-H", str(hosts), "--args", "--check isolation.tag")
    by_node = {n["node"]: n for n in report["nodes"]}
    assert by_node["n1"]["status"] == "ok" and "NPUENV_USER=alice" in by_node["n1"]["stdout"]
    assert "NPUENV_USER is not set" in by_node["n2"]["stdout"]  # no init.sh there: a warning, not a failure
    code, report = fleet.json("fleet.diff", "-H", str(hosts))
    assert report["nodes"]["n1"]["status"] == "ok"  # through init.sh: stdout held the JSON alone
    assert set(report["nodes"]["n1"]["snapshot"]["workspace"]["repos"].values()) == {None}  # not bootstrapped


def test_a_node_without_a_root_takes_the_persons_default_workspace():
    from npuenv.fleet.hosts import Node
    from npuenv.fleet.remote import Options
    from npuenv.fleet.runs import Fleet, task_argv

    fleet = Fleet((Node("a", "a", root="/data/ws"), Node("b", "b")), Options(), user="alice")
    assert [fleet.root_of(n) for n in fleet.nodes] == ["/data/ws", "/home/ma-user/work/alice"]
    assert Fleet(fleet.nodes, Options()).root_of(fleet.nodes[1]) is None
    assert task_argv("bootstrap", ["--spec", "x"], "/r") == ["bootstrap", "--root", "/r", "--spec", "x"]
    assert task_argv("doctor", ["--root=/mine"], "/r") == ["doctor", "--root=/mine"]
    assert task_argv("kill-npu", [], "/r") == ["kill-npu"]


def test_ctrl_c_closes_every_connection_at_once_and_exits_130(nodes, tmp_path):
    fleet = nodes(2)
    token = f"npuenv-fleet-test-{tmp_path.name}"
    # the node's "npuenv" holds the task for a long time: only Ctrl-C ends fleet.run early
    hosts = fleet.ssh.hosts_file(tmp_path / "slow.yaml", {n: {} for n in ("n1", "n2")},
                                 defaults={"npuenv": [sys.executable, "-c", "import time; time.sleep(3600)", token]})
    env = fleet.ssh.client_env(clean_env())
    proc = subprocess.Popen([NPUENV, "fleet.run", "doctor", "-H", str(hosts)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(holders(token)) == 2)  # both nodes are running it: the event itself
        proc.send_signal(2)  # SIGINT, as Ctrl-C sends it
        out, err = proc.communicate(timeout=60)  # a guard against a hang, not a measure of speed
    finally:
        for pid in holders(token):
            os.kill(pid, 9)
    assert proc.returncode == 130 and "interrupted" in err


def test_fleet_diff_against_a_lock_names_what_it_pins_and_the_nodes_lack(nodes, tmp_path):
    from npuenv import lockfile

    fleet = nodes(2)
    data = {"spec": {"name": "s", "file": "s.yaml", "sha256": "a" * 64}, "uv": {"arches": ["x86_64", "aarch64"]},
            "repos": {"mindspeed": {"commit": "3f09d67" + "0" * 33}}}
    lock = lockfile.write(tmp_path / "s.yaml", data, 'version = 1\n\n[[package]]\nname = "torch"\nversion = "2.1.0"\n')
    code, report = fleet.json("fleet.diff", "-H", str(fleet.hosts), "--lock", str(lock.path))
    by_key = {d["key"]: d for d in report["differences"]}
    assert code == 1 and report["against"] == str(lock.path)
    assert by_key["workspace.repos.mindspeed"]["expected"] == "3f09d67" + "0" * 33
    assert by_key["workspace.repos.mindspeed"]["outliers"] == {"n1": "(missing)", "n2": "(missing)"}
    assert by_key["target.packages.torch"]["reference"] is True
    (tmp_path / "s.uv.lock").write_text("changed by hand\n")
    proc = fleet.npuenv("fleet.diff", "-H", str(fleet.hosts), "--lock", str(lock.path))
    assert proc.returncode != 0 and "changed by hand" in proc.stderr and "Traceback" not in proc.stderr
    proc = fleet.npuenv("fleet.diff", "-H", str(fleet.hosts), "--lock", str(tmp_path / "none.lock"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_on_a_terminal_each_node_has_a_live_line_redrawn_in_place(nodes):
    import pty

    fleet = nodes(2)
    leader, follower = pty.openpty()
    env = fleet.ssh.client_env(clean_env())
    proc = subprocess.Popen([NPUENV, "fleet.run", "doctor", "-H", str(fleet.hosts), "--args", "--check npu.smi"],
                            env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the program ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait()
    os.close(leader)
    screen = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "\x1b[2F" in screen  # back up over the two node lines to redraw them
    assert "\x1b[Kn1  ✓ ok in" in screen and "\x1b[Kn2  ✓ ok in" in screen
    assert "doctor succeeded on all 2 node(s)" in screen
