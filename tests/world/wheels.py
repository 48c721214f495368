"""Wheels for the test world.

Stand-ins for torch and torch_npu are written directly as small, reproducible zip files (they are
clearly not PyTorch). Like the real torch_npu 2.1.0.post8, the stand-in requires `torch==2.1.0+cpu` on
x86_64 (a version only the PyTorch CPU index has: the world serves a stand-in of it at /whl/cpu/) and
`torch==2.1.0` on aarch64, and its import fails unless CANN's set_env.sh has been sourced. The stand-in
torch carries a real tiny shared library, ``torch/lib/libc10.so`` (compiled once per process with the
machine's ``cc``), and ``import torch`` loads it with RTLD_GLOBAL as the real torch effectively does: so a
C extension linked against libc10.so without an rpath (the world's apex_C, as the real one) loads only
after ``import torch``. The other architecture's torch wheels carry an empty placeholder at that path
(they are served for resolution only and never installed here).

The real third-party wheels that uv needs to build and install the synthetic projects offline
(setuptools, wheel, decorator, pyyaml), plus numpy and the real prebuilt decord2, are downloaded once
with pip into a cache and served by the world's index. A newer setuptools is cached too but served off
the index (by URL only), so builds that resolve setuptools still get 65.7.0.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ZIP_DATE = (2025, 1, 1, 0, 0, 0)
PYTHON_TAG = "cp310"
# setuptools 65.7.0 is what the team's notes pin; it asks for `wheel` to build, and wheel >= 0.46
# requires `packaging`, so the offline index needs that too.
REAL_REQUIREMENTS: Tuple[str, ...] = ("setuptools==65.7.0", "wheel", "packaging", "decorator", "pyyaml")
# numpy is decord2's only dependency (Requires-Dist: numpy>=1.26.4; the rest are behind a cu13 extra).
# 2.2.6 is the last numpy release for CPython 3.10.
NUMPY_REQUIREMENT = "numpy==2.2.6"
DECORD2_VERSION = "3.4.0"
# decord2 3.4.0 cp310 manylinux_2_28 wheels, sha256 by architecture (UPSTREAM.md).
DECORD2_SHA256: Dict[str, str] = {
    "aarch64": "dbf926aa5a2e93a8fb1f2a70fde649aa64a9313a471963fec16ef57c4970213f",
    "x86_64": "842166f9f99b146cd4e90a22eeb566c4c11e4f9929199aafc877794edd648186",
}
# Newer than apex's build accepts (<= 65.7.0); served off the index, for "too new" tests.
NEWER_SETUPTOOLS = "setuptools==70.3.0"

TORCH_VERSION = "2.1.0"
TORCH_CPU_VERSION = "2.1.0+cpu"  # the PyTorch CPU index's x86_64 build: torch.__version__ says so too
TORCH_NPU_VERSION = "2.1.0.post8"
# Requires-Dist of the real torch_npu 2.1.0.post8 wheels, by architecture (UPSTREAM.md "The real stack, tried").
TORCH_NPU_REQUIRES: Dict[str, Tuple[str, ...]] = {
    "x86_64": ("torch (==2.1.0+cpu)",),
    "aarch64": ("torch (==2.1.0)",),
}
STAND_IN_NPU = Path(__file__).resolve().parent / "stand_in_npu"
# The one copy of the stand-in torch_npu's CANN check (defines require_cann()); see that file.
TORCH_NPU_CANN_CHECK = (STAND_IN_NPU / "torch_npu" / "_cann.py").read_text()


# torch/lib/libc10.so of the stand-in torch: one exported function. Real torch's C extensions (apex_C among
# them) name libc10.so in DT_NEEDED; the world's apex_C calls c10_stand_in(), so its link to it is real.
LIBC10 = "torch/lib/libc10.so"
LIBC10_SONAME = "libc10.so"
LIBC10_SOURCE = """\
/* libc10.so of the npuenv test world's stand-in torch: NOT PyTorch's c10, one function to link against. */
int c10_stand_in(void)
{
    return 10;
}
"""
# Stable flags, no debug info, compiled under a fixed relative file name: the same compiler gives the same
# bytes on every run (checked with gcc 12), so the wheels stay reproducible.
LIBC10_CFLAGS: Tuple[str, ...] = ("-shared", "-fPIC", "-O2", f"-Wl,-soname,{LIBC10_SONAME}")


@functools.lru_cache(maxsize=None)
def compile_libc10() -> bytes:
    """The stand-in libc10.so for this machine, compiled once per process with ``cc`` (``LIBC10_CFLAGS``)."""
    compiler = shutil.which("cc")
    if compiler is None:
        raise RuntimeError("the world's stand-in torch needs a C compiler to build torch/lib/libc10.so: "
                           "no `cc` on PATH (apt-get install gcc)")
    with tempfile.TemporaryDirectory(prefix="world-libc10-") as folder:
        Path(folder, "c10_stand_in.c").write_text(LIBC10_SOURCE)
        result = subprocess.run([compiler, *LIBC10_CFLAGS, "-o", LIBC10_SONAME, "c10_stand_in.c"], cwd=folder,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"cc could not build the stand-in libc10.so:\n{result.stdout}{result.stderr}")
        return Path(folder, LIBC10_SONAME).read_bytes()


def libc10_bytes(machine: Optional[str] = None) -> bytes:
    """torch/lib/libc10.so for a stand-in torch wheel for ``machine``: the compiled library for this machine;
    for the other architecture an empty placeholder (that wheel is on the index for resolution only; a real
    library of the other architecture would not load here either)."""
    if (machine or platform.machine()) != platform.machine():
        return b""
    return compile_libc10()


def torch_init(version: str = TORCH_VERSION) -> str:
    """torch/__init__.py of a stand-in torch whose ``__version__`` is ``version``: it loads torch/lib/libc10.so
    with RTLD_GLOBAL, so after ``import torch`` the soname libc10.so is in the process."""
    return f'''"""Test stand-in for torch, made by npuenv's test world. This is NOT PyTorch.

