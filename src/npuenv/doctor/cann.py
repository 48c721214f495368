"""CANN & driver: the toolkit is installed, which version, its environment is sourced, the driver's version.

The version files are read by pure parsers, tested on captured text:
- `<toolkit>/latest/<arch>-linux/ascend_toolkit_install.info`: KEY=value lines, `version=8.0.RC3`;
- `<toolkit>/latest/version.cfg`: `toolkit_running_version=[7.6.0.1.220:8.0.0]` (inner version:CANN version);
- `<driver>/version.info`: `Version=24.1.rc3`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..keyvalues import parse_key_values
from ..npu import compat
from .base import CheckResult, check, fail, ok, skip, warn

INSTALL_INFO = "ascend_toolkit_install.info"
HOME_VARIABLES = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH")


# --- pure parsers -------------------------------------------------------------------------------------


def parse_install_info(text: str) -> Optional[str]:
    """The `version=` of ascend_toolkit_install.info."""
    return parse_key_values(text).get("version") or None


def _bracketed(value: str) -> str:
    """`[7.6.0.1.220:8.0.0]` -> `8.0.0`; `[1.83.T8.0.B128:CANN-1.83]` -> `1.83`; `[9.9]` -> `9.9`."""
    inner = value.strip().strip("[]").split("],[")[0]
    version = inner.rsplit(":", 1)[-1].strip()
    return version[len("CANN-"):] if version.upper().startswith("CANN-") else version


def parse_version_cfg(text: str) -> Optional[str]:
    """The CANN version in version.cfg: toolkit's running version, else the runtime's, else any component's."""
    running = {k: _bracketed(v) for k, v in parse_key_values(text).items() if k.endswith("_running_version")}
    for key in ("toolkit_running_version", "runtime_running_version"):
        if running.get(key):
            return running[key]
    return next((v for v in running.values() if v), None)


def parse_driver_version(text: str) -> Optional[str]:
    """`Version=` of the driver's version.info (else its package_version)."""
    values = parse_key_values(text)
    return values.get("Version") or values.get("package_version") or None


# --- the installed toolkit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CannInstall:
    root: Path  # as configured (/usr/local/Ascend/ascend-toolkit)
    home: Path  # what ASCEND_TOOLKIT_HOME points at: root/latest, or root itself when it has no latest/
    set_env: Optional[Path]
    version: Optional[str]
    version_file: Optional[Path]


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_cann_version(home: Path, arch: str) -> tuple[Optional[str], Optional[Path]]:
    infos = [home / f"{arch}-linux" / INSTALL_INFO, *sorted(home.glob(f"*-linux/{INSTALL_INFO}"))]
    for path in dict.fromkeys(infos):
        text = _read(path)
        if text is not None and parse_install_info(text):
            return parse_install_info(text), path
    for name in ("version.cfg", "version.info"):
        text = _read(home / name)
        if text is not None:
            found = parse_version_cfg(text) or parse_driver_version(text)
            if found:
                return found, home / name
    return None, None


def find_cann(root: Path, arch: str) -> Optional[CannInstall]:
    if not root.is_dir():
        return None
    home = root / "latest" if (root / "latest").is_dir() else root
    set_env = next((p for p in (root / "set_env.sh", home / "set_env.sh") if p.is_file()), None)
    version, source = read_cann_version(home, arch)
    return CannInstall(root, home, set_env, version, source)


def installed(ctx) -> Optional[CannInstall]:
    return ctx.memo.get("cann", lambda: find_cann(ctx.cann_root, ctx.arch))


def spec_torch_npu(spec) -> Optional[str]:
    """The torch_npu version the spec installs."""
    return next((w.version for w in spec.wheels.values() if w.package.replace("_", "-").lower() == "torch-npu"),
                None)


def set_env_command(install: Optional[CannInstall], ctx) -> str:
    path = install.set_env if install and install.set_env else ctx.cann_root / "set_env.sh"
    return f"source {path}"


# --- checks -------------------------------------------------------------------------------------------


