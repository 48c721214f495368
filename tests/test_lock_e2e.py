"""The real `invoke lock` and a bootstrap that follows it, against the hermetic world (real git, uv, TLS).

The world serves stand-in torch and torch_npu wheels for both architectures, torch 2.1.0+cpu on its
PyTorch-CPU-shaped index (linked with #sha256=, as the real one is), and real wheels for the rest.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_bootstrap_e2e import REPO, bootstrap
from tests.world.wheels import torch_npu_filename, write_wheel

pytestmark = pytest.mark.slow

ARCH = platform.machine()


def invoke(world, *args: str, env=None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args]
    return subprocess.run(argv, env=env or world.clean_env(), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)


def lock(world, spec: Path, root: Path, wheels: Path, *args: str) -> subprocess.CompletedProcess:
    argv = ["lock", "--spec", str(spec), "--root", str(root), "--wheels", str(wheels), "--ca-bundle", str(world.ca_pem)]
    if world.python310:
        argv += ["--python", str(world.python310)]
    return invoke(world, *argv, *args)


def lockable_spec(world, path: Path, **override) -> Path:
    """The world spec with torch_npu's file for both architectures, as the default spec has them."""
    files = {arch: {"filename": torch_npu_filename(arch), "sha256": world.wheel_sha256[torch_npu_filename(arch)]}
             for arch in ("aarch64", "x86_64")}
    return world.write_spec(path, wheels={"torch_npu": {"files": files}}, **override)


@pytest.fixture(scope="module")
def locked(world, tmp_path_factory):
    """A world spec and its lock, made once: (folder, spec file)."""
    assert world.python310 is not None, "needs Python 3.10 (.ci/run installs it)"
    folder = tmp_path_factory.mktemp("locked")
    spec = lockable_spec(world, folder / "world.yaml")
    proc = lock(world, spec, folder / "lockws", folder / "wheels")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder, spec


def beside_its_lock(folder: Path, tmp_path: Path, edit=None) -> Path:
    """A copy of the locked world spec in tmp_path, changed by `edit(data)`, with the lock's files beside it."""
    data = json.loads((folder / "world.yaml").read_text())
    if edit is not None:
        edit(data)
    spec = tmp_path / "world.yaml"
    spec.write_text(json.dumps(data))
    for name in ("world.lock", "world.uv.lock"):
        shutil.copy(folder / name, tmp_path / name)
    return spec


def only_logs(data: dict) -> None:
    data["dirs"] = ["MindSpeed-MM/logs"]


def environment(venv: Path) -> dict:
    """Every distribution of a venv: its version, and a digest of the files it installed (its RECORD without
    what names the venv's own path: scripts, direct_url.json, uv_cache.json). An editable install's files
    are the workspace's own checkout (pinned by its commit): its version only."""
    found = {}
    for info in (venv / "lib").glob("python3*/site-packages/*.dist-info"):
        name, version = info.name[: -len(".dist-info")].rsplit("-", 1)
        direct = info / "direct_url.json"
        if direct.is_file() and json.loads(direct.read_text()).get("dir_info", {}).get("editable"):
            found[name.lower().replace("_", "-")] = (version, "editable")
            continue
        lines = [line for line in (info / "RECORD").read_text().splitlines()
                 if not line.startswith("../") and "__pycache__" not in line
                 and not any(f"/{own}," in line for own in ("direct_url.json", "uv_cache.json", "RECORD", "INSTALLER"))]
        found[name.lower().replace("_", "-")] = (version, hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest())
    return found


