"""kill-npu on real processes: holders of stand-in device files, a stand-in npu-smi, real signals.

Safety: the code under test sees only this test's processes. The device glob points into the test's temp
folder, the stand-in npu-smi lists only PIDs the test registered (plus a PID above the kernel's limit, so
never a real process), and the plan signals only processes seen holding a device file, and their trees,
which stop below the test process. Cleanup SIGKILLs only processes the lab started, by PID and start time.

Every holder records the SIGTERM it receives (tests/world/npu.py), so the tests check what the table says
against what really happened: a row that says stop was signalled and is gone, a row that says skip was never
signalled and still runs (`assert_the_table_is_the_truth`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from npuenv.npu import kill as killnpu
from npuenv.errors import UsageError
from npuenv.npu.kill import (DECLINED, DRY_RUN, HOST_PID, NOTHING_TO_STOP, SKIP, STOP, STOPPED, Config, KillResult,
                             StopReport, carry_out, discover, make_plan, recheck, stop, survey)
from npuenv.render import kill_npu as render
from npuenv.npu.procs import ProcessTable, read_stat, short_command
from tests.world.npu import NpuLab

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lab(tmp_path):
    lab = NpuLab(tmp_path / "npu")
    yield lab
    lab.cleanup()


def rows_by_pid(plan):
    return {r.pid: r for r in plan.rows}


def states(device_states):
    return {s.device: sorted(r.pid for r in s.holders) for s in device_states}


def test_default_stops_only_the_callers_tagged_trees(lab):
    alice, stubborn, bob, untagged = lab.start_many([
        dict(tag="alice", devices=[0], children=[dict(devices=[1]), dict()]),
        dict(tag="alice", devices=[1], ignore_term=True),
        dict(tag="bob", devices=[2]),
        dict(devices=[2]),
    ])
    host = lab.list_host_pid(3)
    config = lab.config()

    plan = make_plan(discover(config), user="alice")

    rows = rows_by_pid(plan)
    assert {t.pid for t in plan.targets} == set(alice.tree()) | {stubborn.pid}
    assert sorted(plan.roots) == sorted([alice.pid, stubborn.pid])
    assert [t.pid for t in plan.targets if t.root == alice.pid][-1] == alice.pid, "children before the root"
    assert rows[alice.children[0].pid].root == alice.pid
    assert rows[bob.pid].action == SKIP and rows[bob.pid].reason.startswith("bob's")
    assert rows[untagged.pid].action == SKIP and rows[untagged.pid].reason.startswith("untagged")
    assert rows[host].action == SKIP and rows[host].reason == HOST_PID
    assert rows[alice.pid].action == STOP
    assert rows[alice.pid].seen_by == "npu-smi, /proc" and rows[alice.pid].memory_mb == 1000

    report = stop(plan, grace=0.5)

    assert report.killed == [stubborn.pid]
    assert sorted(report.terminated) == sorted(alice.tree())
    assert not report.survivors
    assert not any(lab.alive(p) for p in [alice, *alice.children, stubborn])
    assert lab.alive(bob) and lab.alive(untagged)
    after = states(recheck(config, plan, stopped=[t.pid for t in plan.targets]))
    assert after == {0: [], 1: [], 2: sorted([bob.pid, untagged.pid]), 3: [host]}


def test_all_stops_everyone_but_never_a_host_pid(lab):
    processes = lab.start_many([dict(tag="alice", devices=[0]), dict(tag="bob", devices=[1]),
                                dict(devices=[2], children=[dict(devices=[2])])])
    host = lab.list_host_pid(3)
    config = lab.config()

    plan = make_plan(discover(config), user="alice", all_users=True)
    assert {t.pid for t in plan.targets} == {pid for p in processes for pid in p.tree()}
    assert host not in {t.pid for t in plan.targets}

    report = stop(plan, grace=2)
    assert not report.killed and not report.survivors
    assert all(lab.gone(p) for p in processes)
    assert states(recheck(config, plan)) == {0: [], 1: [], 2: [], 3: [host]}


def test_device_filter_stops_only_the_trees_on_that_npu(lab):
    on0, on1 = lab.start_many([dict(tag="alice", devices=[0]), dict(tag="alice", devices=[1])])
    plan = make_plan(discover(lab.config()), user="alice", devices=[1])

    assert [t.pid for t in plan.targets] == [on1.pid]
    assert {r.device for r in plan.rows} == {1} and plan.devices == [1]
    stop(plan, grace=2)
    assert lab.gone(on1) and lab.alive(on0)
    with pytest.raises(UsageError, match="no NPU 7"):
        make_plan(discover(lab.config()), user="alice", devices=[7])


def test_workers_started_during_the_grace_period_are_killed_too(lab):
    launcher = lab.start(tag="alice", devices=[0], respawn=True)
    plan = make_plan(discover(lab.config()), user="alice")
    assert [t.pid for t in plan.targets] == [launcher.pid]

    report = stop(plan, grace=0.5)

    spawned = lab.spawned()
    assert len(spawned) == 1, "the launcher answered SIGTERM with a new worker"
    worker = spawned[0][0]
    assert sorted(report.killed) == sorted([launcher.pid, worker])
    assert not report.survivors
    stat = read_stat(worker)
    assert stat is None or stat.starttime != spawned[0][1] or stat.zombie


def test_no_user_and_no_all_is_refused(lab):
    lab.start(tag="alice", devices=[0])
    with pytest.raises(UsageError) as caught:
        make_plan(discover(lab.config()), user=None)
    assert "--user" in caught.value.hint and "--all" in caught.value.hint


def test_zombie_in_a_tree_is_reported_and_left_to_init(lab):
    parent = lab.start(tag="alice", devices=[0], zombie=True)
    plan = make_plan(discover(lab.config()), user="alice")

    assert [z.pid for z in plan.zombies] == [parent.zombie]
    assert parent.zombie not in {t.pid for t in plan.targets}
    report = stop(plan, grace=2)
    assert lab.gone(parent)
    fates = {z.pid: z for z in report.zombies}
    # The parent's death hands the zombie to init, which reaps it (or it is reported with its parent).
    assert fates[parent.zombie].fate == "reaped" or fates[parent.zombie].ppid != parent.pid


def test_zombie_whose_parent_is_the_caller_is_reaped(lab):
    dead = lab.start(tag="alice", devices=[1], exit=True)  # exits; the test (its parent) does not reap it
    lab.gone(dead, reap=False)
    assert read_stat(dead.pid).zombie
    config = lab.config()

    plan = make_plan(discover(config), user="alice")
    row = rows_by_pid(plan)[dead.pid]
    assert row.action == SKIP and row.reason.startswith(f"zombie: exited, not reaped by its parent {os.getpid()}")
    assert not plan.targets

    report = stop(plan, grace=1)
    assert [(z.pid, z.fate) for z in report.zombies] == [(dead.pid, "reaped by kill-npu (its parent)")]
    assert read_stat(dead.pid) is None
    assert states(recheck(config, plan))[1] == []


def test_pid_1_the_caller_and_its_ancestors_are_never_targeted(lab, tmp_path):
    shell = lab.start(tag="alice", devices=[0], children=[dict(devices=[1])])
    caller = shell.children[0]  # plays kill-npu: its parent `shell` is its ancestor, and so is this test
    lab.list(1, 3)
    lab.list(os.getpid(), 2)
    with open(lab.device(2), "rb"):  # the test process itself holds NPU 2
        snapshot = discover(lab.config())
        as_child = make_plan(snapshot, user=None, all_users=True, caller=caller.pid)
        as_test = make_plan(snapshot, user=None, all_users=True)

    rows = rows_by_pid(as_child)
    assert rows[caller.pid].reason == "kill-npu itself"
    assert rows[shell.pid].reason.startswith("an ancestor of kill-npu")
    assert rows[os.getpid()].reason.startswith("an ancestor of kill-npu")
    assert rows[1].reason.startswith("PID 1")
    assert as_child.targets == []

    rows = rows_by_pid(as_test)
    assert rows[os.getpid()].reason == "kill-npu itself" and rows[1].action == SKIP
    assert {t.pid for t in as_test.targets} == set(shell.tree())
    never = {1, os.getpid(), *ProcessTable().ancestors(os.getpid())}
    assert not never & {t.pid for t in as_test.targets}


def test_npu_smi_pid_that_holds_no_device_here_is_not_signalled(lab):
    idle = lab.start(tag="alice", devices=[], list=False)
    lab.list(idle.pid, 0)  # npu-smi says it is on NPU 0, but it has no device file open here
    plan = make_plan(discover(lab.config()), user="alice")
    assert rows_by_pid(plan)[idle.pid].reason.startswith("visible here but holds no device file")
    assert plan.targets == []


def test_tree_roots_stop_at_session_leaders_tag_changes_and_process_groups(lab):
    setsid, mixed, untagged, own_group = lab.start_many([
        dict(tag="alice", new_session=True, children=[dict(devices=[0])]),
        dict(tag="alice", children=[dict(tag="bob", devices=[1])]),
        dict(children=[dict(devices=[2])]),
        dict(children=[dict(devices=[3], new_pgrp=True)]),
    ])
    plan = make_plan(discover(lab.config()), user=None, all_users=True)
    roots = {r.pid: r.root for r in plan.rows}
    assert roots[setsid.children[0].pid] == setsid.children[0].pid   # parent is a session leader
    assert roots[mixed.children[0].pid] == mixed.children[0].pid     # bob's child of alice's process
    assert roots[untagged.children[0].pid] == untagged.pid           # untagged, same process group
    assert roots[own_group.children[0].pid] == own_group.children[0].pid


def test_discovery_without_npu_smi_uses_proc_and_survives_odd_comm(lab):
    odd = lab.start(tag="alice", devices=[0], comm="a) (b c")
    snapshot = discover(lab.config(npu_smi=False))
    assert snapshot.holders == {odd.pid: frozenset({0})}
    assert snapshot.table.get(odd.pid).comm == "a) (b c"
    assert any("npu-smi not found" in n for n in snapshot.notes)
    assert rows_by_pid(make_plan(snapshot, user="alice"))[odd.pid].seen_by == "/proc"


def test_failing_npu_smi_leaves_proc_discovery_working(lab, tmp_path):
    broken = tmp_path / "npu-smi-broken"
    broken.write_text("#!/bin/sh\necho 'dcmi module initialize failed. ret is -8005' >&2\nexit 1\n")
    broken.chmod(0o755)
    mine = lab.start(tag="alice", devices=[0])
    snapshot = discover(Config(npu_smi=str(broken), device_glob=lab.glob))
    assert snapshot.smi is None and snapshot.holders == {mine.pid: frozenset({0})}
    assert snapshot.notes == ["npu-smi info failed (exit 1: dcmi module initialize failed. ret is -8005): "
                              "using /proc only"]


def test_short_command_drops_the_programs_folder_and_cuts_to_the_width():
    """One helper for kill-npu's table and doctor's npu.processes."""
    assert short_command("/x/.venv/bin/python train.py --lr 1") == "python train.py --lr 1"
    assert short_command("torchrun --nproc_per_node 8") == "torchrun --nproc_per_node 8"
    assert short_command("") == "?" and short_command("/usr/bin/sleep") == "sleep"
    cut = short_command("python " + "x" * 80, 20)
    assert cut == "python " + "x" * 12 + "…" and len(cut) == 20
    assert len(short_command("python " + "x" * 80)) == 60


def test_find_npu_smi(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "npu-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(killnpu, "NPU_SMI_LOCATIONS", (str(tmp_path / "nowhere"),))
    assert killnpu.find_npu_smi({"PATH": str(fake.parent)}) == str(fake)
    assert killnpu.find_npu_smi({"PATH": str(tmp_path)}) is None
    assert killnpu.find_npu_smi({"NPUENV_NPU_SMI": str(fake), "PATH": ""}) == str(fake)
    with pytest.raises(killnpu.KillNpuError) as caught:
        killnpu.find_npu_smi({"NPUENV_NPU_SMI": str(tmp_path / "missing")})
    assert "NPUENV_NPU_SMI" in caught.value.hint
    assert Config.from_env({"NPUENV_DEVICE_GLOB": "/x/d[0-9]*", "PATH": ""}).device_glob == "/x/d[0-9]*"


def invoke(lab, *args, user=None, env=None):
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "kill-npu", *args]
    return subprocess.run(argv, env=env or lab.env(user), cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_task_stops_the_callers_processes(lab):
    alice, bob = lab.start_many([dict(tag="alice", devices=[0], children=[dict()]), dict(tag="bob", devices=[1])])
    host = lab.list_host_pid(3)

    done = invoke(lab, "--yes", "--grace", "2", user="alice")

    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.gone(alice) and lab.alive(bob)
    out = done.stdout
    assert f"tree {alice.pid} (alice)" in out and "2 exited on SIGTERM" in out
    assert "NPU 0: free" in out
    assert f"NPU 1: held by {bob.pid} (bob:" in out
    assert f"NPU 3: held by {host} (host PID, not visible here)" in out


def test_task_user_option_and_device_list(lab):
    a0, b1, b2 = lab.start_many([dict(tag="alice", devices=[0]), dict(tag="bob", devices=[1]),
                                 dict(tag="bob", devices=[2])])
    done = invoke(lab, "--user", "bob", "--device", "0,1", "--yes", "--grace", "2", user="alice")
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.gone(b1) and lab.alive(a0) and lab.alive(b2)


def test_task_dry_run_signals_nothing(lab):
    processes = lab.start_many([dict(tag="alice", devices=[0]), dict(devices=[1])])
    done = invoke(lab, "--all", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(lab.alive(p) for p in processes)
    assert "NPU  PID" in done.stdout and "dry run: nothing was signalled" in done.stdout
    assert "to stop: 2 process(es) in 2 tree(s)" in done.stdout


def test_task_refuses_without_a_tag_or_a_terminal(lab):
    mine = lab.start(tag="alice", devices=[0])
    untagged = invoke(lab)
    assert untagged.returncode == 2
    assert "NPUENV_USER is not set" in untagged.stderr and "--all" in untagged.stderr

    no_tty = invoke(lab, user="alice")
    assert no_tty.returncode == 2
    assert "stdin is not a terminal" in no_tty.stderr and "--yes" in no_tty.stderr
    assert lab.alive(mine)


@pytest.mark.parametrize("answer, stopped", [("n", False), ("y", True)])
def test_task_asks_on_a_terminal(lab, answer, stopped):
    mine = lab.start(tag="alice", devices=[0])
    controller, terminal = os.openpty()
    try:
        argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "kill-npu", "--grace", "2"]
        child = subprocess.Popen(argv, env=lab.env("alice"), cwd=REPO, stdin=terminal, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        os.write(controller, f"{answer}\n".encode())
        out, err = child.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert child.returncode == 0, out + err
    assert "Stop 1 process(es) in 1 tree(s)? [y/N]" in out
    assert lab.gone(mine) if stopped else lab.alive(mine)
    assert ("NPU 0: free" in out) == stopped


def test_task_reports_a_missing_npu_smi_override(lab):
    env = lab.env("alice")
    env["NPUENV_NPU_SMI"] = str(lab.root / "no-such-npu-smi")
    done = invoke(lab, "--dry-run", env=env)
    assert done.returncode == 1
    assert "not an executable file" in done.stderr and "hint:" in done.stderr


@pytest.mark.parametrize("grace, says", [("abc", "--grace abc: expected a number of seconds"),
                                         ("-1", "--grace -1: expected 0 or more seconds"),
                                         ("nan", "--grace nan: expected 0 or more seconds")])
def test_task_refuses_a_bad_grace_without_a_traceback(lab, grace, says):
    mine = lab.start(tag="alice", devices=[0])
    done = invoke(lab, "--yes", "--grace", grace, user="alice")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"error: {says}" in done.stderr and "hint: e.g. --grace 10" in done.stderr
    assert "Traceback" not in done.stderr
    assert lab.alive(mine)


def test_task_refuses_all_with_user(lab):
    processes = lab.start_many([dict(tag="alice", devices=[0]), dict(tag="bob", devices=[1])])
    done = invoke(lab, "--all", "--user", "bob", "--yes", "--grace", "1", user="alice")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: --all and --user bob contradict each other" in done.stderr
    assert "--all (without --user)" in done.stderr
    assert all(lab.alive(p) for p in processes)


def test_task_json_prints_the_plan_the_stop_and_each_npu_afterwards(lab):
    """--json prints one object from the same results the table is made of: the plan (rows, targets), the stop
    report, and each NPU afterwards."""
    alice, bob = lab.start_many([dict(tag="alice", devices=[0], children=[dict()]), dict(tag="bob", devices=[1])])
    host = lab.list_host_pid(3)

    done = invoke(lab, "--json", "--yes", "--grace", "2", user="alice")

    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert (data["outcome"], data["grace"]) == (STOPPED, 2.0) and lab.gone(alice) and lab.alive(bob)
    plan = data["plan"]
    assert (plan["user"], plan["all_users"], plan["scope"], plan["roots"]) == ("alice", False, None, [alice.pid])
    rows = {r["pid"]: r for r in plan["rows"]}
    assert (rows[alice.pid]["action"], rows[alice.pid]["tag"], rows[alice.pid]["device"]) == (STOP, "alice", 0)
    assert (rows[bob.pid]["action"], rows[bob.pid]["reason"]) == (SKIP, "bob's: --all includes it")
    assert (rows[host]["action"], rows[host]["reason"]) == (SKIP, HOST_PID)
    assert sorted(t["pid"] for t in plan["targets"]) == sorted([alice.pid, *alice.tree()[1:]])
    assert sorted(data["stop"]["terminated"]) == sorted(t["pid"] for t in plan["targets"])
    assert data["stop"]["survivors"] == [] and data["stop"]["grace"] == 2.0
    devices = {d["device"]: d for d in data["devices"]}
    assert devices[0]["free"] is True and devices[0]["holders"] == []
    assert [h["pid"] for h in devices[1]["holders"]] == [bob.pid] and devices[1]["free"] is False
    assert "NPU  PID" not in done.stdout and "Traceback" not in done.stderr


def test_task_json_dry_run_and_without_yes(lab):
    mine = lab.start(tag="alice", devices=[0])
    dry = invoke(lab, "--json", "--dry-run", user="alice")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    data = json.loads(dry.stdout)
    assert (data["outcome"], data["stop"]) == (DRY_RUN, None) and [t["pid"] for t in data["plan"]["targets"]] == [mine.pid]
    assert [h["pid"] for h in data["devices"][0]["holders"]] == [mine.pid]  # as the plan saw it
    unasked = invoke(lab, "--json", user="alice")
    assert unasked.returncode == 2 and unasked.stdout == ""
    assert "--json asks nothing" in unasked.stderr and "--yes" in unasked.stderr
    assert lab.alive(mine) and lab.signalled() == {}


def test_carry_out_asks_only_when_there_is_something_to_stop(lab):
    mine = lab.start(tag="alice", devices=[0])
    asked = []

    def no(plan):
        asked.append(len(plan.targets))
        return False

    nobody = carry_out(survey(lab.env("carol"), devices=[0]), 1.0, confirm=no)
    assert (nobody.outcome, asked, nobody.report) == (NOTHING_TO_STOP, [], None)
    command = short_command(ProcessTable().command(mine.pid), 40)
    assert render.result_lines(nobody) == [f"NPU 0: held by {mine.pid} (alice: {command})"]
    declined = carry_out(survey(lab.env("alice")), 1.0, confirm=no)
    assert (declined.outcome, asked) == (DECLINED, [1]) and render.result_lines(declined) == ["nothing was signalled"]
    assert lab.alive(mine) and lab.signalled() == {}
    with pytest.raises(UsageError, match="--all and --user bob contradict"):
        survey(lab.env("alice"), "bob", all_users=True)


def test_survivors_fail_the_run_with_a_hint(lab):
    plan = make_plan(discover(lab.config()), user="alice")
    assert killnpu.failure(KillResult(STOPPED, plan, 1.0, StopReport(terminated=[7]))) is None
    error = killnpu.failure(KillResult(STOPPED, plan, 1.0, StopReport(killed=[8, 9], survivors=[8, 9], grace=1.0)))
    assert error.message == "2 process(es) survived SIGKILL: 8, 9" and "state D" in error.hint
    line = render.stop_lines(StopReport(terminated=[7], killed=[8, 9], survivors=[8, 9], grace=1.0, seconds=6.04))
    assert line == ["stopped in 6.0 s: 1 exited on SIGTERM; 2 killed with SIGKILL after 1 s (8, 9); "
                    "2 survived (8, 9)"]


HOST_PID_NPU_SMI = """#!/bin/sh
cat <<'TABLE'
| NPU     Chip         | Process id    | Host PID      | Process name             | Process memory(MB)      |
+======================+===============+===============+==========================+=========================+
| 0       0            | {pid:<13} | {host:<13} | python                   | 30784                   |
| No running processes found in NPU 1                                                                          |
TABLE
"""


def test_host_pid_column_keeps_the_namespace_pid_and_shows_the_host_one(lab, tmp_path):
    """npu-smi in a container: "Process id" is the PID here, "Host PID" the host's; the plan acts on the
    former and kill-npu's table shows both."""
    mine = lab.start(tag="alice", devices=[0], list=False)
    npu_smi = tmp_path / "npu-smi-host-pid"
    npu_smi.write_text(HOST_PID_NPU_SMI.format(pid=mine.pid, host=HOST_PID_NOT_HERE))
    npu_smi.chmod(0o755)

    plan = make_plan(discover(Config(npu_smi=str(npu_smi), device_glob=lab.glob)), user="alice")
    row = rows_by_pid(plan)[mine.pid]
    assert (row.action, row.host_pid, row.seen_by) == (STOP, HOST_PID_NOT_HERE, "npu-smi, /proc")
    assert HOST_PID_NOT_HERE not in rows_by_pid(plan)

    env = {**lab.env("alice"), "NPUENV_NPU_SMI": str(npu_smi)}
    done = invoke(lab, "--dry-run", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("NPU"))
    assert header.split()[:4] == ["NPU", "PID", "HOST", "PID"]
    line = next(line for line in done.stdout.splitlines() if line.split()[:2] == ["0", str(mine.pid)])
    assert line.split()[2] == str(HOST_PID_NOT_HERE)
    assert lab.alive(mine)


