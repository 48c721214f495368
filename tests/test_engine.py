"""The engine on small test-only step kinds that write files: decisions, order, failure, resume, lock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from npuenv.engine import Engine, failure, select, topo_order
from npuenv.errors import LockError, NpuenvError, UsageError
from npuenv.flock import workspace_lock
from npuenv.machine import Machine
from npuenv.results import Status
from npuenv.state import State
from npuenv.steps.base import OK, Checked, Context, Step, missing


class FileStep(Step):
    """Test kind: writes `<root>/<name>` with `content`; its check reads the file back."""

    kind = "file"

    def __init__(self, name, content="x", deps=(), fail=False, delay=0.0, log_lines=()):
        super().__init__(name, deps)
        self.content, self.fail, self.delay, self.log_lines = content, fail, delay, log_lines
        self.applied = 0
        self.active = None

    def fingerprint(self, ctx):
        return {"content": self.content}

    def check(self, ctx):
        target = ctx.root / self.name
        if not target.exists():
            return missing()
        return OK if target.read_text() == self.content else Checked(False, "drifted: content changed")

    def apply(self, ctx, log):
        self.applied += 1
        for line in self.log_lines:
            log.write(line + "\n")
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise NpuenvError(f"{self.name} cannot be made", hint="give it what it needs")
        (ctx.root / self.name).write_text(self.content)
        return {"content": self.content}


def make_ctx(root: Path) -> Context:
    return Context(root=root, spec=None, wheels_dir=root / "wheels", env={}, mirrors=None, ca_bundle=root / "ca",
                   uv="uv", machine=Machine("x86_64"), state=State.load(root / ".npuenv" / "state.json"))


def engine(root: Path, steps, jobs=4) -> Engine:
    return Engine(make_ctx(root), steps, log_dir=root / ".npuenv" / "logs", jobs=jobs)


def test_topological_order_is_stable_and_cycles_are_named():
    a, b, c = FileStep("a", deps=("file:b",)), FileStep("b"), FileStep("c")
    assert [s.id for s in topo_order([a, b, c])] == ["file:b", "file:a", "file:c"]
    x, y = FileStep("x", deps=("file:y",)), FileStep("y", deps=("file:x",))
    with pytest.raises(NpuenvError, match="cycle: file:x -> file:y -> file:x"):
        topo_order([x, y])


def test_first_run_does_everything_second_run_nothing(tmp_path):
    steps = [FileStep("a"), FileStep("b", deps=("file:a",))]
    report = engine(tmp_path, steps).run()
    assert [(o.step_id, o.status) for o in report.outcomes] == [("file:a", Status.DONE), ("file:b", Status.DONE)]
    again = engine(tmp_path, steps).run()
    assert {o.status for o in again.outcomes} == {Status.UP_TO_DATE}
    assert [s.applied for s in steps] == [1, 1]
    assert State.load(tmp_path / ".npuenv" / "state.json").resolved("file:b") == {"content": "x"}


def test_spec_change_and_drift_rerun_only_what_they_touch(tmp_path):
    engine(tmp_path, [FileStep("a"), FileStep("b")]).run()
    (tmp_path / "b").write_text("edited by hand")
    steps = [FileStep("a", content="new"), FileStep("b")]
    decisions = {d.step_id: d for d in engine(tmp_path, steps).plan()}
    assert decisions["file:a"].reason == "spec changed"
    assert decisions["file:b"].reason == "drifted: content changed"
    engine(tmp_path, steps).run()
    assert (tmp_path / "a").read_text() == "new" and (tmp_path / "b").read_text() == "x"


def test_dependents_of_a_changed_step_are_rerun(tmp_path):
    engine(tmp_path, [FileStep("a"), FileStep("b", deps=("file:a",))]).run()
    steps = [FileStep("a", content="v2"), FileStep("b", deps=("file:a",))]
    plan = {d.step_id: d for d in engine(tmp_path, steps).plan()}
    assert plan["file:b"].reason == "after file:a"
    report = engine(tmp_path, steps).run()
    assert report.by_id("file:b").status is Status.DONE  # its fingerprint includes a's


def test_failure_stops_scheduling_lets_running_finish_and_names_the_log(tmp_path):
    slow = FileStep("slow", delay=0.3)
    bad = FileStep("bad", fail=True, log_lines=["compiling", "error: it broke"])
    after = FileStep("after", deps=("file:bad",))
    later = FileStep("later", deps=("file:slow",))
    eng = engine(tmp_path, [slow, bad, after, later], jobs=2)
    report = eng.run()
    results = {o.step_id: o.status for o in report.outcomes}
    assert results == {"file:slow": "done", "file:bad": Status.FAIL, "file:after": "not-run",
                       "file:later": "not-run"}
    assert report.by_id("file:after").reason == "needs file:bad"
    err = failure(report)
    assert "step file:bad failed: bad cannot be made" in err.message
    assert "  | error: it broke" in err.message
    assert str(tmp_path / ".npuenv" / "logs" / "file_bad.log") in err.message
    assert "give it what it needs" in err.hint
    # the finished step was recorded: a re-run resumes after it
    assert State.load(tmp_path / ".npuenv" / "state.json").record("file:slow") is not None
    bad.fail = False
    rerun = engine(tmp_path, [slow, bad, after, later]).run()
    assert {o.step_id: o.status for o in rerun.outcomes}["file:slow"] is Status.UP_TO_DATE
    assert not rerun.failed


def test_independent_steps_run_in_parallel(tmp_path):
    steps = [FileStep(f"s{i}", delay=0.4) for i in range(4)]
    report = engine(tmp_path, steps, jobs=4).run()
    assert report.wall < 1.2  # serial would take 1.6 s
    assert sum(o.seconds for o in report.outcomes) >= 1.6


def test_a_step_whose_check_still_fails_after_apply_is_a_failure(tmp_path):
    class Liar(FileStep):
        def check(self, ctx):
            return missing("never there")

    report = engine(tmp_path, [Liar("l")]).run()
    assert report.failed and "its check still fails: never there" in report.failed[0].reason


def test_only_takes_dependencies_and_unknown_ids_list_the_valid_ones():
    steps = [FileStep("a"), FileStep("b", deps=("file:a",)), FileStep("c")]
    chosen, forced = select(steps, ["file:b"], ["file:a"])
    assert [s.id for s in chosen] == ["file:a", "file:b"] and forced == {"file:a"}
    with pytest.raises(UsageError) as info:
        select(steps, ["file:zzz"], [])
    assert "file:zzz" in info.value.message and "file:a, file:b, file:c" in info.value.hint


def test_forced_step_runs_even_when_up_to_date(tmp_path):
    steps = [FileStep("a")]
    engine(tmp_path, steps).run()
    report = engine(tmp_path, steps).run(forced={"file:a"})
    assert report.by_id("file:a").status is Status.DONE and steps[0].applied == 2


def test_lock_refuses_a_second_holder_and_can_wait(tmp_path):
    lock = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid test'); print('held', flush=True); time.sleep(1.0)",
         str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockError) as info:
            with workspace_lock(lock):
                pass
        assert "--wait" in info.value.hint
        waited = []
        began = time.monotonic()
        with workspace_lock(lock, wait=True, on_wait=waited.append):
            assert time.monotonic() - began > 0.5  # we got it only when the holder let go
        assert waited == ["pid test"]
    finally:
        holder.kill()
        holder.wait()


def test_state_file_is_replaced_atomically_under_concurrent_saves(tmp_path):
    state = State(tmp_path / "state.json")
    threads = [threading.Thread(target=state.save_step, args=(f"s:{i}", "f", {"i": i}, 0.1)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loaded = State.load(tmp_path / "state.json")
    assert sorted(loaded.step_ids()) == sorted(f"s:{i}" for i in range(20))
    assert not list(tmp_path.glob(".state.json.*"))
