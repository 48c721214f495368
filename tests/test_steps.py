"""Step kinds on real git checkouts and files, one verb at a time (table-driven where natural)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

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


def overlaid(tmp_path, log):
    """MindSpeed-MM's dpa.py overlaid on MindSpeed's own (committed) one, and recorded: (step, ctx, target)."""
    make_repo(tmp_path, "MM", {"examples/dpa.py": "NEW = 1\n"})
    make_repo(tmp_path, "MS", {"mindspeed/dpa.py": "OLD = 1\n"})
    step = OverlayStep(Overlay("dpa", "mm", "examples/dpa.py", "ms", "mindspeed/dpa.py"),
                       FakeRepo("mm", "MM"), FakeRepo("ms", "MS"))
    ctx = context(tmp_path)
    ctx.state.save_step(step.id, "fp", step.apply(ctx, log), 0.1)
    return step, ctx, tmp_path / "MS" / "mindspeed" / "dpa.py"


def test_an_edited_overlay_is_restored_and_the_edit_kept_as_a_backup(tmp_path, log):
    step, ctx, target = overlaid(tmp_path, log)
    target.write_text("NEW = 1\nMY_TWEAK = 2\n")
    assert step.check(ctx).reason.startswith("drifted")
    step.apply(ctx, log)
    assert target.read_text() == "NEW = 1\n"
    assert target.with_name("dpa.py.npuenv-backup").read_text() == "NEW = 1\nMY_TWEAK = 2\n"


def test_an_overlay_a_checkout_put_back_is_copied_again_without_calling_it_an_edit(tmp_path, log):
    """The repo step moves a drifted repo back to its pin with `checkout --force`, which restores the repo's own
    file where the overlay was: that is nobody's edit, so nothing is kept as a backup."""
    step, ctx, target = overlaid(tmp_path, log)
    git(tmp_path / "MS", "checkout", "-q", "--force", "HEAD")
    assert target.read_text() == "OLD = 1\n" and step.check(ctx).reason.startswith("drifted")
    facts = step.apply(ctx, log)
    assert target.read_text() == "NEW = 1\n" and "note" not in facts
    assert not target.with_name("dpa.py.npuenv-backup").exists()


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


# --- a changed patch file: the version npuenv applied before is taken out first ------------------------------

SHIPPED = REPO / "patches" / "mindspeed-setup-no-pip.patch"


def refreshed_patch(folder: Path, name: str = "mindspeed-setup-no-pip.patch") -> Path:
    """The shipped patch as a later npuenv release might ship it: the same lines, commented out another way."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(SHIPPED.read_text().replace("+# ", "+# npuenv: "))
    return folder / name


def applied_and_recorded(tmp_path: Path, log, patch: Patch, env: Optional[dict] = None) -> tuple:
    """The patch applied and recorded as the engine records it, and the state read back from its file."""
    make_repo(tmp_path, "MindSpeed", {"setup.py": SETUP})
    step, ctx = PatchStep(patch, FakeRepo("mindspeed", "MindSpeed")), context(tmp_path)
    ctx.env = env or ctx.env
    ctx.state.save_step(step.id, "fp", step.apply(ctx, log), 0.1)
    ctx.state = State.load(tmp_path / "state.json")  # the next run reads what was written
    return step, ctx


def test_a_refreshed_patch_takes_out_the_version_npuenv_applied_and_records_its_own_text(tmp_path, log):
    old, ctx = applied_and_recorded(tmp_path, log, Patch("no-pip", "mindspeed", SHIPPED))
    assert ctx.state.resolved(old.id)["text"] == SHIPPED.read_text()
    new = PatchStep(Patch("no-pip", "mindspeed", refreshed_patch(tmp_path / "v2")), FakeRepo("mindspeed", "MindSpeed"))
    resolved = new.apply(ctx, log)
    setup = (tmp_path / "MindSpeed" / "setup.py").read_text()
    assert "# npuenv: if os.getenv('CI_BUILD'" in setup and "\n# if os.getenv" not in setup
    assert resolved["text"] == (tmp_path / "v2" / "mindspeed-setup-no-pip.patch").read_text()
    ctx.state.stage(new.id, resolved)
    assert new.check(ctx).ok
    assert not list((tmp_path / ".npuenv" / "tmp").iterdir())  # the scratch copy of the earlier text is gone


@pytest.mark.parametrize("holds", [True, False], ids=["its `when:` holds", "its `when:` no longer holds"])
def test_a_patched_file_edited_since_is_never_taken_apart(tmp_path, log, holds):
    """Whether the refreshed patch is to be applied or left out here, an edited file is refused and kept."""
    from npuenv.steps.patch import Condition

    pc = tmp_path / "pkgconfig"
    _pkgconfig_module(pc, "libfakeav", "59.37.100")
    when = Condition("libfakeav", ">=59")
    env = {**GIT_ENV, "PKG_CONFIG_PATH": str(pc), "PKG_CONFIG_LIBDIR": str(pc)}
    old, ctx = applied_and_recorded(tmp_path, log, Patch("no-pip", "mindspeed", SHIPPED, when), env)
    assert ctx.state.resolved(old.id)["applied"] is True
    if not holds:
        _pkgconfig_module(pc, "libfakeav", "58.134.100")
    setup = tmp_path / "MindSpeed" / "setup.py"
    edited = setup.read_text() + "# my note\n"
    setup.write_text(edited)
    new = PatchStep(Patch("no-pip", "mindspeed", refreshed_patch(tmp_path / "v2"), when),
                    FakeRepo("mindspeed", "MindSpeed"))
    assert new.wanted(ctx)[0] is holds
    with pytest.raises(PatchError) as info:
        new.apply(ctx, log)
    assert info.value.message == ("patch no-pip changed, but npuenv will not take its earlier version out of "
                                  "MindSpeed: setup.py was edited after npuenv applied it")
    root = tmp_path / "MindSpeed"
    assert info.value.hint == (f"keep your change (`git -C {root} diff -- setup.py > my-change.diff`), restore the "
                               f"pinned file (`git -C {root} checkout -- setup.py`, which takes the earlier patch out "
                               "too), run again, then re-apply your change")
    assert setup.read_text() == edited


def test_an_earlier_patch_that_is_not_utf8_survives_the_state_file(tmp_path, log):
    """A patch's bytes are recorded as text (JSON); bytes that are not UTF-8 come back as they were."""
    work = make_repo(tmp_path / "upstream", "lib", {"x.py": ""})
    (work / "x.py").write_bytes(b"# caf\xe9\nX = 1\n")
    git(work, "commit", "-qam", "latin-1")
    patches = tmp_path / "patches"
    patches.mkdir()
    for name, value in (("v1", b"X = 2\n"), ("v2", b"X = 3\n")):
        (work / "x.py").write_bytes(b"# caf\xe9\n" + value)
        (patches / f"{name}.patch").write_bytes(subprocess.run(["git", "diff"], cwd=work, env=GIT_ENV,
                                                               check=True, capture_output=True).stdout)
        git(work, "checkout", "--", "x.py")
    subprocess.run(["git", "clone", "-q", str(work), str(tmp_path / "lib")], env=GIT_ENV, check=True)
    step, ctx = PatchStep(Patch("x", "lib", patches / "v1.patch"), FakeRepo("lib", "lib")), context(tmp_path)
    ctx.state.save_step(step.id, "fp", step.apply(ctx, log), 0.1)
    ctx.state = State.load(tmp_path / "state.json")
    PatchStep(Patch("x", "lib", patches / "v2.patch"), FakeRepo("lib", "lib")).apply(ctx, log)
    assert (tmp_path / "lib" / "x.py").read_bytes() == b"# caf\xe9\nX = 3\n"


