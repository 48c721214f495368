"""Step kinds on real git checkouts and files, one verb at a time (table-driven where natural)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from npuenv.errors import PatchError
from npuenv.machine import Machine
from npuenv.steps.overlay import Overlay
from npuenv.steps.patch import Patch
from npuenv.state import State
from npuenv.steps.base import Context
from npuenv.steps.overlay import OverlayStep
from npuenv.steps.patch import PatchStep

REPO = Path(__file__).resolve().parents[1]
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
SETUP = "".join(f"# line {n}\n" for n in range(1, 47)) + (
    "if os.getenv('CI_BUILD', '0') != '1':\n"
    "    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-r', 'requirements.txt'])\n"
    "setuptools.setup(name='mindspeed')\n")


class FakeRepo:
    """What the steps read from a spec repo entry."""

    def __init__(self, name: str, path: str, commit: str = "0" * 40) -> None:
        self.name, self.path, self.commit, self.url = name, path, commit, f"https://example.org/{name}.git"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout


def make_repo(root: Path, name: str, files: dict) -> Path:
    path = root / name
    path.mkdir(parents=True)
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "upstream")
    return path


@pytest.fixture
def log(tmp_path):
    """Steps write their commands' output to a real file (subprocesses need a file descriptor)."""
    with open(tmp_path / "step.log", "w", encoding="utf-8") as handle:
        yield handle


def context(root: Path) -> Context:
    return Context(root=root, spec=None, wheels_dir=root / "wheels", env=GIT_ENV, mirrors=None,
                   ca_bundle=root / "ca.pem", uv="uv", machine=Machine("x86_64"), state=State(root / "state.json"))


def mindspeed_patch_step(root: Path, setup_text: str) -> PatchStep:
    make_repo(root, "MindSpeed", {"setup.py": setup_text})
    patch = Patch("mindspeed-setup-no-pip", "mindspeed", REPO / "patches" / "mindspeed-setup-no-pip.patch")
    return PatchStep(patch, FakeRepo("mindspeed", "MindSpeed"))


def test_the_shipped_patch_applies_once_and_is_then_recognised(tmp_path, log):
    step, ctx = mindspeed_patch_step(tmp_path, SETUP), context(tmp_path)
    assert not step.check(ctx).ok and step.check(ctx).reason == "not applied"
    resolved = step.apply(ctx, log)
    lines = (tmp_path / "MindSpeed" / "setup.py").read_text().splitlines()
    assert lines[46] == "# if os.getenv('CI_BUILD', '0') != '1':" and lines[47].startswith("#     subprocess")
    assert step.check(ctx).ok
    assert resolved["applied"] is True and set(resolved["files"]) == {"setup.py"}
    again = step.apply(ctx, log)  # already applied: detected, nothing changes
    assert again["files"] == resolved["files"]
    assert (tmp_path / "MindSpeed" / "setup.py").read_text().count("# if os.getenv") == 1


def test_a_patch_that_neither_applies_nor_is_applied_says_upstream_changed(tmp_path, log):
    moved = SETUP.replace("'-r', 'requirements.txt'", "'-r', 'requirements/base.txt'")
    step, ctx = mindspeed_patch_step(tmp_path, moved), context(tmp_path)
    with pytest.raises(PatchError) as info:
        step.apply(ctx, log)
    assert info.value.message.startswith(
        "upstream changed: mindspeed-setup-no-pip.patch no longer applies to mindspeed at 000000000000")
    assert "refresh the patch" in info.value.hint
    assert (tmp_path / "MindSpeed" / "setup.py").read_text() == moved  # untouched


def test_overlay_copies_verifies_and_detects_drift(tmp_path, log):
    make_repo(tmp_path, "MM", {"examples/dpa.py": "NEW = 1\n"})
    make_repo(tmp_path, "MS", {"mindspeed/dpa.py": "OLD = 1\n"})
    step = OverlayStep(Overlay("dpa", "mm", "examples/dpa.py", "ms", "mindspeed/dpa.py"),
                       FakeRepo("mm", "MM"), FakeRepo("ms", "MS"))
    ctx = context(tmp_path)
    assert step.check(ctx).reason.startswith("drifted")
    resolved = step.apply(ctx, log)
    assert (tmp_path / "MS" / "mindspeed" / "dpa.py").read_text() == "NEW = 1\n" and step.check(ctx).ok
    assert list(resolved["files"]) == ["mindspeed/dpa.py"]
    assert not list((tmp_path / "MS" / "mindspeed").glob(".*npuenv-tmp*"))


