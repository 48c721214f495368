"""What a source build needs from the box: tools, pkg-config modules, and how to install them here.

Checked before a build starts, so a missing header fails in a second with the exact install command
for this distribution, not minutes into a compile.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from .keyvalues import parse_key_values

# tool or pkg-config module -> package, per distribution family
PACKAGES = {
    "debian": {
        "cmake": "cmake", "c++": "g++", "g++": "g++", "cc": "gcc", "gcc": "gcc", "make": "make",
        "pkg-config": "pkg-config", "git": "git", "patch": "patch", "ffmpeg": "ffmpeg",
        "libavcodec": "libavcodec-dev", "libavformat": "libavformat-dev", "libavutil": "libavutil-dev",
        "libavdevice": "libavdevice-dev", "libavfilter": "libavfilter-dev",
        "libswresample": "libswresample-dev", "libswscale": "libswscale-dev",
    },
    "rhel": {
        "cmake": "cmake", "c++": "gcc-c++", "g++": "gcc-c++", "cc": "gcc", "gcc": "gcc", "make": "make",
        "pkg-config": "pkgconf-pkg-config", "git": "git", "patch": "patch", "ffmpeg": "ffmpeg",
        # FFmpeg's headers come in one package, often from a third-party repository (RPM Fusion, EPEL)
        **{m: "ffmpeg-devel" for m in ("libavcodec", "libavformat", "libavutil", "libavdevice",
                                       "libavfilter", "libswresample", "libswscale")},
    },
}
INSTALLERS = {"debian": ["apt-get", "install", "-y"], "rhel": ["yum", "install", "-y"]}
FAMILIES = {"debian": "debian", "ubuntu": "debian", "euleros": "rhel", "openeuler": "rhel", "centos": "rhel",
            "rhel": "rhel", "fedora": "rhel", "rocky": "rhel", "almalinux": "rhel", "kylin": "rhel"}


def family(os_release: Mapping[str, str]) -> Optional[str]:
    for ident in [os_release.get("ID", ""), *os_release.get("ID_LIKE", "").split()]:
        if ident.lower() in FAMILIES:
            return FAMILIES[ident.lower()]
    return None


def install_command(os_release: Mapping[str, str], missing: Sequence[str], dnf: bool = False) -> Optional[list[str]]:
    """The command that installs `missing` tools/modules on this distribution (dnf where yum is gone:
    Fedora, openEuler, or where `dnf` is installed)."""
    fam = family(os_release)
    if fam is None or not missing:
        return None
    names = list(dict.fromkeys(PACKAGES[fam].get(m, m) for m in missing))
    installer = list(INSTALLERS[fam])
    if fam == "rhel" and (os_release.get("ID", "").lower() in ("fedora", "openeuler") or dnf):
        installer[0] = "dnf"
    return [*installer, *names]


def read_os_release(path: str = "/etc/os-release") -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_key_values(handle.read())
    except OSError:
        return {}


def find_tool(tool: str, environ: Mapping[str, str]) -> Optional[str]:
    """`c++` is satisfied by g++ or clang++ as well."""
    path = environ.get("PATH")
    alternatives = {"c++": ["c++", "g++", "clang++"], "cc": ["cc", "gcc", "clang"]}.get(tool, [tool])
    return next((found for name in alternatives if (found := _which(name, path))), None)


def _which(name: str, path: Optional[str] = None) -> Optional[str]:
    import shutil  # (with bz2 and lzma) only where a tool is looked for: not in an up-to-date run

    return shutil.which(name, path=path)


def pkgconfig_version(module: str, environ: Mapping[str, str]) -> Optional[str]:
    """The module's version as pkg-config (on the environment's PATH) reports it; None without either."""
    try:
        proc = subprocess.run(["pkg-config", "--modversion", module], capture_output=True, text=True,
                              env=dict(environ), stdin=subprocess.DEVNULL)
    except OSError:  # no pkg-config on that PATH
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def split_requirement(entry: str) -> tuple[str, str]:
    """'libavcodec>=58,<61' -> ('libavcodec', '>=58,<61'); a bare module name has no condition."""
    match = re.match(r"^\s*([A-Za-z0-9_.+-]+?)\s*((?:[<>=!~].*)?)$", entry)
    return (match.group(1), match.group(2).strip()) if match else (entry, "")


def ffmpeg_release(libavcodec: str) -> str:
    """libavcodec 58 is FFmpeg 4, 59 is 5, 60 is 6, 61 is 7."""
    major = int(libavcodec.split(".")[0])
    return f"FFmpeg {major - 54}" if 56 <= major <= 70 else f"libavcodec {libavcodec}"


@dataclass
class Toolchain:
    tools: dict[str, Optional[str]] = field(default_factory=dict)  # tool -> path
    modules: dict[str, Optional[str]] = field(default_factory=dict)  # pkg-config module -> version

    @property
    def missing(self) -> list[str]:
        return [t for t, p in self.tools.items() if p is None] + [m for m, v in self.modules.items() if v is None]


def probe(tools: Sequence[str], modules: Sequence[str], environ: Mapping[str, str]) -> Toolchain:
    """`modules` may carry version conditions ('libavcodec>=58,<61'): they are looked up by name."""
    needed = list(tools) + (["pkg-config"] if modules and "pkg-config" not in tools else [])
    names = [split_requirement(m)[0] for m in modules]
    return Toolchain({t: find_tool(t, environ) for t in needed},
                     {m: pkgconfig_version(m, environ) for m in names})


def version_problems(modules: Sequence[str], found: Toolchain) -> list[str]:
    """Modules whose installed version misses the spec's condition, described for a person."""
    from packaging.specifiers import SpecifierSet

    problems = []
    for entry in modules:
        name, condition = split_requirement(entry)
        version = found.modules.get(name)
        if version and condition and not SpecifierSet(condition).contains(version, prereleases=True):
            release = f" ({ffmpeg_release(version)})" if name == "libavcodec" else ""
            problems.append(f"{name} {version}{release} does not satisfy {condition}")
    return problems