def test_a_renamed_patch_names_the_old_step_whose_changes_are_in_the_way(tmp_path, log):
    """The old step left the plan with its changes in the file: the new step says whose they are."""
    from types import SimpleNamespace

    old, ctx = applied_and_recorded(tmp_path, log, Patch("no-pip", "mindspeed", SHIPPED))
    renamed = Patch("setup-no-pip", "mindspeed", refreshed_patch(tmp_path / "v2"))
    ctx.spec = SimpleNamespace(patches={"setup-no-pip": renamed})
    with pytest.raises(PatchError) as info:
        PatchStep(renamed, FakeRepo("mindspeed", "MindSpeed")).apply(ctx, log)
    assert info.value.message == ("mindspeed-setup-no-pip.patch cannot be applied: setup.py in MindSpeed holds what "
                                  "npuenv's patch:no-pip applied, a patch this spec no longer has")
    assert info.value.hint == (
        f"if mindspeed-setup-no-pip.patch replaces it (a renamed patch), take the old one out with "
        f"`git -C {tmp_path / 'MindSpeed'} checkout -- setup.py` (it holds only what npuenv wrote), then run again")


def test_an_earlier_patch_is_taken_out_only_of_the_files_that_still_hold_it(tmp_path, log):
    """Of two files an earlier patch changed, one was restored by hand: the other one alone is reversed."""
    make_repo(tmp_path, "lib", {"a.py": "A = 1\n", "b.py": "B = 1\n"})
    patches = tmp_path / "patches"
    patches.mkdir()
    for name, suffix in (("v1", "  # fixed"), ("v2", "  # fixed again")):
        for rel, line in (("a.py", "A = 1"), ("b.py", "B = 1")):
            (tmp_path / "lib" / rel).write_text(line + suffix + "\n")
        (patches / f"{name}.patch").write_text(git(tmp_path / "lib", "diff"))
        git(tmp_path / "lib", "checkout", "--", ".")
    step, ctx = PatchStep(Patch("fix", "lib", patches / "v1.patch"), FakeRepo("lib", "lib")), context(tmp_path)
    ctx.state.save_step(step.id, "fp", step.apply(ctx, log), 0.1)
    git(tmp_path / "lib", "checkout", "--", "a.py")
    PatchStep(Patch("fix", "lib", patches / "v2.patch"), FakeRepo("lib", "lib")).apply(ctx, log)
    assert (tmp_path / "lib" / "a.py").read_text() == "A = 1  # fixed again\n"
    assert (tmp_path / "lib" / "b.py").read_text() == "B = 1  # fixed again\n"