def test_lock_writes_both_files_beside_the_spec_for_both_architectures(world, locked):
    folder, spec = locked
    data = json.loads((folder / "world.lock").read_text())
    uv_text = (folder / "world.uv.lock").read_text()
    assert data["uv"]["arches"] == ["aarch64", "x86_64"]
    assert data["uv"]["sha256"] == hashlib.sha256(uv_text.encode()).hexdigest()
    assert data["python"].startswith("3.10.")
    assert data["repos"]["mindspeed"]["commit"] == world.commits["mindspeed"]
    assert data["repos"]["decord"]["submodules"] == {"3rdparty/dlpack": world.nested_commits["dlpack"],
                                                     "3rdparty/dmlc-core": world.nested_commits["dmlc-core"]}
    assert {arch: f["sha256"] for arch, f in data["wheels"]["torch_npu"].items()} == {
        arch: world.wheel_sha256[torch_npu_filename(arch)] for arch in ("aarch64", "x86_64")}
    # both torch_npu files, each with the sha256 the spec pins
    for arch in ("aarch64", "x86_64"):
        assert f'hash = "sha256:{world.wheel_sha256[torch_npu_filename(arch)]}"' in uv_text
    # the canonical index, not the world's mirror of it; torch from the CPU index on x86_64 only
    assert 'source = { registry = "https://pypi.org/simple" }' in uv_text
    assert 'source = { registry = "https://download.pytorch.org/whl/cpu" }' in uv_text
    assert world.index_url not in uv_text
    assert data["seen_on"]["arch"] == ARCH


def test_a_second_lock_changes_nothing(world, locked):
    folder, spec = locked
    before = (folder / "world.uv.lock").read_bytes(), (folder / "world.lock").read_bytes()
    proc = lock(world, spec, folder / "lockws", folder / "wheels")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lock" in proc.stdout and "up to date" in proc.stdout
    assert ((folder / "world.uv.lock").read_bytes(), (folder / "world.lock").read_bytes()) == before


@pytest.fixture
def newer_decorator(world):
    """A decorator release newer than the lock's appears on the world's index (a week later), then goes."""
    wheel = write_wheel(world.server.wheels_dir, "decorator", "99.0", "py3-none-any",
                        {"decorator.py": "# a newer release the lock must not pick up\n"})
    try:
        yield wheel
    finally:
        wheel.unlink()


def test_two_boxes_that_follow_the_lock_get_the_same_env_even_after_the_index_moved(world, locked, tmp_path,
                                                                                      newer_decorator):
    folder, spec = locked
    for box in "abc":
        (tmp_path / box).mkdir()
    first = bootstrap(world, tmp_path / "a", "--only", "env", "--locked", spec=spec, wheels=folder / "wheels")
    assert first.returncode == 0, first.stdout + first.stderr
    second = bootstrap(world, tmp_path / "b", "--only", "env", "--locked", spec=spec, wheels=folder / "wheels")
    assert second.returncode == 0, second.stdout + second.stderr
    a = environment(tmp_path / "a" / "ws" / "MindSpeed-MM" / ".venv")
    b = environment(tmp_path / "b" / "ws" / "MindSpeed-MM" / ".venv")
    assert a == b and "torch-npu" in a and "pyyaml" in a
    assert a["decorator"][0] != "99.0"  # the lock's version, not the newest
    log = (tmp_path / "a" / "ws" / ".npuenv" / "logs" / "env.log").read_text()
    assert "uv sync --inexact --frozen" in " ".join(log.split()) or "--frozen" in log
    # without a lock the same spec resolves afresh, and takes the newer release
    unlocked = lockable_spec(world, tmp_path / "unlocked.yaml")
    fresh = bootstrap(world, tmp_path / "c", "--only", "env", spec=unlocked, wheels=folder / "wheels")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert environment(tmp_path / "c" / "ws" / "MindSpeed-MM" / ".venv")["decorator"][0] == "99.0"


def test_locked_names_what_changed_in_the_spec(world, locked, tmp_path):
    folder, _spec = locked

    def edit(data: dict) -> None:
        data["env"] = {"packages": ["torch==2.1.0", "decorator", "pyyaml", "wheel", "setuptools<=65.7.0", "six"]}
        data["repos"]["mindspeed"]["commit"] = "1" * 40

    changed = beside_its_lock(folder, tmp_path, edit)
    proc = bootstrap(world, tmp_path, "--only", "env", "--locked", spec=changed, wheels=folder / "wheels")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--locked: the spec changed since world.lock was written" in proc.stderr
    assert "  env.packages: + six\n" in proc.stderr
    assert f"  repos.mindspeed.commit: {world.commits['mindspeed'][:7]}… -> 1111111…\n" in proc.stderr
    assert "invoke lock" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "ws" / ".npuenv" / "state.json").exists()  # refused before any step ran


