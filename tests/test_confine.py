"""npuenv writes and deletes only inside the workspace root (and the wheelhouse): hostile specs, symlinks
that lead out, read-only mounts. Real files, real git, real mounts (in a private mount namespace)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from npuenv.bootstrap import Options, bootstrap
from npuenv.confine import remove, workspace_path
from npuenv.errors import SpecError, StepFailed, UsageError
from npuenv.spec import load_spec
from tests.test_bootstrap_local import Recorder, environ
from tests.world.fixtures import clean_env

REPO = Path(__file__).resolve().parents[1]
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def files_in(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- a spec cannot name a path outside ---------------------------------------------------------------


def test_a_wheels_glob_that_climbs_out_is_refused_by_the_spec(tmp_path):
    spec = tmp_path / "evil.yaml"
    spec.write_text(json.dumps({"extends": str(REPO / "env_specs" / "mindspeed-mm-internvl2.5.yaml"),
                                "builds": {"apex": {"wheels": "../../outside/*"}}}))
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert any("builds.apex.wheels: '../../outside/*' contains '..'" in p for p in caught.value.problems)


def test_deleting_checks_where_the_path_really_is(tmp_path):
    root, outside = tmp_path / "ws", tmp_path / "outside"
    (root / "repo").mkdir(parents=True)
    outside.mkdir()
    (outside / "precious.whl").write_text("not yours")
    (root / "repo" / "dist").symlink_to(outside)  # a glob like dist/*.whl now finds files outside
    with pytest.raises(UsageError, match="refusing to delete"):
        remove(root / "repo" / "dist" / "precious.whl", root)
    assert (outside / "precious.whl").read_text() == "not yours"
    remove(root / "repo" / "dist", root)  # the link itself is inside: it goes, what it points at stays
    assert not (root / "repo" / "dist").exists() and (outside / "precious.whl").is_file()
    with pytest.raises(UsageError):
        remove(tmp_path / "outside", root)
    assert outside.is_dir()


def test_a_workspace_path_through_a_symlink_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "ws", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "MindSpeed-MM").symlink_to(outside)
    assert workspace_path(root, "data/logs") == root / "data/logs"  # not there yet: fine
    with pytest.raises(UsageError) as caught:
        workspace_path(root, "MindSpeed-MM/MindSpeed")
    assert f"leads outside the workspace root {root}" in caught.value.message and str(outside) in caught.value.message


# --- symlinks in a workspace ---------------------------------------------------------------------------


@pytest.fixture
def upstream(tmp_path) -> tuple:
    """A one-commit bare repo served through a file:// mirror for https://example.invalid/."""
    work = tmp_path / "up" / "src"
    work.mkdir(parents=True)
    (work / "README").write_text("upstream\n")
    subprocess.run(["git", "init", "-q", "-b", "master", str(work)], env=GIT_ENV, check=True)
    subprocess.run(["git", "add", "-A"], cwd=work, env=GIT_ENV, check=True)
    subprocess.run(["git", "commit", "-qm", "one"], cwd=work, env=GIT_ENV, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, env=GIT_ENV, capture_output=True, text=True,
                         check=True).stdout.strip()
    mirror = tmp_path / "up" / "mirror"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirror / "r.git")], env=GIT_ENV, check=True)
    return mirror, sha


def repo_spec(tmp_path: Path, mirror: Path, sha: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"name": "one-repo", "python": "3.10",
                                "mirrors": {"https://example.invalid/": f"{mirror}/"},
                                "repos": {"r": {"url": "https://example.invalid/r.git", "commit": sha, "path": "r"}}}))
    return spec


def run_repo(tmp_path: Path, root: Path, spec: Path, **options) -> Recorder:
    recorder = Recorder()
    env = {**environ(tmp_path), **GIT_ENV}
    bootstrap(Options(root=str(root), spec=str(spec), only=["repo:r"], wheels=str(tmp_path / "wheels"), **options),
              recorder, env)
    return recorder


