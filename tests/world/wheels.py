"""Wheels for the test world.

Stand-ins for torch and torch_npu are written directly as small, reproducible zip files (they are
clearly not PyTorch). The real third-party wheels that uv needs to build and install the synthetic
projects offline (setuptools, wheel, decorator, pyyaml), plus numpy and the real prebuilt decord2, are
downloaded once with pip into a cache and served by the world's index. A newer setuptools is cached
too but served off the index (by URL only), so builds that resolve setuptools still get 65.7.0.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

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

TORCH_INIT = '''"""Test stand-in for torch, made by npuenv's test world. This is NOT PyTorch."""

__version__ = "2.1.0"
STAND_IN = True
'''

TORCH_NPU_INIT = '''"""Test stand-in for torch_npu, made by npuenv's test world. NOT Ascend's torch_npu."""

__version__ = "2.1.0.post8"
STAND_IN = True
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


def _dist_info_files(name: str, version: str, tag: str, summary: str) -> Dict[str, str]:
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n"
    purelib = "true" if tag.endswith("-none-any") else "false"
    wheel = "Wheel-Version: 1.0\nGenerator: npuenv-test-world\n" f"Root-Is-Purelib: {purelib}\n"
    wheel += "".join(f"Tag: {t}\n" for t in _expand_tags(tag))
    return {"METADATA": metadata, "WHEEL": wheel}


def write_wheel(dest_dir: Path, name: str, version: str, tag: str, files: Mapping[str, str],
                summary: str = "Test stand-in made by npuenv's test world") -> Path:
    """Write a reproducible wheel (fixed timestamps, sorted entries, RECORD with sha256)."""
    dist_info = f"{re.sub(r'[^A-Za-z0-9.]+', '_', name)}-{version}.dist-info"
    entries = {path: text.encode() for path, text in sorted(files.items())}
    for meta, text in _dist_info_files(name, version, tag, summary).items():
        entries[f"{dist_info}/{meta}"] = text.encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in entries.items())
    entries[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    target = Path(dest_dir) / wheel_filename(name, version, tag)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for path, data in entries.items():
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return target


def build_stand_in_wheels(dest_dir: Path, machine: Optional[str] = None) -> Dict[str, str]:
    """Write the torch 2.1.0 and torch_npu 2.1.0.post8 stand-ins; returns file name -> sha256."""
    tag = f"{PYTHON_TAG}-{PYTHON_TAG}-{manylinux_tag(machine)}"
    made = [
        write_wheel(dest_dir, "torch", "2.1.0", tag, {"torch/__init__.py": TORCH_INIT},
                    "Test stand-in for torch (not PyTorch)"),
        write_wheel(dest_dir, "torch_npu", "2.1.0.post8", tag, {"torch_npu/__init__.py": TORCH_NPU_INIT},
                    "Test stand-in for torch_npu (not Ascend's torch_npu)"),
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


@dataclass(frozen=True)
class RealWheels:
    """The cached real wheels: those the world's index serves, and those it serves off the index."""

    index: List[Path]
    off_index: List[Path]
    decord2: Path


def fetch_world_wheels(cache_dir: Path, python: Optional[Path] = None) -> RealWheels:
    """Every real wheel the world serves, each fetched once into ``cache_dir``."""
    base = fetch_real_wheels(cache_dir, REAL_REQUIREMENTS, python)
    numpy = fetch_real_wheels(cache_dir, [NUMPY_REQUIREMENT], python, [pip_platform(), pip_platform_2_28()])
    decord2 = fetch_decord2(cache_dir, python)
    newer = fetch_real_wheels(cache_dir, [NEWER_SETUPTOOLS], python)
    return RealWheels(index=[*base, *numpy, decord2], off_index=newer, decord2=decord2)
