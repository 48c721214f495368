"""The real `invoke bootstrap` against the hermetic world: real git, uv, TLS and processes.

torch and torch_npu are stand-in wheels served by the world (there is no NPU here); everything else is
the real tool doing real work on loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.world.upstream import REPOS, add_commit

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

# the default spec on a platform where decord2 installs (glibc >= 2.28): decord itself is not cloned
STEPS = {"python", "repo:mindspeed-mm", "repo:megatron", "repo:mindspeed", "repo:apex", "copy:megatron",
         "patch:mindspeed-setup-no-pip", "overlay:dot-product-attention", "wheel:torch_npu", "env", "build:apex",
         "build:decord", "dirs", "smoke"}


def world_spec(world, path: Path, **override) -> Path:
    return world.write_spec(path, **override)


def bootstrap(world, tmp_path: Path, *args: str, ca: bool = True, env=None, spec=None, popen=False):
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "bootstrap",
            "--root", str(tmp_path / "ws"), "--wheels", str(tmp_path / "wheels"),
            "--spec", str(spec or world_spec(world, tmp_path / "world.yaml")), *args]
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


def test_full_run_builds_the_whole_stack(world, tmp_path, done):
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
    probe = subprocess.run(
        [str(venv_python(tmp_path)), "-c",
         "import sys, torch, torch_npu, mindspeed, mindspeed_mm, decorator, yaml; "
         "print(sys.version_info[:2], torch.__version__, torch_npu.__version__, torch_npu.STAND_IN)"],
        capture_output=True, text=True, cwd=tmp_path)
    assert probe.stdout.strip() == "(3, 10) 2.1.0 2.1.0.post8 True", probe.stderr
    assert steps["build:apex"]["resolved"]["cached"] is False
    assert steps["build:decord"]["resolved"]["strategy"] == "wheel"  # the real decord2, which decoded the video
    packages = steps["env"]["resolved"]["packages"]
    assert packages["torch-npu"] == "2.1.0.post8" and packages["setuptools"] == "65.7.0"
    assert "done" in done.stdout and "wall" in done.stdout
    assert "✓ smoke" in done.stdout and "(skipped: no NPU devices on this machine)" in done.stdout


def test_second_run_does_no_work_and_touches_no_network(world, tmp_path, done):
    world.server.clear_requests()
    again = bootstrap(world, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"0 done, {len(STEPS)} up to date, 0 failed" in again.stdout
    assert world.server.requests == []


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


def test_sigkill_mid_step_then_rerun_converges(world, tmp_path, needs_310):
    proc = bootstrap(world, tmp_path, popen=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("→ env"):
            time.sleep(1.0)  # uv is resolving/installing now
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert "env" not in state(tmp_path)["steps"]
    again = bootstrap(world, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "env" in state(tmp_path)["steps"]
    assert bootstrap(world, tmp_path).stdout.count("up-to-date") == len(STEPS)


def test_wrong_sha256_is_refused_and_leaves_nothing(world, tmp_path):
    arch = os.uname().machine
    spec = world_spec(world, tmp_path / "bad.yaml", wheels={"torch_npu": {"files": {arch: {
        "filename": world.torch_npu_file, "sha256": "0" * 64}}}})
    proc = bootstrap(world, tmp_path, "--only", "wheel:torch_npu", spec=spec)
    assert proc.returncode != 0
    assert "sha256" in proc.stderr and "0" * 64 in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "wheels").exists() or list((tmp_path / "wheels").iterdir()) == []


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