def test_a_lock_edited_by_hand_is_refused_by_name(world, locked, tmp_path):
    folder, _spec = locked
    spec = beside_its_lock(folder, tmp_path)
    uv_text = (folder / "world.uv.lock").read_text()
    (tmp_path / "world.uv.lock").write_text(uv_text.replace('version = "6.0.4"', 'version = "6.0.3"', 1))
    proc = bootstrap(world, tmp_path, "--only", "env", spec=spec, wheels=folder / "wheels")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{tmp_path / 'world.uv.lock'} was changed by hand" in proc.stderr
    data = json.loads((folder / "world.lock").read_text())
    data["repos"]["mindspeed"]["commit"] = "0" * 40
    (tmp_path / "world.lock").write_text(json.dumps(data))
    (tmp_path / "world.uv.lock").write_text(uv_text)
    proc = bootstrap(world, tmp_path, "--only", "env", spec=spec, wheels=folder / "wheels")
    assert proc.returncode == 2 and "world.lock was changed by hand" in proc.stderr, proc.stderr


def doctor(world, root: Path, spec: Path, wheels: Path) -> dict:
    proc = invoke(world, "doctor", "--root", str(root), "--spec", str(spec), "--wheels", str(wheels),
                  "--check", "sources.lock,target.lock", "--json")
    assert "Traceback" not in proc.stderr, proc.stderr
    return {row["name"]: row for row in json.loads(proc.stdout)}


def test_doctor_reports_drift_against_the_lock(world, locked, tmp_path, newer_decorator):
    folder, spec = locked
    proc = bootstrap(world, tmp_path, "--only", "env", "--locked", spec=spec, wheels=folder / "wheels")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root, venv = tmp_path / "ws", tmp_path / "ws" / "MindSpeed-MM" / ".venv"
    rows = doctor(world, root, spec, folder / "wheels")
    assert rows["sources.lock"]["status"] == "ok" and rows["target.lock"]["status"] == "ok", rows
    locked_decorator = environment(venv)["decorator"][0]
    # another version of a locked package, and a package the lock does not have
    extra = write_wheel(tmp_path, "extra-tool", "1.0", "py3-none-any", {"extra_tool.py": ""})
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    env = {**world.trusted_env(), "UV_INDEX_URL": world.index_url}
    for args in (["decorator==99.0"], [str(extra)]):
        subprocess.run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), *args], env=env, check=True,
                       capture_output=True)
    rows = doctor(world, root, spec, folder / "wheels")
    target = rows["target.lock"]
    assert target["status"] == "fail", target
    assert target["finding"] == f"decorator 99.0, locked {locked_decorator}"
    assert "--only env" in target["fix"]
    # once the versions are back, the extra package is what remains: a warning that names it
    proc = bootstrap(world, tmp_path, "--only", "env", "--locked", spec=spec, wheels=folder / "wheels")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    target = doctor(world, root, spec, folder / "wheels")["target.lock"]
    assert target["status"] == "warn" and "extra-tool" in target["finding"], target


def test_doctor_says_when_the_spec_moved_past_its_lock(world, locked, tmp_path):
    folder, _spec = locked
    spec = beside_its_lock(folder, tmp_path, only_logs)
    rows = doctor(world, folder / "lockws", spec, folder / "wheels")
    assert rows["sources.lock"]["status"] == "warn", rows
    assert "the spec changed since world.lock was written" in rows["sources.lock"]["finding"]
    assert "dirs: - MindSpeed-MM/dataset, - MindSpeed-MM/ckpt" in rows["sources.lock"]["finding"]
    assert rows["target.lock"]["status"] == "skip"


