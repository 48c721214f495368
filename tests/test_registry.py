"""The registry of step kinds: a kind is one module, and spec, plan and engine take it from the registry.

`GREETING` below is a test-fixture kind, not part of npuenv: a `greetings:` section whose entries each
write a file. Added to the kinds given to load_spec and compile_steps, it is checked, planned and run like
any built-in kind, with no other change.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict

import pytest

from npuenv import schema as s
from npuenv.engine import Engine
from npuenv.errors import SpecError
from npuenv.machine import Machine
from npuenv.plan import compile_steps
from npuenv.results import Status
from npuenv.spec import load_spec, top_keys
from npuenv.state import State
from npuenv.steps import KINDS, kind
from npuenv.steps.base import OK, Checked, Context, Kind, Step, containing_repo, drifted, missing, step_ids

# --- the fixture kind: one file's worth, as a new steps/<kind>.py would be ---------------------------------


@dataclass(frozen=True)
class Greeting:
    name: str
    path: str
    text: str


def parse_greetings(ck: s.Checker, data: dict, parsed: dict) -> Dict[str, Greeting]:
    schema = {"path": (s.relpath("the workspace root"), True), "text": (s.nonempty, True)}
    out = {}
    for name, item in s.entries(ck, ("greetings",), data.get("greetings")):
        f = s.fields(ck, ("greetings", name), item, schema)
        out[name] = Greeting(name, f.get("path"), f.get("text"))
    return out


class GreetingStep(Step):
    kind = "greeting"

    def __init__(self, greeting: Greeting, deps: tuple = ()) -> None:
        super().__init__(greeting.name, deps)
        self.greeting = greeting

    def fingerprint(self, ctx: Context) -> Any:
        return {"path": self.greeting.path, "text": self.greeting.text}

    def check(self, ctx: Context) -> Checked:
        path = ctx.path(self.greeting.path)
        if not path.is_file():
            return missing()
        return OK if path.read_text() == self.greeting.text else drifted("the text was changed")

    def apply(self, ctx: Context, log: IO[str]) -> dict:
        path = ctx.path(self.greeting.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.greeting.text)
        log.write(f"wrote {path}\n")
        return {"bytes": len(self.greeting.text)}


def compile_greetings(spec: Any, machine: Machine) -> list:
    """After the repo its file lies in, like a copy."""
    return [GreetingStep(g, step_ids(containing_repo(spec, g.path))) for g in spec.sections["greetings"].values()]


GREETING = Kind("greeting", compile_greetings, section="greetings", parse=parse_greetings)
WITH_GREETINGS = (*KINDS, GREETING)

# --- the tests ---------------------------------------------------------------------------------------------


def spec_file(tmp_path: Path, greetings: str) -> Path:
    path = tmp_path / "greet.yaml"
    path.write_text(f"name: greet\npython: '3.10'\ndirs: [logs]\ngreetings:\n{greetings}")
    return path


def engine(root: Path, spec: Any) -> Engine:
    ctx = Context(root=root, spec=spec, wheels_dir=root / "wheels", env={}, mirrors=None, ca_bundle=root / "ca",
                  uv="uv", machine=Machine("x86_64"), state=State.load(root / ".npuenv" / "state.json"))
    steps = [st for st in compile_steps(spec, ctx.machine, WITH_GREETINGS) if st.id != "python"]
    return Engine(ctx, steps, log_dir=root / ".npuenv" / "logs")


def test_a_new_kind_in_one_file_is_checked_planned_and_run(tmp_path):
    spec = load_spec(spec_file(tmp_path, "  hello: {path: notes/hello.txt, text: hi}\n"), kinds=WITH_GREETINGS)
    assert spec.sections["greetings"]["hello"] == Greeting("hello", "notes/hello.txt", "hi")
    root = tmp_path / "ws"
    root.mkdir()
    plan = {d.step_id: d for d in engine(root, spec).plan()}
    assert plan["greeting:hello"].run and plan["greeting:hello"].reason == "missing"
    report = engine(root, spec).run()
    assert report.by_id("greeting:hello").status is Status.DONE
    assert (root / "notes" / "hello.txt").read_text() == "hi"
    again = {d.step_id: d for d in engine(root, spec).plan()}
    assert not again["greeting:hello"].run and again["greeting:hello"].reason == "up to date"
    (root / "notes" / "hello.txt").write_text("changed")
    assert engine(root, spec).plan()[-1].reason == "drifted: the text was changed"


def test_the_new_kinds_section_is_checked_with_file_line_and_key(tmp_path):
    bad = spec_file(tmp_path, "  hello: {path: ../outside.txt}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(bad, kinds=WITH_GREETINGS)
    problems = caught.value.problems
    assert any(p.startswith(f"{bad}:5 greetings.hello.text: missing") for p in problems), problems
    assert any("greetings.hello.path" in p and ".." in p for p in problems), problems


def test_without_the_kind_its_section_is_an_unknown_key(tmp_path):
    path = spec_file(tmp_path, "  hello: {path: hello.txt, text: hi}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert any("greetings: unknown key" in p for p in caught.value.problems), caught.value.problems


def test_the_spec_keys_are_the_spec_own_and_one_section_per_kind():
    assert top_keys(KINDS) == ("name", "description", "index", "indexes", "mirrors", "extends", "python", "repos",
                               "copies", "patches", "overlays", "wheels", "env", "builds", "dirs", "models")
    assert top_keys(WITH_GREETINGS)[-1] == "greetings"
    assert [k.name for k in KINDS] == ["python", "repo", "copy", "patch", "overlay", "wheel", "env", "build",
                                      "dirs", "smoke", "models"]
    assert kind("build").section == "builds" and kind("smoke").section is None
    with pytest.raises(KeyError):
        kind("greeting")


def test_every_kind_compiles_the_default_spec_into_steps_of_its_own_kind():
    spec = load_spec("mindspeed-mm-internvl2.5")
    machine = Machine("aarch64", "2.28")
    for each in KINDS:
        steps = each.compile(spec, machine)
        if each.name == "models":  # a section only: bootstrap never downloads weights
            assert steps == [] and spec.sections["models"]
            continue
        assert steps, each.name
        assert {step.kind for step in steps} == {each.name}


def test_loading_a_spec_does_not_import_the_step_engine_machinery():
    """The registry is imported to check a spec; it must not drag in requests (only downloads need it)."""
    probe = ("import sys; from npuenv.spec import load_spec; load_spec('mindspeed-mm-internvl2.5'); "
             "print('requests' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
