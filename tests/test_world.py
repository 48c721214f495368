"""Sanity tests of the hermetic world: real git, real TLS, real uv against the loopback server."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest
import requests

from tests.world.builds import DLPACK_URL
from tests.world.cann import StandInCann
from tests.world.fixtures import PYTORCH_CPU_INDEX, World
from tests.world.upstream import Commit, Gitlink, add_commit, build_repo
from tests.world.wheels import (LIBC10, LIBC10_SONAME, TORCH_NPU_REQUIRES, build_stand_in_wheels, compile_libc10,
                                torch_cpu_filename, torch_npu_filename)

STAND_IN_PROJECT = Path(__file__).resolve().parent / "world" / "stand_in_npu" / "mindspeed_mm"
LIBHCCL_ERROR = ("ImportError: libhccl.so: cannot open shared object file: No such file or directory. Please check "
                 "that the cann package is installed. Please run 'source set_env.sh' in the CANN installation path.")


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


def test_megatron_pin_has_no_megatron_init_but_core_has_one(world: World, tmp_path: Path) -> None:
    """As Megatron-LM core_r0.8.0: `import megatron` from the copied folder is a namespace package."""
    dest = tmp_path / "Megatron-LM"
    _git(world, "clone", "--quiet", "--branch", "core_r0.8.0", "https://github.com/NVIDIA/Megatron-LM.git", dest)
    assert not (dest / "megatron" / "__init__.py").exists() and (dest / "megatron" / "core" / "__init__.py").is_file()
    for folder in (dest, STAND_IN_PROJECT):  # the checkout, and the smoke test's stand-in project
        probe = "import megatron, megatron.core; print(megatron.__file__, list(megatron.__path__))"
        out = _run(["python3", "-c", probe], {"PATH": os.defpath, "PYTHONPATH": str(folder)})
        assert out.stdout.strip() == f"None [{str(folder / 'megatron')!r}]", out.stderr


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


def test_submodule_urls_without_dot_git_reach_file_mirrors_only_when_file_is_allowed(
        world: World, tmp_path: Path) -> None:
    """decord's .gitmodules names https://github.com/dmlc/dlpack (no .git). Through a file:// mirror git's
    local transport still finds dlpack.git, but git >= 2.38.1 refuses the file transport for submodules
    unless protocol.file.allow=always."""
    rules = world.file_mirrors()
    assert rules == {"https://github.com/dmlc/": (world.server.git_root / "github.com" / "dmlc").as_uri() + "/"}
    env = {k: v for k, v in _git_env(world).items() if not k.startswith("GIT_CONFIG_")}
    env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.{rules['https://github.com/dmlc/']}.insteadOf",
               GIT_CONFIG_VALUE_0="https://github.com/dmlc/")
    plain = _run(["git", "clone", "--quiet", DLPACK_URL, tmp_path / "dlpack"], env)
    assert plain.returncode == 0, plain.stderr
    checkout = tmp_path / "decord"
    clone = _run(["git", "clone", "--quiet", "--branch", "v0.6.0", "https://github.com/dmlc/decord.git", checkout],
                 env)
    assert clone.returncode == 0, clone.stderr
    if _git_version() >= (2, 38, 1):
        refused = _run(["git", "submodule", "update", "--init"], env, cwd=checkout)
        assert refused.returncode != 0 and "transport 'file' not allowed" in refused.stderr, refused.stderr
    env.update(GIT_CONFIG_COUNT="2", GIT_CONFIG_KEY_1="protocol.file.allow", GIT_CONFIG_VALUE_1="always")
    allowed = _run(["git", "submodule", "update", "--init"], env, cwd=checkout)
    assert allowed.returncode == 0, allowed.stderr
    head = _run(["git", "rev-parse", "HEAD"], env, cwd=checkout / "3rdparty" / "dlpack").stdout.strip()
    assert head == world.nested_commits["dlpack"]


def _git_version() -> tuple:
    out = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in re.search(r"(\d+)\.(\d+)\.(\d+)", out).groups())  # type: ignore[union-attr]


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
        hrefs = re.findall(r'href="([^"]+)"', page.text)
        assert len(hrefs) == 2  # aarch64 and x86_64, as on PyPI
        [href] = [h for h in hrefs if world.torch_npu_file in h]
        path, sha = href.split("#sha256=")
        assert path == f"/files/wheels/{world.torch_npu_file}"
        body = session.get(world.url + path).content
        assert sha == hashlib.sha256(body).hexdigest() == world.wheel_sha256[world.torch_npu_file]
        assert session.get(f"{world.url}/simple/torch_npu/").status_code == 200
        assert session.get(f"{world.url}/simple/no-such-project/").status_code == 404


def test_cpu_index_serves_torch_2_1_0_cpu_where_pypi_has_none(world: World) -> None:
    """The PyTorch CPU index's stand-in: /whl/cpu/torch/ lists the real file's name; the mirror rule is in place."""
    assert world.mirrors[PYTORCH_CPU_INDEX] == world.cpu_index_url == f"{world.url}/whl/cpu"
    with _session(world) as session:
        assert 'href="/whl/cpu/torch/"' in session.get(f"{world.url}/whl/cpu/").text
        page = session.get(f"{world.url}/whl/cpu/torch/")
        assert page.status_code == 200
        hrefs = re.findall(r'href="([^"]+)"', page.text)
        [href] = [h for h in hrefs if platform.machine() in h]
        path, sha = href.split("#sha256=")
        assert path == "/whl/cpu/" + world.torch_cpu_file.replace("+", "%2B")
        body = session.get(world.url + path)
        assert body.status_code == 200 and hashlib.sha256(body.content).hexdigest() == sha
        assert sha == world.wheel_sha256[world.torch_cpu_file]
        part = session.get(world.url + path, headers={"Range": "bytes=0-3"})
        assert part.status_code == 206 and part.content == b"PK\x03\x04"
        assert session.get(f"{world.url}/whl/cpu/torch-npu/").status_code == 404
        main = session.get(f"{world.url}/simple/torch/").text
        assert "+cpu" not in main and "torch-2.1.0-cp310" in main
    if platform.machine() == "x86_64":
        assert world.torch_cpu_file == "torch-2.1.0+cpu-cp310-cp310-linux_x86_64.whl"


@pytest.mark.parametrize("arch", sorted(TORCH_NPU_REQUIRES))
def test_torch_npu_requires_the_real_torch_per_architecture(world: World, arch: str) -> None:
    name = torch_npu_filename(arch)
    wheel = zipfile.ZipFile(world.server.wheels_dir / name)
    metadata = wheel.read("torch_npu-2.1.0.post8.dist-info/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires == [f"Requires-Dist: {r}" for r in TORCH_NPU_REQUIRES[arch]]
    assert requires == ["Requires-Dist: torch (==2.1.0+cpu)" if arch == "x86_64" else "Requires-Dist: torch (==2.1.0)"]


def _torch_wheels(world: World) -> Dict[str, Path]:
    """arch -> path of every stand-in torch wheel the world serves (main index and CPU index)."""
    wheels = {}
    for arch in sorted(TORCH_NPU_REQUIRES):
        main = world.server.wheels_dir / f"torch-2.1.0-cp310-cp310-manylinux_2_17_{arch}.manylinux2014_{arch}.whl"
        cpu = world.server.cpu_index_dir / torch_cpu_filename(arch)
        wheels.update({f"{arch} main": main, f"{arch} cpu": cpu})
    return wheels


def test_stand_in_torch_wheels_carry_libc10_and_are_not_purelib(world: World) -> None:
    """This machine's torch wheels carry a real libc10.so (SONAME libc10.so); the other architecture's an
    empty placeholder. A wheel with a .so says Root-Is-Purelib: false."""
    for label, path in _torch_wheels(world).items():
        with zipfile.ZipFile(path) as wheel:
            [dist_info] = {n.split("/")[0] for n in wheel.namelist() if ".dist-info/" in n}
            assert "Root-Is-Purelib: false" in wheel.read(f"{dist_info}/WHEEL").decode(), label
            library = wheel.read(LIBC10)
            assert wheel.getinfo(LIBC10).external_attr >> 16 == 0o755
            assert "ctypes.RTLD_GLOBAL" in wheel.read("torch/__init__.py").decode()
        if label.startswith(platform.machine()):
            assert library[:4] == b"\x7fELF" and LIBC10_SONAME.encode() in library, label
        else:
            assert library == b"", label


def test_stand_in_wheels_are_reproducible(world: World, tmp_path: Path) -> None:
    """Rebuilding the stand-ins gives the same bytes as the world's; so does compiling libc10.so anew."""
    assert compile_libc10.__wrapped__() == compile_libc10()
    for arch in sorted(TORCH_NPU_REQUIRES):
        shas = build_stand_in_wheels(tmp_path / arch, arch, cpu_index_dir=tmp_path / arch / "cpu")
        assert shas == {name: world.wheel_sha256[name] for name in shas}
        assert torch_npu_filename(arch) in shas and torch_cpu_filename(arch) in shas


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