def test_without_locked_a_changed_spec_is_named_and_resolved_afresh(world, locked, tmp_path):
    folder, _spec = locked
    spec = beside_its_lock(folder, tmp_path, only_logs)
    proc = bootstrap(world, tmp_path, "--only", "env", spec=spec, wheels=folder / "wheels")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the spec changed since world.lock was written:\n  dirs: - MindSpeed-MM/dataset, - MindSpeed-MM/ckpt" \
        in proc.stderr
    assert "resolved afresh" in proc.stderr
    assert "--frozen" not in (tmp_path / "ws" / ".npuenv" / "logs" / "env.log").read_text()


def test_lock_from_a_workspace_keeps_its_versions_and_upgrade_moves_them(world, tmp_path):
    """A spec without a lock bootstraps as before; `invoke lock` on that workspace starts from what it
    resolved, so a newer release on the index changes nothing until --upgrade."""
    spec = lockable_spec(world, tmp_path / "fresh.yaml")
    proc = bootstrap(world, tmp_path, "--only", "env", spec=spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved = environment(tmp_path / "ws" / "MindSpeed-MM" / ".venv")["decorator"][0]
    newer = write_wheel(world.server.wheels_dir, "decorator", "99.0", "py3-none-any", {"decorator.py": ""})
    try:
        proc = lock(world, spec, tmp_path / "ws", tmp_path / "wheels")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f'name = "decorator"\nversion = "{resolved}"' in (tmp_path / "fresh.uv.lock").read_text()
        proc = lock(world, spec, tmp_path / "ws", tmp_path / "wheels", "--upgrade")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert 'name = "decorator"\nversion = "99.0"' in (tmp_path / "fresh.uv.lock").read_text()
    finally:
        newer.unlink()


def test_a_lock_for_the_other_architecture_only_is_not_followed(world, locked, tmp_path):
    folder, _spec = locked
    other = "aarch64" if ARCH == "x86_64" else "x86_64"
    spec = tmp_path / "other.yaml"
    shutil.copy(folder / "world.yaml", spec)
    proc = lock(world, spec, folder / "lockws", folder / "wheels", "--arch", other)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "other.lock").read_text())["uv"]["arches"] == [other]
    proc = bootstrap(world, tmp_path, "--only", "env", "--locked", spec=spec, wheels=folder / "wheels")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"--locked: other.lock covers {other} only, not this box's {ARCH}" in proc.stderr


# --- bundles ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled(world, locked):
    """A bundle of the locked world spec for this machine: its path."""
    folder, spec = locked
    out = folder / "world.bundle"
    proc = invoke(world, "bundle", "--out", str(out), "--spec", str(spec), "--root", str(folder / "lockws"),
                  "--wheels", str(folder / "wheels"), "--ca-bundle", str(world.ca_pem))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def members(path: Path) -> dict:
    import tarfile

    with tarfile.open(path) as tar:
        return {info.name: info for info in tar}