def test_an_overlay_whose_source_upstream_deleted_is_a_clear_error(tmp_path, log):
    make_repo(tmp_path, "MM", {"README": "no examples any more\n"})
    make_repo(tmp_path, "MS", {"mindspeed/dpa.py": "OLD = 1\n"})
    step = OverlayStep(Overlay("dpa", "mm", "examples/dpa.py", "ms", "mindspeed/dpa.py"),
                       FakeRepo("mm", "MM"), FakeRepo("ms", "MS"))
    with pytest.raises(Exception) as info:
        step.apply(context(tmp_path), log)
    assert "examples/dpa.py is missing in mm" in str(info.value) and "pin a commit" in info.value.hint


def wheels_task(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), "wheels", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=REPO)


def test_wheels_lists_and_prunes_only_what_no_spec_references(tmp_path):
    from npuenv.spec import load_spec
    from npuenv.wheelcache import WheelCache

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    spec = load_spec("mindspeed-mm-internvl2.5")
    pinned = spec.wheels["torch_npu"].files["x86_64"].filename
    (wheels / pinned).write_bytes(b"x" * 2048)
    (wheels / "old_thing-1.0-py3-none-any.whl").write_bytes(b"y" * 10)
    built = tmp_path / "apex-0.1-cp310-cp310-linux_x86_64.whl"
    built.write_bytes(b"z")
    cache = WheelCache(wheels)
    apex = spec.repos["apex"].commit
    cache.put("apex", "k-current", built, {"commit": apex, "patches": {}, "python": "cp310"})
    cache.put("apex", "k-stale", built, {"commit": "f" * 40, "patches": {}, "python": "cp310"})

    listing = wheels_task("--wheels", str(wheels))
    assert listing.returncode == 0, listing.stderr
    assert "used by: mindspeed-mm-internvl2.5" in listing.stdout
    assert listing.stdout.count("used by: unused") == 2  # the stray wheel and the stale build
    as_json = json.loads(wheels_task("--wheels", str(wheels), "--json").stdout)  # the same items, as data
    assert as_json["folder"] == str(wheels) and "pruned" not in as_json
    unused = sorted(i["name"] for i in as_json["items"] if not i["used_by"])
    assert unused == ["apex: apex-0.1-cp310-cp310-linux_x86_64.whl", "old_thing-1.0-py3-none-any.whl"]

    pruned = wheels_task("--wheels", str(wheels), "--prune", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert len(json.loads(pruned.stdout)["pruned"]) == 2 and json.loads(pruned.stdout)["freed"] > 0
    assert (wheels / pinned).exists() and not (wheels / "old_thing-1.0-py3-none-any.whl").exists()
    assert [e.key for e in cache.entries()] == ["k-current"]
    assert json.loads((wheels / "built" / "apex" / "k-current" / "key.json").read_text())["inputs"]["commit"] == apex


def test_a_local_edit_to_a_patched_file_is_named_as_such_not_as_an_upstream_change(tmp_path, log):
    step, ctx = mindspeed_patch_step(tmp_path, SETUP), context(tmp_path)
    setup = tmp_path / "MindSpeed" / "setup.py"
    setup.write_text(SETUP.replace("'-r', 'requirements.txt'", "'-r', 'mine.txt'"))
    with pytest.raises(PatchError) as info:
        step.apply(ctx, log)
    assert "setup.py in MindSpeed was changed locally" in info.value.message
    assert f"git -C {tmp_path / 'MindSpeed'} checkout -- setup.py" in info.value.hint


def test_an_edited_overlay_is_restored_and_the_edit_kept_as_a_backup(tmp_path, log):
    make_repo(tmp_path, "MM", {"examples/dpa.py": "NEW = 1\n"})
    make_repo(tmp_path, "MS", {"mindspeed/dpa.py": "OLD = 1\n"})
    step = OverlayStep(Overlay("dpa", "mm", "examples/dpa.py", "ms", "mindspeed/dpa.py"),
                       FakeRepo("mm", "MM"), FakeRepo("ms", "MS"))
    ctx = context(tmp_path)
    ctx.state.save_step(step.id, "fp", step.apply(ctx, log), 0.1)
    target = tmp_path / "MS" / "mindspeed" / "dpa.py"
    target.write_text("NEW = 1\nMY_TWEAK = 2\n")
    assert step.check(ctx).reason.startswith("drifted")
    step.apply(ctx, log)
    assert target.read_text() == "NEW = 1\n"
    assert target.with_name("dpa.py.npuenv-backup").read_text() == "NEW = 1\nMY_TWEAK = 2\n"


def test_an_edited_copy_is_replaced_and_the_edited_tree_kept_as_a_backup(tmp_path, log):
    from npuenv.steps.copy import Copy
    from npuenv.steps.copy import CopyStep

    make_repo(tmp_path, "Megatron-LM", {"megatron/core/a.py": "A = 1\n", "megatron/b.py": "B = 1\n"})
    step = CopyStep(Copy("megatron", "megatron", "megatron", "MM/megatron"), FakeRepo("megatron", "Megatron-LM"))
    ctx = context(tmp_path)
    ctx.state.save_step(step.id, "fp", step.apply(ctx, log), 0.1)
    target = tmp_path / "MM" / "megatron"
    assert (target / "core" / "a.py").read_text() == "A = 1\n" and step.check(ctx).ok
    (target / "b.py").write_text("B = 2  # my change\n")
    assert step.check(ctx).reason == "drifted: files in MM/megatron were changed"
    step.apply(ctx, log)
    assert (target / "b.py").read_text() == "B = 1\n"
    assert (tmp_path / "MM" / "megatron.npuenv-backup" / "b.py").read_text() == "B = 2  # my change\n"
    assert not list((tmp_path / "MM").glob(".megatron*"))


def _pkgconfig_module(folder: Path, name: str, version: str) -> None:
    """A pkg-config module file: what `pkg-config --modversion` reads, so a `when:` condition can be steered."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pc").write_text(f"Name: {name}\nDescription: test\nVersion: {version}\nLibs:\nCflags:\n")


def test_a_when_patch_is_reversed_when_its_condition_stops_holding(tmp_path, log):
    """decord's FFmpeg 5 patch: applied on FFmpeg 5; on a box that now has FFmpeg 4 it is taken out again."""
    from npuenv.steps.patch import Condition

    make_repo(tmp_path, "MindSpeed", {"setup.py": SETUP})
    patch = Patch("ffmpeg5", "mindspeed", REPO / "patches" / "mindspeed-setup-no-pip.patch",
                  Condition("libfakeav", ">=59,<61"))
    step, ctx = PatchStep(patch, FakeRepo("mindspeed", "MindSpeed")), context(tmp_path)
    pc = tmp_path / "pkgconfig"
    ctx.env = {**GIT_ENV, "PKG_CONFIG_PATH": str(pc), "PKG_CONFIG_LIBDIR": str(pc)}
    _pkgconfig_module(pc, "libfakeav", "59.37.100")  # FFmpeg 5
    assert step.check(ctx).reason == "not applied"
    assert step.apply(ctx, log)["applied"] is True and step.check(ctx).ok
    wanted_before = step.fingerprint(ctx)["wanted"]
    _pkgconfig_module(pc, "libfakeav", "58.134.100")  # FFmpeg 4 now; the next run makes its steps afresh
    step = PatchStep(patch, FakeRepo("mindspeed", "MindSpeed"))
    assert step.fingerprint(ctx)["wanted"] is False and wanted_before is True  # the engine re-runs it
    assert step.check(ctx).reason == "drifted: applied, but its `when:` condition no longer holds"
    resolved = step.apply(ctx, log)
    assert resolved["applied"] is False and resolved["found"] == "libfakeav 58.134.100"
    assert (tmp_path / "MindSpeed" / "setup.py").read_text() == SETUP and step.check(ctx).ok
    log.flush()
    assert "reversed mindspeed-setup-no-pip.patch: its condition no longer holds (libfakeav 58.134.100" in \
        (tmp_path / "step.log").read_text()
    assert step.apply(ctx, log)["applied"] is False  # nothing applied, nothing to reverse: stays as it is
    assert (tmp_path / "MindSpeed" / "setup.py").read_text() == SETUP