def _uv_pip_install(world: World, venv: Path, *args: object, extra_env: Optional[Dict[str, str]] = None,
                    extra_args: Sequence[str] = ()) -> subprocess.CompletedProcess:
    env = _uv_env(world, venv / "cache")
    env.update(extra_env or {})
    command = [_uv(), "pip", "install", "--python", venv / ".venv" / "bin" / "python",
               "--index-url", f"{world.url}/simple", *extra_args, *args]
    return _run(command, env)


def test_torch_npu_needs_the_cpu_index_on_x86_64(world: World, tmp_path: Path) -> None:
    """With the main index alone uv cannot satisfy the x86_64 torch_npu's torch==2.1.0+cpu (as on PyPI)."""
    if platform.machine() != "x86_64":
        pytest.skip("torch_npu asks for torch==2.1.0+cpu on x86_64 only")
    if world.python310 is None:
        pytest.skip("no CPython 3.10 interpreter found (pyenv versions dir or PATH)")
    env = _uv_env(world, tmp_path / "cache")
    venv = tmp_path / ".venv"
    assert _run([_uv(), "venv", "--quiet", "--python", world.python310, venv], env).returncode == 0
    result = _run([_uv(), "pip", "install", "--python", venv / "bin" / "python", "--index-url",
                   f"{world.url}/simple", "torch==2.1.0", "torch-npu==2.1.0.post8"], env)
    assert result.returncode != 0
    assert "torch==2.1.0+cpu" in result.stderr, result.stderr


