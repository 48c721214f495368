"""Pytest fixtures of the hermetic world.

``world`` (session): a CA, the synthetic upstream repos, the wheels and an HTTPS server serving them.
``fresh_upstream`` (function): the same world, with the upstream repos rebuilt pristine afterwards
(use it in tests that call ``add_commit``).
``world_video`` (session): a 2 s 64x48 test video made by the real ffmpeg (skips without ffmpeg).
``stand_in_cann`` (session): a stand-in CANN tree (tests/world/cann.py); ``cann_set_env``: its set_env.sh,
the file to name in ``NPUENV_CANN_SET_ENV`` (the world's torch_npu, and so apex, import only with it sourced).
``skip_unless_tools(*names)``: skip the calling test unless every named tool is on PATH.
Load with ``pytest_plugins = ["tests.world.fixtures"]`` or ``from tests.world.fixtures import *`` in a conftest.

PYTEST_DONT_REWRITE: this module has no asserts; the marker keeps pytest quiet when a conftest
imports it before ``pytest_plugins`` names it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import yaml

from tests.world.builds import make_test_video, missing_reason
from tests.world.ca import make_ca
from tests.world.cann import StandInCann, make_cann
from tests.world.server import CPU_INDEX, PYTHONHOSTED, WorldServer, sha256_file
from tests.world.upstream import ALL_REPOS, Upstreams, build_upstreams
from tests.world.wheels import (build_stand_in_wheels, fetch_world_wheels, find_python, torch_cpu_filename,
                                torch_npu_filename)

__all__ = ["PYTORCH_CPU_INDEX", "TRUST_VARIABLES", "World", "build_world", "cann_set_env", "clean_env",
           "fresh_upstream", "skip_unless_tools", "stand_in_cann", "world", "world_video"]

PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # the only home of torch 2.1.0+cpu
STAND_IN_ARCHES = ("aarch64", "x86_64")  # the stand-in torch and torch_npu wheels are served for both

OFF_INDEX_DIR = "off-index"  # under <docroot>/files: wheels served by URL only, not by the index

DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "env_specs" / "mindspeed-mm-internvl2.5.yaml"

TRUST_VARIABLES = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT",
)


def clean_env() -> Dict[str, str]:
    """A copy of os.environ without the machine's preset CA variables."""
    return {k: v for k, v in os.environ.items() if k not in TRUST_VARIABLES}


