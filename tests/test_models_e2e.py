"""models.fetch for real: the real huggingface_hub client (in npuenv's child process) against the world's hub
on loopback (tests/world/hub.py) over TLS with a CA made here, serving a tiny InternVL2.5-2B-shaped model.
Cut connections, a killed download, a corrupt file, a missing shard and a full disk (a small tmpfs in a
private mount namespace) are real too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import REPO
from tests.world.ca import make_ca
from tests.world.fixtures import clean_env
from tests.world.hub import HubServer
from tests.world.tiny_internvl import make_tiny_internvl

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


def wait_for_bytes(folder: Path, proc: subprocess.Popen) -> Path:
    """The hub client's .incomplete file, once it holds data (it writes 10 MB at a time)."""
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in folder.rglob("*.incomplete") if p.stat().st_size > 0]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no partial download appeared")


def test_a_killed_download_resumes_where_it_stopped(ca, hub, tmp_path):
    hub.add(HUB_ID, BIG)
    hold = hub.hold_after(SHARD2, 15 * 1024 * 1024)
    folder = tmp_path / "models" / NAME
    proc = subprocess.Popen(argv(ca, "models.fetch", NAME), env=env_for(hub, tmp_path), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert hold.reached.wait(120), "the download never reached the held shard"
        partial = wait_for_bytes(folder, proc)
        os.killpg(proc.pid, signal.SIGKILL)  # the task and its downloading child
        proc.wait(60)
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
    assert "OpenGVLab/Gone: no such model on" in proc.stderr and "HTTP 404" in proc.stderr


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
