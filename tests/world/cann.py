"""A stand-in CANN installation: the toolkit tree and the driver's version file, in the real formats, under a
temp folder. It is NOT CANN: no library in it does anything. The doctor reads its files; sourcing its
set_env.sh puts lib64 (with libhccl.so) on LD_LIBRARY_PATH, which is what the world's stand-in torch_npu
needs to import, as the real one does. Tests get one with `make_cann(folder)` or the `stand_in_cann` and
`cann_set_env` fixtures (tests/world/fixtures.py); npuenv is pointed at its set_env.sh by
`NPUENV_CANN_SET_ENV` (`StandInCann.set_env_variable()`).

Layout (as a CANN 8 toolkit installs it):
    <base>/ascend-toolkit/set_env.sh                  exports what the real one exports (CANN 8.0)
    <base>/ascend-toolkit/<version>/version.cfg       toolkit_running_version=[<inner>:<version>] & co.
    <base>/ascend-toolkit/<version>/<arch>-linux/ascend_toolkit_install.info   package_name=..., version=...
    <base>/ascend-toolkit/<version>/lib64/libhccl.so  an empty stand-in
    <base>/ascend-toolkit/latest -> <version>
    <base>/driver/version.info                        Version=<driver>, ascendhal_version=..., ...
The formats are captured from real boxes (vllm-project/vllm-ascend issues #451 and others, and a
docs page printing `cat set_env.sh`), see tests/test_doctor.py's parser tests.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from tests.world.wheels import TORCH_NPU_INIT

# the real CANN 8.0 set_env.sh, with the install path replaced by the stand-in's
SET_ENV = """# stand-in set_env.sh made by npuenv's tests (the real CANN 8.0 file's exports)
export LD_LIBRARY_PATH=@DRIVER@/lib64:@DRIVER@/lib64/common:@DRIVER@/lib64/driver:$LD_LIBRARY_PATH
export ASCEND_TOOLKIT_HOME=@TOOLKIT@/latest
export LD_LIBRARY_PATH=${ASCEND_TOOLKIT_HOME}/lib64:${ASCEND_TOOLKIT_HOME}/lib64/plugin/opskernel:${ASCEND_TOOLKIT_HOME}/lib64/plugin/nnengine:${ASCEND_TOOLKIT_HOME}/opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux/$(arch):$LD_LIBRARY_PATH
export LD_LIBRARY_PATH=${ASCEND_TOOLKIT_HOME}/tools/aml/lib64:${ASCEND_TOOLKIT_HOME}/tools/aml/lib64/plugin:$LD_LIBRARY_PATH
export PYTHONPATH=${ASCEND_TOOLKIT_HOME}/python/site-packages:${ASCEND_TOOLKIT_HOME}/opp/built-in/op_impl/ai_core/tbe:$PYTHONPATH
export PATH=${ASCEND_TOOLKIT_HOME}/bin:${ASCEND_TOOLKIT_HOME}/compiler/ccec_compiler/bin:${ASCEND_TOOLKIT_HOME}/tools/ccec_compiler/bin:$PATH
export ASCEND_AICPU_PATH=${ASCEND_TOOLKIT_HOME}
export ASCEND_OPP_PATH=${ASCEND_TOOLKIT_HOME}/opp
export TOOLCHAIN_HOME=${ASCEND_TOOLKIT_HOME}/toolkit
export ASCEND_HOME_PATH=${ASCEND_TOOLKIT_HOME}
"""

SET_ENV_VARIABLE = "NPUENV_CANN_SET_ENV"  # npuenv sources the set_env.sh it names

# inner (component) version per CANN release, as version.cfg shows them
INNER = {"8.0.RC3": "7.5.0.1.129", "8.0.0": "7.6.0.1.220", "8.0.RC2": "7.3.0.1.231"}
COMPONENTS = ("runtime", "compiler", "hccl", "opp", "toolkit", "aoe", "ncs", "opp_kernel")


def version_cfg(version: str) -> str:
    inner = INNER.get(version, "7.0.0.1.100")
    lines = ["# version: 1.0"]
    for suffix in ("running", "upgrade", "installed"):
        lines += [f"{c}_{suffix}_version=[{inner}:{version}]" for c in COMPONENTS]
    return "\n".join(lines) + "\n"


def install_info(version: str, arch: str, base: Path) -> str:
    return (f"package_name=Ascend-cann-toolkit\nversion={version}\ninnerversion=V100R001C19SPC001B155\n"
            "compatible_version=[V100R001C13,V100R001C19],[V100R001C30]\n"
            f"arch={arch}\nos=linux\npath={base}/ascend-toolkit/{version}/{arch}-linux\n")


def driver_info(version: str) -> str:
    return (f"Version={version}\nascendhal_version=7.35.23\naicpu_version=1.0\ntdt_version=1.0\nlog_version=1.0\n"
            "prof_version=2.0\ndvppkernels_version=1.1\ntsfw_version=1.0\nInnerversion=V100R001C19SPC001B124\n"
            "compatible_version=[V100R001C13],[V100R001C15],[V100R001C17],[V100R001C18],[V100R001C19]\n"
            f"compatible_version_fw=[7.0.0,7.5.99]\npackage_version={version}\n")


@dataclass
class StandInCann:
    """Where the stand-in lives; `env()` points npuenv's doctor at it, `sourced()` is what set_env.sh sets."""

    base: Path
    version: str
    driver_version: str
    arch: str

    @property
    def toolkit(self) -> Path:
        return self.base / "ascend-toolkit"

    @property
    def home(self) -> Path:
        return self.toolkit / "latest"

    @property
    def set_env(self) -> Path:
        return self.toolkit / "set_env.sh"

    @property
    def driver(self) -> Path:
        return self.base / "driver"

    def env(self) -> Dict[str, str]:
        return {"NPUENV_CANN_ROOT": str(self.toolkit), "NPUENV_DRIVER_ROOT": str(self.driver)}

    def set_env_variable(self) -> Dict[str, str]:
        """``NPUENV_CANN_SET_ENV`` naming this CANN's set_env.sh: how npuenv's smoke step, smoke task and
        init.sh are told to source it instead of /usr/local/Ascend/ascend-toolkit/set_env.sh."""
        return {SET_ENV_VARIABLE: str(self.set_env)}

    def sourced(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """`base` (default os.environ) with what `source set_env.sh` exports (the variables doctor reads)."""
        env = dict(os.environ if base is None else base)
        home = str(self.home)
        ld = [f"{home}/lib64", f"{home}/lib64/plugin/opskernel", f"{self.driver}/lib64"]
        rest = [env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else []
        env.update(ASCEND_TOOLKIT_HOME=home, ASCEND_HOME_PATH=home, ASCEND_OPP_PATH=f"{home}/opp",
                   ASCEND_AICPU_PATH=home, TOOLCHAIN_HOME=f"{home}/toolkit", LD_LIBRARY_PATH=":".join(ld + rest))
        return env


def make_cann(base: Path, version: str = "8.0.RC3", driver_version: str = "24.1.rc3",
              arch: Optional[str] = None) -> StandInCann:
    """Write the stand-in toolkit and driver under `base` (which must not exist yet, or be empty)."""
    arch = arch or platform.machine()
    cann = StandInCann(base, version, driver_version, arch)
    release = cann.toolkit / version
    (release / f"{arch}-linux").mkdir(parents=True)
    (release / "lib64").mkdir()
    (release / "lib64" / "libhccl.so").write_bytes(b"")  # a stand-in: empty
    (release / "python" / "site-packages").mkdir(parents=True)
    (release / "version.cfg").write_text(version_cfg(version))
    (release / f"{arch}-linux" / "ascend_toolkit_install.info").write_text(install_info(version, arch, base))
    cann.home.symlink_to(version)
    cann.set_env.write_text(SET_ENV.replace("@TOOLKIT@", str(cann.toolkit)).replace("@DRIVER@", str(cann.driver)))
    (cann.driver / "lib64").mkdir(parents=True)
    (cann.driver / "version.info").write_text(driver_info(driver_version))
    return cann


# A stand-in torch_npu/__init__.py that behaves like the real one without CANN: importing it fails with the
# real error text unless libhccl.so is on LD_LIBRARY_PATH (which set_env.sh puts there). It is the world's
# torch_npu wheel's own __init__.py (that wheel always needs CANN): one copy of the logic.
TORCH_NPU_NEEDS_CANN = TORCH_NPU_INIT