def test_torch_npu_stand_in_installs_from_both_indexes_and_needs_cann(world: World, venv310: Path,
                                                                       stand_in_cann: StandInCann) -> None:
    result = _uv_pip_install(world, venv310, "torch==2.1.0", "torch-npu==2.1.0.post8",
                             extra_args=["--extra-index-url", world.cpu_index_url])
    assert result.returncode == 0, result.stderr
    python = venv310 / ".venv" / "bin" / "python"
    expected = "2.1.0+cpu" if platform.machine() == "x86_64" else "2.1.0"
    assert _run([python, "-c", "import torch; print(torch.__version__)"], world.clean_env()).stdout.strip() == expected
    env = {k: v for k, v in world.clean_env().items() if k not in ("LD_LIBRARY_PATH", "ASCEND_OPP_PATH")}
    failed = _run([python, "-c", "import torch_npu"], env)
    assert failed.returncode != 0 and failed.stderr.strip().splitlines()[-1] == LIBHCCL_ERROR
    code = "import torch_npu; print(torch_npu.__version__, torch_npu.STAND_IN)"
    out = _run(["bash", "-c", f"source {stand_in_cann.set_env} && exec {python} -c '{code}'"], env)
    assert out.stdout.split() == ["2.1.0.post8", "True"], out.stderr
    assert stand_in_cann.set_env_variable() == {"NPUENV_CANN_SET_ENV": str(stand_in_cann.set_env)}


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