Importing it loads torch/lib/libc10.so (RTLD_GLOBAL), as importing the real torch loads its libc10.so: a C
extension that needs libc10.so but has no rpath to torch/lib (apex_C) loads after `import torch`, not before.
"""

import ctypes as _ctypes
import os as _os

_C10 = _ctypes.CDLL(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "lib", "{LIBC10_SONAME}"),
                    mode=_ctypes.RTLD_GLOBAL)

__version__ = "{version}"
STAND_IN = True
'''


def torch_files(version: str = TORCH_VERSION, machine: Optional[str] = None) -> Dict[str, Union[str, bytes]]:
    """The files of a stand-in torch wheel for ``machine``: ``torch/__init__.py`` and ``torch/lib/libc10.so``."""
    return {"torch/__init__.py": torch_init(version), LIBC10: libc10_bytes(machine)}


TORCH_INIT = torch_init()

# Self-contained (the check is inlined, not imported) so the file also works alone, e.g. written over an
# installed torch_npu/__init__.py or packed by itself into a wheel.
TORCH_NPU_INIT = f'''"""Test stand-in for torch_npu, made by npuenv's test world. NOT Ascend's torch_npu.

Like the real one, it imports torch first, then fails with the real ImportError unless CANN's libhccl.so is
on LD_LIBRARY_PATH, which `source set_env.sh` does (the stand-in CANN's is made by tests/world/cann.py).
"""

import torch  # noqa: F401

__version__ = "{TORCH_NPU_VERSION}"
STAND_IN = True

{TORCH_NPU_CANN_CHECK}

require_cann()
'''


def manylinux_tag(machine: Optional[str] = None) -> str:
    """The compressed manylinux2014 platform tag of a wheel for ``machine`` (default: this one)."""
    arch = machine or platform.machine()
    return f"manylinux_2_17_{arch}.manylinux2014_{arch}"


def pip_platform(machine: Optional[str] = None) -> str:
    """The manylinux2014 tag for ``pip download --platform``."""
    return f"manylinux2014_{machine or platform.machine()}"


def pip_platform_2_28(machine: Optional[str] = None) -> str:
    """The manylinux_2_28 tag for ``pip download --platform`` (decord2 needs glibc >= 2.28)."""
    return f"manylinux_2_28_{machine or platform.machine()}"


def decord2_filename(machine: Optional[str] = None) -> str:
    """File name of the real decord2 3.4.0 cp310 wheel for ``machine``."""
    return f"decord2-{DECORD2_VERSION}-{PYTHON_TAG}-{PYTHON_TAG}-{pip_platform_2_28(machine)}.whl"


def wheel_filename(name: str, version: str, tag: str) -> str:
    """``<name>-<version>-<tag>.whl`` with the name escaped as the wheel spec asks."""
    return f"{re.sub(r'[^A-Za-z0-9.]+', '_', name)}-{version}-{tag}.whl"


def torch_cpu_version_tag(machine: Optional[str] = None) -> Tuple[str, str]:
    """(version, wheel tag) of the CPU index's torch 2.1.0 for ``machine``: on x86_64 the real file is
    ``torch-2.1.0+cpu-cp310-cp310-linux_x86_64.whl``; elsewhere the stand-in is the plain 2.1.0 wheel."""
    arch = machine or platform.machine()
    if arch == "x86_64":
        return TORCH_CPU_VERSION, f"{PYTHON_TAG}-{PYTHON_TAG}-linux_{arch}"
    return TORCH_VERSION, f"{PYTHON_TAG}-{PYTHON_TAG}-{manylinux_tag(arch)}"


def torch_cpu_filename(machine: Optional[str] = None) -> str:
    """File name of the stand-in torch on the world's CPU index (/whl/cpu/) for ``machine``."""
    return wheel_filename("torch", *torch_cpu_version_tag(machine))


def torch_npu_filename(machine: Optional[str] = None) -> str:
    """File name of the torch_npu 2.1.0.post8 stand-in for ``machine``."""
    return wheel_filename("torch_npu", "2.1.0.post8", f"{PYTHON_TAG}-{PYTHON_TAG}-{manylinux_tag(machine)}")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _expand_tags(tag: str) -> List[str]:
    """All concrete tags of a compressed tag set, e.g. cp310-cp310-a.b -> two tags."""
    pythons, abis, platforms = (part.split(".") for part in tag.split("-"))
    return [f"{py}-{abi}-{plat}" for py in pythons for abi in abis for plat in platforms]


def _dist_info_files(name: str, version: str, tag: str, summary: str,
                     requires: Sequence[str] = (), binary: bool = False) -> Dict[str, str]:
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    purelib = "true" if tag.endswith("-none-any") and not binary else "false"
    wheel = "Wheel-Version: 1.0\nGenerator: npuenv-test-world\n" f"Root-Is-Purelib: {purelib}\n"
    wheel += "".join(f"Tag: {t}\n" for t in _expand_tags(tag))
    return {"METADATA": metadata, "WHEEL": wheel}


def _is_shared_library(path: str) -> bool:
    return path.endswith(".so") or ".so." in Path(path).name


def write_wheel(dest_dir: Path, name: str, version: str, tag: str, files: Mapping[str, Union[str, bytes]],
                summary: str = "Test stand-in made by npuenv's test world", requires: Sequence[str] = ()) -> Path:
    """Write a reproducible wheel (fixed timestamps, sorted entries, RECORD with sha256); ``requires`` are
    its Requires-Dist lines, written as given. ``files`` maps paths to text or bytes; a wheel with a shared
    library (``*.so``) says ``Root-Is-Purelib: false`` and the library is mode 0755."""
    dist_info = f"{re.sub(r'[^A-Za-z0-9.]+', '_', name)}-{version}.dist-info"
    entries = {path: data.encode() if isinstance(data, str) else bytes(data) for path, data in sorted(files.items())}
    binary = any(_is_shared_library(path) for path in entries)
    for meta, text in _dist_info_files(name, version, tag, summary, requires, binary).items():
        entries[f"{dist_info}/{meta}"] = text.encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in entries.items())
    entries[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    target = Path(dest_dir) / wheel_filename(name, version, tag)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for path, data in entries.items():
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            info.external_attr = (0o755 if _is_shared_library(path) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return target


def write_torch_cpu(dest_dir: Path, machine: Optional[str] = None) -> Path:
    """Write the stand-in of the PyTorch CPU index's torch 2.1.0 for ``machine`` (see torch_cpu_filename)."""
    version, tag = torch_cpu_version_tag(machine)
    return write_wheel(dest_dir, "torch", version, tag, torch_files(version, machine),
                       "Test stand-in for torch (not PyTorch)")


def build_stand_in_wheels(dest_dir: Path, machine: Optional[str] = None,
                          cpu_index_dir: Optional[Path] = None) -> Dict[str, str]:
    """Write the stand-ins; returns file name -> sha256.

    ``dest_dir`` (the main index) gets torch 2.1.0 and torch_npu 2.1.0.post8, whose Requires-Dist is the
    real one for ``machine``; ``cpu_index_dir`` (default: ``dest_dir``) gets the CPU index's torch, which
    the x86_64 torch_npu needs (2.1.0+cpu).
    """
    arch = machine or platform.machine()
    tag = f"{PYTHON_TAG}-{PYTHON_TAG}-{manylinux_tag(arch)}"
    made = [
        write_wheel(dest_dir, "torch", TORCH_VERSION, tag, torch_files(TORCH_VERSION, arch),
                    "Test stand-in for torch (not PyTorch)"),
        write_wheel(dest_dir, "torch_npu", TORCH_NPU_VERSION, tag, {"torch_npu/__init__.py": TORCH_NPU_INIT},
                    "Test stand-in for torch_npu (not Ascend's torch_npu)", TORCH_NPU_REQUIRES.get(arch, ())),
        write_torch_cpu(Path(cpu_index_dir or dest_dir), arch),
    ]
    return {path.name: sha256_bytes(path.read_bytes()) for path in made}


# -- interpreters ---------------------------------------------------------------------------------

def _is_python(path: Path, version: str) -> bool:
    probe = "import sys; print('%d.%d %s' % (sys.version_info[:2] + (sys.implementation.name,)))"
    try:
        out = subprocess.run([str(path), "-c", probe], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.split() == [version, "cpython"]


def find_python(version: str = "3.10") -> Optional[Path]:
    """An absolute path to CPython ``version``: pyenv's versions dir first, then PATH minus shims."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = [p for p in root.glob(f"versions/{version}.*/bin/python{version}")
             if re.fullmatch(rf"{re.escape(version)}\.\d+", p.parent.parent.name)]
    found.sort(key=lambda p: int(p.parent.parent.name.rsplit(".", 1)[1]), reverse=True)
    on_path = [Path(d) / f"python{version}" for d in os.environ.get("PATH", "").split(os.pathsep)
               if d and "shims" not in Path(d).parts]
    for candidate in [*found, *on_path]:
        if candidate.is_file() and _is_python(candidate, version):
            return candidate.absolute()
    return None


def _has_pip(python: Path) -> bool:
    result = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True)
    return result.returncode == 0


def find_python_with_pip() -> Path:
    """An interpreter that can run ``-m pip download`` (any version: pip is told the target)."""
    for candidate in (find_python("3.10"), Path(sys.executable), Path("/usr/bin/python3")):
        if candidate is not None and candidate.is_file() and _has_pip(candidate):
            return candidate
    raise RuntimeError("no Python with pip found to download the world's real wheels")


# -- real wheels --------------------------------------------------------------------------------

def cached_wheels(cache_dir: Path, requirements: Sequence[str] = REAL_REQUIREMENTS) -> Optional[List[Path]]:
    """The newest cached wheel satisfying each requirement, or None if one is missing."""
    chosen = []
    for text in requirements:
        req = Requirement(text)
        matches = []
        for path in Path(cache_dir).glob("*.whl"):
            name, version, _, _ = parse_wheel_filename(path.name)
            if name == canonicalize_name(req.name) and req.specifier.contains(version, prereleases=True):
                matches.append((version, path))
        if not matches:
            return None
        chosen.append(max(matches)[1])
    return chosen


def fetch_real_wheels(cache_dir: Path, requirements: Sequence[str] = REAL_REQUIREMENTS,
                      python: Optional[Path] = None, platforms: Optional[Sequence[str]] = None) -> List[Path]:
    """Download the real wheels uv needs offline (CPython 3.10, this platform) unless cached.

    ``platforms`` are pip ``--platform`` values (default: manylinux2014 for this machine).
    Runs pip with the machine's own environment (its CA settings and index config reach PyPI).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    found = cached_wheels(cache_dir, requirements)
    if found is not None:
        return found
    platform_args = [arg for name in (platforms or [pip_platform()]) for arg in ("--platform", name)]
    command = [str(python or find_python_with_pip()), "-m", "pip", "download", "--only-binary=:all:",
               "--python-version", "3.10", *platform_args, "--implementation", "cp",
               "--no-deps", "-d", str(cache_dir), *requirements]
    result = subprocess.run(command, capture_output=True, text=True)
    found = cached_wheels(cache_dir, requirements)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"pip download failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return found


def fetch_decord2(cache_dir: Path, python: Optional[Path] = None, machine: Optional[str] = None) -> Path:
    """The real decord2 3.4.0 cp310 manylinux_2_28 wheel for this machine, fetched once and sha256-checked
    against UPSTREAM.md's value."""
    arch = machine or platform.machine()
    if arch not in DECORD2_SHA256:
        raise RuntimeError(f"no decord2 {DECORD2_VERSION} wheel is known for {arch}")
    [wheel] = fetch_real_wheels(cache_dir, [f"decord2=={DECORD2_VERSION}"], python, [pip_platform_2_28(arch)])
    actual = sha256_bytes(wheel.read_bytes())
    if wheel.name != decord2_filename(arch) or actual != DECORD2_SHA256[arch]:
        raise RuntimeError(f"{wheel}: expected {decord2_filename(arch)} with sha256 {DECORD2_SHA256[arch]}, "
                           f"got sha256 {actual}")
    return wheel


def other_arches(cache_dir: Path, wheels: Sequence[Path], python: Optional[Path] = None) -> List[Path]:
    """The same versions of the binary ``wheels`` for the other architecture, as PyPI has both: a universal
    lock (``invoke lock``) resolves every package for aarch64 and x86_64 at once."""
    here = platform.machine()
    found = []
    for wheel in wheels:
        name, version, _, tags = parse_wheel_filename(wheel.name)
        if all(tag.platform == "any" for tag in tags):
            continue
        for arch in ("aarch64", "x86_64"):
            if arch != here:  # the manylinux2014 build, and a manylinux_2_28 one where it is another file
                try:  # some (hf-xet's aarch64) exist for manylinux_2_28 only: the second fetch has them
                    found += fetch_real_wheels(Path(cache_dir) / arch, [f"{name}=={version}"], python,
                                               [pip_platform(arch)])
                except RuntimeError:
                    pass
                found += fetch_real_wheels(Path(cache_dir) / f"{arch}-2_28", [f"{name}=={version}"], python,
                                           [pip_platform_2_28(arch), pip_platform(arch)])
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class RealWheels:
    """The cached real wheels: those the world's index serves, and those it serves off the index."""

    index: List[Path]
    off_index: List[Path]
    decord2: Path


def fetch_world_wheels(cache_dir: Path, python: Optional[Path] = None) -> RealWheels:
    """Every real wheel the world serves, each fetched once into ``cache_dir``."""
    base = fetch_real_wheels(cache_dir, REAL_REQUIREMENTS, python)
    base += other_arches(cache_dir, base, python)
    numpy = fetch_real_wheels(cache_dir, [NUMPY_REQUIREMENT], python, [pip_platform(), pip_platform_2_28()])
    numpy += other_arches(cache_dir, numpy, python)
    decord2 = fetch_decord2(cache_dir, python)
    # PyPI has decord2 for both: a bundle for the other architecture takes that one
    others = [fetch_decord2(Path(cache_dir) / arch, python, arch) for arch in DECORD2_SHA256 if arch != platform.machine()]
    newer = fetch_real_wheels(cache_dir, [NEWER_SETUPTOOLS], python)
    tool = fetch_real_wheels(Path(cache_dir) / "tool", tool_requirements(), python)
    tool += other_arches(Path(cache_dir) / "tool", tool, python)
    tool += locked_linux_wheels(Path(cache_dir) / "tool-locked", tool_requirements())
    return RealWheels(index=[*base, *numpy, decord2, *others, *tool], off_index=newer, decord2=decord2)


def _installs_on_310_linux(filename: str) -> bool:
    """A manylinux wheel for x86_64 or aarch64 that CPython 3.10 installs (cp310, abi3 from cp3X <= 3.10), or
    a pure-Python one."""
    _name, _version, _build, tags = parse_wheel_filename(filename)
    for tag in tags:
        python_ok = tag.interpreter in ("py3", "cp310") or (
            tag.abi == "abi3" and tag.interpreter.startswith("cp3") and int(tag.interpreter[3:]) <= 10)
        platform_ok = tag.platform == "any" or (tag.platform.startswith("manylinux")
                                                and tag.platform.endswith(("_x86_64", "_aarch64")))
        if python_ok and platform_ok and tag.abi in ("none", "abi3", "cp310"):
            return True
    return False


def locked_linux_wheels(cache_dir: Path, pins: Sequence[str]) -> List[Path]:
    """Every file of npuenv's own uv.lock for the `pins` (name==version) that CPython 3.10 installs on Linux
    x86_64 or aarch64, each glibc level and abi3 tier, as PyPI serves them all: a bundle takes the ones an
    installer picks, and the world must have whatever it asks for. Downloaded once by URL, sha256-checked."""
    import urllib.request

    from npuenv.bundle import file_name, lock_packages

    repo = Path(__file__).resolve().parents[2]
    packages = lock_packages((repo / "uv.lock").read_text())
    wanted = {(canonicalize_name(p.split("==")[0]), p.split("==")[1]) for p in pins if "==" in p}
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    found = []
    for (name, version), package in sorted(packages.items()):
        if (name, version) not in wanted:
            continue
        for url, sha in package["wheels"]:
            filename = file_name(url)
            if not _installs_on_310_linux(filename):
                continue
            path = cache_dir / filename
            if not path.exists() or sha256_bytes(path.read_bytes()) != sha:
                with urllib.request.urlopen(url, timeout=120) as response:  # the machine's CA settings apply
                    data = response.read()
                if sha256_bytes(data) != sha:
                    raise RuntimeError(f"{url}: sha256 {sha256_bytes(data)}, uv.lock says {sha}")
                path.write_bytes(data)
            found.append(path)
    return found


# what builds npuenv's own wheel (its build backend; tomli below Python 3.11)
HATCHLING = ("hatchling==1.27.0", "pathspec==0.12.1", "pluggy==1.6.0", "trove-classifiers==2025.5.9.12",
             "tomli==2.2.1")


def tool_requirements() -> List[str]:
    """npuenv's own dependencies as its uv.lock pins them for CPython 3.10 here (what `invoke bundle` carries
    so a box with only a Python installs the tool), and what builds npuenv's wheel."""
    repo = Path(__file__).resolve().parents[2]
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    proc = subprocess.run([uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-annotate",
                           "--no-header", "--format", "requirements-txt", "--project", str(repo)],
                          capture_output=True, text=True, check=True)
    from packaging.markers import Marker

    on_310 = {"python_version": "3.10", "python_full_version": "3.10.13"}
    pins = []
    for line in proc.stdout.splitlines():
        requirement, _, marker = line.partition(" ; ")
        if "==" in requirement and (not marker or Marker(marker).evaluate(on_310)):
            pins.append(requirement.strip())
    return [*pins, *HATCHLING]