@dataclass
class World:
    """Everything a test needs to reach the hermetic world."""

    url: str
    ca_pem: Path
    server: WorldServer
    docroot: Path
    upstreams: Upstreams
    wheel_sha256: Dict[str, str]
    torch_npu_file: str
    python310: Optional[Path]
    decord2_file: str = ""
    newer_setuptools_file: str = ""
    torch_cpu_file: str = ""
    commits: Dict[str, str] = field(init=False)
    mirrors: Dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.commits = dict(self.upstreams.pins)  # the repos npuenv's spec pins (REPOS), nothing else
        self.mirrors = {
            "https://gitee.com/": f"{self.url}/git/gitee.com/",
            "https://github.com/": f"{self.url}/git/github.com/",
            "https://pypi.org/simple": f"{self.url}/simple",
            PYTORCH_CPU_INDEX: self.cpu_index_url,
            "https://files.pythonhosted.org/": f"{self.url}{PYTHONHOSTED}/",
        }

    @property
    def index_url(self) -> str:
        """The world's main PEP 503 index (PyPI's stand-in)."""
        return f"{self.url}/simple"

    @property
    def cpu_index_url(self) -> str:
        """The world's second PEP 503 index, the PyTorch CPU index's stand-in: torch 2.1.0+cpu on x86_64."""
        return f"{self.url}{CPU_INDEX}"

    def uv_index_args(self) -> List[str]:
        """``uv pip install`` options that reach both indexes, so torch_npu's torch==2.1.0+cpu (x86_64)
        resolves: uv prefers --extra-index-url and, per package, takes versions from the first index that
        has the package, so torch comes from the CPU index and everything else from the main one."""
        return ["--index-url", self.index_url, "--extra-index-url", self.cpu_index_url]

    def clean_env(self) -> Dict[str, str]:
        """A copy of os.environ without the machine's CA variables (``TRUST_VARIABLES``)."""
        return clean_env()

    def trusted_env(self) -> Dict[str, str]:
        """``clean_env()`` with every client's CA variable pointing at the world's CA only."""
        env = clean_env()
        env.update({name: str(self.ca_pem) for name in TRUST_VARIABLES if name != "SSL_CERT_DIR"})
        return env

    def git_mirror_env(self) -> Dict[str, str]:
        """GIT_CONFIG_COUNT/KEY/VALUE entries that send github.com and gitee.com to the world."""
        rules = [(new, old) for old, new in self.mirrors.items() if "/git/" in new]
        env = {"GIT_CONFIG_COUNT": str(len(rules))}
        for index, (new, old) in enumerate(rules):
            env[f"GIT_CONFIG_KEY_{index}"] = f"url.{new}.insteadOf"
            env[f"GIT_CONFIG_VALUE_{index}"] = old
        return env

    def file_mirrors(self, *prefixes: str) -> Dict[str, str]:
        """Mirror rules that reach real git URLs through ``file://`` URLs of the world's bare repos.

        Default: ``https://github.com/dmlc/`` (decord and its submodules). A URL without ``.git``, as in
        decord's .gitmodules, still finds ``<name>.git``: git's local transport tries that suffix. git
        >= 2.38.1 refuses the file transport for submodules unless ``protocol.file.allow=always``.
        """
        rules = {}
        for prefix in prefixes or ("https://github.com/dmlc/",):
            if not prefix.startswith("https://") or not prefix.endswith("/"):
                raise ValueError(f"expected an https://host/.../ prefix, got {prefix!r}")
            rules[prefix] = (self.server.git_root / prefix[len("https://"):]).as_uri() + "/"
        return rules

    def write_spec(self, path: Path, **override: object) -> Path:
        """A spec that extends npuenv's default and points it at this world through mirrors.

        The repos are pinned to the world's commits and torch_npu to the stand-in wheel; `override`
        replaces top-level keys. Only repos the default spec names are pinned: a world repo the
        spec does not name (yet) would make the spec invalid (no url).
        """
        arch = platform.machine()
        known = _spec_repo_names(DEFAULT_SPEC)
        data: Dict[str, object] = {
            "extends": str(DEFAULT_SPEC),
            "mirrors": dict(self.mirrors),
            "repos": {name: {"commit": sha} for name, sha in self.commits.items() if name in known},
            "wheels": {"torch_npu": {"files": {arch: {
                "filename": self.torch_npu_file, "sha256": self.wheel_sha256[self.torch_npu_file]}}}},
            # what the world's apex build.sh clones by itself
            "builds": {"apex": {"fetches": [{"url": "https://github.com/NVIDIA/apex.git",
                                             "commit": self.nvidia_apex_commit}]}},
        }
        # the default's models live on the real hub, which the world has not: a world spec names its own
        models = override.pop("models", None)
        data["models"] = None
        data.update(override)
        if models is not None:  # on a spec without the default's models (null removes, a mapping merges)
            base = path.with_name(path.stem + "-base.yaml")
            base.write_text(json.dumps(data, indent=2))
            data = {"extends": str(base), "models": models}
        path.write_text(json.dumps(data, indent=2))  # JSON is YAML
        return path

    def repo_url(self, name: str) -> str:
        """The world URL of an upstream repo by short name (``mindspeed-mm``, ``apex``, ``nvidia-apex``, ...)."""
        return f"{self.url}/git/{ALL_REPOS[name]}"

    @property
    def nested_commits(self) -> Dict[str, str]:
        """Pinned commits of the repos upstream code fetches itself: nvidia-apex, dlpack, dmlc-core."""
        return dict(self.upstreams.nested_pins)

    @property
    def nvidia_apex_commit(self) -> str:
        """The NVIDIA apex commit the world's apex build.sh checks out."""
        return self.upstreams.nested_pins["nvidia-apex"]

    def file_url(self, relpath: str) -> str:
        """The world URL of a file under <docroot>/files."""
        return f"{self.url}/files/{relpath}"

    @property
    def newer_setuptools_url(self) -> str:
        """URL of a real setuptools wheel newer than apex's build accepts (not listed in the index)."""
        return self.file_url(f"{OFF_INDEX_DIR}/{self.newer_setuptools_file}")

    def reset_upstreams(self) -> None:
        """Rebuild the upstream repos pristine (same shas: the builds are deterministic)."""
        self.upstreams = build_upstreams(self.server.git_root)