@check("cann.installed", "the CANN toolkit is installed (set_env.sh, lib64, a version file)")
def cann_installed(ctx) -> CheckResult:
    install = installed(ctx)
    if install is None:
        return fail(f"no CANN toolkit at {ctx.cann_root}",
                    f"install it (Ascend-cann-toolkit_<version>_linux-{ctx.arch}.run --install), or point "
                    "NPUENV_CANN_ROOT at the folder that holds set_env.sh")
    if install.set_env is None:
        return fail(f"{install.root} has no set_env.sh: the toolkit is incomplete",
                    "reinstall the CANN toolkit")
    if not (install.home / "lib64").is_dir():
        return fail(f"{install.home}/lib64 is missing: the toolkit is incomplete (libhccl.so lives there)",
                    "reinstall the CANN toolkit")
    if install.version is None:
        return warn(f"CANN at {install.root}, but no version file ({INSTALL_INFO}, version.cfg) says which",
                    "reinstall the CANN toolkit, or check the installation's *-linux/ folder")
    return ok(f"CANN {install.version} at {install.root} (from {install.version_file})")


@check("cann.version", "the CANN version is the one the spec's torch_npu is built for")
def cann_version(ctx) -> CheckResult:
    install = installed(ctx)
    if install is None or install.version is None:
        return skip("no CANN version found (see cann.installed)")
    npu = spec_torch_npu(ctx.spec)
    if npu is None:
        return ok(f"CANN {install.version} (the spec installs no torch_npu)")
    wanted = compat.cann_for(npu)
    if wanted is None:
        return warn(f"CANN {install.version}; torch_npu {npu} (the spec's) is not in the torch_npu/CANN table",
                    f"check the pairing in the {compat.SOURCE} table")
    if compat.same_cann(wanted, install.version):
        return ok(f"CANN {install.version} matches torch_npu {npu} (the spec's)")
    better = compat.torch_npu_for(install.version, compat.torch_for(npu) or "")
    instead = f"torch_npu {better[0]} in your spec (Ascend's match for CANN {install.version}), or " if better else ""
    return warn(f"torch_npu {npu} (the spec's) is built for CANN {wanted}, this box has CANN {install.version}",
                f"use {instead}CANN {wanted}")


@check("cann.sourced", "set_env.sh is sourced in this shell (ASCEND_TOOLKIT_HOME, LD_LIBRARY_PATH)")
def cann_sourced(ctx) -> CheckResult:
    install = installed(ctx)
    variable = next((v for v in HOME_VARIABLES if ctx.environ.get(v)), None)
    fix = f"{set_env_command(install, ctx)} (the init.sh of `invoke user.add` does it at login)"
    if variable is None:
        if install is None:
            return skip("no CANN toolkit (see cann.installed)")
        return fail("set_env.sh is not sourced in this shell (ASCEND_TOOLKIT_HOME is not set): importing "
                    "torch_npu fails with `libhccl.so: cannot open shared object file`", fix)
    home = Path(ctx.environ[variable])
    lib64 = os.path.realpath(home / "lib64")
    paths = [p for p in ctx.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    if not any(os.path.realpath(p) == lib64 for p in paths):
        return fail(f"{variable}={home}, but LD_LIBRARY_PATH lacks {home}/lib64: libhccl.so will not load", fix)
    if install is not None and os.path.realpath(home) not in (os.path.realpath(install.home),
                                                              os.path.realpath(install.root)):
        return warn(f"this shell sourced the CANN at {home}, but the one checked here is {install.home}",
                    f"{fix}, or set NPUENV_CANN_ROOT to the one you use")
    return ok(f"{variable}={home}, {home}/lib64 on LD_LIBRARY_PATH")


@check("cann.driver", "the NPU driver is installed, and its version")
def cann_driver(ctx) -> CheckResult:
    info = ctx.driver_root / "version.info"
    text = _read(info)
    if text is None:
        return fail(f"no NPU driver: {info} does not exist",
                    f"install the driver (Ascend-hdk-910b-npu-driver_<version>_linux-{ctx.arch}.run), or "
                    "point NPUENV_DRIVER_ROOT at the folder that holds version.info")
    version = parse_driver_version(text)
    if version is None:
        return warn(f"{info} has no Version= line", "reinstall the NPU driver")
    return ok(f"driver {version} ({info})")


CHECKS = [cann_installed, cann_version, cann_sourced, cann_driver]