def test_table_has_no_host_pid_column_when_npu_smi_shows_none(lab):
    lab.start(tag="alice", devices=[0])
    done = invoke(lab, "--dry-run", user="alice")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HOST PID" not in done.stdout and "NPU  PID" in done.stdout


HOST_PID_NOT_HERE = 4194998  # above the kernel's PID limit: never a process here


# --- the table is the truth: what it says is stopped is stopped, what it says is skipped is never signalled ----


def assert_the_table_is_the_truth(lab, plan, report):
    """Every row says stop exactly when its PID was a target; after stop(), every stop row's process is gone,
    and every skip row's process that was running is still running and was never sent SIGTERM."""
    targets = {t.pid for t in plan.targets}
    for row in plan.rows:
        assert (row.action == STOP) == (row.pid in targets), row
    signalled = lab.signalled()
    stopped = set(report.terminated) | set(report.killed)
    for row in plan.rows:
        stat = read_stat(row.pid)
        if row.action == STOP:
            assert row.pid in stopped and (stat is None or stat.zombie), f"said stop, yet running: {row}"
        else:
            assert row.pid not in signalled, f"said skip, yet signalled: {row}"
            if stat is not None and row.reason not in (HOST_PID, "exited") and not row.reason.startswith("zombie"):
                assert not stat.zombie, f"said skip, yet dead: {row}"


