"""The facts of this machine that decide a plan: read once per run into one value, passed down.

Plan, steps and doctor read them from `Machine`; nothing else asks the machine again, and tests build a
`Machine` for the platform they mean (an aarch64 Ascend box on this x86_64 one, an old glibc, no CANN).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import cann, toolchain

OS_RELEASE = "/etc/os-release"


@dataclass(frozen=True)
class Machine:
    arch: str  # aarch64 | x86_64 (as platform.machine() says, normalised)
    glibc: Optional[str] = None  # None: no glibc (musl or another C library)
    cores: int = 1  # the cores this process may use (a build's -j)
    os_release: Mapping[str, str] = field(default_factory=dict)  # /etc/os-release's KEY=value lines
    dnf: bool = False  # dnf is installed (install hints say dnf, not yum)
    cann_set_env: Path = Path(cann.SET_ENV)  # where CANN's set_env.sh is looked for
    cann_present: bool = False  # that file exists: CANN is installed
    cann_root: Path = Path(cann.TOOLKIT)  # the toolkit folder, whose version files doctor reads

    @classmethod
    def read(cls, environ: Mapping[str, str], os_release: str = OS_RELEASE) -> "Machine":
        release = toolchain.read_os_release(os_release)
        set_env = cann.set_env_candidate(environ)
        return cls(arch=arch(), glibc=glibc_version(), cores=len(os.sched_getaffinity(0)) or 1,
                   os_release=release, dnf=toolchain.family(release) == "rhel" and toolchain.find_tool("dnf", environ) is not None,
                   cann_set_env=set_env, cann_present=set_env.is_file(),
                   cann_root=Path(environ.get(cann.TOOLKIT_VARIABLE) or cann.TOOLKIT))

    @property
    def set_env(self) -> Optional[Path]:
        """CANN's set_env.sh to source here, or None where CANN is not installed."""
        return self.cann_set_env if self.cann_present else None

    @property
    def family(self) -> Optional[str]:
        """The distribution family (debian | rhel), or None for one npuenv does not know."""
        return toolchain.family(self.os_release)

    def install_command(self, missing: list[str]) -> Optional[list[str]]:
        return toolchain.install_command(self.os_release, missing, dnf=self.dnf)


def arch() -> str:
    found = os.uname().machine.lower()  # what platform.machine() says, without importing platform
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(found, found)


def glibc_version() -> Optional[str]:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return None
    return text.split()[-1] if text.startswith("glibc") else None