def test_a_bundle_holds_the_lock_git_and_every_wheel_for_its_platform(world, locked, bundled):
    import tarfile

    names = members(bundled)
    assert next(iter(names)) == "npuenv-bundle/manifest.json"
    with tarfile.open(bundled) as tar:
        manifest = json.loads(tar.extractfile("npuenv-bundle/manifest.json").read())
    assert manifest["arch"] == ARCH and manifest["spec"]["name"] == "mindspeed-mm-internvl2.5"
    assert set(manifest["members"]) == set(names) - {"npuenv-bundle/manifest.json"}
    for repo in ("mindspeed-mm", "mindspeed", "megatron", "apex", "decord"):
        assert f"npuenv-bundle/git/{repo}.bundle" in names
    assert "npuenv-bundle/git/decord/3rdparty/dlpack.bundle" in names
    # what apex's build.sh clones by itself, declared in the spec (builds.apex.fetches)
    assert "npuenv-bundle/git/apex-fetch-0.bundle" in names
    assert manifest["repos"]["apex.fetches.0"]["commit"] == world.nvidia_apex_commit
    # a depth-1 checkout of a pin with ancestors: its boundary travels with it
    assert manifest["repos"]["mindspeed"]["shallow"] == [world.commits["mindspeed"]]
    assert manifest["repos"]["decord"]["submodules"]["3rdparty/dlpack"]["commit"] == world.nested_commits["dlpack"]
    wheels = {n.rsplit("/", 1)[-1] for n in names if "/wheels/" in n}
    assert torch_npu_filename(ARCH) in wheels and torch_npu_filename("aarch64" if ARCH == "x86_64" else "x86_64") not in wheels
    pyyaml = [w for w in wheels if w.startswith("pyyaml-")]
    assert pyyaml and all(ARCH in w for w in pyyaml)  # this platform's build only
    if ARCH == "x86_64":  # torch from the CPU index here, not the main index's
        assert world.torch_cpu_file in wheels
    # the git bundle really holds the pinned commit
    proc = invoke(world, "bundle", "--verify", str(bundled))
    assert proc.returncode == 0, proc.stderr
    assert f"a bundle of the spec mindspeed-mm-internvl2.5 for {ARCH}" in proc.stdout


def copy_with(path: Path, dest: Path, edit) -> Path:
    data = bytearray(path.read_bytes())
    edit(data)
    dest.write_bytes(bytes(data))
    return dest