def test_untagged_child_of_your_job_is_stopped_and_the_table_says_so(lab):
    """The bug: alice's tagged process starts `env -u NPUENV_USER python holder.py`; the table said "skip:
    untagged" while the holder, inside her tree, got SIGTERM. Now it is part of her job, and the table says so."""
    job = lab.start(tag="alice", children=[dict(tag=None, devices=[0])])
    holder = job.children[0]

    plan = make_plan(discover(lab.config()), user="alice")

    row = rows_by_pid(plan)[holder.pid]
    assert (row.action, row.reason, row.root, row.tag) == (STOP, f"untagged, in alice's job {job.pid}", job.pid, None)
    assert [t.pid for t in plan.targets] == [holder.pid, job.pid]
    report = stop(plan, grace=10)
    assert sorted(report.terminated) == sorted([holder.pid, job.pid]) and not report.killed
    assert lab.signalled() == {holder.pid: ["SIGTERM"], job.pid: ["SIGTERM"]}
    assert_the_table_is_the_truth(lab, plan, report)


def test_someone_elses_process_in_your_tree_is_never_signalled(lab):
    """Inside alice's tree: her untagged worker (stopped), bob's process and the untagged worker below it,
    bob's holder (both skipped, left running); beside it an untagged holder below nobody's (skipped)."""
    job, nobody = lab.start_many([
        dict(tag="alice", devices=[0], children=[
            dict(tag=None, devices=[1]),
            dict(tag="bob", children=[dict(tag=None, devices=[2])]),
            dict(tag="bob", devices=[3]),
        ]),
        dict(devices=[3]),
    ])
    mine, bobs, bobs_holder = job.children
    bobs_worker = bobs.children[0]

    plan = make_plan(discover(lab.config()), user="alice")

    rows = rows_by_pid(plan)
    assert (rows[job.pid].action, rows[mine.pid].action) == (STOP, STOP)
    assert rows[mine.pid].reason == f"untagged, in alice's job {job.pid}"
    assert rows[bobs_worker.pid].action == SKIP
    assert rows[bobs_worker.pid].reason == f"untagged, in bob's job (below bob's PID {bobs.pid}): --all includes it"
    assert rows[bobs_holder.pid].action == SKIP and rows[bobs_holder.pid].reason.startswith("bob's")
    assert rows[nobody.pid].action == SKIP and rows[nobody.pid].reason.startswith("untagged (no NPUENV_USER")
    assert {t.pid for t in plan.targets} == {job.pid, mine.pid}
    assert any(f"PID {bobs.pid} in the tree of {job.pid} is tagged bob" in n for n in plan.notes)
    assert any(f"PID {bobs_worker.pid} in the tree of {job.pid} is untagged, below bob's PID {bobs.pid}" in n
               for n in plan.notes)

    report = stop(plan, grace=10)

    assert lab.signalled() == {job.pid: ["SIGTERM"], mine.pid: ["SIGTERM"]}
    assert all(lab.alive(p) for p in (bobs, bobs_worker, bobs_holder, nobody))
    assert_the_table_is_the_truth(lab, plan, report)


