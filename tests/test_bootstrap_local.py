"""bootstrap on small specs that need no network: what a dry run writes (nothing), which spec a workspace
follows, what `--python` does to a workspace's steps, and where uv's cache is.

The python step finds a real CPython 3.10 (pyenv's, as in CI); everything else is files on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from npuenv import workspace
from npuenv.bootstrap import Options, bootstrap
from npuenv.doctor.context import build_context
from npuenv.engine import NullReporter
from npuenv.errors import UsageError
from npuenv.mirrors import Mirrors
from tests.world.fixtures import clean_env
from tests.world.wheels import find_python

REPO = Path(__file__).resolve().parents[1]


class Recorder(NullReporter):
    """A reporter that keeps what bootstrap told it."""

    def __init__(self) -> None:
        self.warnings: List[str] = []
        self.decisions: list = []
        self.outcomes: list = []

    def plan(self, decisions) -> None:
        self.decisions = decisions

    def finished(self, outcome) -> None:
        self.outcomes.append(outcome)

    def warn(self, text) -> None:
        self.warnings.append(text)

    def results(self) -> Dict[str, str]:
        return {o.step_id: o.status.value for o in self.outcomes}


@pytest.fixture(scope="module")
def python310() -> Path:
    found = find_python("3.10")
    assert found is not None, "CI installs CPython 3.10 (.ci/run): the python step needs one"
    return found


def environ(tmp_path: Path) -> Dict[str, str]:
    env = {k: v for k, v in clean_env().items() if not k.startswith(("NPUENV_", "UV_", "VIRTUAL_ENV"))}
    env["NPUENV_PERSISTENT_ROOT"] = str(tmp_path / "no-such-persistent-folder")
    return env


def small_spec(folder: Path, name: str, dirs: List[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps({"name": name, "python": "3.10", "dirs": dirs}))
    return path


def run(tmp_path: Path, root: Path, **options) -> Recorder:
    recorder = Recorder()
    bootstrap(Options(root=str(root), wheels=str(tmp_path / "wheels"), **options), recorder, environ(tmp_path))
    return recorder


def snapshot(folder: Path) -> Dict[str, tuple]:
    """Every path below `folder` with its kind, size and mtime: any write shows."""
    found = {}
    for path in sorted(folder.rglob("*")):
        stat = path.lstat()
        found[str(path.relative_to(folder))] = (stat.st_mode, stat.st_size, stat.st_mtime_ns)
    return found


# --- a dry run writes nothing ---------------------------------------------------------------------------


def test_a_dry_run_of_the_default_spec_makes_no_root_and_no_wheelhouse(tmp_path):
    root = tmp_path / "ws"
    recorder = run(tmp_path, root, dry_run=True)
    assert not root.exists() and not (tmp_path / "wheels").exists()
    assert dict((d.step_id, d.reason) for d in recorder.decisions)["repo:mindspeed-mm"] == "missing"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_dry_run_in_a_workspace_changes_nothing_in_it(tmp_path, python310):
    root = tmp_path / "ws"
    spec = small_spec(tmp_path / "specs", "small", ["data/a"])
    first = run(tmp_path, root, spec=str(spec), python=str(python310))
    assert first.results() == {"python": "done", "dirs": "done"}
    before = snapshot(root)
    assert ".npuenv/state.json" in before and ".npuenv/lock" in before
    plan = run(tmp_path, root, dry_run=True, spec="mindspeed-mm-internvl2.5")  # its steps are all missing here
    plan_small = run(tmp_path, root, dry_run=True, spec=str(spec))
    assert snapshot(root) == before
    assert dict((d.step_id, d.reason) for d in plan_small.decisions) == {"python": "up to date", "dirs": "up to date"}
    assert any(d.step_id == "env" for d in plan.decisions)


# --- a workspace remembers its spec ---------------------------------------------------------------------


def test_a_workspace_follows_the_spec_it_was_made_with(tmp_path, python310):
    root = tmp_path / "ws"
    first, second = small_spec(tmp_path / "specs", "first", ["a"]), small_spec(tmp_path / "specs", "second", ["b"])
    run(tmp_path, root, spec=str(first), python=str(python310))
    again = run(tmp_path, root)  # no --spec: the workspace's own, not the built-in default
    assert again.results() == {"python": "up-to-date", "dirs": "up-to-date"} and again.warnings == []
    assert build_context(root=str(root), spec=None, environ=environ(tmp_path)).spec.name == "first"
    plan = run(tmp_path, root, spec=str(second), dry_run=True)
    assert dict((d.step_id, d.reason) for d in plan.decisions)["dirs"] == "spec changed"
    assert any("switching this workspace from the spec first" in w and "second" in w for w in plan.warnings)
    assert workspace.recorded_spec(root)["name"] == "first"  # a dry run switched nothing
    switched = run(tmp_path, root, spec=str(second))
    assert switched.results() == {"python": "up-to-date", "dirs": "done"} and (root / "b").is_dir()
    assert run(tmp_path, root).results() == {"python": "up-to-date", "dirs": "up-to-date"}
    assert workspace.recorded_spec(root)["name"] == "second"


def test_doctor_and_a_rerun_use_the_wheelhouse_bootstrap_used(tmp_path, python310):
    """bootstrap --wheels W records W: a later bootstrap or doctor on the workspace looks there, not at the
    default wheelhouse, unless told otherwise."""
    root, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    spec = small_spec(tmp_path / "specs", "first", ["a"])
    bootstrap(Options(root=str(root), spec=str(spec), python=str(python310), wheels=str(elsewhere)), Recorder(),
              environ(tmp_path))
    assert workspace.wheels_dir(None, root) == elsewhere
    assert build_context(root=str(root), spec=None, environ=environ(tmp_path)).wheels_dir == elsewhere
    given = build_context(root=str(root), spec=None, environ=environ(tmp_path), wheels=str(tmp_path / "w2"))
    assert given.wheels_dir == tmp_path / "w2"
    assert workspace.wheels_dir(None, tmp_path / "fresh") == workspace.default_wheels_dir(tmp_path / "fresh")


def test_a_workspace_whose_spec_file_is_gone_asks_which_spec(tmp_path, python310):
    root = tmp_path / "ws"
    spec = small_spec(tmp_path / "specs", "gone", ["a"])
    run(tmp_path, root, spec=str(spec), python=str(python310))
    spec.unlink()
    with pytest.raises(UsageError) as caught:
        run(tmp_path, root, dry_run=True)
    assert f"made with the spec gone from {spec}, which no longer exists" in caught.value.message
    assert "--spec" in caught.value.hint


def test_a_built_in_spec_is_remembered_by_name(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / ".npuenv").mkdir()
    (root / ".npuenv" / "state.json").write_text(json.dumps({
        "format": 1, "steps": {}, "spec": {"name": "mindspeed-mm-internvl2.5", "file": "/moved/checkout/x.yaml",
                                           "arg": "mindspeed-mm-internvl2.5"}}))
    recorded = workspace.recorded_spec(root)
    assert workspace.spec_argument(None, recorded) == "mindspeed-mm-internvl2.5"
    assert workspace.spec_argument("other.yaml", recorded) == "other.yaml"
    assert workspace.spec_argument(None, workspace.recorded_spec(tmp_path / "elsewhere")) == "mindspeed-mm-internvl2.5"


# --- --python: checked up front, and no part of a step's identity ---------------------------------------


def test_python_named_or_not_the_workspace_stays_up_to_date(tmp_path, python310):
    root = tmp_path / "ws"
    spec = str(small_spec(tmp_path / "specs", "small", ["a"]))
    assert run(tmp_path, root, spec=spec, python=str(python310)).results() == {"python": "done", "dirs": "done"}
    assert run(tmp_path, root, spec=spec).results() == {"python": "up-to-date", "dirs": "up-to-date"}
    assert run(tmp_path, root, spec=spec, python=str(python310)).results() == {"python": "up-to-date",
                                                                                "dirs": "up-to-date"}
    plan = run(tmp_path, root, spec=spec, python=str(python310), dry_run=True)
    version = subprocess.run([str(python310), "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
    assert dict((d.step_id, d.detail) for d in plan.decisions)["python"] == f"CPython {version} at {python310} (--python)"


def test_a_python_of_another_version_is_refused_even_in_a_dry_run(tmp_path):
    with pytest.raises(UsageError) as caught:
        run(tmp_path, tmp_path / "ws", python=sys.executable, dry_run=True)
    found = ".".join(map(str, sys.version_info[:3]))
    assert caught.value.message == f"--python {sys.executable}: wanted CPython 3.10, found cpython {found}"


# --- uv's cache: one per box ----------------------------------------------------------------------------


def test_uv_cache_is_shared_under_the_persistent_folder(tmp_path):
    persistent = tmp_path / "work"
    (persistent / "alice").mkdir(parents=True)
    (persistent / "bob").mkdir()
    env = {"NPUENV_PERSISTENT_ROOT": str(persistent)}
    assert workspace.uv_cache_dir(persistent / "alice", env) == persistent / ".cache" / "uv"
    assert workspace.uv_cache_dir(persistent / "bob", env) == persistent / ".cache" / "uv"
    assert workspace.uv_cache_dir(tmp_path / "elsewhere", env) == tmp_path / "elsewhere" / ".npuenv" / "cache" / "uv"
    assert workspace.uv_cache_dir(persistent / "bob", {**env, "NPUENV_UV_CACHE": str(tmp_path / "c")}) == tmp_path / "c"
    layout = workspace.Layout(persistent / "bob")
    child = workspace.child_env(layout, {**os.environ, **env}, layout.ca_bundle, Mirrors())
    assert child["UV_CACHE_DIR"] == str(persistent / ".cache" / "uv")
    said = subprocess.run([workspace.uv_binary(), "cache", "dir"], env=child, capture_output=True, text=True)
    assert said.stdout.strip() == str(persistent / ".cache" / "uv")


def test_the_recorded_interpreter_is_not_run_again_until_its_file_changes(tmp_path, monkeypatch):
    """--python on every run costs an interpreter start, unless the workspace already knows that file."""
    from npuenv import pythons
    from npuenv.steps import python as step

    interpreter = tmp_path / "python3.10"
    interpreter.write_text("#!/bin/sh\n")
    recorded = {"interpreter": str(interpreter), "version": "3.10.13", "machine": "x86_64",
                "stamp": step._file_stamp(str(interpreter))}
    runs = []

    def probe(path):
        runs.append(path)
        return {"executable": path, "version": "3.10.14", "machine": "x86_64", "implementation": "cpython"}

    monkeypatch.setattr(pythons, "probe", probe)
    assert step.given(str(interpreter), "3.10", recorded)["version"] == "3.10.13" and runs == []
    os.utime(interpreter, ns=(0, 10**9))  # replaced or rebuilt: ask it again
    assert step.given(str(interpreter), "3.10", recorded)["version"] == "3.10.14" and runs == [str(interpreter)]
    assert step.given(str(interpreter), "3.10", {})["version"] == "3.10.14"  # nothing recorded: ask