def test_a_damaged_bundle_is_refused_by_name(world, bundled, tmp_path):
    info = members(bundled)["npuenv-bundle/git/mindspeed.bundle"]

    def flip(data: bytearray) -> None:
        data[info.offset_data + 100] ^= 0xFF

    tampered = copy_with(bundled, tmp_path / "tampered.bundle", flip)
    proc = invoke(world, "bundle", "--verify", str(tampered))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "npuenv-bundle/git/mindspeed.bundle does not match its sha256 in the manifest" in proc.stderr
    truncated = copy_with(bundled, tmp_path / "truncated.bundle", lambda data: data.__delitem__(slice(len(data) // 2, None)))
    proc = invoke(world, "bundle", "--verify", str(truncated))
    assert proc.returncode == 2 and "truncated" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    other = tmp_path / "notes.txt"
    other.write_text("not a bundle\n")
    proc = invoke(world, "bundle", "--verify", str(other))
    assert proc.returncode == 2 and "not a complete bundle" in proc.stderr, proc.stderr


def offline(argv: list, env: dict) -> subprocess.CompletedProcess:
    """`argv` in a network namespace with no interface up: nothing it starts can reach any host, the
    world's server included (root only, as CI runs)."""
    return subprocess.run(["unshare", "--net", "--", *argv], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)


def offline_bootstrap(world, root: Path, spec: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "bootstrap", "--root", str(root),
            "--spec", str(spec), "--bundle", str(bundle), "--wheels", str(root.parent / "wheels"),
            "--python", str(world.python310), *args]
    return offline(argv, world.clean_env())


def test_the_namespace_really_has_no_network(world):
    probe = [sys.executable, "-c", f"import urllib.request; urllib.request.urlopen({world.index_url + '/'!r}, timeout=5)"]
    proc = offline(probe, world.trusted_env())
    assert proc.returncode != 0 and ("Network is unreachable" in proc.stderr or "Connection refused" in proc.stderr), \
        proc.stderr


def test_bootstrap_from_a_bundle_needs_no_network_and_converges(world, locked, bundled, tmp_path):
    folder, spec = locked
    root = tmp_path / "airgapped"
    proc = offline_bootstrap(world, root, spec, bundled, "--only", "env")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--frozen" in (root / ".npuenv" / "logs" / "env.log").read_text()
    online = tmp_path / "online"
    online.mkdir()
    proc = bootstrap(world, online, "--only", "env", "--locked", spec=spec, wheels=folder / "wheels")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert environment(root / "MindSpeed-MM" / ".venv") == environment(online / "ws" / "MindSpeed-MM" / ".venv")
    again = offline_bootstrap(world, root, spec, bundled, "--only", "env")
    assert again.returncode == 0 and "0 done" in again.stdout, again.stdout + again.stderr


def test_bootstrap_refuses_a_bundle_that_is_not_for_it_by_name(world, locked, bundled, tmp_path):
    folder, spec = locked
    other_spec = tmp_path / "other.yaml"
    data = json.loads(spec.read_text())
    only_logs(data)
    other_spec.write_text(json.dumps(data))
    proc = offline_bootstrap(world, tmp_path / "a", other_spec, bundled)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{bundled} was made from another spec (mindspeed-mm-internvl2.5" in proc.stderr
    info = members(bundled)["npuenv-bundle/git/mindspeed.bundle"]
    tampered = copy_with(bundled, tmp_path / "tampered.bundle", lambda d: d.__setitem__(info.offset_data + 7, 0))
    proc = offline_bootstrap(world, tmp_path / "b", spec, tampered)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "npuenv-bundle/git/mindspeed.bundle does not match its sha256 in the manifest" in proc.stderr
    assert not (tmp_path / "b" / ".npuenv" / "bundle").exists()  # nothing of it was unpacked
    other = "aarch64" if ARCH == "x86_64" else "x86_64"
    foreign = tmp_path / "foreign.bundle"
    made = invoke(world, "bundle", "--out", str(foreign), "--arch", other, "--spec", str(spec), "--root",
                  str(folder / "lockws"), "--wheels", str(folder / "wheels"), "--ca-bundle", str(world.ca_pem))
    assert made.returncode == 0, made.stdout + made.stderr
    proc = offline_bootstrap(world, tmp_path / "c", spec, foreign)
    assert proc.returncode == 2 and f"{foreign} is a bundle for {other}; this box is {ARCH}" in proc.stderr, proc.stderr


def test_apex_and_decord_build_offline_from_a_bundle_with_what_their_scripts_clone(world, locked, bundled, tmp_path):
    folder, spec = locked
    root = tmp_path / "airgapped"
    proc = offline_bootstrap(world, root, spec, bundled, "--only", "build:apex,build:decord")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (root / ".npuenv" / "logs" / "build_apex.log").read_text()
    # build.sh cloned NVIDIA/apex itself, from the bundle, and checked out its pin
    assert "Cloning into 'apex'..." in log and f"HEAD is now at {world.nvidia_apex_commit[:7]}" in log
    python = root / "MindSpeed-MM" / ".venv" / "bin" / "python"
    subprocess.run([str(python), "-c", "import torch, apex_C, decord"], check=True, env=world.clean_env())
    # decord's submodules came from the bundle too
    assert (root / "decord" / "3rdparty" / "dlpack" / ".git").exists()


def test_a_box_with_only_a_python_installs_npuenv_from_the_bundle(world, bundled, tmp_path):
    import tarfile

    with tarfile.open(bundled) as tar:
        tool = [m for m in tar if m.name.startswith("npuenv-bundle/tool/")]
        tar.extractall(tmp_path, members=tool)
    names = {Path(m.name).name for m in tool}
    assert any(n.startswith("npuenv-0.1.0-") for n in names) and any(n.startswith("uv-") for n in names), names
    venv = tmp_path / "tool-venv"
    env = world.clean_env()
    for argv in ([str(world.python310), "-m", "venv", str(venv)],
                 [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--find-links",
                  str(tmp_path / "npuenv-bundle" / "tool"), "npuenv"],
                 [str(venv / "bin" / "npuenv"), "--list"]):
        proc = offline(argv, env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bootstrap" in proc.stdout and "bundle" in proc.stdout
    proc = offline([str(venv / "bin" / "python"), "-c", "import uv; print(uv.find_uv_bin())"], env)
    assert proc.returncode == 0 and Path(proc.stdout.strip()).is_file(), proc.stderr