def test_an_untagged_holder_below_your_session_leader_is_yours_but_the_leader_is_not_stopped(lab):
    """A setsid'd launcher (or a login shell) tagged alice starts an untagged holder: the holder is hers,
    and its job stops below the session leader, which is never a job's root."""
    leader = lab.start(tag="alice", new_session=True, children=[dict(tag=None, devices=[1])])
    holder = leader.children[0]

    plan = make_plan(discover(lab.config()), user="alice")

    row = rows_by_pid(plan)[holder.pid]
    assert (row.action, row.reason, row.root) == (STOP, f"untagged, in alice's job {holder.pid}", holder.pid)
    assert [t.pid for t in plan.targets] == [holder.pid]
    report = stop(plan, grace=10)
    assert lab.signalled() == {holder.pid: ["SIGTERM"]} and lab.alive(leader)
    assert_the_table_is_the_truth(lab, plan, report)
    assert make_plan(discover(lab.config()), user="bob").targets == []


def test_with_all_an_untagged_child_is_stopped_with_its_tree(lab):
    job = lab.start(tag="bob", children=[dict(tag=None, devices=[2])])
    plan = make_plan(discover(lab.config()), user=None, all_users=True)
    row = rows_by_pid(plan)[job.children[0].pid]
    assert (row.action, row.reason, row.root) == (STOP, f"untagged, in bob's job {job.pid}", job.pid)
    report = stop(plan, grace=10)
    assert set(lab.signalled()) == {job.pid, job.children[0].pid}
    assert_the_table_is_the_truth(lab, plan, report)


