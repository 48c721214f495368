"""Sanity tests of the hermetic world: real git, real TLS, real uv against the loopback server."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest
import requests

from tests.world.fixtures import World
from tests.world.upstream import Commit, Gitlink, add_commit, build_repo



def _uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:  # pragma: no cover - the dev group ships uv
        return shutil.which("uv") or "uv"
    return str(find_uv_bin())


def _git_env(world: World, trusted: bool = True) -> Dict[str, str]:
    """Env for a git client: no user/system config, the world's mirrors, and optionally its CA."""
    env = world.trusted_env() if trusted else world.clean_env()
    env = {k: v for k, v in env.items() if not k.startswith("GIT_CONFIG")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_TERMINAL_PROMPT="0")
    env.update(world.git_mirror_env())
    return env


def _run(args: Sequence[object], env: Dict[str, str], cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    command = [str(arg) for arg in args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _git(world: World, *args: object, cwd: Optional[Path] = None) -> str:
    result = _run(["git", *map(str, args)], _git_env(world), cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _session(world: World) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # ignore the machine's REQUESTS_CA_BUNDLE and proxies
    session.verify = str(world.ca_pem)
    return session


# -- git -------------------------------------------------------------------------------------

def test_clone_through_mirror_with_the_ca(world: World, tmp_path: Path) -> None:
    dest = tmp_path / "mm"
    _git(world, "clone", "--quiet", "https://gitee.com/ascend/MindSpeed-MM.git", dest)
    assert _git(world, "rev-parse", "HEAD", cwd=dest) == world.upstreams.tips["mindspeed-mm"]
    assert (dest / "pyproject.toml").is_file()


def test_clone_without_the_ca_fails_on_the_certificate(world: World, tmp_path: Path) -> None:
    untrusted = _git_env(world, trusted=False)
    result = _run(["git", "clone", world.repo_url("mindspeed"), tmp_path / "ms"], untrusted)
    assert result.returncode != 0
    assert "certificate" in result.stderr.lower()


def test_shallow_fetch_of_a_pinned_non_tip_commit(world: World, tmp_path: Path) -> None:
    pin = world.commits["mindspeed-mm"]
    assert pin != world.upstreams.tips["mindspeed-mm"]
    _git(world, "init", "--quiet", tmp_path)
    _git(world, "remote", "add", "origin", "https://gitee.com/ascend/MindSpeed-MM.git", cwd=tmp_path)
    _git(world, "fetch", "--quiet", "--depth", "1", "origin", pin, cwd=tmp_path)
    _git(world, "checkout", "--quiet", "FETCH_HEAD", cwd=tmp_path)
    assert _git(world, "rev-parse", "HEAD", cwd=tmp_path) == pin
    assert _git(world, "rev-list", "--count", "HEAD", cwd=tmp_path) == "1"
    assert "NPUS_PER_NODE=8" in (tmp_path / "examples/internvl2.5/finetune_internvl2.5_4B.sh").read_text()
    assert (tmp_path / "examples/internvl2.5/dot_product_attention.py").is_file()


def test_megatron_branch_and_tag_name_the_same_commit(world: World) -> None:
    lines = _git(world, "ls-remote", "https://github.com/NVIDIA/Megatron-LM.git").splitlines()
    refs = {ref: sha for sha, ref in (line.split("\t") for line in lines)}
    pin = world.commits["megatron"]
    assert refs["refs/heads/core_r0.8.0"] == refs["refs/tags/core_r0.8.0"] == pin
    assert refs["refs/heads/main"] == world.upstreams.tips["megatron"] != pin


def test_mindspeed_setup_py_has_the_pip_lines_at_47_and_48(world: World, tmp_path: Path) -> None:
    _git(world, "clone", "--quiet", world.repo_url("mindspeed"), tmp_path / "ms")
    _git(world, "checkout", "--quiet", world.commits["mindspeed"], cwd=tmp_path / "ms")
    lines = (tmp_path / "ms" / "setup.py").read_text().splitlines()
    assert lines[46] == "if os.getenv('CI_BUILD', '0') != '1':"
    pip = "[sys.executable, '-m', 'pip', 'install', '-r', 'requirements.txt']"
    assert lines[47] == f"    subprocess.check_call({pip})"
    assert not (tmp_path / "ms" / "pyproject.toml").exists()


def test_submodules_follow_the_mirrors(world: World, tmp_path: Path) -> None:
    repo = world.server.git_root / "github.com" / "world-tests" / "with-submodule.git"
    gitmodules = '[submodule "megatron"]\n\tpath = megatron\n\turl = https://github.com/NVIDIA/Megatron-LM.git\n'
    files = {".gitmodules": gitmodules, "megatron": Gitlink(world.commits["megatron"])}
    build_repo(repo, [Commit("Add megatron as a submodule", "2025-01-01T00:00:00", files)])
    try:
        url = "https://github.com/world-tests/with-submodule.git"
        _git(world, "clone", "--quiet", "--recurse-submodules", url, tmp_path / "super")
        assert _git(world, "rev-parse", "HEAD", cwd=tmp_path / "super" / "megatron") == world.commits["megatron"]
    finally:
        shutil.rmtree(repo.parent)


def test_add_commit_moves_upstream(fresh_upstream: World, tmp_path: Path) -> None:
    world = fresh_upstream
    new = add_commit(world.upstreams.paths["mindspeed"], {"NEWS.md": "moved\n"})
    lines = _git(world, "ls-remote", world.repo_url("mindspeed"), "refs/heads/master")
    assert lines.split()[0] == new != world.upstreams.tips["mindspeed"]


def test_git_fault_injection(world: World) -> None:
    world.server.fail_next("/git/github.com/", 1, status=503)
    failed = _run(["git", "ls-remote", "https://github.com/NVIDIA/Megatron-LM.git"], _git_env(world))
    assert failed.returncode != 0 and "503" in failed.stderr
    assert _git(world, "ls-remote", "https://github.com/NVIDIA/Megatron-LM.git")


# -- files and the index ---------------------------------------------------------------------

def test_range_requests(world: World) -> None:
    url = f"{world.url}/files/wheels/{world.torch_npu_file}"
    data = (world.server.wheels_dir / world.torch_npu_file).read_bytes()
    with _session(world) as session:
        part = session.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        tail = session.get(url, headers={"Range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == data[-5:]
        assert session.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
        whole = session.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert int(whole.headers["Content-Length"]) == len(data)


def test_simple_index_lists_the_stand_in_with_its_sha256(world: World) -> None:
    with _session(world) as session:
        root = session.get(f"{world.url}/simple/")
        assert root.status_code == 200 and 'href="/simple/torch-npu/"' in root.text
        page = session.get(f"{world.url}/simple/torch-npu/")
        assert page.status_code == 200
        href = re.search(r'href="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        path, sha = href.split("#sha256=")
        assert path == f"/files/wheels/{world.torch_npu_file}"
        body = session.get(world.url + path).content
        assert sha == hashlib.sha256(body).hexdigest() == world.wheel_sha256[world.torch_npu_file]
        assert session.get(f"{world.url}/simple/torch_npu/").status_code == 200
        assert session.get(f"{world.url}/simple/no-such-project/").status_code == 404


def test_fail_next_answers_then_recovers(world: World) -> None:
    world.server.clear_requests()
    world.server.fail_next("/files/", 2, status=503)
    url = f"{world.url}/files/wheels/{world.torch_npu_file}"
    with _session(world) as session:
        assert [session.get(url).status_code for _ in range(3)] == [503, 503, 200]
    assert world.server.requests == [("GET", f"/files/wheels/{world.torch_npu_file}", None)] * 3


def test_cut_after_then_resume_with_range(world: World) -> None:
    url = f"{world.url}/files/wheels/{world.torch_npu_file}"
    data = (world.server.wheels_dir / world.torch_npu_file).read_bytes()
    world.server.cut_after("/files/wheels/torch_npu", 100)
    received: List[bytes] = []
    with _session(world) as session:
        with pytest.raises(requests.exceptions.RequestException):
            with session.get(url, stream=True) as response:
                assert response.headers["Content-Length"] == str(len(data))
                for block in response.iter_content(10):
                    received.append(block)
        assert b"".join(received) == data[:100]
        rest = session.get(url, headers={"Range": "bytes=100-"})
    assert rest.status_code == 206 and data[:100] + rest.content == data
    assert world.server.requests[-1] == ("GET", f"/files/wheels/{world.torch_npu_file}", "bytes=100-")


# -- uv against the world ----------------------------------------------------------------------

def _uv_env(world: World, cache: Path) -> Dict[str, str]:
    env = {k: v for k, v in world.clean_env().items() if not k.startswith("UV_") and k != "VIRTUAL_ENV"}
    env.update(SSL_CERT_FILE=str(world.ca_pem), UV_CACHE_DIR=str(cache), UV_NO_CONFIG="1",
               UV_PYTHON_DOWNLOADS="never")
    return env


@pytest.fixture(scope="module")
def venv310(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh CPython 3.10 venv made by uv (skips without a 3.10 interpreter)."""
    if world.python310 is None:
        pytest.skip("no CPython 3.10 interpreter found (pyenv versions dir or PATH)")
    root = tmp_path_factory.mktemp("venv310")
    command = [_uv(), "venv", "--quiet", "--python", world.python310, root / ".venv"]
    result = _run(command, _uv_env(world, root / "cache"))
    assert result.returncode == 0, result.stderr
    return root


def _uv_pip_install(world: World, venv: Path, *args: object,
                    extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    env = _uv_env(world, venv / "cache")
    env.update(extra_env or {})
    command = [_uv(), "pip", "install", "--python", venv / ".venv" / "bin" / "python",
               "--index-url", f"{world.url}/simple", *args]
    return _run(command, env)


def test_torch_npu_stand_in_installs_into_a_310_venv(world: World, venv310: Path) -> None:
    result = _uv_pip_install(world, venv310, "torch-npu==2.1.0.post8")
    assert result.returncode == 0, result.stderr
    probe = "import torch_npu; print(torch_npu.__version__, torch_npu.STAND_IN)"
    out = _run([venv310 / ".venv" / "bin" / "python", "-c", probe], world.clean_env())
    assert out.stdout.split() == ["2.1.0.post8", "True"]


@pytest.fixture
def mindspeed_checkout(world: World, tmp_path: Path) -> Path:
    """MindSpeed cloned through the gitee mirror and checked out at the pin."""
    checkout = tmp_path / "MindSpeed"
    _git(world, "clone", "--quiet", "https://gitee.com/ascend/MindSpeed.git", checkout)
    _git(world, "checkout", "--quiet", world.commits["mindspeed"], cwd=checkout)
    return checkout


def test_mindspeed_editable_install_fails_without_pip(world: World, venv310: Path, mindspeed_checkout: Path) -> None:
    result = _uv_pip_install(world, venv310, "-e", mindspeed_checkout)
    assert result.returncode != 0
    assert "No module named pip" in result.stderr


def test_mindspeed_builds_offline_once_the_pip_lines_are_skipped(world: World, venv310: Path,
                                                                mindspeed_checkout: Path) -> None:
    result = _uv_pip_install(world, venv310, "-e", mindspeed_checkout, extra_env={"CI_BUILD": "1"})
    assert result.returncode == 0, result.stderr
