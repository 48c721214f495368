"""Sanity tests of the world's build-from-source upstreams (Ascend apex, decord) and the real decord2 wheel.

Real tools throughout: git through the world's mirrors with its CA, bash, patch, a C/C++ compiler, CMake,
uv, the real ffmpeg. A test skips, naming what is missing, only when Python 3.10, ffmpeg or a build tool is.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest
import requests
import yaml
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from tests.world.builds import (
    DLPACK_URL, DMLC_CORE_URL, NVIDIA_APEX_URL, TEST_VIDEO_FRAMES, TEST_VIDEO_SHAPE, apply_ffmpeg5_changes,
)
from tests.world.cann import StandInCann
from tests.world.fixtures import DEFAULT_SPEC, World, skip_unless_tools
from tests.world.upstream import NESTED_REPOS, REPOS
from tests.world.wheels import DECORD2_SHA256, DECORD2_VERSION

FFMPEG5_PATCH = Path(__file__).resolve().parents[1] / "patches" / "decord-ffmpeg5.patch"
APEX_URL = "https://gitee.com/ascend/apex.git"
DECORD_URL = "https://github.com/dmlc/decord"  # as UPSTREAM.md names it: no .git

FFMPEG_COMMON_20_26 = [
    "#ifdef __cplusplus",
    'extern "C" {',
    "#endif",
    "#include <libavcodec/avcodec.h>",
    "#include <libavformat/avformat.h>",
    "#include <libavformat/avio.h>",
    "#include <libavfilter/avfilter.h>",
]
SET_VIDEO_STREAM = [
    "",
    "void VideoReader::SetVideoStream(int stream_nb) {",
    "    if (!fmt_ctx_) return;",
    "    AVCodec *dec;",
    "    int st_nb = av_find_best_stream(fmt_ctx_.get(), AVMEDIA_TYPE_VIDEO, stream_nb, -1, &dec, 0);",
    '    // LOG(INFO) << "find best stream: " << st_nb;',
    '    CHECK_GE(st_nb, 0) << "ERROR cannot find video stream with wanted index: " << stream_nb;',
]


# -- helpers ----------------------------------------------------------------------------------------

def _uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:  # pragma: no cover - the dev group ships uv
        return shutil.which("uv") or "uv"
    return str(find_uv_bin())


def _env(world: World, cache: Path, path_first: Optional[Path] = None) -> Dict[str, str]:
    """The world's CA for every client, its git mirrors, no user/system git or uv config."""
    env = {k: v for k, v in world.trusted_env().items()
           if not k.startswith(("GIT_CONFIG", "UV_", "PIP_")) and k not in ("VIRTUAL_ENV", "LD_LIBRARY_PATH")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               UV_CACHE_DIR=str(cache), UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    env.update(world.git_mirror_env())
    if path_first is not None:
        env["PATH"] = os.pathsep.join([str(path_first), env.get("PATH", os.defpath)])
    return env


def _run(args: Sequence[object], env: Dict[str, str], cwd: Optional[Path] = None,
         timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def _ok(args: Sequence[object], env: Dict[str, str], cwd: Optional[Path] = None) -> str:
    result = _run(args, env, cwd)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _needs_python310(world: World) -> Path:
    if world.python310 is None:
        pytest.skip("no CPython 3.10 interpreter found (pyenv versions dir or PATH)")
    return world.python310


def _make_venv(world: World, root: Path, *packages: str) -> Path:
    """A uv venv of CPython 3.10 under ``root`` with ``packages`` from the world's indexes (the main one and
    the CPU index, where torch_npu's torch==2.1.0+cpu is on x86_64); returns bin/."""
    python310 = _needs_python310(world)
    env = _env(world, root / "uv-cache")
    _ok([_uv(), "venv", "--quiet", "--python", python310, root / ".venv"], env)
    if packages:
        _ok([_uv(), "pip", "install", "--quiet", "--python", root / ".venv" / "bin" / "python",
             *world.uv_index_args(), *packages], env)
    return root / ".venv" / "bin"


def _py(bin_dir: Path, code: str, env: Optional[Dict[str, str]] = None) -> str:
    result = _run([bin_dir / "python", "-c", code], env or {"PATH": os.defpath})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


# -- repos, index and spec ----------------------------------------------------------------------------

def test_commits_are_the_pinned_repos_and_nested_repos_are_apart(world: World) -> None:
    assert set(world.commits) == set(REPOS) >= {"apex", "decord"}
    assert set(world.nested_commits) == set(NESTED_REPOS) == {"nvidia-apex", "dlpack", "dmlc-core"}
    assert world.nvidia_apex_commit == world.nested_commits["nvidia-apex"]
    assert not set(world.commits) & set(world.nested_commits)
    for name in (*REPOS, *NESTED_REPOS):
        assert world.upstreams.tips[name] != world.upstreams.pins.get(name, world.upstreams.nested_pins.get(name))


def test_write_spec_pins_every_world_repo_the_default_spec_names(world: World, tmp_path: Path) -> None:
    spec = yaml.safe_load(world.write_spec(tmp_path / "spec.yaml").read_text())
    named = set(yaml.safe_load(DEFAULT_SPEC.read_text())["repos"])
    assert spec["repos"] == {name: {"commit": sha} for name, sha in world.commits.items() if name in named}
    assert "nvidia-apex" not in spec["repos"]


def test_index_serves_numpy_and_the_real_decord2(world: World) -> None:
    arch = platform.machine()
    assert world.decord2_file == f"decord2-{DECORD2_VERSION}-cp310-cp310-manylinux_2_28_{arch}.whl"
    assert world.wheel_sha256[world.decord2_file] == DECORD2_SHA256[arch]
    with requests.Session() as session:
        session.trust_env = False
        session.verify = str(world.ca_pem)
        page = session.get(f"{world.url}/simple/decord2/").text
        assert f"{world.decord2_file}#sha256={DECORD2_SHA256[arch]}" in page
        assert "numpy-2.2.6-cp310-cp310" in session.get(f"{world.url}/simple/numpy/").text
        setuptools_page = session.get(f"{world.url}/simple/setuptools/").text
        assert "setuptools-65.7.0" in setuptools_page and world.newer_setuptools_file not in setuptools_page
        newer = session.get(world.newer_setuptools_url)
        assert newer.status_code == 200
        assert hashlib.sha256(newer.content).hexdigest() == world.wheel_sha256[world.newer_setuptools_file]


def test_decord_urls_without_dot_git_resolve_through_the_mirror(world: World, uv_cache: Path) -> None:
    env = _env(world, uv_cache)
    refs = _ok(["git", "ls-remote", DECORD_URL], env)
    assert f"{world.commits['decord']}\trefs/tags/v0.6.0" in refs
    assert f"{world.upstreams.tips['decord']}\trefs/heads/master" in refs
    for url, name in ((DLPACK_URL, "dlpack"), (DMLC_CORE_URL, "dmlc-core")):
        assert f"{world.upstreams.tips[name]}\trefs/heads/main" in _ok(["git", "ls-remote", url], env)


def test_decord_ffmpeg_files_carry_the_patch_context(world: World, tmp_path: Path, uv_cache: Path) -> None:
    checkout = tmp_path / "decord"
    _ok(["git", "clone", "--quiet", "--branch", "v0.6.0", DECORD_URL, checkout], _env(world, uv_cache))
    common = (checkout / "src/video/ffmpeg/ffmpeg_common.h").read_text().splitlines()
    assert common[19:26] == FFMPEG_COMMON_20_26
    reader = (checkout / "src/video/video_reader.cc").read_text().splitlines()
    starts = [i for i in range(len(reader)) if reader[i:i + len(SET_VIDEO_STREAM)] == SET_VIDEO_STREAM]
    assert starts == [114]  # line 115, as in decord v0.6.0
    gitmodules = (checkout / ".gitmodules").read_text()
    assert f"url = {DLPACK_URL}\n" in gitmodules and f"url = {DMLC_CORE_URL}\n" in gitmodules


def test_npuenv_ffmpeg5_patch_applies_exactly(world: World, tmp_path: Path, uv_cache: Path) -> None:
    skip_unless_tools("git", "patch")
    if not FFMPEG5_PATCH.is_file():
        pytest.skip(f"{FFMPEG5_PATCH} does not exist yet")
    checkout = tmp_path / "decord"
    _ok(["git", "clone", "--quiet", "--branch", "v0.6.0", DECORD_URL, checkout], _env(world, uv_cache))
    out = _ok(["patch", "-p1", "--fuzz=0", "--dry-run", "-i", FFMPEG5_PATCH], {"PATH": os.defpath}, cwd=checkout)
    assert "offset" not in out and "fuzz" not in out, out


# -- Ascend apex ------------------------------------------------------------------------------------------

APEX_TOOLS = ("bash", "git", "patch", "gcc")  # gcc: what CPython 3.10's sysconfig names as CC


@pytest.fixture(scope="module")
def apex_venv(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a 3.10 venv with torch (stand-in), torch_npu (stand-in), setuptools 65.7.0 and wheel."""
    skip_unless_tools(*APEX_TOOLS)
    return _make_venv(world, tmp_path_factory.mktemp("apex-venv"), "torch==2.1.0", "torch-npu==2.1.0.post8",
                      "setuptools==65.7.0", "wheel")


def _clone_apex(world: World, dest: Path, env: Dict[str, str]) -> Path:
    _ok(["git", "clone", "--quiet", APEX_URL, dest], env)
    _ok(["git", "checkout", "--quiet", world.commits["apex"]], env, cwd=dest)
    return dest


def test_apex_build_sh_rejects_pythons_it_does_not_know(world: World, tmp_path: Path, uv_cache: Path) -> None:
    skip_unless_tools("bash", "git")
    env = _env(world, uv_cache)
    checkout = _clone_apex(world, tmp_path / "apex", env)
    result = _run(["bash", "scripts/build.sh", "--python=3.11"], env, cwd=checkout)
    assert result.returncode != 0 and "not supported" in result.stderr
    assert not (checkout / "apex").exists()


@pytest.fixture(scope="module")
def apex_build(world: World, tmp_path_factory: pytest.TempPathFactory, apex_venv: Path, uv_cache: Path) -> Path:
    """Ascend apex cloned at the pin and built once by its own build.sh (the venv first on PATH): the checkout."""
    env = _env(world, uv_cache, path_first=apex_venv)
    checkout = _clone_apex(world, tmp_path_factory.mktemp("apex-build") / "apex", env)
    world.server.clear_requests()
    build = _run(["bash", "scripts/build.sh", "--python=3.10"], env, cwd=checkout)
    assert build.returncode == 0, build.stdout + build.stderr
    assert any(path.startswith("/git/github.com/NVIDIA/apex.git/") for _, path, _ in world.server.requests)
    return checkout


def test_apex_build_sh_builds_a_wheel_then_a_second_run_fails_at_the_clone(
        world: World, apex_build: Path, apex_venv: Path, uv_cache: Path) -> None:
    env = _env(world, uv_cache, path_first=apex_venv)
    assert _ok(["git", "rev-parse", "HEAD"], env, cwd=apex_build / "apex").strip() == world.nvidia_apex_commit
    [wheel] = (apex_build / "apex" / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(re.fullmatch(r"apex_C\.cpython-310-.*\.so", n) for n in names) and "apex/npu/__init__.py" in names
    assert "apex/amp/handle.py" in names

    again = _run(["bash", "scripts/build.sh", "--python=3.10"], env, cwd=apex_build)
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert "setup.py" not in again.stdout and list((apex_build / "apex" / "dist").glob("*.whl")) == [wheel]


def test_apex_wheel_has_the_invalid_version_no_installer_accepts(
        world: World, apex_build: Path, apex_venv: Path, uv_cache: Path) -> None:
    """Ascend's npu.patch says version='0.1-ascend'; setuptools 65.7.0 + wheel write apex-0.1_ascend-...whl."""
    [wheel] = (apex_build / "apex" / "dist").glob("*.whl")
    assert re.fullmatch(r"apex-0\.1_ascend-cp310-cp310-linux_\w+\.whl", wheel.name), wheel.name
    with pytest.raises(InvalidWheelFilename, match="nvalid version"):
        parse_wheel_filename(wheel.name)
    assert "apex-0.1_ascend.dist-info/METADATA" in zipfile.ZipFile(wheel).namelist()
    env = _env(world, uv_cache)
    refused = _run([_uv(), "pip", "install", "--python", apex_venv / "python", "--no-index", wheel], env)
    assert refused.returncode != 0 and wheel.name in refused.stderr, refused.stderr


def _unpack_apex(apex_build: Path, site: Path) -> Dict[str, str]:
    """The built apex wheel unpacked into ``site`` (it cannot be installed as it is, see above): a bare env
    (PATH, and PYTHONPATH=site; no LD_LIBRARY_PATH) that puts it on sys.path."""
    [wheel] = (apex_build / "apex" / "dist").glob("*.whl")
    zipfile.ZipFile(wheel).extractall(site)
    return {"PATH": os.defpath, "PYTHONPATH": str(site)}


def test_import_apex_needs_cann_but_apex_c_does_not(apex_build: Path, apex_venv: Path, tmp_path: Path,
                                                   stand_in_cann: StandInCann) -> None:
    """Like the real one: apex/__init__ imports apex.amp, whose handle.py imports torch_npu (line 21)."""
    bare = _unpack_apex(apex_build, tmp_path / "unpacked")
    assert _py(apex_venv, "import torch, apex_C; print(apex_C.flatten_size([2, 3, 4]))", bare) == "9"
    failed = _run([apex_venv / "python", "-c", "import apex"], bare)
    assert failed.returncode != 0
    assert "ImportError: libhccl.so: cannot open shared object file" in failed.stderr
    assert 'apex/amp/handle.py", line 21' in failed.stderr, failed.stderr
    sourced = stand_in_cann.sourced(bare)
    probe = "import apex, torch_npu; from apex.npu import flat_size; print(flat_size([5]), torch_npu.__version__)"
    assert _py(apex_venv, probe, sourced) == "5 2.1.0.post8"


LIBC10_ERROR = "ImportError: libc10.so: cannot open shared object file: No such file or directory"


def test_apex_c_needs_torch_imported_first_as_the_real_one(apex_build: Path, apex_venv: Path,
                                                           tmp_path: Path) -> None:
    """The real apex_C (a torch CppExtension) needs libc10.so and has no rpath to torch/lib: seen on the
    real stack, `import apex_C` alone fails and `import torch, apex_C` works (torch loaded libc10.so)."""
    bare = _unpack_apex(apex_build, tmp_path / "unpacked")
    alone = _run([apex_venv / "python", "-c", "import apex_C"], bare)
    assert alone.returncode != 0 and alone.stderr.strip().splitlines()[-1] == LIBC10_ERROR, alone.stderr
    probe = "import torch, apex_C; print(apex_C.flatten_size([2, 3]), apex_C.C10)"
    assert _py(apex_venv, probe, bare) == "5 10"


def test_apex_c_needs_libc10_by_soname_without_an_rpath(apex_build: Path, tmp_path: Path) -> None:
    skip_unless_tools("readelf")
    [wheel] = (apex_build / "apex" / "dist").glob("*.whl")
    [name] = [n for n in zipfile.ZipFile(wheel).namelist() if re.fullmatch(r"apex_C\.cpython-310-.*\.so", n)]
    library = Path(zipfile.ZipFile(wheel).extract(name, tmp_path))
    dynamic = _ok(["readelf", "-d", library], {"PATH": os.defpath})
    assert "(NEEDED)             Shared library: [libc10.so]" in dynamic, dynamic
    # No rpath to torch/lib, as torch's CppExtension adds none. (An interpreter built with an rpath in its
    # LDFLAGS, as pyenv's are, passes its own lib folder on through sysconfig: that one is not torch's.)
    paths = [p for line in dynamic.splitlines() if "(RPATH)" in line or "(RUNPATH)" in line
             for p in line.split("[", 1)[1].rstrip("]").split(":")]
    assert not [p for p in paths if "torch" in p or "$ORIGIN" in p or (Path(p) / "libc10.so").exists()], dynamic
    symbols = _ok(["readelf", "--dyn-syms", "-W", library], {"PATH": os.defpath})
    assert re.search(r"UND c10_stand_in\b", symbols), symbols


def test_stand_in_torch_loads_its_libc10_into_the_process(apex_venv: Path) -> None:
    """`import torch` loads torch/lib/libc10.so (RTLD_GLOBAL), as the real torch loads its libc10.so."""
    probe = ("import ctypes, os\n"
             "maps = lambda: [l.split()[-1] for l in open('/proc/self/maps') if l.rstrip().endswith('/libc10.so')]\n"
             "before = maps()\n"
             "import torch\n"
             "lib = os.path.join(os.path.dirname(torch.__file__), 'lib', 'libc10.so')\n"
             "print(before == [], set(maps()) == {os.path.realpath(lib)}, "
             "ctypes.CDLL(None).c10_stand_in(), torch.STAND_IN)")
    assert _py(apex_venv, probe).split() == ["True", "True", "10", "True"]


def test_apex_build_fails_with_a_too_new_setuptools(world: World, tmp_path: Path, uv_cache: Path) -> None:
    skip_unless_tools(*APEX_TOOLS)
    venv = _make_venv(world, tmp_path / "venv", "torch==2.1.0", "wheel", world.newer_setuptools_url)
    assert _py(venv, "import setuptools; print(setuptools.__version__)") != "65.7.0"
    env = _env(world, uv_cache, path_first=venv)
    checkout = _clone_apex(world, tmp_path / "apex", env)
    result = _run(["bash", "scripts/build.sh", "--python=3.10"], env, cwd=checkout)
    assert result.returncode != 0
    assert "setuptools" in result.stderr and "too new" in result.stderr and "<=65.7.0" in result.stderr
    assert not (checkout / "apex" / "dist").exists()


def test_apex_build_fails_clearly_without_torch(world: World, tmp_path: Path, uv_cache: Path) -> None:
    skip_unless_tools(*APEX_TOOLS)
    venv = _make_venv(world, tmp_path / "venv", "setuptools==65.7.0", "wheel")
    env = _env(world, uv_cache, path_first=venv)
    checkout = _clone_apex(world, tmp_path / "apex", env)
    result = _run(["bash", "scripts/build.sh", "--python=3.10"], env, cwd=checkout)
    assert result.returncode != 0 and "cannot import torch" in result.stderr


def test_npu_patch_needs_the_pinned_nvidia_apex(world: World, tmp_path: Path, uv_cache: Path) -> None:
    skip_unless_tools("git", "patch")
    env = _env(world, uv_cache)
    apex = _clone_apex(world, tmp_path / "ascend", env)
    assert world.nvidia_apex_commit in (apex / "scripts" / "build.sh").read_text()
    assert NVIDIA_APEX_URL in (apex / "scripts" / "build.sh").read_text()
    nvidia = tmp_path / "nvidia"
    _ok(["git", "clone", "--quiet", NVIDIA_APEX_URL, nvidia], env)
    patch = ["patch", "-p1", "--dry-run", "-i", apex / "patch" / "npu.patch"]
    assert _run(patch, env, cwd=nvidia).returncode != 0  # master moved on
    _ok(["git", "checkout", "--quiet", world.nvidia_apex_commit], env, cwd=nvidia)
    _ok(patch, env, cwd=nvidia)
    _ok(["patch", "-p1", "-i", apex / "patch" / "npu.patch"], env, cwd=nvidia)
    assert "version='0.1-ascend'" in (nvidia / "setup.py").read_text()
    assert (nvidia / "apex" / "amp" / "handle.py").read_text().splitlines()[20].startswith("import torch_npu")
    assert "torch_npu" not in (nvidia / "apex" / "__init__.py").read_text()


# -- decord from source ----------------------------------------------------------------------------------

DECORD_TOOLS = ("git", "cmake", "c++")
NO_VIDEO = "-DWORLD_BUILD_VIDEO=OFF"  # world-only: skip the FFmpeg sources (upstream always compiles them)


def _clone_decord(world: World, dest: Path, env: Dict[str, str], recursive: bool = True) -> Path:
    args = ["git", "clone", "--quiet", "--branch", "v0.6.0", *(["--recursive"] if recursive else []), DECORD_URL, dest]
    _ok(args, env)
    return dest


def _cmake(checkout: Path, env: Dict[str, str], *options: str) -> subprocess.CompletedProcess:
    configure = _run(["cmake", "-S", ".", "-B", "build", "-DUSE_CUDA=0", "-DCMAKE_BUILD_TYPE=Release", *options],
                     env, cwd=checkout)
    if configure.returncode != 0:
        return configure
    return _run(["cmake", "--build", "build"], env, cwd=checkout)


def test_decord_builds_from_source_into_a_wheel_that_works(world: World, tmp_path: Path, uv_cache: Path) -> None:
    skip_unless_tools(*DECORD_TOOLS)
    python310 = _needs_python310(world)
    env = _env(world, uv_cache)
    checkout = _clone_decord(world, tmp_path / "decord", env)
    assert _ok(["git", "rev-parse", "HEAD"], env, cwd=checkout).strip() == world.commits["decord"]
    for name in ("dlpack", "dmlc-core"):
        head = _ok(["git", "rev-parse", "HEAD"], env, cwd=checkout / "3rdparty" / name).strip()
        assert head == world.nested_commits[name]
    built = _cmake(checkout, env, NO_VIDEO)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (checkout / "build" / "libdecord.so").is_file()

    _ok([_uv(), "build", "--wheel", "--out-dir", "python/dist", "--python", python310,
         "--index-url", f"{world.url}/simple", "python"], env, cwd=checkout)
    [wheel] = (checkout / "python" / "dist").glob("*.whl")
    assert re.fullmatch(r"decord-0\.6\.0-cp310-cp310-linux_\w+\.whl", wheel.name), wheel.name
    assert "decord/libdecord.so" in zipfile.ZipFile(wheel).namelist()

    venv = _make_venv(world, tmp_path / "venv")
    _ok([_uv(), "pip", "install", "--quiet", "--python", venv / "python", "--no-index", "--no-deps", wheel], env)
    probe = "import decord; print(decord.__version__, decord.answer(), decord.__file__)"
    version, answer, location = _py(venv, probe, {"PATH": os.defpath}).split()
    assert (version, answer) == ("0.6.0", "42") and str(venv.parent) in location


def test_decord_without_its_submodules_fails_to_build(world: World, tmp_path: Path, uv_cache: Path) -> None:
    skip_unless_tools(*DECORD_TOOLS)
    env = _env(world, uv_cache)
    checkout = _clone_decord(world, tmp_path / "decord", env, recursive=False)
    result = _cmake(checkout, env, NO_VIDEO)
    assert result.returncode != 0
    assert "dlpack/dlpack.h" in result.stdout + result.stderr


def _ffmpeg_major() -> Optional[int]:
    if shutil.which("pkg-config") is None:
        return None
    modules = ["libavcodec", "libavformat", "libavutil", "libavdevice", "libavfilter", "libswresample"]
    if subprocess.run(["pkg-config", "--exists", *modules]).returncode != 0:
        return None
    version = subprocess.run(["pkg-config", "--modversion", "libavcodec"], capture_output=True, text=True)
    return int(version.stdout.split(".")[0])  # libavcodec 59 is FFmpeg 5, 58 is FFmpeg 4


def test_decord_video_sources_need_the_ffmpeg5_changes(world: World, tmp_path: Path, uv_cache: Path,
                                                      world_video: Path) -> None:
    skip_unless_tools(*DECORD_TOOLS)
    python310 = _needs_python310(world)
    major = _ffmpeg_major()
    if major is None:
        pytest.skip("needs pkg-config and the FFmpeg dev packages (libavcodec-dev libavformat-dev ...)")
    env = _env(world, uv_cache)
    checkout = _clone_decord(world, tmp_path / "decord", env)
    if major >= 59:
        unpatched = _cmake(checkout, env)  # the default build compiles the video sources, as upstream's
        assert unpatched.returncode != 0
        assert "AVBSFContext" in unpatched.stdout + unpatched.stderr
    apply_ffmpeg5_changes(checkout)
    patched = _cmake(checkout, env)
    assert patched.returncode == 0, patched.stdout + patched.stderr
    lib = ctypes.CDLL(str(checkout / "build" / "libdecord.so"))
    lib.decord_video_frame_count.restype = ctypes.c_int64
    assert lib.decord_answer() == 42
    assert lib.decord_video_stream(str(world_video).encode()) == 0
    assert lib.decord_video_stream(str(tmp_path / "missing.mp4").encode()) == -1
    assert lib.decord_video_frame_count(str(world_video).encode()) == TEST_VIDEO_FRAMES
    buffer = ctypes.create_string_buffer(256)
    lib.decord_video_describe(str(world_video).encode(), buffer, len(buffer))
    assert "64x48, 20 frames at 10 fps" in buffer.value.decode(), buffer.value

    # the wheel decodes frames the way npuenv's build check asks decord to
    _ok([_uv(), "build", "--wheel", "--out-dir", "python/dist", "--python", python310,
         "--index-url", f"{world.url}/simple", "python"], env, cwd=checkout)
    [wheel] = (checkout / "python" / "dist").glob("*.whl")
    venv = _make_venv(world, tmp_path / "venv", "numpy")
    _ok([_uv(), "pip", "install", "--quiet", "--python", venv / "python", "--no-index", wheel], env)
    probe = ("import json, decord; vr = decord.VideoReader(%r); batch = vr.get_batch([0, len(vr) - 1]).asnumpy(); "
             "first = vr[0].asnumpy(); print(json.dumps([len(vr), list(vr[-1].shape), list(batch.shape), "
             "str(batch.dtype), bool((batch[0] == first).all()), int(first.mean() > 0)]))" % str(world_video))
    assert json.loads(_py(venv, probe)) == [TEST_VIDEO_FRAMES, list(TEST_VIDEO_SHAPE), [2, *TEST_VIDEO_SHAPE],
                                            "uint8", True, 1]


def test_decord_configure_fails_without_ffmpeg_as_upstream(world: World, tmp_path: Path, uv_cache: Path) -> None:
    """decord v0.6.0's cmake/modules/FFmpeg.cmake stops the configure when FFmpeg is not found."""
    skip_unless_tools(*DECORD_TOOLS)
    env = _env(world, uv_cache)
    checkout = _clone_decord(world, tmp_path / "decord", env)
    empty = tmp_path / "no-pkgconfig"
    empty.mkdir()
    hidden = dict(env, PKG_CONFIG_LIBDIR=str(empty), PKG_CONFIG_PATH=str(empty))
    result = _cmake(checkout, hidden)
    assert result.returncode != 0
    assert "Unable to find FFMPEG automatically" in result.stdout + result.stderr
    assert _cmake(checkout, hidden, NO_VIDEO).returncode == 0


def test_decord_built_without_video_says_how_to_get_it(world: World, tmp_path: Path, uv_cache: Path) -> None:
    skip_unless_tools(*DECORD_TOOLS)
    env = _env(world, uv_cache)
    checkout = _clone_decord(world, tmp_path / "decord", env)
    built = _cmake(checkout, env, NO_VIDEO)
    assert built.returncode == 0, built.stdout + built.stderr
    probe = ("import sys; sys.path.insert(0, 'python'); import decord\n"
             "try:\n    decord.VideoReader('x.mp4')\nexcept RuntimeError as error:\n    print(error)")
    out = _ok([sys.executable, "-c", probe], {"PATH": os.defpath}, cwd=checkout)
    assert "-DWORLD_BUILD_VIDEO=ON" in out


# -- the real decord2 wheel ------------------------------------------------------------------------------

def test_test_video_is_what_upstream_md_describes(world_video: Path) -> None:
    skip_unless_tools("ffprobe")
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                            "stream=width,height,nb_read_frames,pix_fmt", "-of", "default=nw=1", str(world_video)],
                           capture_output=True, text=True, check=True)
    fields: List[str] = sorted(probe.stdout.split())
    assert fields == sorted(["width=64", "height=48", "pix_fmt=yuv420p", f"nb_read_frames={TEST_VIDEO_FRAMES}"])


def test_decord2_decodes_the_test_video(world: World, tmp_path: Path, world_video: Path) -> None:
    venv = _make_venv(world, tmp_path / "venv", f"decord2=={DECORD2_VERSION}")
    probe = ("import json, decord; vr = decord.VideoReader(%r); frame = vr[0]; array = frame.asnumpy(); "
             "print(json.dumps([len(vr), list(frame.shape), list(array.shape), str(array.dtype), "
             "type(frame).__name__, int(array.mean() > 0)]))" % str(world_video))
    length, shape, array_shape, dtype, kind, nonblank = json.loads(_py(venv, probe))
    assert length == TEST_VIDEO_FRAMES
    assert tuple(shape) == tuple(array_shape) == TEST_VIDEO_SHAPE
    assert (dtype, kind, nonblank) == ("uint8", "NDArray", 1)