def test_a_pid_npu_smi_lists_inside_your_tree_says_stop_when_it_is_stopped_with_it(lab):
    """A tree member npu-smi lists without a device file open here is stopped with its tree; its row says so
    instead of "skip"."""
    job = lab.start(tag="alice", devices=[0], children=[dict(tag=None)])
    quiet = job.children[0]
    lab.list(quiet.pid, 1)
    plan = make_plan(discover(lab.config()), user="alice")
    row = next(r for r in plan.rows if r.pid == quiet.pid)
    assert row.action == STOP and row.root == job.pid
    assert row.reason == f"in alice's job {job.pid}, stopped with it; it holds no device file here"
    report = stop(plan, grace=10)
    assert set(lab.signalled()) == {job.pid, quiet.pid}
    assert_the_table_is_the_truth(lab, plan, report)


def wait_until(predicate, timeout: float = 30.0):
    """Wait for an event (not for time to pass): poll `predicate` until it holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the event did not happen"
        time.sleep(0.01)


def test_a_worker_restarted_as_someone_else_during_the_grace_period_is_left_alone(lab):
    """Two launchers of alice's answer SIGTERM by starting a worker: one inherits her tag, one is tagged bob.
    The SIGKILL round takes the first worker and leaves bob's alone."""
    same, other = lab.start_many([dict(tag="alice", devices=[0], respawn=True),
                                  dict(tag="alice", devices=[1], respawn=True, respawn_tag="bob")])
    plan = make_plan(discover(lab.config()), user="alice")
    pending = {t.pid: t for t in plan.targets}
    assert set(pending) == {same.pid, other.pid}
    for target in plan.targets:
        assert killnpu._send(plan, target, signal.SIGTERM) == "sent"
    wait_until(lambda: len(lab.spawned()) == 2)
    workers = {read_stat(pid).ppid: pid for pid, _ in lab.spawned()}

    late = killnpu._late_children(plan, pending)

    assert [(t.pid, t.owner, t.root) for t in late] == [(workers[same.pid], "alice", same.pid)]