def _spec_repo_names(path: Path) -> List[str]:
    """Names under ``repos:`` in a spec file (without following ``extends``)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    return list(data.get("repos") or {})


def _publish(wheels: List[Path], dest: Path) -> Dict[str, str]:
    """Copy ``wheels`` into ``dest``; returns file name -> sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    shas = {}
    for wheel in wheels:
        shutil.copy2(wheel, dest / wheel.name)
        shas[wheel.name] = sha256_file(wheel)
    return shas


def build_world(root: Path, wheel_cache: Path) -> World:
    """Make the CA, repos and wheels under ``root`` and start the server (caller stops it)."""
    ca = make_ca(root / "ca")
    docroot = root / "docroot"
    upstreams = build_upstreams(docroot / "git")
    wheels_dir = docroot / "files" / "wheels"
    shas = {}
    # Both architectures, as PyPI has both: a uv lock that takes torch-npu from the index by name reads one
    # wheel's metadata for every platform (the aarch64 one, seen with uv 0.13.9), and the world shows that.
    for arch in STAND_IN_ARCHES:
        shas.update(build_stand_in_wheels(wheels_dir, arch, cpu_index_dir=docroot / CPU_INDEX.strip("/")))
    real = fetch_world_wheels(wheel_cache)
    shas.update(_publish(real.index, wheels_dir))
    shas.update(_publish(real.off_index, docroot / "files" / OFF_INDEX_DIR))
    server = WorldServer(docroot, ca.server_context()).start()
    return World(url=server.url, ca_pem=ca.ca_pem, server=server, docroot=docroot, upstreams=upstreams,
                 wheel_sha256=shas, torch_npu_file=torch_npu_filename(), python310=find_python("3.10"),
                 decord2_file=real.decord2.name, newer_setuptools_file=real.off_index[0].name,
                 torch_cpu_file=torch_cpu_filename())


@pytest.fixture(scope="session")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The session's hermetic world (real wheels cached in pytest's cache dir, so reruns are offline)."""
    cache = request.config.cache
    wheel_cache = Path(cache.mkdir("npuenv-world-wheels")) if cache else tmp_path_factory.mktemp("wheels")
    built = build_world(tmp_path_factory.mktemp("world"), wheel_cache)
    try:
        yield built
    finally:
        built.server.stop()


@pytest.fixture
def fresh_upstream(world: World) -> Iterator[World]:
    """The world, restored afterwards: upstream repos rebuilt, faults and the request log cleared."""
    try:
        yield world
    finally:
        world.reset_upstreams()
        world.server.clear_faults()
        world.server.clear_requests()


def skip_unless_tools(*names: str) -> None:
    """Skip the calling test, naming what is missing, unless every tool in ``names`` is on PATH."""
    reason = missing_reason(names)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def stand_in_cann(tmp_path_factory: pytest.TempPathFactory) -> StandInCann:
    """A stand-in CANN 8.0.RC3 tree (toolkit, driver version file, set_env.sh) for this machine's arch."""
    return make_cann(tmp_path_factory.mktemp("cann") / "Ascend")


@pytest.fixture(scope="session")
def cann_set_env(stand_in_cann: StandInCann) -> Path:
    """The stand-in CANN's set_env.sh: pass it to npuenv as ``NPUENV_CANN_SET_ENV`` (or source it)."""
    return stand_in_cann.set_env


@pytest.fixture(scope="session")
def world_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s, 64x48, 10 fps (20 frames) yuv420p test video made by the real ffmpeg."""
    skip_unless_tools("ffmpeg")
    return make_test_video(tmp_path_factory.mktemp("video") / "testsrc.mp4")
