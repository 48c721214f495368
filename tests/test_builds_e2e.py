"""Source builds through the real `invoke bootstrap` in the hermetic world: real cmake, compilers,
FFmpeg headers, git submodules through mirrors, the wheel cache, and failures as a user sees them.

The default spec builds decord from source; the world's decord compiles its video reader against the
system FFmpeg, as the real one does, so the FFmpeg 5 patch is really needed and the decode check is real.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.test_bootstrap_e2e import bootstrap, state
from tests.world.builds import missing_reason

pytestmark = pytest.mark.slow

COMPILERS = ("cmake", "c++", "g++", "gcc", "cc", "make")


@pytest.fixture
def can_build(world):
    if not world.python310:
        pytest.skip("no CPython 3.10 on this machine (the target env needs one)")
    reason = missing_reason(["cmake", "g++", "pkg-config", "ffmpeg"])
    if reason:
        pytest.skip(reason)
    if os.system("pkg-config --exists libavcodec libavformat libswscale") != 0:
        pytest.skip("FFmpeg development headers are not installed")


def source_spec(world, tmp_path: Path, name: str = "source.yaml", **override) -> Path:
    return world.write_spec(tmp_path / name, **override)  # the default spec builds decord from source


def run_ok(world, tmp_path, *args, **kwargs):
    proc = bootstrap(world, tmp_path, *args, **kwargs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def without_compilers(tmp_path: Path) -> dict[str, str]:
    """PATH with every tool but the compilers: proof that a cache hit compiles nothing."""
    bin_dir = tmp_path / "no-compilers"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for entry in Path(folder).glob("*") if Path(folder).is_dir() else ():
            target = bin_dir / entry.name
            if entry.name not in COMPILERS and not target.exists() and os.access(entry, os.X_OK):
                target.symlink_to(entry)
    from tests.world.fixtures import clean_env

    env = clean_env()
    env["PATH"] = str(bin_dir)
    assert shutil.which("cmake", path=env["PATH"]) is None and shutil.which("git", path=env["PATH"])
    return env


def test_decord_from_source_is_patched_built_cached_and_reused_without_a_compiler(world, tmp_path, can_build):
    first = tmp_path / "first"
    first.mkdir()
    spec = source_spec(world, tmp_path)
    run_ok(world, first, spec=spec)
    steps = state(first)["steps"]
    patch = steps["patch:decord-ffmpeg5"]["resolved"]
    assert patch["applied"] is True and patch["found"].startswith("libavcodec 5")
    build = steps["build:decord"]["resolved"]
    assert build["cached"] is False and build["strategy"] == "source"
    assert build["inputs"]["patches"] == {"patch:decord-ffmpeg5": patch["sha256"]}
    assert build["inputs"]["versions"]["pkgconfig:libavcodec"] == patch["found"].split()[1]
    submodule = first / "ws" / "decord" / "3rdparty" / "dlpack" / "include" / "dlpack" / "dlpack.h"
    assert submodule.is_file()  # the submodule came through the mirror

    second = tmp_path / "second"  # a second box: new workspace, same wheelhouse
    second.mkdir()
    (second / "wheels").symlink_to(first / "wheels")
    proc = run_ok(world, second, spec=spec, env=without_compilers(tmp_path))
    steps = state(second)["steps"]
    assert steps["build:decord"]["resolved"]["cached"] is True
    assert steps["build:decord"]["resolved"]["key"] == build["key"]
    assert steps["build:apex"]["resolved"]["cached"] is True
    log = (second / "ws" / ".npuenv" / "logs" / "build_decord.log").read_text()
    assert "cache hit" in log and "$ cmake" not in log
    assert "build:decord" in proc.stdout


def test_a_changed_patch_changes_the_cache_key(world, tmp_path, can_build):
    spec = source_spec(world, tmp_path)
    run_ok(world, tmp_path, "--only", "build:decord", spec=spec)
    before = state(tmp_path)["steps"]["build:decord"]["resolved"]["key"]
    patch = Path(__file__).resolve().parents[1] / "patches" / "decord-ffmpeg5.patch"
    changed = tmp_path / "decord-ffmpeg5.patch"
    changed.write_text("A local note at the top changes the file, not what it does.\n" + patch.read_text())
    spec = source_spec(world, tmp_path, "changed.yaml",
                       patches={"decord-ffmpeg5": {"file": str(changed)}})
    proc = run_ok(world, tmp_path, "--only", "build:decord", spec=spec)
    after = state(tmp_path)["steps"]["build:decord"]["resolved"]
    assert after["key"] != before and after["cached"] is False
    assert "patch:decord-ffmpeg5" in proc.stdout  # re-applied: the old one was reversed by the repo step


def test_a_failing_compile_shows_its_error_lines_and_a_hint(world, tmp_path, can_build):
    never = {"decord-ffmpeg5": {"when": {"pkgconfig": "libavcodec", "version": "<1"}}}
    spec = source_spec(world, tmp_path, patches=never)
    proc = bootstrap(world, tmp_path, "--only", "build:decord", spec=spec)
    assert proc.returncode == 1
    assert "step build:decord failed: building decord failed" in proc.stderr
    assert "error: 'AVBSFContext'" in proc.stderr or "AVBSFContext" in proc.stderr
    assert "the decord FFmpeg patch must be applied" in proc.stderr
    assert str(tmp_path / "ws" / ".npuenv" / "logs" / "build_decord.log") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "wheels" / "built").glob("decord/[!.]*"))  # nothing half-built was cached


def test_a_missing_tool_fails_before_compiling_with_the_install_command(world, tmp_path, can_build):
    spec = source_spec(world, tmp_path)
    run_ok(world, tmp_path, "--only", "env", spec=spec)
    proc = bootstrap(world, tmp_path, "--only", "build:decord", spec=spec, env=without_compilers(tmp_path))
    assert proc.returncode == 1
    assert "cannot build decord: cmake is missing" in proc.stderr
    assert "install them: apt-get install -y cmake" in proc.stderr  # this machine is Debian
    assert "$ cmake" not in (tmp_path / "ws" / ".npuenv" / "logs" / "build_decord.log").read_text()


def test_apex_rebuild_cleans_the_clone_its_build_script_made(world, tmp_path, can_build):
    run_ok(world, tmp_path, "--only", "build:apex")
    nested = tmp_path / "ws" / "apex" / "apex"
    assert (nested / ".git").is_dir()  # build.sh cloned NVIDIA/apex through the mirror, with our CA
    shutil.rmtree(tmp_path / "wheels" / "built" / "apex")  # no cache: build.sh must run again
    run_ok(world, tmp_path, "--only", "build:apex", "--force", "build:apex")
    resolved = state(tmp_path)["steps"]["build:apex"]["resolved"]
    assert resolved["cached"] is False
    log = (tmp_path / "ws" / ".npuenv" / "logs" / "build_apex.log").read_text()
    assert "removing apex/" in log and "scripts/build.sh --python=3.10" in log
    assert json.loads(Path(resolved["wheel"]).with_name("key.json").read_text())["key"] == resolved["key"]


def test_an_ffmpeg_the_spec_does_not_allow_fails_before_compiling(world, tmp_path, can_build):
    too_new = {"decord": {"requires": {"pkgconfig": ["libavcodec>=61"]}}}
    spec = world.write_spec(tmp_path / "ffmpeg7.yaml", builds=too_new)
    proc = bootstrap(world, tmp_path, "--only", "build:decord", spec=spec)
    assert proc.returncode == 1
    assert "cannot build decord: libavcodec 5" in proc.stderr and "does not satisfy >=61" in proc.stderr
    assert "$ cmake" not in (tmp_path / "ws" / ".npuenv" / "logs" / "build_decord.log").read_text()


def test_no_ffmpeg_headers_names_both_ways_out(world, tmp_path, can_build):
    """A box without FFmpeg's development files: the install command for this distribution, or the prebuilt
    decord2 (`strategy: wheel`), before anything is compiled."""
    spec = source_spec(world, tmp_path)
    run_ok(world, tmp_path, "--only", "env", spec=spec)
    empty = tmp_path / "no-pkgconfig"
    empty.mkdir()
    env = {**world.clean_env(), "PKG_CONFIG_LIBDIR": str(empty), "PKG_CONFIG_PATH": ""}
    proc = bootstrap(world, tmp_path, "--only", "build:decord", spec=spec, env=env)
    assert proc.returncode == 1
    assert "cannot build decord: libavcodec is missing" in proc.stderr
    hint = [line for line in proc.stderr.splitlines() if line.startswith("hint: ")][-1]
    assert "apt-get install -y" in hint and "libavcodec-dev" in hint  # this machine is Debian
    assert "`strategy: wheel` under builds.decord" in hint and "decord2" in hint
    assert "$ cmake" not in (tmp_path / "ws" / ".npuenv" / "logs" / "build_decord.log").read_text()


def test_two_workspaces_sharing_a_wheelhouse_download_and_build_once(world, tmp_path, can_build):
    """Two bootstraps at once on one wheelhouse: one downloads torch_npu and compiles apex, the other waits
    under the entry's lock and takes what the first made. Nothing half-made is left."""
    wheels = tmp_path / "shared-wheels"
    spec = source_spec(world, tmp_path)
    for name in ("alice", "bob"):
        (tmp_path / name).mkdir()
    world.server.clear_requests()
    runs = [bootstrap(world, tmp_path / name, "--only", "build:apex", spec=spec, popen=True, wheels=wheels)
            for name in ("alice", "bob")]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    logs = [(tmp_path / name / "ws/.npuenv/logs/build_apex.log").read_text() for name in ("alice", "bob")]
    assert sum("cache miss" in log for log in logs) == 1 and sum("cache hit" in log for log in logs) == 1
    entries = [p.name for p in (wheels / "built" / "apex").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    assert not [p for p in (wheels / "built" / "apex").iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    downloads = [path for _m, path, _r in world.server.requests if path.endswith(world.torch_npu_file)]
    assert len(downloads) == 1 and not list(wheels.glob("*.part"))
