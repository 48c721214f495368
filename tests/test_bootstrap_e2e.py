"""The real `invoke bootstrap` against the hermetic world: real git, uv, TLS and processes.

torch and torch_npu are stand-in wheels served by the world (there is no NPU here); everything else is
the real tool doing real work on loopback. The world is as hard as the real stack (tests/world/README.md):
apex's build writes an invalid version and `import apex` needs CANN, Megatron has no megatron/__init__.py,
x86_64's torch_npu needs torch==2.1.0+cpu from a second index, decord is built from source.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import platform
from pathlib import Path

import pytest

from tests.test_reaper import holders
from tests.world.upstream import REPOS, add_commit

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

# the default spec: decord is built from source, as the team did
STEPS = {"python", "repo:mindspeed-mm", "repo:megatron", "repo:mindspeed", "repo:apex", "repo:decord",
         "copy:megatron", "patch:mindspeed-setup-no-pip", "patch:decord-ffmpeg5", "overlay:dot-product-attention",
         "wheel:torch_npu", "env", "build:apex", "build:decord", "dirs", "smoke"}
NO_CANN = "not verified here: no CANN (import apex)"


def world_spec(world, path: Path, **override) -> Path:
    return world.write_spec(path, **override)


def bootstrap(world, tmp_path: Path, *args: str, ca: bool = True, env=None, spec=None, popen=False,
              remembered: bool = False, wheels=None):
    """`invoke bootstrap` on tmp_path/ws; `remembered`: no --spec and no --python (what the workspace knows)."""
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "bootstrap",
            "--root", str(tmp_path / "ws"), "--wheels", str(wheels or tmp_path / "wheels"), *args]
    if not remembered:
        argv += ["--spec", str(spec or world_spec(world, tmp_path / "world.yaml"))]
        if world.python310:
            argv += ["--python", world.python310]
    if ca:
        argv += ["--ca-bundle", str(world.ca_pem)]
    environ = env or world.clean_env()
    if popen:
        return subprocess.Popen(argv, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return subprocess.run(argv, env=environ, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=600)


def state(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "ws" / ".npuenv" / "state.json").read_text())


def venv_python(tmp_path: Path) -> Path:
    return tmp_path / "ws" / "MindSpeed-MM" / ".venv" / "bin" / "python"


def distributions(tmp_path: Path) -> dict:
    """name -> version of every distribution in the target env."""
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    proc = subprocess.run([str(venv_python(tmp_path)), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def wait_for(event, timeout: float = 120.0) -> None:
    """Wait for `event()` to be true (the event itself, never a fixed sleep); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not event():
        assert time.monotonic() < deadline, "the event never happened"
        time.sleep(0.02)


def results(proc) -> dict:
    """step id -> result, from the summary table bootstrap prints."""
    rows = re.findall(r"^(\S+:?\S*) +(done|up-to-date|failed|not-run) +[\d.]+", proc.stdout, re.MULTILINE)
    return dict(rows)


@pytest.fixture
def needs_310(world):
    if not world.python310:
        pytest.skip("no CPython 3.10 on this machine (the target env needs one)")