def test_npuenvs_own_folder_as_a_symlink_out_is_refused_and_nothing_is_written_there(tmp_path, upstream):
    root, outside = tmp_path / "ws", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / ".npuenv").symlink_to(outside)
    spec = repo_spec(tmp_path, *upstream)
    for dry_run in (True, False):
        with pytest.raises(UsageError) as caught:
            run_repo(tmp_path, root, spec, dry_run=dry_run)
        assert f"{root / '.npuenv'} leads outside the workspace root" in caught.value.message
    assert files_in(outside) == []  # no state, lock, log or CA bundle went through the link


@pytest.mark.parametrize("what", ["a checkout", "an empty folder"])
def test_a_repo_path_that_is_a_symlink_out_is_refused_and_left_alone(tmp_path, upstream, what):
    mirror, sha = upstream
    root, outside = tmp_path / "ws", tmp_path / "outside"
    root.mkdir()
    if what == "a checkout":
        subprocess.run(["git", "clone", "-q", str(mirror / "r.git"), str(outside)], env=GIT_ENV, check=True)
    else:
        outside.mkdir()
    before = files_in(outside)
    (root / "r").symlink_to(outside)
    with pytest.raises(StepFailed) as caught:  # the step fails, naming why
        run_repo(tmp_path, root, repo_spec(tmp_path, mirror, sha))
    message = str(caught.value)
    assert "step repo:r failed" in message and "leads outside the workspace root" in message
    assert "Traceback" not in message and "Errno" not in message
    assert files_in(outside) == before  # no clone left behind, no HEAD moved, no origin rewritten
    assert not (root / ".r.npuenv-tmp").exists()


# --- a read-only root ------------------------------------------------------------------------------------


def read_only_run(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """npuenv's CLI inside a private mount namespace where tmp_path/ro is a read-only bind mount."""
    source, ro = tmp_path / "src", tmp_path / "ro"
    source.mkdir(exist_ok=True)
    ro.mkdir(exist_ok=True)
    script = ('mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"')
    command = ["unshare", "-m", "sh", "-c", script, "sh", str(source), str(ro), sys.executable, "-m", "invoke",
               "--search-root", str(REPO), *argv]
    return subprocess.run(command, env=clean_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120)


@pytest.mark.parametrize("argv, exit_code, message", [
    (["bootstrap", "--root", "{ro}", "--only", "python"], 2, "{ro} is not writable"),
    (["bootstrap", "--root", "{ro}/ws", "--only", "python"], 2, "--root {ro}/ws: {ro} is not writable"),
    (["user.add", "alice", "--root", "{ro}"], 2, "{ro} is not writable"),
])
def test_a_read_only_root_is_a_usage_error_not_a_crash(tmp_path, argv, exit_code, message):
    assert shutil.which("unshare"), ".ci/run runs as root on a machine with util-linux"
    ro = tmp_path / "ro"
    proc = read_only_run(tmp_path, *[a.format(ro=ro) for a in argv])
    assert proc.returncode == exit_code, proc.stdout + proc.stderr
    assert message.format(ro=ro) in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert "npuenv crashed" not in proc.stderr


def test_any_filesystem_error_is_named_not_a_traceback(tmp_path):
    """A write the tasks do not check beforehand (here VS Code's settings in a read-only project)."""
    home = tmp_path / "src" / "alice"
    (tmp_path / "src").mkdir()
    add = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), "user.add", "alice",
                          "--root", str(tmp_path / "src"), "--shell", "bash"], env=clean_env(),
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert add.returncode == 0, add.stdout + add.stderr
    (home / "project").mkdir()
    proc = read_only_run(tmp_path, "user.vscode", "alice", "--project", str(tmp_path / "ro" / "alice" / "project"),
                         "--root", str(tmp_path / "ro"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert "error: Read-only file system: " in proc.stderr and "read-only mount" in proc.stderr