def test_task_table_shows_the_untagged_child_as_part_of_your_job(lab):
    job = lab.start(tag="alice", children=[dict(tag=None, devices=[0])])
    holder = job.children[0]
    done = invoke(lab, "--yes", "--grace", "10", user="alice")
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.split()[:2] == ["0", str(holder.pid)])
    assert line.endswith(f"stop: untagged, in alice's job {job.pid}")
    assert f"tree {job.pid} (alice)" in done.stdout and "2 exited on SIGTERM" in done.stdout
    assert lab.gone(job) and set(lab.signalled()) == {job.pid, holder.pid}
    assert "NPU 0: free" in done.stdout


# --- one numbering: NPU N is /dev/davinciN, whatever npu-smi calls the card and chip -----------------------------


@pytest.mark.parametrize("layout, info_m", [("910b", True), ("duo", True), ("a3", True), ("two-chip", True),
                                            ("duo", False), ("a3", False), ("two-chip", False)])
def test_each_board_names_a_holder_by_its_device_number_once(tmp_path, layout, info_m):
    lab = NpuLab(tmp_path / "npu", npus=4, layout=layout, info_m=info_m)
    try:
        mine, other, bobs = lab.start_many([dict(tag="alice", devices=[1]), dict(tag="alice", devices=[0]),
                                            dict(tag="bob", devices=[3])])
        host = lab.list_host_pid(2)
        snapshot = discover(lab.config())
        assert snapshot.known_devices() == {0, 1, 2, 3}
        plan = make_plan(snapshot, user="alice")
        assert [(r.device, r.card, r.seen_by) for r in plan.rows if r.pid == mine.pid] == [
            (1, lab.card(1), "npu-smi, /proc")]
        assert [(r.device, r.card) for r in plan.rows if r.pid == bobs.pid] == [(3, lab.card(3))]
        assert [(r.device, r.card, r.command, r.reason) for r in plan.rows if r.pid == host] == [
            (2, lab.card(2), "python", HOST_PID)]
        guessed = [n for n in plan.notes if "numbered in table order" in n]
        assert bool(guessed) == (layout == "two-chip" and not info_m)
        assert plan.numbering.identity == (layout == "910b")

        only_1 = make_plan(discover(lab.config()), user="alice", devices=[1])
        assert [t.pid for t in only_1.targets] == [mine.pid] and only_1.devices == [1]
        stop(only_1, grace=10)
        assert lab.gone(mine) and lab.alive(other) and lab.alive(bobs)
        assert lab.signalled() == {mine.pid: ["SIGTERM"]}
    finally:
        lab.cleanup()


