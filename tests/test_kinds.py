"""Every step kind as a table, in pyinfra's style: {spec fragment, world state} -> decision -> what it does.

One table per kind (python, repo, copy, patch, overlay, wheel, env, build, dirs, smoke). A row says:

- `spec`: the changes to the kind's base spec the row plans with (the YAML is written to a file and read by
  `load_spec`, mirrors and all);
- `world`: what is there before, built for real in a fresh workspace, in order: `DONE` (a real bootstrap of
  the base spec), `DEPS_DONE` (only what the kind's steps need, for the row's spec), then drift: files
  edited, a checkout moved by hand, a wheel's bytes changed, a record forgotten, another machine;
- `decision`: what the real engine's plan says for the kind's step (`Engine.plan`): "up to date" or
  "run: <reason>", with `detail` (the step's describe()) and the other steps' decisions (`others`) where
  they tell the story;
- `commands`: the argv of every subprocess the step's apply starts (recorded while they run for real, see
  `record_commands`), or None where apply is not run here (it would need NPUs or would search the box for
  interpreters); `files` and `resolved`: what the run left on disk and in the state. After every run that
  succeeds a second plan must say "up to date" for every step: the workspace converged.

Placeholders: `<lib.c1>`, `<lib.c1:12>` (a commit, or its first 12 digits), `<sha.FILE>` (a wheel's sha256),
`<py.version>`, `<arch.this>`... are filled in from the local world; `{root}`, `{tmp}`, `{git}`, `{pypi}`,
`{spec}`, `{python}`, `uv` stand for the paths in what was recorded; `…` matches any text.

The world is tests/world/local.py: bare repos and a PEP 503 folder on local disk, reached through `file://`
mirrors, so nothing here touches a network. The target env is made by uv for real (a tiny wheel, well under
a second), and the build's "compiler" is a script that writes a wheel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import certifi
import pytest
import yaml

import npuenv.reaper
from npuenv import workspace
from npuenv.engine import Engine, select
from npuenv.machine import Machine, arch as machine_arch
from npuenv.plan import on_machine
from npuenv.results import Status
from npuenv.state import State
from npuenv.steps import KINDS
from npuenv.steps.base import Context
from npuenv.steps.python import given
from tests.world.fixtures import clean_env
from tests.world.local import (GIT_ENV, SETUP, SETUP_PATCHED, SETUP_PATCHED_V2, LocalUpstream,
                               build_local_upstream)

ARCH = machine_arch()
OTHER_ARCH = "aarch64" if ARCH == "x86_64" else "x86_64"
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"  # the spec's python: the interpreter running the tests
OTHER_PY = "3.8" if PY != "3.8" else "3.9"


# --- recording the commands a step starts ----------------------------------------------------------------

class CommandRecorder:
    """The argv of every subprocess started by a step's apply, in order, on the thread running it.

    Recorded where every subprocess starts (`subprocess.Popen`), so the commands npuenv runs through
    npuenv.commands (git, uv, builds: under its reaper's supervisor, which is taken off here) and the probes
    that call subprocess directly (pkg-config, an interpreter's version) are all seen; an unsupervised one
    is rendered as `unsupervised: ...`. Only the thread inside an apply records (the engine runs steps on
    worker threads), so the engine's own checks before and after are not counted."""

    def __init__(self) -> None:
        self.commands: List[Tuple[bool, List[str]]] = []  # (supervised, argv)
        self._local = threading.local()
        self._supervisor = [sys.executable, "-I", "-S", os.path.abspath(npuenv.reaper.__file__)]

    def seen(self, args: Any) -> None:
        if not getattr(self._local, "on", False):
            return
        argv = [os.fspath(a) for a in ([args] if isinstance(args, (str, bytes, os.PathLike)) else args)]
        if argv[:4] == self._supervisor:
            self.commands.append((True, argv[4:]))
        else:
            self.commands.append((False, argv))

    def watch(self, steps: Sequence[Any]) -> None:
        """Record while these steps' apply runs."""
        for step in steps:
            real = step.apply

            def apply(ctx: Context, log: Any, real: Callable = real) -> Any:
                self._local.on = True
                try:
                    return real(ctx, log)
                finally:
                    self._local.on = False

            step.apply = apply


@pytest.fixture
def record_commands(monkeypatch: pytest.MonkeyPatch) -> CommandRecorder:
    """A CommandRecorder wired into subprocess.Popen: every command still runs for real."""
    recorder = CommandRecorder()
    real = subprocess.Popen

    class RecordingPopen(real):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            recorder.seen(args)
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    return recorder


# --- the local world and one workspace per row -----------------------------------------------------------

@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> LocalUpstream:
    return build_local_upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture(scope="module")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for every row, as on a real box (NPUENV_UV_CACHE)."""
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture(scope="module")
def interpreter() -> dict:
    """What `--python <the interpreter running the tests>` gives the python step (probed once)."""
    return given(sys.executable, PY)


def _deep_merge(base: Any, over: Any) -> Any:
    """`over` on `base` as spec files merge: mappings merge, anything else replaces, None removes."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _deep_merge(base.get(key), value) if isinstance(value, dict) else value
    return out


class Invocation:
    """One bootstrap's worth of objects: spec, steps (each kind compiling its own), context, engine."""

    def __init__(self, box: "Box", changes: Optional[dict], forced: frozenset) -> None:
        from npuenv.spec import load_spec

        box.write_spec(changes)
        spec = load_spec(box.spec_file)
        machine = box.machine
        mirrors = workspace.mirror_layers(spec, None, box.environ)
        layout = workspace.Layout(box.root)
        layout.tmp.mkdir(parents=True, exist_ok=True)
        here = on_machine(spec, machine)
        self.compiled = {kind.name: kind.compile(here, machine) for kind in KINDS}
        self.mine = self.compiled[box.kind]
        self.steps = [step for kind in KINDS for step in self.compiled[kind.name]]
        self.ctx = Context(root=box.root, spec=spec, wheels_dir=box.root / "wheels",
                           env=workspace.child_env(layout, box.environ, box.bundle, mirrors), mirrors=mirrors,
                           ca_bundle=box.bundle, uv=box.uv, machine=machine, state=State.load(layout.state),
                           python=box.python, forced=forced)
        self.log_dir = layout.logs

    def engine(self, steps: Optional[list] = None) -> Engine:
        return Engine(self.ctx, self.steps if steps is None else steps, log_dir=self.log_dir, jobs=2)


class Box:
    """A fresh workspace for one row, in the local world: its spec file, machine, environment and --python.

    The root is the same path for every row of a kind (see Templates); everything else is the row's own."""

    def __init__(self, tmp: Path, root: Path, upstream: LocalUpstream, uv_cache: Path, interpreter: dict,
                 kind: str, base: dict) -> None:
        self.tmp, self.root, self.upstream, self.kind, self.base = tmp, root, upstream, kind, base
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        self.spec_dir = tmp / "spec"
        self.spec_dir.mkdir()
        for patch in upstream.patches.values():
            shutil.copy(patch, self.spec_dir / patch.name)  # a spec's patches lie beside it
        self.spec_file = self.spec_dir / "spec.yaml"
        self.machine = Machine(ARCH, "2.36", cores=2)
        self.interpreter = interpreter["executable"]  # shown as {python}
        self.python: Optional[dict] = interpreter  # as `bootstrap --python <it>` gives it
        self.bundle = Path(certifi.where())
        self.uv = workspace.uv_binary()
        (tmp / "pkgconfig").mkdir()
        self.environ = {k: v for k, v in clean_env().items()
                        if not k.startswith(("NPUENV_", "UV_", "GIT_", "PKG_CONFIG", "VIRTUAL_ENV"))
                        and k not in ("PYTHONPATH", "PYTHONHOME")}
        self.environ.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, UV_OFFLINE="1",
                            UV_PYTHON_DOWNLOADS="never", NPUENV_UV_CACHE=str(uv_cache),
                            PKG_CONFIG_PATH=str(tmp / "pkgconfig"), PKG_CONFIG_LIBDIR=str(tmp / "pkgconfig"),
                            NPUENV_DEVICE_GLOB=str(tmp / "dev" / "davinci[0-9]*"))
        self.row_spec: dict = {}
        self.templates: Any = None  # Templates, set by make_box

    # the spec
    def expand(self, value: Any) -> Any:
        return expand(value, self.upstream)

    def spec_data(self, changes: Optional[dict]) -> dict:
        data = {"name": "kinds", "python": PY, "index": "https://pypi.example/simple",
                "mirrors": self.upstream.mirrors}
        return self.expand(_deep_merge(_deep_merge(data, self.base), changes or {}))

    def write_spec(self, changes: Optional[dict]) -> None:
        self.spec_file.write_text(yaml.safe_dump(self.spec_data(changes), sort_keys=False))

    def invocation(self, changes: Optional[dict] = None, forced: frozenset = frozenset()) -> Invocation:
        return Invocation(self, changes, forced)

    # running
    def bootstrap(self, changes: Optional[dict] = None, only: Sequence[str] = ()) -> None:
        """A real bootstrap (of only some steps and what they need); it must succeed."""
        run = self.invocation(changes)
        steps = select(run.steps, list(only), [])[0] if only else run.steps
        report = run.engine(steps).run()
        assert not report.failed, [(o.step_id, o.reason) for o in report.failed]

    # what was recorded, with this box's paths as placeholders
    def normalize(self, text: str) -> str:
        pairs = [(str(self.root), "{root}"), (self.upstream.git_root.as_uri(), "{git}"),
                 (self.upstream.pypi_root.as_uri(), "{pypi}"), (str(self.spec_dir), "{spec}"),
                 (str(self.tmp), "{tmp}"), (self.uv, "uv"), (self.interpreter, "{python}")]
        for old, new in sorted(pairs, key=lambda pair: -len(pair[0])):
            text = text.replace(old, new)
        return re.sub(r"/built/([^/]+)/[0-9a-f]{8,}/", r"/built/\1/{key}/", text)

    def render(self, supervised: bool, argv: List[str]) -> str:
        return ("" if supervised else "unsupervised: ") + self.normalize(" ".join(argv))

    def state(self) -> dict:
        path = workspace.Layout(self.root).state
        return json.loads(path.read_text()) if path.exists() else {"steps": {}}


def expand(value: Any, upstream: LocalUpstream) -> Any:
    """Fill in <lib.c1>, <lib.c1:12>, <sha.FILE> (a wheel's or a patch's), <text.FILE> (a patch's), <py.version>,
    <arch.this> in strings, recursively."""
    if isinstance(value, dict):
        return {k: expand(v, upstream) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(expand(v, upstream) for v in value)
    if not isinstance(value, str) or "<" not in value:
        return value
    patches = {f"{what}.{path.name}": fact for path in upstream.patches.values()
               for what, fact in (("sha", hashlib.sha256(path.read_bytes()).hexdigest()), ("text", path.read_text()))}
    names = {**upstream.names(), **patches, "py.version": PY, "py.full": platform.python_version(),
             "py.other": OTHER_PY, "arch.this": ARCH, "arch.other": OTHER_ARCH}

    def one(match: "re.Match[str]") -> str:
        found = names[match.group(1)]
        return found[: int(match.group(2))] if match.group(2) else found

    return re.sub(r"<([a-z]+\.[A-Za-z0-9_.+-]+?)(?::(\d+))?>", one, value)


def like(pattern: str, text: str) -> bool:
    """`text` matches `pattern`, where … stands for any text."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("…"))), text, re.DOTALL) is not None


# --- world set-ups ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Done:
    """A real bootstrap of the kind's base spec (with `changes`, if any): everything made and recorded."""

    changes: Optional[dict] = None

    def __call__(self, box: Box) -> None:
        box.bootstrap(self.changes)


DONE = Done()


def DEPS_DONE(box: Box) -> None:
    """Only what the kind's steps need, for the row's spec: the kind's own result is not there yet."""
    run = box.invocation(box.row_spec)
    needs = sorted({dep for step in run.mine for dep in step.deps})
    if needs:
        box.bootstrap(box.row_spec, only=needs)


def edit(relative: str, text: str) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        (box.root / relative).write_text(text)
    return action


def append(relative: str, text: str) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        with open(box.root / relative, "a") as handle:
            handle.write(text)
    return action


def write_bytes(relative: str, data: bytes) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        (box.root / relative).parent.mkdir(parents=True, exist_ok=True)
        (box.root / relative).write_bytes(data)
    return action


def delete(relative: str) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        path = box.root / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return action


def mkdirs(*relatives: str) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        for relative in relatives:
            (box.root / relative).mkdir(parents=True, exist_ok=True)
    return action


def copy_tree(source: str, dest: str) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        shutil.copytree(box.root / source, box.root / dest)
    return action


def symlink(relative: str, points_to: str) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        (box.root / relative).parent.mkdir(parents=True, exist_ok=True)
        (box.root / relative).symlink_to(points_to)
    return action


def copy_file(source: str, dest: str) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        shutil.copyfile(box.root / source, box.root / dest)
    return action


def git_in(relative: str, *args: str) -> Callable[[Box], None]:
    """git by hand in a folder of the workspace (<...> placeholders filled, {git} and {spec} too)."""
    def action(box: Box) -> None:
        argv = [a.replace("{git}", box.upstream.git_root.as_uri()).replace("{spec}", str(box.spec_dir))
                for a in box.expand(list(args))]
        (box.root / relative).mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", *argv], cwd=box.root / relative, env={**box.environ, **GIT_ENV}, check=True,
                       capture_output=True)
    return action


def place_wheel(filename: str) -> Callable[[Box], None]:
    """A wheel put into the wheelhouse by hand (another workspace's download, a copy from a colleague)."""
    def action(box: Box) -> None:
        (box.root / "wheels").mkdir(exist_ok=True)
        shutil.copy(box.upstream.wheels[filename][0], box.root / "wheels" / filename)
    return action


def uv_pip(*args: str) -> Callable[[Box], None]:
    """uv pip by hand in the target env (venv/), from the local index."""
    def action(box: Box) -> None:
        index = box.upstream.mirrors["https://pypi.example/"] + "simple"
        extra = ["--index-url", index] if args[0] == "install" else []
        env = {**box.environ, "UV_CACHE_DIR": box.environ["NPUENV_UV_CACHE"]}
        subprocess.run([box.uv, "pip", args[0], "--python", str(box.root / "venv" / "bin" / "python"), *extra,
                        *args[1:]], env=env, check=True, capture_output=True)
    return action


def forget(step_id: str) -> Callable[[Box], None]:
    """The state loses a step's record, its result staying in place (a state file from before, deleted)."""
    def action(box: Box) -> None:
        path = workspace.Layout(box.root).state
        data = json.loads(path.read_text())
        del data["steps"][step_id]
        path.write_text(json.dumps(data))
    return action


def drop_fact(step_id: str, fact: str) -> Callable[[Box], None]:
    """The state loses one fact of a step's record (a record written by an npuenv that did not keep it)."""
    def action(box: Box) -> None:
        path = workspace.Layout(box.root).state
        data = json.loads(path.read_text())
        del data["steps"][step_id]["resolved"][fact]
        path.write_text(json.dumps(data))
    return action


def spec_patch(name: str, source: str, old: str, new: str) -> Callable[[Box], None]:
    """A patch file beside the spec: `source` (one of the world's patches) with `old` replaced by `new`."""
    def action(box: Box) -> None:
        (box.spec_dir / name).write_text((box.spec_dir / source).read_text().replace(old, new))
    return action


def pkgconfig(module: str, version: str) -> Callable[[Box], None]:
    """The box's pkg-config now knows `module` at `version` (another FFmpeg, say)."""
    def action(box: Box) -> None:
        (box.tmp / "pkgconfig" / f"{module}.pc").write_text(
            f"Name: {module}\nDescription: test\nVersion: {version}\nLibs:\nCflags:\n")
    return action


def npu_devices(*numbers: int) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        (box.tmp / "dev").mkdir(exist_ok=True)
        for number in numbers:
            (box.tmp / "dev" / f"davinci{number}").write_text("")
    return action


def machine(**facts: Any) -> Callable[[Box], None]:
    """From now on the workspace is on another machine (its facts changed: glibc, arch, CANN)."""
    def action(box: Box) -> None:
        box.machine = dataclasses.replace(box.machine, **facts)
    return action


def python_flag(path: Optional[str]) -> Callable[[Box], None]:
    """From now on bootstrap runs with `--python path` ({tmp} allowed), or without --python (None)."""
    def action(box: Box) -> None:
        box.python = given(box.expand(path).replace("{tmp}", str(box.tmp)), PY) if path else None
    return action


def link_interpreter(name: str) -> Callable[[Box], None]:
    """{tmp}/bin/<name>: a symlink to the interpreter running the tests."""
    def action(box: Box) -> None:
        (box.tmp / "bin").mkdir(exist_ok=True)
        (box.tmp / "bin" / box.expand(name)).symlink_to(sys.executable)
    return action


def unlink(path: str) -> Callable[[Box], None]:
    def action(box: Box) -> None:
        Path(box.expand(path).replace("{tmp}", str(box.tmp))).unlink()
    return action


# --- what the run left -----------------------------------------------------------------------------------

ABSENT = object()


@dataclass(frozen=True)
class Head:
    """A checkout whose HEAD is this commit (<repo.cN>), and whose local branches are these (name, commit), when
    given."""

    commit: str
    branches: Optional[Tuple[Tuple[str, str], ...]] = None


@dataclass(frozen=True)
class Sha:
    """A file whose sha256 is this one (<sha.FILE>)."""

    sha256: str


def installed(dist: str) -> str:
    """The `files` key of a distribution in the target env (venv/): its value is the version, None for none."""
    return f"installed:{dist}"


@dataclass(frozen=True)
class Contains:
    """A text file holding each of these lines."""

    lines: Tuple[str, ...]


IS_DIR = "<a folder>"


def file_problem(box: Box, relative: str, want: Any) -> Optional[str]:
    import hashlib

    relative = box.expand(relative)  # a path may name a placeholder (<sha.no-pip.patch:12>)
    path = box.root / relative
    want = box.expand(want) if isinstance(want, str) else want
    if want is ABSENT:
        return None if not os.path.lexists(path) else "exists"
    if relative.startswith("installed:"):
        dist = relative.split(":", 1)[1]
        found = sorted(p.name for p in (box.root / "venv").glob(f"lib/python*/site-packages/{dist}-*.dist-info"))
        have = found[0][len(dist) + 1: -len(".dist-info")] if found else None
        return None if have == want else f"installed: {have}"
    if not os.path.lexists(path):
        return "missing"
    if want == IS_DIR:
        return None if path.is_dir() else "not a folder"
    if isinstance(want, Head):
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()
        if head != box.expand(want.commit):
            return f"HEAD is {head}"
        if want.branches is None:
            return None
        listed = subprocess.run(["git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"],
                                cwd=path, capture_output=True, text=True).stdout.split("\n")
        branches = tuple(tuple(line.split(" ")) for line in listed if line)
        return None if branches == box.expand(want.branches) else f"branches are {branches}"
    if isinstance(want, Sha):
        have = hashlib.sha256(path.read_bytes()).hexdigest()
        return None if have == box.expand(want.sha256) else f"sha256 {have}"
    if isinstance(want, Contains):
        text = path.read_text()
        missing = [line for line in box.expand(list(want.lines)) if line not in text.splitlines()]
        return None if not missing else f"lacks {missing} in:\n{text}"
    text = path.read_text()
    return None if text == want else f"holds {text!r}"


# --- a row and the one runner every table shares ---------------------------------------------------------

@dataclass(frozen=True)
class Row:
    id: str
    decision: str  # "up to date" | "run: <the engine's reason>"
    world: tuple = ()
    spec: dict = field(default_factory=dict)
    forced: bool = False
    detail: Optional[str] = None  # the step's describe(), as the plan shows it
    others: Dict[str, str] = field(default_factory=dict)  # other steps' decisions in the same plan
    commands: Optional[Tuple[str, ...]] = ()  # None: apply is not run here
    any_commands: bool = False  # the run happens, its commands are not asserted
    files: Dict[str, Any] = field(default_factory=dict)
    resolved: Dict[str, Any] = field(default_factory=dict)  # facts the step recorded (a subset)
    fails: str = ""  # the run fails, saying this
    marks: tuple = ()


def rows(*table: Row) -> list:
    return [pytest.param(row, id=row.id, marks=row.marks) for row in table]


def said(decision: Any) -> str:
    return f"run: {decision.reason}" if decision.run else "up to date"


def check_row(box: Box, row: Row, recorder: CommandRecorder) -> None:
    box.row_spec = row.spec
    for action in box.templates.start(box, row):
        action(box)

    # the decision: a dry run's plan
    dry = box.invocation(row.spec)
    ids = [step.id for step in dry.mine]
    assert len(ids) == 1, f"the {box.kind} table's specs make one step, got {ids}"
    step_id = ids[0]
    forced = frozenset(ids) if row.forced else frozenset()
    plan = {d.step_id: d for d in dry.engine().plan(set(forced))}
    assert box.normalize(said(plan[step_id])) == box.expand(row.decision)
    if row.detail is not None:
        assert like(box.expand(row.detail), box.normalize(plan[step_id].detail)), plan[step_id].detail
    for other, decision in row.others.items():
        shown = box.normalize(said(plan[other])) if other in plan else "not in the plan"
        assert shown == box.expand(decision), other
    if row.commands is None:
        return

    # the run: a real bootstrap after the dry run, recording the kind's apply
    run = box.invocation(row.spec, forced)
    recorder.watch(run.mine)
    report = run.engine().run(set(forced))
    outcome = report.by_id(step_id)
    if row.fails:
        assert outcome.status is Status.FAIL and box.expand(row.fails) in outcome.reason, outcome.to_json()
    elif row.decision == "up to date":
        assert outcome.status is Status.UP_TO_DATE, outcome.to_json()
    else:
        assert outcome.status is Status.DONE, (outcome.to_json(), [o.to_json() for o in report.failed])
    commands = [box.render(*command) for command in recorder.commands]
    expected = box.expand(list(row.commands))
    assert row.any_commands or len(commands) == len(expected) and all(map(like, expected, commands)), \
        "\n".join(["recorded:", *commands, "expected:", *expected])
    problems = {rel: file_problem(box, rel, want) for rel, want in row.files.items()}
    assert not any(problems.values()), {rel: p for rel, p in problems.items() if p}
    if row.resolved:
        facts = box.state()["steps"][step_id]["resolved"]
        shown = json.loads(box.normalize(json.dumps(facts)))
        assert {k: shown.get(k) for k in row.resolved} == box.expand(row.resolved)
    if not row.fails:
        again = box.invocation(row.spec).engine().plan()
        assert [said(d) for d in again] == ["up to date"] * len(again), [(d.step_id, d.reason) for d in again]


class Templates:
    """Workspaces as a world's first bootstrap (DONE, Done(...), DEPS_DONE) left them, made once per module.

    A row starting from one gets a copy instead of bootstrapping again (a real bootstrap costs about half a
    second, mostly starting git and uv). Each kind's rows use one fixed root path, so the absolute paths in
    the copy (the state's, the venv's) are the ones a bootstrap there would have written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: Dict[tuple, Path] = {}

    def root(self, kind: str) -> Path:
        return self.folder / kind / "ws"

    def start(self, box: Box, row: Row) -> list:
        """Run or restore the row's first bootstrap; the world's other actions are returned, still to do."""
        actions = list(row.world)
        if not actions or not (isinstance(actions[0], Done) or actions[0] is DEPS_DONE):
            return actions
        first = actions.pop(0)
        key = (box.kind, repr(box.base), repr(first), repr(row.spec) if first is DEPS_DONE else "")
        if key in self.saved:
            shutil.rmtree(box.root)
            shutil.copytree(self.saved[key], box.root, symlinks=True)
        else:
            first(box)
            self.saved[key] = self.folder / "saved" / str(len(self.saved))
            shutil.copytree(box.root, self.saved[key], symlinks=True)
        return actions


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("workspaces"))


@pytest.fixture
def make_box(tmp_path: Path, templates: Templates, upstream: LocalUpstream, uv_cache: Path, interpreter: dict):
    def make(kind: str, base: dict) -> Box:
        box = Box(tmp_path, templates.root(kind), upstream, uv_cache, interpreter, kind, base)
        box.templates = templates
        return box
    return make


# === python =============================================================================================
# Every spec has one; here with `--python <the interpreter running the tests>` unless a row drops it.

PYTHON_BASE: dict = {}

PYTHON = rows(
    Row("nothing there, --python given", "run: missing",
        detail="CPython <py.full> at {python} (--python)",
        commands=(),  # --python was probed before any step: the step itself starts nothing
        resolved={"interpreter": "{python}", "how": "given", "version": "<py.full>"}),
    Row("nothing there, no --python", "run: missing", world=(python_flag(None),),
        detail="CPython <py.version> (found, or installed by uv)",
        commands=None),  # would ask uv and probe this box's interpreters
    Row("done and recorded, no --python this time", "up to date", world=(DONE, python_flag(None)),
        detail="CPython <py.full> at {python}"),
    Row("done, then the spec asks for another version", "run: spec changed", world=(DONE, python_flag(None)),
        spec={"python": "<py.other>"}, commands=None),
    Row("done with --python a symlink, then the symlink removed", "run: drifted: {tmp}/bin/python<py.version> is gone",
        world=(link_interpreter("python<py.version>"), python_flag("{tmp}/bin/python<py.version>"), DONE,
               python_flag(None), unlink("{tmp}/bin/python<py.version>")),
        commands=None),
    Row("present but never recorded: nothing to find in place", "run: missing", world=(DONE, forget("python")),
        commands=(), resolved={"interpreter": "{python}", "how": "given"}),
    Row("done, forced", "run: forced", world=(DONE,), forced=True,
        commands=(), resolved={"interpreter": "{python}", "how": "given"}),
)


@pytest.mark.parametrize("row", PYTHON)
def test_python(row: Row, make_box, record_commands) -> None:
    check_row(make_box("python", PYTHON_BASE), row, record_commands)


# === repo ===============================================================================================

LIB = {"url": "https://git.example/team/lib.git", "commit": "<lib.c1>", "path": "lib"}
REPO_BASE = {"repos": {"lib": LIB}}
CLONE = ("git init -q {root}/.lib.npuenv-tmp",
         "git remote add origin {git}/team/lib.git",
         "git fetch --depth 1 origin <lib.c1>",
         "git cat-file -e <lib.c1>^{commit}",
         "git checkout -q --detach <lib.c1>")

REPO = rows(
    Row("nothing there", "run: missing",
        detail="lib @ <lib.c1> from {git}/team/lib.git",
        commands=CLONE,
        files={"lib": Head("<lib.c1>"), "lib/setup.py": SETUP, ".lib.npuenv-tmp": ABSENT},
        resolved={"commit": "<lib.c1>", "url": "{git}/team/lib.git"}),
    Row("nothing there, with a branch that moved on since the pin", "run: missing",
        spec={"repos": {"lib": {"ref": "main"}}},
        detail="lib @ <lib.c1> (main) from {git}/team/lib.git",
        commands=(*CLONE, "git ls-remote origin main"),
        files={"lib": Head("<lib.c1>")},
        resolved={"ref_matches": False,
                  "ref_note": "ref main now points at <lib.c2>; the pinned commit is checked out"}),
    Row("done and recorded", "up to date", world=(DONE,)),
    Row("done, then the spec pins another commit", "run: spec changed", world=(DONE,),
        spec={"repos": {"lib": {"commit": "<lib.c2>"}}},
        commands=("git remote get-url origin",
                  "git status --porcelain=v1 -z --untracked-files=no",
                  "git cat-file -e <lib.c2>^{commit}",  # not in the shallow clone: fetched
                  "git fetch --depth 1 origin <lib.c2>",
                  "git cat-file -e <lib.c2>^{commit}",
                  "git checkout -q --detach <lib.c2>"),
        files={"lib": Head("<lib.c2>"), "lib/README.md": "lib moved on; setup.py is as it was\n"}),
    Row("done, then the spec names a fork at the same commit", "run: spec changed", world=(DONE,),
        spec={"repos": {"lib": {"url": "https://git.example/fork/lib.git"}}},
        commands=("git remote get-url origin",
                  "git remote set-url origin {git}/fork/lib.git"),
        files={"lib": Head("<lib.c1>")},
        resolved={"url": "{git}/fork/lib.git"}),
    Row("done, then checked out at another commit by hand",
        "run: drifted: lib is at <lib.c2:12>, the spec pins <lib.c1:12>",
        world=(DONE, git_in("lib", "fetch", "-q", "--depth", "1", "origin", "<lib.c2>"),
               git_in("lib", "checkout", "-q", "--detach", "<lib.c2>")),
        # <lib.c2> is on no branch of the checkout: it could be someone's commit, so it is kept on one
        commands=("git remote get-url origin",
                  "git status --porcelain=v1 -z --untracked-files=no",
                  "git for-each-ref --contains HEAD --count=1 --format=%(refname) refs/heads refs/tags refs/remotes",
                  "git branch -- npuenv-kept-<lib.c2:12> <lib.c2>",
                  "git cat-file -e <lib.c1>^{commit}",
                  "git checkout -q --detach <lib.c1>"),
        files={"lib": Head("<lib.c1>", branches=(("npuenv-kept-<lib.c2:12>", "<lib.c2>"),))},
        resolved={"kept_branch": "npuenv-kept-<lib.c2:12>",
                  "note": "lib was at <lib.c2:12>, on no branch: kept as branch npuenv-kept-<lib.c2:12>"}),
    Row("done, then checked out at another commit on a branch by hand",
        "run: drifted: lib is at <lib.c2:12>, the spec pins <lib.c1:12>",
        world=(DONE, git_in("lib", "fetch", "-q", "--depth", "1", "origin", "<lib.c2>"),
               git_in("lib", "checkout", "-q", "-b", "mine", "<lib.c2>")),
        commands=("git remote get-url origin",
                  "git rev-parse --verify -q HEAD",  # HEAD names a branch: git reads it
                  "git status --porcelain=v1 -z --untracked-files=no",
                  "git for-each-ref --contains HEAD --count=1 --format=%(refname) refs/heads refs/tags refs/remotes",
                  "git cat-file -e <lib.c1>^{commit}",
                  "git checkout -q --detach <lib.c1>"),
        files={"lib": Head("<lib.c1>", branches=(("mine", "<lib.c2>"),))}),
    Row("done, then a file edited by hand and the spec pins another commit", "run: spec changed",
        world=(DONE, edit("lib/setup.py", "# mine\n")),
        spec={"repos": {"lib": {"commit": "<lib.c2>"}}},
        commands=("git remote get-url origin",
                  "git status --porcelain=v1 -z --untracked-files=no"),
        fails="has local changes npuenv did not make, so it will not move it to <lib.c2:12>",
        files={"lib": Head("<lib.c1>"), "lib/setup.py": "# mine\n"}),
    Row("cloned by hand at the pin, never recorded", "run: not recorded yet (found in place)",
        world=(git_in(".", "clone", "-q", "{git}/team/lib.git", "lib"),
               git_in("lib", "checkout", "-q", "--detach", "<lib.c1>")),
        commands=("git remote get-url origin",),
        files={"lib": Head("<lib.c1>")},
        resolved={"commit": "<lib.c1>"}),
    Row("done, forced", "run: forced", world=(DONE,), forced=True,
        commands=("git remote get-url origin",),
        files={"lib": Head("<lib.c1>")}),
)


@pytest.mark.parametrize("row", REPO)
def test_repo(row: Row, make_box, record_commands) -> None:
    check_row(make_box("repo", REPO_BASE), row, record_commands)


# === copy ===============================================================================================

CORE = {"url": "https://git.example/team/core.git", "commit": "<core.c1>", "path": "core"}
COPY_BASE = {"repos": {"core": CORE}, "copies": {"core": {"repo": "core", "path": "core", "to": "vendored/core"}}}
COPIED = {"vendored/core/a.py": "A = 1\n", "vendored/core/b.py": "B = 1\n"}

COPY = rows(
    Row("nothing there (its repo checked out)", "run: missing", world=(DEPS_DONE,),
        detail="core/core/ -> vendored/core/",
        files={**COPIED, "vendored/.core.npuenv-tmp": ABSENT, "vendored/.core.npuenv-old": ABSENT}),
    Row("done and recorded", "up to date", world=(DONE,)),
    Row("done, then the spec pins its repo at another commit", "run: after repo:core", world=(DONE,),
        spec={"repos": {"core": {"commit": "<core.c2>"}}},
        others={"repo:core": "run: spec changed"},
        files={"vendored/core/b.py": "B = 2\n"}),
    Row("done, then a copied file edited", "run: drifted: files in vendored/core were changed",
        world=(DONE, edit("vendored/core/b.py", "B = 9  # mine\n")),
        files={**COPIED, "vendored/core.npuenv-backup/b.py": "B = 9  # mine\n"}),
    Row("copied by hand, never recorded", "run: not recorded yet (found in place)",
        world=(DEPS_DONE, copy_tree("core/core", "vendored/core")),
        files={**COPIED, "vendored/core.npuenv-backup": ABSENT}),
    Row("done, forced", "run: forced", world=(DONE,), forced=True,
        files={**COPIED, "vendored/core.npuenv-backup": ABSENT}),
    Row("another folder there, never recorded: kept, not deleted", "run: missing",
        world=(DEPS_DONE, write_bytes("vendored/core/mine.py", b"MINE = 1\n")),
        files={**COPIED, "vendored/core.npuenv-backup/mine.py": "MINE = 1\n", "vendored/core/mine.py": ABSENT}),
    Row("copied by hand from another commit, never recorded: kept, not deleted", "run: missing",
        world=(DEPS_DONE, copy_tree("core/core", "vendored/core"), edit("vendored/core/b.py", "B = 2\n")),
        files={**COPIED, "vendored/core.npuenv-backup/b.py": "B = 2\n", "vendored/core.npuenv-backup/a.py": "A = 1\n"}),
    Row("a file where the folder goes, never recorded: kept", "run: missing",
        world=(DEPS_DONE, write_bytes("vendored/core", b"my notes\n")),
        files={**COPIED, "vendored/core.npuenv-backup": "my notes\n"}),
    Row("a symlink to another folder there, never recorded: the link kept, what it points at untouched",
        "run: missing",
        world=(DEPS_DONE, write_bytes("mine/mine.py", b"MINE = 1\n"), symlink("vendored/core", "../mine")),
        files={**COPIED, "vendored/core.npuenv-backup/mine.py": "MINE = 1\n", "mine/mine.py": "MINE = 1\n"}),
    Row("done, edited, re-copied, edited again: the first backup is not replaced by the second",
        "run: drifted: files in vendored/core were changed",
        world=(DONE, edit("vendored/core/b.py", "B = 9  # mine\n"), Done(),  # a run that keeps the first edit
               edit("vendored/core/b.py", "B = 8  # mine\n")),
        files={**COPIED, "vendored/core.npuenv-backup/b.py": "B = 9  # mine\n",
               "vendored/core.npuenv-backup.2/b.py": "B = 8  # mine\n"},
        resolved={"note": "vendored/core was edited: kept as vendored/core.npuenv-backup.2"}),
)


@pytest.mark.parametrize("row", COPY)
def test_copy(row: Row, make_box, record_commands) -> None:
    check_row(make_box("copy", COPY_BASE), row, record_commands)


# === patch ==============================================================================================

PATCH_BASE = {"repos": {"lib": LIB}, "patches": {"no-pip": {"repo": "lib", "file": "no-pip.patch"}}}
APPLY = "git apply --unidiff-zero --whitespace=nowarn"
PATCHING = (f"{APPLY} --reverse --check {{spec}}/no-pip.patch",  # applied already? no
            f"{APPLY} --check {{spec}}/no-pip.patch",  # does it apply?
            f"{APPLY} {{spec}}/no-pip.patch",
            f"{APPLY} --numstat --reverse {{spec}}/no-pip.patch")  # the files it changed, to record them
FOUND = (f"{APPLY} --reverse --check {{spec}}/no-pip.patch",
         f"{APPLY} --numstat --reverse {{spec}}/no-pip.patch")
WHEN = {"patches": {"no-pip": {"when": {"pkgconfig": "libfake", "version": ">=2"}}}}
REFRESHED = {"patches": {"no-pip": {"file": "no-pip-v2.patch"}}}
PATCHING_V2 = tuple(command.replace("/no-pip.patch", "/no-pip-v2.patch") for command in PATCHING)
# the earlier version, from the recorded text, reversed
TAKE_OUT = f"{APPLY} --reverse {{root}}/.npuenv/tmp/patch_no-pip.earlier.patch"

PATCH = rows(
    Row("nothing there (its repo checked out)", "run: missing", world=(DEPS_DONE,),
        detail="no-pip.patch on lib",
        commands=PATCHING, files={"lib/setup.py": SETUP_PATCHED}, resolved={"applied": True}),
    Row("done and recorded", "up to date", world=(DONE,)),
    Row("done, then its repo pinned at another commit", "run: after repo:lib", world=(DONE,),
        spec={"repos": {"lib": {"commit": "<lib.c2>"}}},
        others={"repo:lib": "run: spec changed"},  # the patched setup.py is npuenv's: the repo moves anyway
        commands=PATCHING, files={"lib": Head("<lib.c2>"), "lib/setup.py": SETUP_PATCHED}),
    Row("done, then the spec names a refreshed patch: the earlier version is taken out first", "run: spec changed",
        world=(DONE,), spec=REFRESHED,
        commands=(TAKE_OUT, *PATCHING_V2),
        files={"lib/setup.py": SETUP_PATCHED_V2, ".npuenv/tmp/patch_no-pip.earlier.patch": ABSENT},
        resolved={"applied": True, "sha256": "<sha.no-pip-v2.patch>", "repo": "lib",
                  "text": "<text.no-pip-v2.patch>"}),
    Row("done, then the patched file edited and the spec names a refreshed patch: refused, the edit kept",
        "run: spec changed", world=(DONE, append("lib/setup.py", "# my note\n")), spec=REFRESHED,
        commands=("git --literal-pathspecs status --porcelain=v1 -z --untracked-files=all -- setup.py",),
        fails="patch no-pip changed, but npuenv will not take its earlier version out of lib: setup.py was "
              "edited after npuenv applied it",
        files={"lib/setup.py": SETUP_PATCHED + "# my note\n"}, resolved={"sha256": "<sha.no-pip.patch>"}),
    Row("done, then the patched file restored by hand and the spec names a refreshed patch", "run: spec changed",
        world=(DONE, git_in("lib", "checkout", "--", "setup.py")), spec=REFRESHED,
        commands=("git --literal-pathspecs status --porcelain=v1 -z --untracked-files=all -- setup.py",
                  *PATCHING_V2),  # nothing to take out
        files={"lib/setup.py": SETUP_PATCHED_V2}),
    Row("done by an npuenv that kept no patch text, then a refreshed patch: the pinned file restored, the "
        "difference kept", "run: spec changed", world=(DONE, drop_fact("patch:no-pip", "text")), spec=REFRESHED,
        commands=("git --literal-pathspecs diff --no-color --no-ext-diff --no-textconv --no-renames --binary "
                  "--src-prefix=a/ --dst-prefix=b/ HEAD -- setup.py",
                  TAKE_OUT, *PATCHING_V2),
        files={"lib/setup.py": SETUP_PATCHED_V2,
               ".npuenv/backups/patch_no-pip.<sha.no-pip.patch:12>.diff": Contains((
                   '-subprocess.check_call([sys.executable, "-m", "pip", "install", "-r", "requirements.txt"])',
                   '+# subprocess.check_call([sys.executable, "-m", "pip", "install", "-r", "requirements.txt"])'))},
        resolved={"text": "<text.no-pip-v2.patch>"}),
    Row("done, then a refreshed patch that does not apply to the pin: refused, the earlier version put back",
        "run: spec changed", world=(DONE, spec_patch("moved.patch", "no-pip-v2.patch", "check_call", "run")),
        spec={"patches": {"no-pip": {"file": "moved.patch"}}},
        commands=(TAKE_OUT, f"{APPLY} --reverse --check {{spec}}/moved.patch", f"{APPLY} --check {{spec}}/moved.patch",
                  f"{APPLY} --numstat {{spec}}/moved.patch", "git status --porcelain=v1 -z --untracked-files=no"),
        fails="upstream changed: moved.patch no longer applies to lib at <lib.c1:12>",
        files={"lib/setup.py": SETUP_PATCHED}, resolved={"sha256": "<sha.no-pip.patch>"}),
    Row("done, then the patch renamed (a new step id): refused, naming the old step", "run: missing",
        world=(DONE,), spec={"patches": {"no-pip": None, "no-pip-renamed": {"repo": "lib", "file": "no-pip-v2.patch"}}},
        commands=(*PATCHING_V2[:2], f"{APPLY} --numstat {{spec}}/no-pip-v2.patch",
                  "git status --porcelain=v1 -z --untracked-files=no"),
        fails="no-pip-v2.patch cannot be applied: setup.py in lib holds what npuenv's patch:no-pip applied, a patch "
              "this spec no longer has",
        files={"lib/setup.py": SETUP_PATCHED}),
    Row("done, then the patched file restored by hand", "run: not applied",
        world=(DONE, git_in("lib", "checkout", "--", "setup.py")),
        commands=PATCHING, files={"lib/setup.py": SETUP_PATCHED}),
    Row("done, then another line of the patched file edited: the patch is still in", "up to date",
        world=(DONE, append("lib/setup.py", "# my note\n")),
        files={"lib/setup.py": SETUP_PATCHED + "# my note\n"}),
    Row("applied by hand, never recorded", "run: not recorded yet (found in place)",
        world=(DEPS_DONE, git_in("lib", "apply", "{spec}/no-pip.patch")),
        commands=FOUND, files={"lib/setup.py": SETUP_PATCHED}, resolved={"applied": True}),
    Row("done, forced", "run: forced", world=(DONE,), forced=True,
        commands=FOUND, files={"lib/setup.py": SETUP_PATCHED}),
    Row("nothing there, its `when:` does not hold here", "run: not recorded yet (found in place)",
        world=(pkgconfig("libfake", "1.0"), DEPS_DONE), spec=WHEN,
        detail="no-pip.patch on lib",
        commands=(f"{APPLY} --reverse --check {{spec}}/no-pip.patch",),
        files={"lib/setup.py": SETUP},
        resolved={"applied": False, "found": "libfake 1.0",
                  "when": {"condition": ">=2", "version": "1.0", "holds": False}}),
    Row("done where `when:` held, then it no longer holds (another libfake)", "run: spec changed",
        world=(pkgconfig("libfake", "2.0"), Done(WHEN), pkgconfig("libfake", "1.0")), spec=WHEN,
        commands=(f"{APPLY} --reverse {{spec}}/no-pip.patch",),  # the recorded hashes say it is in: no probe
        files={"lib/setup.py": SETUP}, resolved={"applied": False}),
    Row("done where `when:` held, then a refreshed patch where it no longer holds: the earlier version taken out",
        "run: spec changed",
        world=(pkgconfig("libfake", "2.0"), Done(WHEN), pkgconfig("libfake", "1.0")), spec=_deep_merge(WHEN, REFRESHED),
        commands=(TAKE_OUT, f"{APPLY} --reverse --check {{spec}}/no-pip-v2.patch"),
        files={"lib/setup.py": SETUP}, resolved={"applied": False, "sha256": "<sha.no-pip-v2.patch>"}),
    Row("done where `when:` did not hold, then a refreshed patch where it holds: nothing to take out",
        "run: spec changed",
        world=(pkgconfig("libfake", "1.0"), Done(WHEN), pkgconfig("libfake", "2.0")), spec=_deep_merge(WHEN, REFRESHED),
        commands=PATCHING_V2, files={"lib/setup.py": SETUP_PATCHED_V2}, resolved={"applied": True}),
)


@pytest.mark.parametrize("row", PATCH)
def test_patch(row: Row, make_box, record_commands) -> None:
    check_row(make_box("patch", PATCH_BASE), row, record_commands)


# === overlay ============================================================================================

HOST = {"url": "https://git.example/team/host.git", "commit": "<host.c1>", "path": "host"}
OVERLAY_BASE = {"repos": {"host": HOST, "lib": LIB},
                "overlays": {"dpa": {"from": {"repo": "host", "path": "examples/dpa.py"},
                                     "to": {"repo": "lib", "path": "lib/dpa.py"}}}}

# the target differs from what npuenv put there: is it the repo's own committed file (a checkout put it back)?
AS_COMMITTED = ("git rev-parse -q --verify HEAD:lib/dpa.py", "git hash-object -- lib/dpa.py")

OVERLAY = rows(
    Row("nothing there (both repos checked out)", "run: missing", world=(DEPS_DONE,),
        detail="host/examples/dpa.py -> lib/lib/dpa.py",
        files={"lib/lib/dpa.py": "NEW = 1\n", "lib/lib/.dpa.py.npuenv-tmp": ABSENT}),
    Row("done and recorded", "up to date", world=(DONE,)),
    Row("done, then the source repo pinned at another commit", "run: after repo:host", world=(DONE,),
        spec={"repos": {"host": {"commit": "<host.c2>"}}},
        files={"lib/lib/dpa.py": "NEW = 2\n"}),
    Row("done, then the target repo pinned at another commit", "run: after repo:lib", world=(DONE,),
        spec={"repos": {"lib": {"commit": "<lib.c2>"}}},
        others={"repo:lib": "run: spec changed"},  # the overlaid file is npuenv's: the repo moves anyway
        # the checkout put lib's own dpa.py back: not an edit, so nothing is kept as a backup
        commands=AS_COMMITTED,
        files={"lib": Head("<lib.c2>"), "lib/lib/dpa.py": "NEW = 1\n", "lib/lib/dpa.py.npuenv-backup": ABSENT}),
    Row("done, then the overlaid file edited", "run: drifted: lib/dpa.py differs from examples/dpa.py",
        world=(DONE, append("lib/lib/dpa.py", "MINE = 1\n")), commands=AS_COMMITTED,
        files={"lib/lib/dpa.py": "NEW = 1\n", "lib/lib/dpa.py.npuenv-backup": "NEW = 1\nMINE = 1\n"},
        resolved={"note": "lib/dpa.py was edited: kept as lib/lib/dpa.py.npuenv-backup"}),
    Row("done, edited, re-overlaid, edited again: the first backup is not replaced by the second",
        "run: drifted: lib/dpa.py differs from examples/dpa.py",
        world=(DONE, append("lib/lib/dpa.py", "MINE = 1\n"), Done(), append("lib/lib/dpa.py", "MINE = 2\n")),
        commands=AS_COMMITTED,
        files={"lib/lib/dpa.py": "NEW = 1\n", "lib/lib/dpa.py.npuenv-backup": "NEW = 1\nMINE = 1\n",
               "lib/lib/dpa.py.npuenv-backup.2": "NEW = 1\nMINE = 2\n"}),
    Row("copied by hand, never recorded", "run: not recorded yet (found in place)",
        world=(DEPS_DONE, copy_file("host/examples/dpa.py", "lib/lib/dpa.py")),
        files={"lib/lib/dpa.py": "NEW = 1\n", "lib/lib/dpa.py.npuenv-backup": ABSENT}),
    Row("done, forced", "run: forced", world=(DONE,), forced=True,
        files={"lib/lib/dpa.py": "NEW = 1\n", "lib/lib/dpa.py.npuenv-backup": ABSENT}),
)


@pytest.mark.parametrize("row", OVERLAY)
def test_overlay(row: Row, make_box, record_commands) -> None:
    check_row(make_box("overlay", OVERLAY_BASE), row, record_commands)


# === wheel ==============================================================================================

TINY = "tiny-1.0-py3-none-any.whl"
TINY_URL = f"https://pypi.example/simple/tiny/{TINY}"
WHEEL_BASE = {"wheels": {"tiny": {"package": "tiny", "version": "1.0", "source": "url",
                                  "files": {ARCH: {"url": TINY_URL, "sha256": f"<sha.{TINY}>"}}}}}

WHEEL = rows(
    Row("nothing there", "run: missing",
        detail=f"{TINY} sha256 <sha.{TINY}> (url)",
        files={f"wheels/{TINY}": Sha(f"<sha.{TINY}>"), f"wheels/{TINY}.part": ABSENT},
        resolved={"url": f"{{pypi}}/simple/tiny/{TINY}", "sha256": f"<sha.{TINY}>", "file": f"{{root}}/wheels/{TINY}"}),
    Row("nothing there, looked up on the index", "run: missing",
        spec={"wheels": {"tiny": {"source": "index", "files": {ARCH: {"url": None, "filename": TINY}}}}},
        detail=f"{TINY} sha256 <sha.{TINY}> (index)",
        files={f"wheels/{TINY}": Sha(f"<sha.{TINY}>")},
        resolved={"url": f"{{pypi}}/simple/tiny/{TINY}"}),
    Row("done and recorded", "up to date", world=(DONE,)),
    Row("done, then the spec pins another version", "run: spec changed", world=(DONE,),
        spec={"wheels": {"tiny": {"version": "1.1", "files": {ARCH: {
            "url": "https://pypi.example/simple/tiny/tiny-1.1-py3-none-any.whl",
            "sha256": "<sha.tiny-1.1-py3-none-any.whl>"}}}}},
        files={"wheels/tiny-1.1-py3-none-any.whl": Sha("<sha.tiny-1.1-py3-none-any.whl>")}),
    Row("done, then the wheel's bytes changed", f"run: drifted: {TINY} does not match its sha256",
        world=(DONE, write_bytes(f"wheels/{TINY}", b"not the wheel the spec pins")),
        files={f"wheels/{TINY}": Sha(f"<sha.{TINY}>")}),
    Row("placed in the wheelhouse by hand, never recorded", "run: not recorded yet (found in place)",
        world=(place_wheel(TINY),),
        files={f"wheels/{TINY}": Sha(f"<sha.{TINY}>")},
        resolved={"url": None}),  # nothing was downloaded
    Row("done, forced: the file is verified, not fetched again", "run: forced", world=(DONE,), forced=True,
        files={f"wheels/{TINY}": Sha(f"<sha.{TINY}>")},
        resolved={"url": f"{{pypi}}/simple/tiny/{TINY}"}),  # where it came from, as first recorded
    Row("on a machine the spec has no file for", "run: check failed: the spec has no tiny wheel for <arch.other> "
        "(it has: <arch.this>)", world=(machine(arch=OTHER_ARCH),),
        detail="tiny==1.0: no file for <arch.other>",
        fails="the spec has no tiny wheel for <arch.other>", files={f"wheels/{TINY}": ABSENT}),
)


@pytest.mark.parametrize("row", WHEEL)
def test_wheel(row: Row, make_box, record_commands) -> None:
    check_row(make_box("wheel", WHEEL_BASE), row, record_commands)


# === dirs ===============================================================================================

DIRS_BASE = {"dirs": ["data/logs", "data/ckpt"]}

DIRS = rows(
    Row("nothing there", "run: missing", detail="data/logs, data/ckpt",
        files={"data/logs": IS_DIR, "data/ckpt": IS_DIR}),
    Row("inside a repo: after the repo", "run: after repo:lib",
        spec={"repos": {"lib": LIB}, "dirs": ["lib/logs"]},
        others={"repo:lib": "run: missing"},
        files={"lib/logs": IS_DIR, "lib": Head("<lib.c1>")}),
    Row("done and recorded", "up to date", world=(DONE,)),
    Row("done, then the spec adds one", "run: spec changed", world=(DONE,),
        spec={"dirs": ["data/logs", "data/ckpt", "data/dataset"]},
        files={"data/dataset": IS_DIR}),
    Row("done, then one removed", "run: missing: data/ckpt", world=(DONE, delete("data/ckpt")),
        files={"data/ckpt": IS_DIR}),
    Row("made by hand, never recorded", "run: not recorded yet (found in place)",
        world=(mkdirs("data/logs", "data/ckpt"),), files={"data/logs": IS_DIR}),
    Row("done, forced", "run: forced", world=(DONE,), forced=True, files={"data/logs": IS_DIR}),
)


@pytest.mark.parametrize("row", DIRS)
def test_dirs(row: Row, make_box, record_commands) -> None:
    check_row(make_box("dirs", DIRS_BASE), row, record_commands)


# === env ================================================================================================
# uv makes the target env for real: `tiny` from the local index, a requirements file read from lib.

ENV = {"venv": "venv", "requirements": [{"repo": "lib", "file": "requirements.txt"}], "packages": ["tiny==1.0"]}
ENV_BASE = {"repos": {"lib": LIB}, "env": ENV}
SYNC = ("uv sync --inexact --project {root}/.npuenv/target --python {python}",
        "uv pip list --format json --python {root}/venv/bin/python")
PYPROJECT = ".npuenv/target/pyproject.toml"
# a patch with a `when:` on a repo the env does not install (decord's FFmpeg 5 patch)
ELSEWHERE = {"repos": {"core": CORE}, "patches": {"core-fix": {
    "repo": "core", "file": "core-fix.patch", "when": {"pkgconfig": "libfake", "version": ">=2"}}}}

ENV_ROWS = rows(
    Row("nothing there (python found, lib checked out)", "run: missing", world=(DEPS_DONE,),
        detail="venv: tiny==1.0",
        commands=SYNC,
        files={installed("tiny"): "1.0", PYPROJECT: Contains(('    "tiny>=1.0",', '    "tiny==1.0",'))},
        resolved={"packages": {"tiny": "1.0"}, "venv": "{root}/venv"}),
    Row("done and recorded", "up to date", world=(DONE,)),
    Row("done, then a package line changed", "run: spec changed", world=(DONE,),
        spec={"env": {"packages": ["tiny==1.1"]}},
        commands=SYNC, files={installed("tiny"): "1.1"}, resolved={"packages": {"tiny": "1.1"}}),
    Row("done, then a `when:` patch on a repo it does not install flipped", "up to date",
        world=(pkgconfig("libfake", "2.0"), Done(ELSEWHERE), pkgconfig("libfake", "1.0")), spec=ELSEWHERE,
        others={"patch:core-fix": "run: spec changed"},  # the patch is taken out; the env is not its business
        files={"core/core/a.py": "A = 1\n", installed("tiny"): "1.0"}),
    Row("done, then another version installed by hand", "run: drifted: the target env differs from its lock: "
        "tiny 1.1, locked 1.0", world=(DONE, uv_pip("install", "tiny==1.1")),
        commands=SYNC, files={installed("tiny"): "1.0"}),
    Row("done, then a requirements file edited by hand", "run: drifted: the target env's requirements changed",
        world=(DONE, append("lib/requirements.txt", "tiny<1.1\n")),
        commands=SYNC, files={PYPROJECT: Contains(('    "tiny<1.1",',)), installed("tiny"): "1.0"}),
    Row("done, then uv.lock edited by hand", "run: drifted: uv.lock was changed outside npuenv",
        world=(DONE, append(".npuenv/target/uv.lock", "# edited by hand\n")),
        commands=SYNC, files={installed("tiny"): "1.0"}),
    Row("done, then the venv deleted", "run: missing", world=(DONE, delete("venv")),
        commands=SYNC, files={installed("tiny"): "1.0"}),
    Row("present, never recorded", "run: not recorded yet (found in place)", world=(DONE, forget("env")),
        commands=SYNC, files={installed("tiny"): "1.0"}),
    Row("done, forced", "run: forced", world=(DONE,), forced=True,
        commands=SYNC, files={installed("tiny"): "1.0"}),
)


@pytest.mark.parametrize("row", ENV_ROWS)
def test_env(row: Row, make_box, record_commands) -> None:
    check_row(make_box("env", ENV_BASE), row, record_commands)


# === build ==============================================================================================
# tool's "build" is make_wheel.py run by the target interpreter: a real build, cached and installed.

TOOL = {"url": "https://git.example/team/tool.git", "commit": "<tool.c1>", "path": "tool"}
BIN = "toolpkg_bin-0.1-py3-none-any.whl"
TOOLPKG = {"package": "toolpkg", "repo": "tool", "commands": [["{python}", "make_wheel.py", "dist"]],
           "wheels": "dist/*.whl", "check": "import toolpkg",
           "prebuilt": {"package": "toolpkg-bin", "version": "0.1", "glibc": "2.28",
                        "files": {ARCH: {"filename": BIN, "sha256": f"<sha.{BIN}>"}}}}
BUILD_BASE = {"repos": {"tool": TOOL}, "env": {"venv": "venv", "packages": ["tiny==1.0"]},
              "builds": {"toolpkg": TOOLPKG}}
AUTO = {"builds": {"toolpkg": {"strategy": "auto"}}}
VENV_PY = "{root}/venv/bin/python"
RIVALS = f"{VENV_PY} -c import importlib.metadata as m, sys…"  # which of the build's other packages are installed
DIST_INFO = f"{VENV_PY} -c import importlib.metadata as m, sys; d = m.distribution(sys.argv[1]);…"
INSTALL_CACHED = (f"{RIVALS} toolpkg-bin",
                  f"uv pip install --python {VENV_PY} --reinstall-package toolpkg --default-index {{pypi}}/simple "
                  "{root}/wheels/built/toolpkg/{key}/toolpkg-0.1-py3-none-any.whl",
                  f"{VENV_PY} -c import toolpkg",  # the spec's check
                  f"{DIST_INFO} toolpkg")
BUILD = (f"{VENV_PY} make_wheel.py dist", *INSTALL_CACHED)
PREBUILT = (f"{RIVALS} toolpkg",
            f"uv pip install --python {VENV_PY} --reinstall-package toolpkg-bin --default-index {{pypi}}/simple "
            f"{{root}}/wheels/{BIN}",
            f"{VENV_PY} -c import toolpkg",
            f"{DIST_INFO} toolpkg-bin")
FROM_SOURCE = "toolpkg from tool @ <tool.c1:12>, cached under a content key"
CANN_CHECK = {"builds": {"toolpkg": {"cann_check": "import toolpkg, needs_cann"}}}
SOURCED = "bash -c set_env=$1; shift;… npuenv {tmp}/cann/set_env.sh"


def with_cann(box: Box) -> None:
    """CANN is installed now: a set_env.sh that makes `needs_cann` importable, as CANN makes torch_npu."""
    (box.tmp / "cann" / "site").mkdir(parents=True)
    (box.tmp / "cann" / "site" / "needs_cann.py").write_text("")
    (box.tmp / "cann" / "set_env.sh").write_text(f"export PYTHONPATH={box.tmp / 'cann' / 'site'}\n")
    machine(cann_set_env=box.tmp / "cann" / "set_env.sh", cann_present=True)(box)


BUILD_ROWS = rows(
    Row("nothing there (the env made)", "run: missing", world=(DEPS_DONE,),
        detail=FROM_SOURCE, commands=BUILD,
        files={installed("toolpkg"): "0.1", installed("toolpkg_bin"): None},
        resolved={"strategy": "source", "cached": False, "dist": "toolpkg"}),
    Row("done and recorded", "up to date", world=(DONE,)),
    Row("done, then the build's commands changed: a new cache key", "run: spec changed", world=(DONE,),
        spec={"builds": {"toolpkg": {"commands": [["{python}", "make_wheel.py", "dist"], ["{python}", "-c", "pass"]]}}},
        commands=(f"{VENV_PY} make_wheel.py dist", f"{VENV_PY} -c pass", *INSTALL_CACHED),
        resolved={"cached": False}),
    Row("done, then the env re-synced: the cached wheel is installed again, nothing compiled", "run: after env",
        world=(DONE,), spec={"env": {"packages": ["tiny==1.1"]}},
        others={"env": "run: spec changed"},
        commands=INSTALL_CACHED, files={installed("toolpkg"): "0.1"}, resolved={"cached": True}),
    Row("done, then uninstalled by hand", "run: drifted: toolpkg is no longer installed in the target env",
        world=(DONE, uv_pip("uninstall", "toolpkg")),
        commands=INSTALL_CACHED, files={installed("toolpkg"): "0.1"}, resolved={"cached": True}),
    Row("installed, never recorded: a build is never found in place", "run: missing",
        world=(DONE, forget("build:toolpkg")),
        commands=INSTALL_CACHED, resolved={"cached": True}),
    Row("done, forced: the cache is skipped", "run: forced", world=(DONE,), forced=True,
        commands=BUILD, resolved={"cached": False}),
    Row("strategy auto on glibc 2.36: the prebuilt wheel, its repo not even cloned", "run: missing",
        world=(DEPS_DONE,), spec=AUTO,
        detail=f"prebuilt {BIN} sha256 <sha.{BIN}>",
        others={"repo:tool": "not in the plan"},
        commands=PREBUILT,
        files={installed("toolpkg_bin"): "0.1", installed("toolpkg"): None, f"wheels/{BIN}": Sha(f"<sha.{BIN}>"),
               "tool": ABSENT},
        resolved={"strategy": "wheel", "dist": "toolpkg-bin"}),
    Row("strategy auto on glibc 2.17: built from source", "run: missing",
        world=(machine(glibc="2.17"), DEPS_DONE), spec=AUTO,
        detail=FROM_SOURCE, others={"repo:tool": "up to date"},
        commands=BUILD, files={installed("toolpkg"): "0.1"}, resolved={"strategy": "source"}),
    Row("built from source on glibc 2.17, then the workspace on a glibc 2.36 box", "run: spec changed",
        world=(machine(glibc="2.17"), Done(AUTO), machine(glibc="2.36")), spec=AUTO,
        detail=f"prebuilt {BIN} sha256 <sha.{BIN}>",
        others={"repo:tool": "not in the plan"},
        commands=(f"{RIVALS} toolpkg",
                  f"uv pip uninstall --python {VENV_PY} toolpkg",  # decord and decord2: one at a time
                  *PREBUILT[1:]),
        files={installed("toolpkg_bin"): "0.1", installed("toolpkg"): None}),
    Row("with a cann_check, on a box without CANN", "run: missing", world=(DEPS_DONE,), spec=CANN_CHECK,
        commands=BUILD,  # the cann_check is not run
        resolved={"note": "not verified here: no CANN (import toolpkg, needs_cann)",
                  "not_verified": "import toolpkg, needs_cann"}),
    Row("done on a box without CANN, then CANN installed: everything runs with set_env.sh sourced",
        "run: spec changed", world=(Done(CANN_CHECK), with_cann), spec=CANN_CHECK,
        commands=(f"{RIVALS} toolpkg-bin",
                  INSTALL_CACHED[1],
                  f"{SOURCED} {VENV_PY} -c import toolpkg",
                  f"{SOURCED} {VENV_PY} -c import toolpkg, needs_cann",  # the cann_check, now run
                  f"{SOURCED} {DIST_INFO} toolpkg"),
        resolved={"note": None, "cached": True}),
)


@pytest.mark.parametrize("row", BUILD_ROWS)
def test_build(row: Row, make_box, record_commands) -> None:
    check_row(make_box("build", BUILD_BASE), row, record_commands)


# === smoke ==============================================================================================
# No NPU device files here (NPUENV_DEVICE_GLOB points into the row's folder): the step records a skip.
# With device files it would run the smoke test in the target env, which needs torch_npu: not run here.

SMOKE_BASE = {"env": {"venv": "venv", "packages": ["tiny==1.0"]}}
NO_NPUS = "no NPU devices on this machine"

SMOKE = rows(
    Row("nothing there (the env made), no NPU devices", "run: missing", world=(DEPS_DONE,),
        detail=f"{NO_NPUS} ({{tmp}}/dev/davinci[0-9]*): recorded as skipped",
        resolved={"skipped": NO_NPUS, "device_glob": "{tmp}/dev/davinci[0-9]*"}),
    Row("done (skipped) and recorded", "up to date", world=(DONE,)),
    Row("done (skipped), then NPU device files appear", "run: spec changed", world=(DONE, npu_devices(0, 1)),
        detail="torch_npu, bf16 matmul on 2 NPU(s), HCCL all-reduce, MindSpeed, decord",
        commands=None),
    Row("done, then the env re-synced", "run: after env", world=(DONE,),
        spec={"env": {"packages": ["tiny==1.1"]}},
        resolved={"skipped": NO_NPUS}),
    Row("done, then CANN installed elsewhere (NPUENV_CANN_SET_ENV)", "run: spec changed",
        world=(DONE, machine(cann_set_env=Path("/opt/cann/set_env.sh"))),
        resolved={"skipped": NO_NPUS}),
    Row("never recorded: the smoke test is never found in place", "run: missing", world=(DONE, forget("smoke")),
        resolved={"skipped": NO_NPUS}),
    Row("done, forced", "run: forced", world=(DONE,), forced=True, resolved={"skipped": NO_NPUS}),
)


@pytest.mark.parametrize("row", SMOKE)
def test_smoke(row: Row, make_box, record_commands) -> None:
    check_row(make_box("smoke", SMOKE_BASE), row, record_commands)


# === what enters a fingerprint (no world needed: the engine's fingerprint of the step, before and after) ===

FINGERPRINT_BASE = {"repos": {"lib": LIB, "core": CORE},
                    "patches": {"no-pip": {"repo": "lib", "file": "no-pip.patch"},
                                "core-fix": {"repo": "core", "file": "core-fix.patch"}},
                    "env": ENV, "dirs": ["data/logs"]}


@pytest.mark.parametrize("change, changes_env", [
    pytest.param({"env": {"packages": ["tiny==1.1"]}}, True, id="a package line"),
    pytest.param({"index": "https://pypi.example/other/simple"}, True, id="the index"),
    pytest.param({"python": "<py.other>"}, True, id="the python version"),
    pytest.param({"repos": {"lib": {"commit": "<lib.c2>"}}}, True, id="the pin of a repo it reads"),
    pytest.param({"patches": {"no-pip": {"file": "no-pip-v2.patch"}}}, True, id="a patch on a repo it reads"),
    pytest.param({"repos": {"core": {"commit": "<core.c2>"}}}, False, id="the pin of a repo it does not read"),
    pytest.param({"patches": {"core-fix": {"file": "core-fix-v2.patch"}}}, False,
                 id="a patch on a repo it does not read (decord's)"),
    pytest.param({"dirs": ["data/logs", "data/ckpt"]}, False, id="the dirs"),
])
def test_what_changes_the_envs_fingerprint(change: dict, changes_env: bool, make_box) -> None:
    box = make_box("env", FINGERPRINT_BASE)

    def fingerprint(changes: dict) -> str:
        run = box.invocation(changes)
        [env] = run.mine
        return run.engine().fingerprint(env)

    assert (fingerprint({}) != fingerprint(change)) is changes_env


@pytest.mark.parametrize("strategy, on, chosen", [
    pytest.param("auto", Machine(ARCH, "2.36"), "wheel", id="auto, glibc 2.36"),
    pytest.param("auto", Machine(ARCH, "2.28"), "wheel", id="auto, glibc 2.28: the prebuilt's floor"),
    pytest.param("auto", Machine(ARCH, "2.17"), "source", id="auto, glibc 2.17"),
    pytest.param("auto", Machine(ARCH, None), "source", id="auto, no glibc (musl)"),
    pytest.param("auto", Machine(OTHER_ARCH, "2.36"), "source", id="auto, an arch without a prebuilt file"),
    pytest.param("source", Machine(ARCH, "2.36"), "source", id="source, glibc 2.36"),
    pytest.param("wheel", Machine(ARCH, "2.17"), "wheel", id="wheel, glibc 2.17: as asked"),
])
def test_a_builds_strategy_on_each_machine(strategy: str, on: Machine, chosen: str, make_box) -> None:
    """Machine(arch, glibc) decides source or wheel: in the fingerprint, the plan's detail and the repos cloned."""
    box = make_box("build", BUILD_BASE)
    box.machine = on
    run = box.invocation({"builds": {"toolpkg": {"strategy": strategy}}})
    [build] = run.mine
    assert build.fingerprint(run.ctx)["strategy"] == chosen
    assert build.describe(run.ctx).startswith("prebuilt " if chosen == "wheel" else "toolpkg from tool @ ")
    assert ("repo:tool" in [s.id for s in run.steps]) is (chosen == "source")