@pytest.fixture
def done(world, tmp_path, needs_310):
    """A workspace after one full, successful bootstrap."""
    proc = bootstrap(world, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_full_run_builds_the_whole_stack(world, tmp_path, done, stand_in_cann):
    ws = tmp_path / "ws"
    steps = state(tmp_path)["steps"]
    assert set(steps) == STEPS
    paths = {"mindspeed-mm": "MindSpeed-MM", "megatron": "Megatron-LM", "mindspeed": "MindSpeed-MM/MindSpeed"}
    for name, path in paths.items():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ws / path, capture_output=True, text=True)
        assert head.stdout.strip() == world.commits[name]
    assert steps["repo:megatron"]["resolved"]["ref_matches"] is True
    setup = (ws / "MindSpeed-MM" / "MindSpeed" / "setup.py").read_text().splitlines()
    assert setup[46].startswith("# if os.getenv('CI_BUILD'") and setup[47].startswith("#     subprocess")
    overlay = ws / "MindSpeed-MM" / "MindSpeed" / "mindspeed" / "core" / "transformer" / "dot_product_attention.py"
    source = ws / "MindSpeed-MM" / "examples" / "internvl2.5" / "dot_product_attention.py"
    assert overlay.read_bytes() == source.read_bytes()
    assert (ws / "MindSpeed-MM" / "megatron" / "core" / "__init__.py").is_file()
    assert all((ws / "MindSpeed-MM" / d).is_dir() for d in ("logs", "dataset", "ckpt"))
    assert (tmp_path / "wheels" / world.torch_npu_file).is_file()
    code = ("import sys, torch, torch_npu, mindspeed, mindspeed_mm, megatron.core, decorator, yaml; "
            "print(sys.version_info[:2], torch.__version__, torch_npu.__version__, torch_npu.STAND_IN)")
    # torch_npu imports only with CANN sourced, as the real one; megatron (a namespace package: no
    # megatron/__init__.py) comes through MindSpeed-MM's editable install, from any folder
    probe = subprocess.run([str(venv_python(tmp_path)), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           env=stand_in_cann.sourced(world.clean_env()))
    torch = "2.1.0+cpu" if platform.machine() == "x86_64" else "2.1.0"  # x86_64: from PyTorch's CPU index
    assert probe.stdout.strip() == f"(3, 10) {torch} 2.1.0.post8 True", probe.stderr
    packages = steps["env"]["resolved"]["packages"]
    assert packages["torch"] == torch and packages["torch-npu"] == "2.1.0.post8" and packages["setuptools"] == "65.7.0"
    # apex: the build wrote 0.1-ascend, which no installer takes; the cached and installed wheel is 0.1+ascend
    apex = steps["build:apex"]["resolved"]
    assert apex["cached"] is False and Path(apex["wheel"]).name.startswith("apex-0.1+ascend-cp310-cp310-linux_")
    assert "re-versioned apex-0.1_ascend-" in (tmp_path / "ws/.npuenv/logs/build_apex.log").read_text()
    assert distributions(tmp_path)["apex"] == "0.1+ascend"
    # no CANN here: `import apex` (it imports torch_npu) is not verified, and says so; `import torch, apex_C` is
    assert apex["not_verified"] == "import apex" and re.search(rf"build:apex +done +[\d.]+  {re.escape(NO_CANN)}",
                                                                done.stdout)
    assert steps["build:decord"]["resolved"]["strategy"] == "source"  # decord v0.6.0, built here
    assert "decord2" not in distributions(tmp_path)
    # uv's lock files and the builds' scratch went to the workspace's TMPDIR, not the box's /tmp
    assert list((ws / ".npuenv" / "tmp").glob("uv-*.lock"))
    assert "done" in done.stdout and "wall" in done.stdout
    assert "✓ smoke" in done.stdout and "(skipped: no NPU devices on this machine)" in done.stdout


def test_second_run_does_no_work_and_touches_no_network(world, tmp_path, done):
    """Without --spec and --python: the workspace's own spec, the interpreter it resolved; nothing re-runs."""
    world.server.clear_requests()
    again = bootstrap(world, tmp_path, remembered=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"0 done, {len(STEPS)} up to date, 0 failed" in again.stdout
    assert re.search(rf"build:apex +up-to-date +[\d.]+  {re.escape(NO_CANN)}", again.stdout)
    assert world.server.requests == []
    assert "warning" not in again.stderr


def test_dry_run_explains_each_step(world, tmp_path, needs_310):
    first = bootstrap(world, tmp_path, "--dry-run")
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(r"run +repo:mindspeed-mm +missing", first.stdout)
    assert re.search(r"run +patch:mindspeed-setup-no-pip +after repo:mindspeed\n", first.stdout)
    assert not (tmp_path / "ws" / "MindSpeed-MM").exists()


def test_drift_is_detected_and_repaired(world, tmp_path, done):
    overlay = tmp_path / "ws/MindSpeed-MM/MindSpeed/mindspeed/core/transformer/dot_product_attention.py"
    overlay.write_text("# edited\n")
    plan = bootstrap(world, tmp_path, "--dry-run")
    assert re.search(r"run +overlay:dot-product-attention +drifted", plan.stdout)
    fixed = bootstrap(world, tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"1 done, {len(STEPS) - 1} up to date" in fixed.stdout


def test_a_commit_made_in_a_pinned_checkout_is_kept_on_a_branch_when_bootstrap_moves_it_back(world, tmp_path, done):
    """Seen on the real stack: someone commits in MindSpeed (`commit -a` takes npuenv's patched setup.py and
    overlaid file along). bootstrap moves the checkout back to its pin: the commit, on npuenv's detached HEAD,
    gets a branch instead of being left to the reflog; the overlay goes back on without calling upstream's
    file, which the checkout restored, an edit."""
    mindspeed = tmp_path / "ws" / "MindSpeed-MM" / "MindSpeed"
    overlaid = mindspeed / "mindspeed" / "core" / "transformer" / "dot_product_attention.py"
    before = overlaid.read_text()
    (mindspeed / "MY_NOTES.md").write_text("tried something\n")
    subprocess.run(["git", "add", "-A"], cwd=mindspeed, check=True)
    subprocess.run(["git", "-c", "user.name=bob", "-c", "user.email=bob@example.invalid", "commit", "-qam", "mine"],
                   cwd=mindspeed, check=True)
    mine = subprocess.run(["git", "rev-parse", "HEAD"], cwd=mindspeed, capture_output=True, text=True).stdout.strip()
    fixed = bootstrap(world, tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    branch = f"npuenv-kept-{mine[:12]}"
    assert f"kept as branch {branch}" in fixed.stdout
    kept = subprocess.run(["git", "rev-parse", branch], cwd=mindspeed, capture_output=True, text=True)
    here = subprocess.run(["git", "rev-parse", "HEAD"], cwd=mindspeed, capture_output=True, text=True)
    assert kept.stdout.strip() == mine and here.stdout.strip() == world.commits["mindspeed"]
    assert not (mindspeed / "MY_NOTES.md").exists() and overlaid.read_text() == before
    assert list(overlaid.parent.glob("*.npuenv-backup*")) == []
    again = bootstrap(world, tmp_path)
    assert again.returncode == 0 and f"0 done, {len(STEPS)} up to date" in again.stdout, again.stdout


def test_sigkill_mid_step_then_rerun_converges(world, tmp_path, needs_310):
    proc = bootstrap(world, tmp_path, popen=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("→ env"):
            wait_for((tmp_path / "ws/MindSpeed-MM/.venv/pyvenv.cfg").exists)  # uv is filling the env now
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    target = str(tmp_path / "ws" / ".npuenv" / "target")
    wait_for(lambda: not holders(target))  # uv sync did not outlive the killed bootstrap
    assert "env" not in state(tmp_path)["steps"]
    again = bootstrap(world, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "env" in state(tmp_path)["steps"]
    assert bootstrap(world, tmp_path).stdout.count("up-to-date") == len(STEPS)


def test_a_build_dies_with_a_killed_bootstrap(world, tmp_path, done):
    """kill -9 of bootstrap's whole process group mid-build: the build and what it started go too."""
    token = f"npuenv-build-{tmp_path.name}"
    hanging = world_spec(world, tmp_path / "hang.yaml", builds={"decord": {"commands": [
        ["bash", "-c", f"(exec -a {token}-child sleep 600) & exec -a {token} sleep 600"]]}})
    proc = bootstrap(world, tmp_path, "--only", "build:decord", spec=hanging, popen=True)
    try:
        wait_for(lambda: bool(holders(token, argv0=True)) and bool(holders(f"{token}-child", argv0=True)))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        wait_for(lambda: not holders(token))
    finally:
        for pid in holders(token):
            os.kill(pid, signal.SIGKILL)


def test_wrong_sha256_is_refused_and_leaves_nothing(world, tmp_path):
    arch = os.uname().machine
    spec = world_spec(world, tmp_path / "bad.yaml", wheels={"torch_npu": {"files": {arch: {
        "filename": world.torch_npu_file, "sha256": "0" * 64}}}})
    proc = bootstrap(world, tmp_path, "--only", "wheel:torch_npu", spec=spec)
    assert proc.returncode != 0
    assert "sha256" in proc.stderr and "0" * 64 in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    wheels = tmp_path / "wheels"  # (its .locks folder holds the download's lock file, nothing else)
    assert not wheels.exists() or [p.name for p in wheels.iterdir()] in ([], [".locks"])


def test_tls_fails_without_the_ca(world, tmp_path):
    proc = bootstrap(world, tmp_path, "--only", "repo:megatron", ca=False)
    assert proc.returncode != 0
    assert "certificate verify failed" in proc.stderr
    assert "--ca-bundle" in proc.stderr
    ok = bootstrap(world, tmp_path, "--only", "repo:megatron")
    assert ok.returncode == 0, ok.stdout + ok.stderr


def upstream_moves(world, name: str, filename: str) -> str:
    """Upstream moved on: a new commit on top of the pinned one, on a branch of the world's repo `name`."""
    bare = world.server.git_root / REPOS[name]
    subprocess.run(["git", "branch", "-f", "moved", world.commits[name]], cwd=bare, check=True)
    return add_commit(bare, {filename: "moved on\n"}, branch="moved")


def test_dirty_checkout_is_refused_but_own_patches_are_not(fresh_upstream, tmp_path, done):
    world = fresh_upstream
    ws = tmp_path / "ws"
    # upstream moved; the user pins the new MindSpeed commit: our patched setup.py must not block it
    new_mindspeed = upstream_moves(world, "mindspeed", "notes.txt")
    spec = world_spec(world, tmp_path / "moved.yaml",
                      repos={**{n: {"commit": c} for n, c in world.commits.items()},
                             "mindspeed": {"commit": new_mindspeed}})
    moved = bootstrap(world, tmp_path, spec=spec)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "patch:mindspeed-setup-no-pip" in moved.stdout
    # a change the user made is never clobbered
    readme = ws / "MindSpeed-MM" / "README.md"
    readme.write_text(readme.read_text() + "my notes\n")
    new_mm = upstream_moves(world, "mindspeed-mm", "CHANGELOG")
    spec = world_spec(world, tmp_path / "moved2.yaml",
                      repos={**{n: {"commit": c} for n, c in world.commits.items()},
                             "mindspeed": {"commit": new_mindspeed}, "mindspeed-mm": {"commit": new_mm}})
    refused = bootstrap(world, tmp_path, "--only", "repo:mindspeed-mm", spec=spec)
    assert refused.returncode != 0
    assert "local changes npuenv did not make" in refused.stderr and "README.md" in refused.stderr
    assert readme.read_text().endswith("my notes\n")


def test_a_concurrent_bootstrap_refuses_cleanly(world, tmp_path, needs_310):
    first = bootstrap(world, tmp_path, popen=True)
    try:
        for line in first.stdout:
            if line.startswith("→"):
                break
        second = bootstrap(world, tmp_path)
        assert second.returncode == 3
        assert "another npuenv run holds the workspace lock" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.stdout.read()
        first.wait(timeout=600)
    assert first.returncode == 0


def test_switching_a_repo_to_a_fork_fetches_from_the_fork(world, tmp_path, done):
    """The README's "the default, but my fork of MindSpeed-MM" on a workspace that already exists."""
    upstream = world.server.git_root / REPOS["mindspeed-mm"]
    fork = world.server.git_root / "gitee.com" / "me" / f"MindSpeed-MM-{tmp_path.name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(upstream), str(fork)], check=True)
    subprocess.run(["git", "branch", "-f", "mine", world.commits["mindspeed-mm"]], cwd=fork, check=True)
    mine = add_commit(fork, {"MY_CHANGE.md": "forked\n"}, branch="mine")
    spec = world_spec(world, tmp_path / "fork.yaml", repos={
        **{n: {"commit": c} for n, c in world.commits.items()},
        "mindspeed-mm": {"url": f"https://gitee.com/me/{fork.name}", "commit": mine}})
    proc = bootstrap(world, tmp_path, spec=spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checkout = tmp_path / "ws" / "MindSpeed-MM"
    assert (checkout / "MY_CHANGE.md").read_text() == "forked\n"
    origin = subprocess.run(["git", "remote", "get-url", "origin"], cwd=checkout, capture_output=True, text=True)
    assert origin.stdout.strip() == f"{world.url}/git/gitee.com/me/{fork.name}"


def test_torch_npu_from_its_release_url_through_a_mirror(world, tmp_path):
    """`source: url`: the gitee release URL the notes used, fetched through a mirror, sha256-checked."""
    arch = os.uname().machine
    releases = "https://gitee.com/ascend/pytorch/releases/download/v6.0.rc3-pytorch2.1.0/"
    name = world.torch_npu_file
    spec = world_spec(world, tmp_path / "url.yaml",
                      mirrors={**world.mirrors, releases: world.file_url("wheels/")},
                      wheels={"torch_npu": {"source": "url", "files": {arch: {
                          "url": releases + name, "sha256": world.wheel_sha256[name]}}}})
    world.server.clear_requests()
    proc = bootstrap(world, tmp_path, "--only", "wheel:torch_npu", spec=spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "wheels" / name).is_file()
    assert any(path == f"/files/wheels/{name}" for _method, path, _range in world.server.requests)
    assert not any(path.startswith("/simple") for _method, path, _range in world.server.requests)
    assert state(tmp_path)["steps"]["wheel:torch_npu"]["resolved"]["url"] == world.file_url("wheels/") + name


# --- the real stack's hard parts -----------------------------------------------------------------------


def test_where_cann_is_installed_the_apex_import_is_verified(world, tmp_path, done, cann_set_env):
    """The same workspace on a box with CANN: build:apex runs again (from the cache) and checks `import apex`,
    with set_env.sh sourced by npuenv, not by the calling shell."""
    env = {**world.clean_env(), "NPUENV_CANN_SET_ENV": str(cann_set_env)}
    assert "LD_LIBRARY_PATH" not in env or "ascend" not in env["LD_LIBRARY_PATH"].lower()
    proc = bootstrap(world, tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert results(proc)["build:apex"] == "done" and NO_CANN not in proc.stdout
    resolved = state(tmp_path)["steps"]["build:apex"]["resolved"]
    assert resolved["cached"] is True and "not_verified" not in resolved
    log = (tmp_path / "ws/.npuenv/logs/build_apex.log").read_text()
    assert "cann_check:\nimport apex\n" in log
    assert results(proc)["env"] == "up-to-date" and results(proc)["build:decord"] == "up-to-date"


def test_force_rebuilds_and_an_invalid_cached_wheel_is_never_used(world, tmp_path, done):
    built = Path(state(tmp_path)["steps"]["build:apex"]["resolved"]["wheel"])
    # an older npuenv cached apex-0.1_ascend-*.whl under the same key: it must not block anything
    invalid = built.with_name(built.name.replace("0.1+ascend", "0.1_ascend"))
    built.rename(invalid)
    meta = json.loads((built.parent / "key.json").read_text())
    (built.parent / "key.json").write_text(json.dumps({**meta, "wheel": invalid.name}))
    subprocess.run([world_uv(), "pip", "uninstall", "--python", str(venv_python(tmp_path)), "apex"],
                   check=True, capture_output=True)
    repaired = bootstrap(world, tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    resolved = state(tmp_path)["steps"]["build:apex"]["resolved"]
    assert resolved["cached"] is False and resolved["wheel"] == str(built) and built.is_file()
    assert sorted(p.name for p in built.parent.glob("*.whl")) == [built.name]
    before = resolved["sha256"]
    forced = bootstrap(world, tmp_path, "--force", "build:apex")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    rebuilt = state(tmp_path)["steps"]["build:apex"]["resolved"]
    assert rebuilt["cached"] is False and rebuilt["wheel"] == str(built)
    assert "forced: rebuilding" in (tmp_path / "ws/.npuenv/logs/build_apex.log").read_text()
    # same key, same path: the smoke test runs again exactly when the rebuilt wheel's bytes differ
    smoke = "up-to-date" if rebuilt["sha256"] == before else "done"
    assert results(forced) == {**{s: "up-to-date" for s in STEPS}, "build:apex": "done", "smoke": smoke}


def world_uv() -> str:
    from npuenv.workspace import uv_binary

    return uv_binary()


def test_switching_decords_strategy_keeps_one_distribution_and_leaves_the_rest(world, tmp_path, done):
    prebuilt = world_spec(world, tmp_path / "prebuilt.yaml", builds={"decord": {"strategy": "wheel"}})
    to_wheel = bootstrap(world, tmp_path, spec=prebuilt)
    assert to_wheel.returncode == 0, to_wheel.stdout + to_wheel.stderr
    installed = distributions(tmp_path)
    assert installed["decord2"] == "3.4.0" and "decord" not in installed
    assert results(to_wheel)["env"] == results(to_wheel)["build:apex"] == "up-to-date"
    back = bootstrap(world, tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr
    installed = distributions(tmp_path)
    assert installed["decord"] == "0.6.0" and "decord2" not in installed
    assert results(back)["env"] == results(back)["build:apex"] == "up-to-date"
    assert "removing decord2: decord provides the same import" in \
        (tmp_path / "ws/.npuenv/logs/build_decord.log").read_text()


def _pkgconfig_libavcodec(world, folder: Path, version: str) -> dict:
    """An environment whose pkg-config reports `version` for libavcodec (the box's FFmpeg changed)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "libavcodec.pc").write_text(f"Name: libavcodec\nDescription: x\nVersion: {version}\nLibs:\nCflags:\n")
    return {**world.clean_env(), "PKG_CONFIG_PATH": str(folder)}


def test_a_when_patch_whose_condition_turns_false_is_reversed_touching_only_decord(world, tmp_path, done):
    ffmpeg4 = _pkgconfig_libavcodec(world, tmp_path / "pc", "58.134.100")
    plan = bootstrap(world, tmp_path, "--dry-run", env=ffmpeg4)
    reasons = dict(re.findall(r"^  (?:run |skip)  (\S+) +(.+)$", plan.stdout, re.MULTILINE))
    assert reasons["patch:decord-ffmpeg5"] == "spec changed" and reasons["build:decord"].startswith("after ")
    assert reasons["env"] == reasons["build:apex"] == "up to date"  # the env does not consume decord's patch
    proc = bootstrap(world, tmp_path, "--only", "patch:decord-ffmpeg5", env=ffmpeg4)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (tmp_path / "ws/.npuenv/logs/patch_decord-ffmpeg5.log").read_text()
    assert "reversed decord-ffmpeg5.patch: its condition no longer holds (libavcodec 58.134.100" in log
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=tmp_path / "ws/decord",
                            capture_output=True, text=True)
    assert status.stdout == ""  # decord's sources are pristine again
    assert state(tmp_path)["steps"]["patch:decord-ffmpeg5"]["resolved"]["applied"] is False


def test_dry_run_in_a_workspace_writes_nothing(world, tmp_path, done):
    before = {p: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in (tmp_path / "ws").rglob("*")}
    plan = bootstrap(world, tmp_path, "--dry-run", "--force", "env")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert {p: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in (tmp_path / "ws").rglob("*")} == before


def test_local_mirrors_for_git_submodules_and_wheels(world, tmp_path):
    """An offline team's folder of mirrors: decord (and its submodules, whose URLs lack .git) and the
    torch_npu wheel by URL, all from file:// — no request reaches the server for them."""
    arch = os.uname().machine
    releases = "https://gitee.com/ascend/pytorch/releases/download/v6.0.rc3-pytorch2.1.0/"
    local_wheels = (world.docroot / "files" / "wheels").as_uri() + "/"
    name = world.torch_npu_file
    spec = world_spec(world, tmp_path / "local.yaml", mirrors={**world.mirrors, **world.file_mirrors(),
                                                               releases: local_wheels},
                      wheels={"torch_npu": {"source": "url", "files": {arch: {
                          "url": releases + name, "sha256": world.wheel_sha256[name]}}}})
    world.server.clear_requests()
    proc = bootstrap(world, tmp_path, "--only", "repo:decord,wheel:torch_npu", spec=spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    decord = tmp_path / "ws" / "decord"
    assert (decord / "3rdparty" / "dlpack" / "include" / "dlpack" / "dlpack.h").is_file()
    assert any((decord / "3rdparty" / "dmlc-core").iterdir())
    assert (tmp_path / "wheels" / name).is_file()
    assert not any("dmlc" in path or path.endswith(".whl") for _m, path, _r in world.server.requests)
    origin = subprocess.run(["git", "remote", "get-url", "origin"], cwd=decord, capture_output=True, text=True)
    assert origin.stdout.strip().startswith("file://")


def test_two_workspaces_on_a_box_share_one_uv_cache(world, tmp_path, needs_310):
    """Everyone's workspace under the persistent folder: torch & co. are downloaded once, not per person."""
    persistent = tmp_path / "work"
    env = {**world.clean_env(), "NPUENV_PERSISTENT_ROOT": str(persistent)}
    for person in ("alice", "bob"):
        (persistent / person).mkdir(parents=True)
    first = bootstrap(world, persistent / "alice", "--only", "env", env=env, wheels=tmp_path / "wheels")
    assert first.returncode == 0, first.stdout + first.stderr
    world.server.clear_requests()
    second = bootstrap(world, persistent / "bob", "--only", "env", env=env, wheels=tmp_path / "wheels")
    assert second.returncode == 0, second.stdout + second.stderr
    assert (persistent / ".cache" / "uv").is_dir()
    assert not (persistent / "bob" / "ws" / ".npuenv" / "cache").exists()
    downloads = [path for _m, path, _r in world.server.requests if path.endswith(".whl")]
    assert downloads == []  # every wheel came out of the shared cache


def test_a_failing_git_server_is_named_by_its_status(fresh_upstream, tmp_path):
    world = fresh_upstream
    world.server.fail_next("/git/github.com/NVIDIA/Megatron-LM.git", count=50, status=503)
    proc = bootstrap(world, tmp_path, "--only", "repo:megatron")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "answered HTTP 503" in proc.stderr and "exit code 128" not in proc.stderr.splitlines()[0]
    assert "run again later" in proc.stderr


def test_a_failing_index_gets_the_index_hint_not_the_resolver_one(fresh_upstream, tmp_path, needs_310):
    world = fresh_upstream
    world.server.fail_next("/simple/decorator/", count=200, status=503)  # one page the env needs
    proc = bootstrap(world, tmp_path, "--only", "env")
    assert proc.returncode == 1 and "step env failed" in proc.stderr
    hint = [line for line in proc.stderr.splitlines() if line.startswith("hint: ")][-1]
    assert "answered HTTP 503" in hint and "missing from the index" not in hint