def test_task_on_a_two_chip_board_shows_card_and_chip_beside_the_device_number(tmp_path):
    lab = NpuLab(tmp_path / "npu", npus=4, layout="duo")
    try:
        on0, on1 = lab.start_many([dict(tag="alice", devices=[0]), dict(tag="alice", devices=[3])])
        done = invoke(lab, "--device", "3", "--yes", "--grace", "10", user="alice")
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split()[:3] == ["NPU", "CARD/CHIP", "PID"]
        assert lines[1].split()[:3] == ["3", "32/1", str(on1.pid)]
        assert "NPU 3 (card 32 chip 1): free" in done.stdout
        assert lab.gone(on1) and lab.alive(on0)
        with pytest.raises(UsageError, match="no NPU 4"):
            make_plan(discover(lab.config()), user="alice", devices=[4])
    finally:
        lab.cleanup()


def test_doctor_npu_checks_use_the_same_numbering(tmp_path):
    """doctor's npu group on a two-chip board: 4 device files, 4 NPUs in npu-smi (2 cards x 2 chips), no
    "device files 0-3, npu-smi lists 0-1" warning; the holder of davinci1 is on NPU 1 (card 0 chip 1)."""
    from types import SimpleNamespace

    from npuenv.doctor import npu as npu_checks
    from npuenv.doctor.base import Status
    from npuenv.doctor.context import Memo

    lab = NpuLab(tmp_path / "npu", npus=4, layout="two-chip")
    try:
        holder = lab.start(tag="bob", devices=[1])
        ctx = SimpleNamespace(npu=lab.config(), environ={"NPUS_PER_NODE": "4"}, memo=Memo())
        assert npu_checks.smi.run(ctx).finding == f"{lab.npu_smi}: 4 NPU(s) in its table (2 cards × 2 chips)"
        devices = npu_checks.devices.run(ctx)
        assert (devices.status, devices.finding) == (Status.OK, "4 NPU(s): 0, 1, 2, 3 (910B4; 2 cards × 2 chips)")
        health = npu_checks.health.run(ctx)
        assert health.finding == "4 NPU(s) OK (2 cards × 2 chips)"
        assert list(health.details) == ["NPU 0, 1 (910B4, card 0): OK", "NPU 2, 3 (910B4, card 1): OK"]
        held = npu_checks.processes.run(ctx)
        assert held.finding.startswith("1 process(es) hold NPU(s) 1:")
        assert held.details[0].startswith(f"PID {holder.pid} on NPU 1 (card 0 chip 1; bob, 1000 MB): ")
    finally:
        lab.cleanup()


def test_device_filter_shows_a_worker_on_another_npu_that_is_stopped_with_its_job(lab):
    """`--device 1` picks alice's worker on NPU 1; its job is stopped whole, so its worker on NPU 0 is too,
    and the table shows that row (as stop) rather than leaving it out."""
    job, other = lab.start_many([dict(tag="alice", children=[dict(devices=[0]), dict(devices=[1])]),
                                 dict(tag="alice", devices=[0])])
    on0, on1 = job.children
    plan = make_plan(discover(lab.config()), user="alice", devices=[1])
    rows = {(r.device, r.pid): r for r in plan.rows}
    assert set(rows) == {(0, on0.pid), (1, on1.pid)} and plan.devices == [1]
    assert rows[(1, on1.pid)].action == STOP and rows[(1, on1.pid)].root == job.pid
    assert rows[(0, on0.pid)].action == STOP
    assert rows[(0, on0.pid)].reason == f"outside --device, in alice's job {job.pid}: stopped with it"
    report = stop(plan, grace=10)
    assert set(lab.signalled()) == {job.pid, on0.pid, on1.pid} and lab.alive(other)
    assert_the_table_is_the_truth(lab, plan, report)
