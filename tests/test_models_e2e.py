"""models.fetch for real: the real huggingface_hub client (in npuenv's child process) against the world's hub
on loopback (tests/world/hub.py) over TLS with a CA made here, serving a tiny InternVL2.5-2B-shaped model.
Cut connections, a killed download, a corrupt file, a missing shard and a full disk (a small tmpfs in a
private mount namespace) are real too."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import REPO
from tests.world.ca import make_ca
from tests.world.cann import make_cann
from tests.world.fixtures import clean_env
from tests.world.hub import HubServer
from tests.world.tiny_internvl import make_tiny_internvl

pytestmark = pytest.mark.slow

HUB_ID = "OpenGVLab/InternVL2_5-2B"
NAME = "InternVL2_5-2B"
SHARD1, SHARD2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
FILES = make_tiny_internvl()
# huggingface_hub writes what it receives in 10 MB chunks: only shards past that can resume mid-file
CHUNK = 10 * 1024 * 1024
BIG = make_tiny_internvl(shard_bytes=16 * 1024 * 1024)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("hub-ca"))


@pytest.fixture
def hub(ca):
    with HubServer(ca.server_context()) as server:
        server.add(HUB_ID, FILES)
        yield server


def env_for(hub: HubServer, persistent: Path, **extra: str) -> dict:
    env = clean_env()
    env.update({"NPUENV_PERSISTENT_ROOT": str(persistent), "NPUENV_USER": "", "HF_ENDPOINT": hub.url, **extra})
    return env


def argv(ca, *args: str) -> list:
    return [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args, "--ca-bundle", str(ca.ca_pem)]


def fetch(ca, hub, persistent: Path, *args: str, env=None, name: str = NAME) -> subprocess.CompletedProcess:
    return subprocess.run(argv(ca, "models.fetch", name, *args), env=env or env_for(hub, persistent),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def resolves(hub: HubServer, name: str) -> list:
    return [r for r in hub.requests if r[0] == "GET" and r[1].endswith("/" + name)]


def assert_complete(folder: Path, files=FILES) -> None:
    for name, data in files.items():
        assert (folder / name).read_bytes() == data, name
    marker = json.loads((folder / ".npuenv-model.json").read_text())
    assert sorted(marker["files"]) == sorted(files)


def test_fetch_downloads_verifies_and_marks_the_model(ca, hub, tmp_path):
    proc = fetch(ca, hub, tmp_path, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result == {"model": NAME, "hub": HUB_ID, "revision": hub.commit(HUB_ID, "main").sha,
                      "folder": str(tmp_path / "models" / NAME), "files": len(FILES),
                      "size": sum(len(v) for v in FILES.values()), "downloaded": True}
    assert_complete(tmp_path / "models" / NAME)
    assert [r[1] for r in resolves(hub, SHARD1)] == [f"/cdn-lfs/{hashlib.sha256(FILES[SHARD1]).hexdigest()}/{SHARD1}"]
    # npuenv's own files stay under PERSISTENT/models/.npuenv: the CA bundle, the hub client's HF_HOME
    assert (tmp_path / "models" / ".npuenv" / "ca-bundle.pem").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_a_complete_model_is_a_no_op_that_asks_the_hub_nothing(ca, hub, tmp_path):
    assert fetch(ca, hub, tmp_path).returncode == 0
    hub.clear_requests()
    proc = fetch(ca, hub, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "already complete, nothing to do" in proc.stdout
    assert hub.requests == []


def range_start(request) -> int:
    return int(request[2].split("=")[1].split("-")[0])


def test_a_connection_cut_mid_shard_is_resumed_with_a_range(ca, hub, tmp_path):
    hub.add(HUB_ID, BIG)
    hub.cut_after(SHARD1, 14 * 1024 * 1024)
    proc = fetch(ca, hub, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "; resuming (attempt 2 of 3)" in proc.stdout
    gets = resolves(hub, SHARD1)
    assert [r[2] for r in gets][0] is None and range_start(gets[1]) == CHUNK, gets
    assert_complete(tmp_path / "models" / NAME, BIG)


def wait_for_bytes(folder: Path, proc: subprocess.Popen, data: bytes) -> Path:
    """The hub client's .incomplete file of `data` (named by its etag, the sha256), once it holds some
    (it writes 10 MB at a time)."""
    import hashlib
    import time

    etag = hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in folder.rglob(f"*{etag}*.incomplete") if p.stat().st_size > 0]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no partial download appeared")


def downloaders(folder: Path) -> list:
    """The pids of `npuenv.models.download` processes writing into `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"npuenv.models.download" in argv and str(folder).encode() in argv:
            found.append(int(entry.name))
    return found


def wait_gone(folder: Path) -> None:
    """Until no download into `folder` runs: the supervisor stops it once npuenv is gone."""
    import time

    deadline = time.monotonic() + 60
    while downloaders(folder):
        assert time.monotonic() < deadline, f"a download outlived npuenv: {downloaders(folder)}"
        time.sleep(0.05)


def test_a_killed_download_resumes_where_it_stopped(ca, hub, tmp_path):
    hub.add(HUB_ID, BIG)
    hold = hub.hold_after(SHARD2, 15 * 1024 * 1024)
    folder = tmp_path / "models" / NAME
    proc = subprocess.Popen(argv(ca, "models.fetch", NAME), env=env_for(hub, tmp_path), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert hold.reached.wait(120), "the download never reached the held shard"
        partial = wait_for_bytes(folder, proc, BIG[SHARD2])
        os.killpg(proc.pid, signal.SIGKILL)  # the task: its supervisor then stops the downloading child
        proc.wait(60)
        wait_gone(folder)
    finally:
        hold.release()
    kept = partial.stat().st_size
    assert kept >= CHUNK and not (folder / ".npuenv-model.json").exists()
    hub.clear_requests()
    done = fetch(ca, hub, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [range_start(r) for r in resolves(hub, SHARD2)] == [kept]
    assert_complete(folder, BIG)


def test_a_file_that_does_not_match_its_sha256_is_removed_and_named(ca, hub, tmp_path):
    hub.corrupt(HUB_ID, "main", SHARD2, bytes(len(FILES[SHARD2])))
    proc = fetch(ca, hub, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"1 file of {HUB_ID}@" in proc.stderr and f"did not match the hub ({SHARD2}: sha256 " in proc.stderr
    assert "Traceback" not in proc.stderr
    folder = tmp_path / "models" / NAME
    assert not (folder / SHARD2).exists() and not (folder / ".npuenv-model.json").exists()
    hub.corrupted.clear()
    assert fetch(ca, hub, tmp_path).returncode == 0
    assert_complete(folder)


def test_a_shard_missing_from_the_repo_is_named_against_the_index(ca, hub, tmp_path):
    files = {k: v for k, v in FILES.items() if k != SHARD2}
    hub.add(HUB_ID, files)
    proc = fetch(ca, hub, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"the shards do not match the index: {SHARD2}: named in model.safetensors.index.json but missing" \
        in proc.stderr
    assert not (tmp_path / "models" / NAME / ".npuenv-model.json").exists()


def test_a_pinned_revision_is_fetched_while_main_has_moved_on(ca, hub, tmp_path):
    first = hub.commit(HUB_ID, "main").sha
    newer = dict(FILES, **{"README.md": b"# moved on\n"})
    hub.add(HUB_ID, newer)
    proc = fetch(ca, hub, tmp_path, "--revision", first, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["revision"] == first
    assert not (tmp_path / "models" / NAME / "README.md").exists()
    # unpinned again, the complete model stands until --update asks for main
    assert json.loads(fetch(ca, hub, tmp_path, "--json").stdout)["revision"] == first
    updated = json.loads(fetch(ca, hub, tmp_path, "--update", "--json").stdout)
    assert updated["revision"] == hub.commit(HUB_ID, "main").sha
    assert_complete(tmp_path / "models" / NAME, newer)


def test_the_hub_through_a_mirror_rule_of_the_spec(ca, hub, tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text(json.dumps({"extends": "mindspeed-mm-internvl2.5",
                                "mirrors": {"https://huggingface.co/": hub.url + "/"}}))
    env = env_for(hub, tmp_path)
    del env["HF_ENDPOINT"]
    proc = fetch(ca, hub, tmp_path, "--spec", str(spec), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_complete(tmp_path / "models" / NAME)


def test_an_unknown_repo_is_named(ca, hub, tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text(json.dumps({"extends": "mindspeed-mm-internvl2.5", "models": {"Gone": {"hub": "OpenGVLab/Gone"}}}))
    proc = fetch(ca, hub, tmp_path, "--spec", str(spec), name="Gone")
    assert proc.returncode == 2
    assert "OpenGVLab/Gone: no such model, or a private one on" in proc.stderr and "(HTTP 401)" in proc.stderr
    assert "a private model needs HF_TOKEN" in proc.stderr


def test_a_full_disk_is_refused_before_downloading_with_the_numbers(ca, hub, tmp_path):
    """PERSISTENT is a 640 KiB tmpfs (room for the CA bundle, not the model) in a private mount namespace (root may make one here)."""
    persistent = tmp_path / "small"
    persistent.mkdir()
    script = ('mount -t tmpfs -o size=640k npuenv-test "$1" && shift && exec "$@"')
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", script, "mount",
                           str(persistent), *argv(ca, "models.fetch", NAME)], env=env_for(hub, persistent),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{NAME} ({len(FILES)} of {len(FILES)} files) needs 1.0 MiB;" in proc.stderr
    assert "KiB free" in proc.stderr and "--persistent DIR" in proc.stderr
    assert resolves(hub, SHARD1) == [] and resolves(hub, SHARD2) == []


# --- convert, config and doctor on a workspace: the world's MindSpeed-MM at its pin, a real Python 3.10 venv ---


@pytest.fixture
def workspace(tmp_path):
    """ROOT/MindSpeed-MM: a clone of the world's MindSpeed-MM at the pin (with the stand-in converter and
    templates), and its target env: a real venv (the stand-in converter needs nothing but Python)."""
    from tests.world.upstream import _mindspeed_mm_history, build_repo, git_env
    from tests.world.wheels import find_python

    python = find_python("3.10")
    assert python is not None, "needs Python 3.10 (.ci/run installs it)"
    pin, _later = build_repo(tmp_path / "mm.git", _mindspeed_mm_history())
    root = tmp_path / "ws"
    project = root / "MindSpeed-MM"
    env = dict(clean_env(), **git_env())
    subprocess.run(["git", "clone", "-q", str(tmp_path / "mm.git"), str(project)], check=True, env=env)
    subprocess.run(["git", "-C", str(project), "checkout", "-q", "--detach", pin], check=True, env=env)
    subprocess.run(["uv", "venv", "-q", "--python", str(python), str(project / ".venv")], check=True, env=env)
    return root, pin


def meminfo(folder: Path, available_kib: int) -> str:
    path = folder / "meminfo"
    path.write_text(f"MemTotal: {available_kib * 4} kB\nMemAvailable: {available_kib} kB\n")
    return str(path)


def task(ca, hub, persistent: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
                          env=env_for(hub, persistent, **extra), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def doctor(ca, hub, persistent: Path, root: Path, **extra: str) -> dict:
    proc = task(ca, hub, persistent, "doctor", "--root", str(root), "--check", "models", "--json", **extra)
    return {c["name"]: c for c in json.loads(proc.stdout)}


def test_convert_checks_ram_then_converts_once_into_place_with_provenance(ca, hub, tmp_path, workspace):
    root, pin = workspace
    assert fetch(ca, hub, tmp_path).returncode == 0
    short = task(ca, hub, tmp_path, "models.convert", NAME, "--root", str(root), NPUENV_MEMINFO=meminfo(tmp_path, 1024))
    assert short.returncode == 2 and "of RAM (0.0 billion parameters × 4 bytes in fp32); 1.0 MiB is available" in short.stderr
    assert not (tmp_path / "models_ms" / NAME).exists()

    plenty = meminfo(tmp_path, 64 * 1024 * 1024)
    cann = make_cann(tmp_path / "cann")  # sourced where present: the stand-in converter prints what it saw
    proc = task(ca, hub, tmp_path, "models.convert", NAME, "--root", str(root), "--json", NPUENV_MEMINFO=plenty,
                **cann.set_env_variable())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    log = tmp_path / "models" / ".npuenv" / "logs" / f"convert-{NAME}.log"
    assert f"ASCEND_TOOLKIT_HOME={cann.toolkit}/latest\n" in log.read_text()
    out = tmp_path / "models_ms" / NAME
    assert (result["model_size"], result["script_commit"], result["converted"]) == ("2B", pin, True)
    assert (out / "latest_checkpointed_iteration.txt").read_text() == "release"
    stage = json.loads((out / "release" / "mp_rank_00" / "model_optim_rng.pt").read_text())["model"]
    assert len(stage) == len(json.loads(FILES["model.safetensors.index.json"])["weight_map"])
    record = json.loads((out / ".npuenv-convert.json").read_text())
    assert record["source"] == {"hub": HUB_ID, "revision": hub.commit(HUB_ID, "main").sha}
    assert record["trust_remote_code"] is True and record["model_size"] == "2B"
    assert sorted(record["outputs"]) == ["latest_checkpointed_iteration.txt", "release/mp_rank_00/model_optim_rng.pt"]
    assert [p.name for p in (tmp_path / "models_ms").iterdir()] == [NAME]  # no temp folder left

    before = (out / "release" / "mp_rank_00" / "model_optim_rng.pt").stat().st_mtime_ns
    again = task(ca, hub, tmp_path, "models.convert", NAME, "--root", str(root), NPUENV_MEMINFO=plenty)
    assert again.returncode == 0 and "up to date, nothing to do" in again.stdout
    assert (out / "release" / "mp_rank_00" / "model_optim_rng.pt").stat().st_mtime_ns == before

    checks = doctor(ca, hub, tmp_path, root)
    assert checks["models.fetched"]["status"] == "ok" and checks["models.converted"]["status"] == "ok"
    hub.add(HUB_ID, dict(FILES, **{"README.md": b"# a new revision\n"}))
    assert fetch(ca, hub, tmp_path, "--update").returncode == 0
    stale = doctor(ca, hub, tmp_path, root)["models.converted"]
    assert stale["status"] == "warn" and "older than their source" in stale["finding"]
    assert stale["fix"] == f"invoke models.convert {NAME}"
    redo = task(ca, hub, tmp_path, "models.convert", NAME, "--root", str(root), NPUENV_MEMINFO=plenty)
    assert redo.returncode == 0 and "its source changed" in redo.stdout
    assert "ASCEND_TOOLKIT_HOME=(not set)\n" in log.read_text()  # no CANN here: run as it is
    assert doctor(ca, hub, tmp_path, root)["models.converted"]["status"] == "ok"
    assert [p.name for p in (tmp_path / "models_ms").iterdir()] == [NAME]


def test_the_world_s_converter_fails_on_an_existing_save_folder_as_the_real_one(workspace, tmp_path):
    root, _pin = workspace
    model = tmp_path / "m"
    model.mkdir()
    for name, data in FILES.items():
        (model / name).write_bytes(data)
    script = root / "MindSpeed-MM" / "examples" / "internvl2.5" / "internvl2.5_convert_to_mm_ckpt.py"
    python = root / "MindSpeed-MM" / ".venv" / "bin" / "python"
    (tmp_path / "exists").mkdir()
    for trust, save, expected in (("True", "exists", "FileExistsError"), ("", "new", "trust_remote_code=True")):
        proc = subprocess.run([str(python), str(script), "--model-size", "2B", "--load-dir", str(model), "--save-dir",
                               str(tmp_path / save), "--trust-remote-code", trust], capture_output=True, text=True)
        assert proc.returncode != 0 and expected in proc.stderr, proc.stderr


def test_configs_and_launch_scripts_are_written_for_the_model_and_checked_by_doctor(ca, hub, tmp_path, workspace):
    root, _pin = workspace
    assert fetch(ca, hub, tmp_path).returncode == 0
    examples = root / "MindSpeed-MM" / "examples" / "internvl2.5"
    for kind in ("model", "data", "inference"):
        proc = task(ca, hub, tmp_path, "models.config", NAME, "--kind", kind, "--root", str(root))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (examples / f"{kind}_2B.json.npuenv.json").is_file()
    devices = tmp_path / "dev"
    devices.mkdir()
    (devices / "davinci0").touch()
    glob = {"NPUENV_DEVICE_GLOB": str(devices / "davinci*")}
    script = task(ca, hub, tmp_path, "models.config", NAME, "--kind", "finetune", "--root", str(root), **glob)
    assert script.returncode == 0, script.stderr
    text = (examples / "finetune_internvl2.5_2B.sh").read_text()
    assert "NPUS_PER_NODE=1\n" in text and "--vocab-size 92553" in text and f"MM_MODEL={examples}/model_2B.json" in text
    assert json.loads((examples / "model_2B.json").read_text())["img_context_token_id"] == 92546

    checks = doctor(ca, hub, tmp_path, root, **glob)
    assert checks["models.configs"]["status"] == "fail"  # the data file and the checkpoint are not there yet
    assert "data_2B.json: dataset_param.basic_parameters.data_path: " in checks["models.configs"]["finding"]
    assert checks["models.launch"]["status"] == "ok"
    (root / "MindSpeed-MM" / "dataset").mkdir()
    (root / "MindSpeed-MM" / "dataset" / "train.json").write_text("[]")
    assert task(ca, hub, tmp_path, "models.convert", NAME, "--root", str(root)).returncode == 0
    configs = doctor(ca, hub, tmp_path, root, **glob)["models.configs"]
    assert configs["status"] == "ok", configs

    model = json.loads((examples / "model_2B.json").read_text())
    model["text_decoder"]["pipeline_num_layers"] = [12, 11]
    (examples / "model_2B.json").write_text(json.dumps(model))
    (examples / "finetune_internvl2.5_2B.sh").write_text(text.replace("NPUS_PER_NODE=1\n", "NPUS_PER_NODE=8\n"))
    checks = doctor(ca, hub, tmp_path, root, **glob)
    assert "text_decoder.pipeline_num_layers adds up to 23, num_layers is 24" in checks["models.configs"]["finding"]
    assert checks["models.launch"]["status"] == "fail"
    assert "finetune_internvl2.5_2B.sh sets NPUS_PER_NODE=8, this box has 1 NPUs" in checks["models.launch"]["finding"]


# --- the lock: what `invoke lock` records of a model, and a fetch that follows it -----------------------------


def locked_spec(ca, hub, folder: Path, tamper=None) -> Path:
    """A spec beside a lock whose models entry is what `invoke lock` records (hubapi.locked_entry)."""
    from npuenv import lockfile
    from npuenv.models.hubapi import locked_entry
    from npuenv.spec import load_spec

    spec_file = folder / "mine.yaml"
    spec_file.write_text(json.dumps({"extends": "mindspeed-mm-internvl2.5"}))
    entry = locked_entry(hub.url, HUB_ID, "main", ca.ca_pem)
    if tamper:
        tamper(entry)
    content = lockfile.locked_content(load_spec(spec_file))
    lockfile.write(spec_file, {"spec": {"name": "mine"}, "uv": {"arches": ["x86_64"]}, "models": {NAME: entry},
                               "content": content}, "version = 1\n")
    return spec_file


def test_the_lock_records_the_resolved_revision_and_every_file_s_sha256(ca, hub):
    import hashlib

    from npuenv.models.hubapi import locked_entry

    entry = locked_entry(hub.url, HUB_ID, "main", ca.ca_pem)
    assert entry["revision"] == hub.commit(HUB_ID, "main").sha
    assert entry["files"] == {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                              for name, data in FILES.items()}


def test_fetch_follows_the_lock_s_revision_while_main_moves_on(ca, hub, tmp_path):
    spec = locked_spec(ca, hub, tmp_path)
    locked = hub.commit(HUB_ID, "main").sha
    hub.add(HUB_ID, dict(FILES, **{"README.md": b"# moved on\n"}))
    proc = fetch(ca, hub, tmp_path, "--spec", str(spec), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["revision"] == locked


def test_files_that_differ_from_the_lock_are_refused_by_name(ca, hub, tmp_path):
    spec = locked_spec(ca, hub, tmp_path, tamper=lambda e: e["files"]["config.json"].update(sha256="0" * 64))
    proc = fetch(ca, hub, tmp_path, "--spec", str(spec))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "differs from mine.lock: config.json: sha256 " in proc.stderr and "the lock says 000000000000" in proc.stderr
    assert not (tmp_path / "models" / NAME / ".npuenv-model.json").exists()


def test_invoke_lock_records_the_spec_s_models(world, ca, hub, tmp_path):
    """The real `invoke lock` on a world spec whose model's hub is mirrored to the world's hub."""
    import hashlib

    from tests.test_lock_e2e import lock, lockable_spec

    spec = lockable_spec(world, tmp_path / "world.yaml", models={NAME: {"hub": HUB_ID}},
                         mirrors=dict(world.mirrors, **{"https://huggingface.co/": hub.url + "/"}))
    proc = lock(world, spec, tmp_path / "ws", tmp_path / "wheels", "--ca-bundle", str(ca.ca_pem))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entry = json.loads((tmp_path / "world.lock").read_text())["models"][NAME]
    assert entry["hub"] == HUB_ID and entry["revision"] == hub.commit(HUB_ID, "main").sha
    assert entry["files"][SHARD1]["sha256"] == hashlib.sha256(FILES[SHARD1]).hexdigest()
    assert entry["files"]["config.json"]["sha256"] == hashlib.sha256(FILES["config.json"]).hexdigest()


def test_a_second_fetch_of_the_same_model_is_refused_while_one_runs(ca, hub, tmp_path):
    from npuenv.flock import workspace_lock

    lock = tmp_path / "models" / ".npuenv" / "locks" / NAME
    lock.parent.mkdir(parents=True)
    with workspace_lock(lock):  # as a running models.fetch holds it
        proc = fetch(ca, hub, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"another models.fetch is downloading {NAME}" in proc.stderr and "--wait" not in proc.stderr
    assert fetch(ca, hub, tmp_path).returncode == 0
