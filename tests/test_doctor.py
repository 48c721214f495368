"""`invoke doctor`: each check's ok and fail/warn paths on healthy and broken stand-in boxes.

The NPU and CANN are stand-ins (tests/world/npu.py's npu-smi and device files, tests/world/cann.py's toolkit
tree); everything else is real: git, uv, a venv of CPython 3.10 with the world's stand-in torch/torch_npu
wheels, the world's HTTPS server for the TLS handshakes, and the task run as a subprocess.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterator

import pytest

from npuenv import doctor
from npuenv.doctor import cann as cann_checks
from npuenv.npu import compat
from npuenv.doctor import target
from npuenv.doctor.base import Check, CheckResult, Status, ok, run_checks, skip
from npuenv.doctor.context import build_context
from npuenv.errors import UsageError
from npuenv.npu.kill import DEVICE_GLOB_VARIABLE, NPU_SMI_VARIABLE
from npuenv.spec import load_spec
from npuenv.keyvalues import parse_key_values
from npuenv.trust import CLIENT_VARS, build_bundle
from tests.world.cann import TORCH_NPU_NEEDS_CANN, StandInCann, make_cann
from tests.world.fixtures import World, clean_env
from tests.world.npu import NpuLab

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO / "env_specs" / "mindspeed-mm-internvl2.5.yaml"
# variables of this machine that would leak into a stand-in box
LEAKY = ("NPUENV_", "ASCEND_", "GIT_CONFIG", "GIT_SSL_NO_VERIFY", "PYTHONHTTPSVERIFY", "UV_", "PIP_", "CURL_",
         "LD_LIBRARY_PATH", "NPUS_PER_NODE", "XDG_", "HF_", "http_proxy", "https_proxy", "HTTP_PROXY",
         "HTTPS_PROXY", "no_proxy", "NO_PROXY", "VIRTUAL_ENV", "TORCH_HOME", "MODELSCOPE_", "CONDA_")


def base_env() -> Dict[str, str]:
    """os.environ without the machine's CA variables and anything a stand-in box sets itself."""
    return {k: v for k, v in clean_env().items() if not k.startswith(LEAKY)}


def result(ctx, name: str) -> CheckResult:
    return doctor.base.run_one(doctor.REGISTRY[name], ctx).result


def status(ctx, name: str) -> Status:
    return result(ctx, name).status


# --- a stand-in box ------------------------------------------------------------------------------------


@dataclass
class Box:
    tmp: Path
    persistent: Path
    root: Path
    cann: StandInCann
    lab: NpuLab
    bundle: Path
    env: Dict[str, str]

    def ctx(self, env: Dict[str, str] = None, root: object = "default", **fields: object):
        ctx = build_context(root=str(self.root) if root == "default" else root, spec=None,
                            environ=self.env if env is None else env)
        return replace(ctx, **{"free_fail_bytes": 0, "free_warn_bytes": 0, **fields})

    def without(self, *names: str) -> Dict[str, str]:
        return {k: v for k, v in self.env.items() if k not in names}

    def with_(self, **values: str) -> Dict[str, str]:
        return {**self.env, **values}


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    """A healthy stand-in box: CANN 8.0.RC3 sourced, driver 24.1.rc3, 4 idle NPUs, alice's workspace under the
    persistent folder with npuenv's CA bundle, every client handed the bundle, HOME and caches inside."""
    persistent = tmp_path / "work"
    root = persistent / "alice"
    root.mkdir(parents=True)
    cann = make_cann(tmp_path / "Ascend")
    lab = NpuLab(tmp_path / "npu", npus=4)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("")
    env = cann.sourced(base_env())
    env.update(cann.env())
    bundle = build_bundle(root / ".npuenv" / "ca-bundle.pem", [], env).path
    env.update({name: str(bundle) for name in CLIENT_VARS})
    env.update({NPU_SMI_VARIABLE: str(lab.npu_smi), DEVICE_GLOB_VARIABLE: lab.glob, "NPUENV_USER": "alice",
                "NPUENV_PERSISTENT_ROOT": str(persistent), "HOME": str(root),
                "XDG_CACHE_HOME": str(root / ".cache"), "GIT_CONFIG_GLOBAL": str(gitconfig),
                "GIT_CONFIG_NOSYSTEM": "1"})
    try:
        yield Box(tmp_path, persistent, root, cann, lab, bundle, env)
    finally:
        lab.cleanup()


HEALTHY_GROUPS = ["system", "storage", "cann", "npu", "trust", "toolchain", "isolation"]


def test_a_healthy_box_has_no_issues(box: Box) -> None:
    outcomes = run_checks(doctor.select(HEALTHY_GROUPS), on(box.ctx(), os_release=_os_release("debian")))
    problems = [(o.check.name, o.result) for o in outcomes if o.result.status not in (Status.OK, Status.SKIP)]
    assert problems == []
    names = {o.check.name for o in outcomes}
    assert {"cann.sourced", "npu.health", "trust.verify", "isolation.caches"} <= names
    assert "trust.online" not in names  # only with --online


# --- the runner, the registry, selection ---------------------------------------------------------------


def test_a_crashing_check_is_reported_and_the_others_still_run() -> None:
    def boom(ctx):
        raise RuntimeError("no such thing\nsecond line")

    def slow(ctx):
        time.sleep(0.3)
        return ok("slow")

    checks = [Check("t.slow1", "t", "slow", slow), Check("t.boom", "t", "crashes", boom),
              Check("t.slow2", "t", "slow", slow), Check("t.wrong", "t", "returns junk", lambda ctx: "junk")]
    began = time.perf_counter()
    outcomes = run_checks(checks, ctx=None)
    assert time.perf_counter() - began < 0.55  # concurrent: two 0.3 s checks side by side
    assert [o.check.name for o in outcomes] == ["t.slow1", "t.boom", "t.slow2", "t.wrong"]
    assert [o.result.status for o in outcomes] == [Status.OK, Status.CRASH, Status.OK, Status.CRASH]
    assert outcomes[1].result.finding == "the check crashed: RuntimeError: no such thing"
    assert "bug in npuenv" in outcomes[1].result.fix
    assert outcomes[0].seconds >= 0.3
    assert outcomes[3].to_json()["status"] == "crash"


def test_registry_names_groups_and_descriptions() -> None:
    assert list(doctor.GROUPS) == ["system", "storage", "cann", "npu", "trust", "toolchain", "target", "sources",
                                   "isolation", "models"]
    for name, item in doctor.REGISTRY.items():
        assert name == item.name and name.startswith(item.group + ".") and item.group in doctor.GROUPS
        assert item.description and "\n" not in item.description
    for required in ("system.arch", "system.glibc", "storage.workspace", "storage.free", "cann.installed",
                     "cann.version", "cann.sourced", "cann.driver", "npu.smi", "npu.devices", "npu.health",
                     "npu.processes", "trust.bundle", "trust.clients", "trust.verify", "trust.online",
                     "toolchain.uv", "toolchain.git", "toolchain.cmake", "toolchain.compiler", "toolchain.ffmpeg",
                     "target.python", "target.torch", "target.torch_npu", "target.imports", "sources.repos",
                     "sources.patches", "sources.overlays", "sources.copies"):
        assert required in doctor.REGISTRY


def test_select_by_name_group_and_comma_lists() -> None:
    assert [c.name for c in doctor.select(["cann.driver"])] == ["cann.driver"]
    assert [c.name for c in doctor.select(["npu.health,system"])] == [
        "system.arch", "system.glibc", "system.os", "npu.health"]
    assert "trust.online" not in [c.name for c in doctor.select(["trust"])]
    assert "trust.online" in [c.name for c in doctor.select(["trust"], online=True)]
    assert [c.name for c in doctor.select(["trust.online"])] == ["trust.online"]
    assert "trust.online" not in [c.name for c in doctor.select()]
    assert len(doctor.select(online=True)) == len(doctor.REGISTRY)


def test_select_refuses_unknown_names_and_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as caught:
        doctor.select(["cann", "nope,npu.bogus"])
    assert caught.value.message == "unknown checks: nope, npu.bogus"
    assert "groups: system, storage, cann" in caught.value.hint and "npu.health" in caught.value.hint


# --- system --------------------------------------------------------------------------------------------


def _os_release(family: str) -> dict:
    text = {"debian": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nID_LIKE=debian\n',
            "euler": 'NAME="EulerOS"\nID="euleros"\nPRETTY_NAME="EulerOS 2.0 (SP10)"\n',
            "plan9": 'ID=plan9\nPRETTY_NAME="Plan 9"\n'}[family]
    return parse_key_values(text)


def on(ctx, **machine: object):
    """The doctor context on another machine: the checks read only ctx.machine (a test builds it)."""
    return replace(ctx, machine=replace(ctx.machine, **machine))


def _torch_npu_wheel(folder: Path, arch: str, requires: str) -> Path:
    """A stand-in torch_npu wheel whose METADATA says what the real one for `arch` requires."""
    import zipfile

    entry = load_spec("mindspeed-mm-internvl2.5").wheels["torch_npu"].files[arch]
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / entry.filename, "w") as archive:
        archive.writestr("torch_npu-2.1.0.post8.dist-info/METADATA",
                         f"Metadata-Version: 2.1\nName: torch_npu\nVersion: 2.1.0.post8\nRequires-Dist: {requires}\n")
    return folder / entry.filename


def test_system_checks(box: Box) -> None:
    ctx = box.ctx()
    assert result(on(ctx, arch="aarch64"), "system.arch") == ok("aarch64: the spec has what it needs here")
    arch = result(on(ctx, arch="riscv64"), "system.arch")
    assert arch.status is Status.FAIL and "torch_npu has no wheel for riscv64 (it has: aarch64, x86_64)" in arch.finding
    assert result(on(ctx, glibc="2.36"), "system.glibc") == ok("glibc 2.36")
    assert result(on(ctx, glibc="2.17"), "system.glibc") == ok("glibc 2.17")  # decord builds from source anyway
    assert status(on(ctx, glibc="2.12"), "system.glibc") is Status.FAIL
    assert status(on(ctx, glibc=None), "system.glibc") is Status.FAIL
    assert result(on(ctx, os_release=_os_release("euler")), "system.os") == ok(
        "EulerOS 2.0 (SP10) (yum/dnf)")
    assert status(on(ctx, os_release=_os_release("plan9")), "system.os") is Status.WARN


def test_system_arch_fails_where_the_spec_cannot_resolve_the_target_env(box: Box) -> None:
    """x86_64's torch_npu requires torch==2.1.0+cpu, which only PyTorch's CPU index has (UPSTREAM.md)."""
    wheels = box.tmp / "wheels"
    _torch_npu_wheel(wheels, "x86_64", "torch (==2.1.0+cpu)")
    ctx = replace(on(box.ctx(), arch="x86_64"), wheels_dir=wheels)
    assert result(ctx, "system.arch") == ok("x86_64: the spec has what it needs here (a build box: Ascend NPU "
                                            "boxes are aarch64)")
    one_index = replace(ctx.spec, env=replace(ctx.spec.env, sources=()))
    found = result(replace(ctx, spec=one_index), "system.arch")
    assert found.status is Status.FAIL
    assert "the torch_npu wheel for x86_64 requires torch==2.1.0+cpu" in found.finding
    assert "env.sources.torch" in found.finding
    _torch_npu_wheel(wheels, "aarch64", "torch (==2.1.0)")
    assert status(on(replace(ctx, spec=one_index), arch="aarch64"), "system.arch") is Status.OK


# --- storage -------------------------------------------------------------------------------------------


def test_storage_workspace(box: Box, tmp_path: Path) -> None:
    assert result(box.ctx(), "storage.workspace") == ok(f"{box.root} (under {box.persistent})")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    lost = result(box.ctx(root=str(outside)), "storage.workspace")
    assert lost.status is Status.WARN and "wiped when the notebook restarts" in lost.finding
    missing = box.ctx(root=str(tmp_path / "nope"))
    none = result(missing, "storage.workspace")
    assert none.status is Status.WARN and none.finding == f"--root {tmp_path / 'nope'} does not exist"
    untagged = box.ctx(env=box.without("NPUENV_USER"), root=None)
    assert "NPUENV_USER is not set" in result(untagged, "storage.workspace").finding
    by_tag = box.ctx(root=None)  # NPUENV_USER=alice: the persistent folder's alice/
    assert by_tag.root == box.root and status(by_tag, "storage.workspace") is Status.OK
    for name in ("trust.bundle", "target.python", "sources.repos"):
        assert result(missing, name) == CheckResult(Status.SKIP, "no workspace (see storage.workspace)")


def test_storage_free(box: Box) -> None:
    assert status(box.ctx(), "storage.free") is Status.OK
    low = result(box.ctx(free_fail_bytes=1 << 60, free_warn_bytes=1 << 61), "storage.free")
    assert low.status is Status.FAIL and low.finding.startswith("only ") and "du -sh" in low.fix
    assert status(box.ctx(free_warn_bytes=1 << 60), "storage.free") is Status.WARN


# --- CANN & driver -------------------------------------------------------------------------------------


def test_cann_installed_reads_the_install_info(box: Box) -> None:
    found = result(box.ctx(), "cann.installed")
    info = box.cann.home / f"{box.cann.arch}-linux" / "ascend_toolkit_install.info"
    assert found == ok(f"CANN 8.0.RC3 at {box.cann.toolkit} (from {info})")


def test_cann_installed_falls_back_to_version_cfg_and_then_warns(box: Box) -> None:
    (box.cann.home / f"{box.cann.arch}-linux" / "ascend_toolkit_install.info").unlink()
    assert "(from " + str(box.cann.home / "version.cfg") in result(box.ctx(), "cann.installed").finding
    (box.cann.home / "version.cfg").unlink()
    assert status(box.ctx(), "cann.installed") is Status.WARN
    assert status(box.ctx(), "cann.version") is Status.SKIP


def test_cann_installed_fails_without_the_toolkit_or_its_set_env(box: Box) -> None:
    gone = result(box.ctx(env=box.with_(NPUENV_CANN_ROOT=str(box.tmp / "none"))), "cann.installed")
    assert gone.status is Status.FAIL and gone.finding == f"no CANN toolkit at {box.tmp / 'none'}"
    assert "NPUENV_CANN_ROOT" in gone.fix
    box.cann.set_env.unlink()
    assert "has no set_env.sh" in result(box.ctx(), "cann.installed").finding


def test_cann_version_against_the_specs_torch_npu(box: Box, tmp_path: Path) -> None:
    assert result(box.ctx(), "cann.version") == ok("CANN 8.0.RC3 matches torch_npu 2.1.0.post8 (the spec's)")
    newer = make_cann(tmp_path / "newer", version="8.0.0")
    other = result(box.ctx(env=box.with_(**newer.env())), "cann.version")
    assert other.status is Status.WARN
    assert other.finding == "torch_npu 2.1.0.post8 (the spec's) is built for CANN 8.0.RC3, this box has CANN 8.0.0"
    assert "torch_npu 2.1.0.post10 in your spec" in other.fix


def test_cann_sourced(box: Box, tmp_path: Path) -> None:
    assert status(box.ctx(), "cann.sourced") is Status.OK
    plain = base_env() | box.cann.env()
    missing = result(box.ctx(env=plain), "cann.sourced")
    assert missing.status is Status.FAIL and "not sourced" in missing.finding
    assert missing.fix.startswith(f"source {box.cann.set_env}")
    half = result(box.ctx(env=box.with_(LD_LIBRARY_PATH="/usr/lib")), "cann.sourced")
    assert half.status is Status.FAIL and "LD_LIBRARY_PATH lacks" in half.finding
    other = make_cann(tmp_path / "other", version="8.0.0")
    elsewhere = result(box.ctx(env=other.sourced(box.env)), "cann.sourced")
    assert elsewhere.status is Status.WARN and str(other.home) in elsewhere.finding


def test_cann_driver(box: Box) -> None:
    assert result(box.ctx(), "cann.driver") == ok(f"driver 24.1.rc3 ({box.cann.driver / 'version.info'})")
    (box.cann.driver / "version.info").unlink()
    gone = result(box.ctx(), "cann.driver")
    assert gone.status is Status.FAIL and "no NPU driver" in gone.finding and "NPUENV_DRIVER_ROOT" in gone.fix


# captured from real boxes (vllm-project/vllm-ascend issues #451 and the CANN: sections of its bug reports)
VERSION_CFG_800 = """# version: 1.0
runtime_running_version=[7.6.0.1.220:8.0.0]
compiler_running_version=[7.6.0.1.220:8.0.0]
hccl_running_version=[7.6.0.1.220:8.0.0]
toolkit_running_version=[7.6.0.1.220:8.0.0]
runtime_upgrade_version=[7.6.0.1.220:8.0.0]
toolkit_installed_version=[7.6.0.1.220:8.0.0]
"""
INSTALL_INFO_RC3 = """package_name=Ascend-cann-toolkit
version=8.0.RC3
innerversion=V100R001C19SPC001B155
compatible_version=[V100R001C13,V100R001C19],[V100R001C30]
arch=aarch64
os=linux
path=/usr/local/Ascend/ascend-toolkit/8.0.RC3/aarch64-linux
"""
DRIVER_INFO = """Version=24.1.rc3
ascendhal_version=7.35.23
Innerversion=V100R001C19SPC001B124
compatible_version=[V100R001C13],[V100R001C15],[V100R001C17],[V100R001C18],[V100R001C19]
compatible_version_fw=[7.0.0,7.5.99]
package_version=24.1.rc3
"""


def test_version_parsers_on_captured_text() -> None:
    assert cann_checks.parse_version_cfg(VERSION_CFG_800) == "8.0.0"
    assert cann_checks.parse_version_cfg("runtime_running_version=[7.3.0.1.231:8.0.RC2]\n") == "8.0.RC2"
    assert cann_checks.parse_version_cfg("runtime_running_version=[1.83.T8.0.B128:CANN-1.83]") == "1.83"
    assert cann_checks.parse_version_cfg("# version: 1.0\nruntime_running_version=[9.9]\n") == "9.9"
    assert cann_checks.parse_version_cfg("nothing here\n") is None
    assert cann_checks.parse_install_info(INSTALL_INFO_RC3) == "8.0.RC3"
    assert cann_checks.parse_install_info("package_name=Ascend-cann-toolkit\n") is None
    assert cann_checks.parse_driver_version(DRIVER_INFO) == "24.1.rc3"
    assert cann_checks.parse_driver_version("package_version=23.0.3\n") == "23.0.3"


def test_the_torch_npu_cann_table() -> None:
    assert compat.cann_for("2.1.0.post8") == "8.0.RC3"
    assert compat.cann_for("2.1.0.post10") == "8.0.0"
    assert compat.cann_for("2.1.0-post8") == "8.0.RC3"  # the same version, spelt otherwise
    assert compat.cann_for("2.1.0.post99") is None and compat.cann_for("junk") is None
    assert compat.torch_npu_for("8.0.rc3", "2.1.0+cpu") == ["2.1.0.post8"]
    assert compat.torch_for("2.1.0.post8") == "2.1.0"
    assert {npu for cann, torch, npu in compat.TABLE if cann == "8.0.RC1" and torch == "2.1.0"} == {
        "2.1.0.post3", "2.1.0.post4"}


# --- NPU devices & processes ---------------------------------------------------------------------------


def test_npu_checks_on_idle_devices(box: Box) -> None:
    ctx = box.ctx()
    assert result(ctx, "npu.smi") == ok(f"{box.lab.npu_smi}: 4 NPU(s) in its table")
    assert result(ctx, "npu.devices") == ok("4 NPU(s): 0, 1, 2, 3 (910B1)")
    assert result(ctx, "npu.health").finding == "4 NPU(s) OK"
    assert result(ctx, "npu.processes") == ok("no process holds an NPU")


def test_npu_processes_names_the_holders(box: Box) -> None:
    holder = box.lab.start(tag="bob", devices=[1])
    held = result(box.ctx(), "npu.processes")
    assert held.status is Status.WARN and held.finding.startswith("1 process(es) hold NPU(s) 1")
    assert len(held.details) == 1
    assert held.details[0].startswith(f"PID {holder.pid} on NPU 1 (bob, 1000 MB): python -I -S ")
    assert "invoke kill-npu --dry-run" in held.fix


def test_npu_smi_missing_broken_or_misconfigured(box: Box, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    gone = box.ctx(env={**box.without(NPU_SMI_VARIABLE), "PATH": str(empty)})
    assert result(gone, "npu.smi").finding.startswith("npu-smi not found")
    assert status(gone, "npu.devices") is Status.OK  # the device files alone
    assert status(gone, "npu.health") is Status.SKIP
    bad = result(box.ctx(env=box.with_(NPUENV_NPU_SMI=str(tmp_path / "nowhere"))), "npu.smi")
    assert bad.status is Status.FAIL and "not an executable file" in bad.finding
    failing = tmp_path / "npu-smi"
    failing.write_text("#!/bin/sh\necho 'dcmi module initialize failed. ret is -8005' >&2\nexit 1\n")
    failing.chmod(0o755)
    broken = result(box.ctx(env=box.with_(NPUENV_NPU_SMI=str(failing))), "npu.smi")
    assert broken.status is Status.FAIL and "dcmi module initialize failed" in broken.finding


def test_npu_devices_none_visible_or_too_few_for_npus_per_node(box: Box, tmp_path: Path) -> None:
    empty = tmp_path / "nodev"
    empty.mkdir()
    env = {**box.without(NPU_SMI_VARIABLE), "PATH": str(empty), DEVICE_GLOB_VARIABLE: str(empty / "davinci[0-9]*")}
    nothing = result(box.ctx(env=env), "npu.devices")
    assert nothing.status is Status.FAIL and nothing.finding.startswith("no NPU visible")
    eight = result(box.ctx(env=box.with_(NPUS_PER_NODE="8")), "npu.devices")
    assert eight.status is Status.FAIL and "NPUS_PER_NODE=8, but 4 NPU(s)" in eight.finding
    assert eight.fix.startswith("export NPUS_PER_NODE=4")


@pytest.mark.parametrize("health, expected", [("Warning", Status.WARN), ("Alarm", Status.FAIL),
                                             ("Warning 2", Status.WARN), ("NOT_EXIST", Status.FAIL),
                                             ("Alarm(1)", Status.FAIL), ("Critical", Status.FAIL)])
def test_npu_health_reports_unhealthy_devices(box: Box, health: str, expected: Status) -> None:
    script = box.lab.npu_smi.read_text().replace("| OK            |", f"| {health:<12} |")
    box.lab.npu_smi.write_text(script)
    found = result(box.ctx(), "npu.health")
    assert found.status is expected and found.finding.startswith(f"NPU 0: {health}")
    assert found.finding.count("NPU ") == 4  # every NPU is named, none is lost to its neighbour


@pytest.mark.parametrize("health", ["NOT_EXIST", "Alarm(1)", "Warning 2", ""])
def test_npu_health_one_bad_npu_among_good_ones(box: Box, health: str) -> None:
    """A device row whose Health is not a plain word was dropped (its chip went to the NPU before it), and
    npu.health said OK."""
    script = box.lab.npu_smi.read_text().replace("| OK            |", f"| {{'{health}' if npu == 2 else 'OK':<13}} |")
    box.lab.npu_smi.write_text(script)
    assert result(box.ctx(), "npu.smi").finding.endswith(": 4 NPU(s) in its table")
    found = result(box.ctx(), "npu.health")
    assert found.status is (Status.WARN if health.startswith("Warning") else Status.FAIL)
    assert found.finding == f"NPU 2: {health or 'no health value'}"
    assert f"NPU 2 (910B1): {health or 'no health value'}" in found.details and len(found.details) == 4


def test_npu_processes_is_skipped_without_npu_smi_and_device_files(box: Box, tmp_path: Path) -> None:
    empty = tmp_path / "nodev"
    empty.mkdir()
    glob = str(empty / "davinci[0-9]*")
    nothing = box.ctx(env={**box.without(NPU_SMI_VARIABLE), "PATH": str(empty), DEVICE_GLOB_VARIABLE: glob})
    found = result(nothing, "npu.processes")
    assert found == CheckResult(Status.SKIP, f"cannot tell: npu-smi not found, and no device file matches {glob} "
                                             "for a /proc scan")
    failing = tmp_path / "npu-smi"
    failing.write_text("#!/bin/sh\necho 'dcmi module initialize failed. ret is -8005' >&2\nexit 1\n")
    failing.chmod(0o755)
    broken = result(box.ctx(env=box.with_(NPUENV_NPU_SMI=str(failing), **{DEVICE_GLOB_VARIABLE: glob})),
                    "npu.processes")
    assert broken.status is Status.SKIP
    assert broken.finding.startswith("cannot tell: npu-smi info failed (exit 1: dcmi module initialize failed")
    # one source is enough evidence: the device files alone (a /proc scan), or npu-smi alone
    assert result(box.ctx(env={**box.without(NPU_SMI_VARIABLE), "PATH": str(empty)}), "npu.processes") == ok(
        "no process holds an NPU")
    assert result(box.ctx(env=box.with_(**{DEVICE_GLOB_VARIABLE: glob})), "npu.processes") == ok(
        "no process holds an NPU")


# --- trust & network -----------------------------------------------------------------------------------


def test_trust_bundle(box: Box) -> None:
    found = result(box.ctx(), "trust.bundle")
    assert found.status is Status.OK and found.finding.startswith(f"{box.bundle}: ")
    box.bundle.unlink()
    gone = result(box.ctx(), "trust.bundle")
    assert gone.status is Status.FAIL and f"invoke bootstrap --root {box.root} --only python" in gone.fix


def test_trust_clients(box: Box, tmp_path: Path) -> None:
    assert result(box.ctx(), "trust.clients").finding == f"every client uses {box.bundle}"
    unset = result(box.ctx(env=box.without("GIT_SSL_CAINFO", "CURL_CA_BUNDLE")), "trust.clients")
    assert unset.status is Status.WARN and unset.finding.startswith("CURL_CA_BUNDLE, GIT_SSL_CAINFO unset")
    assert f"GIT_SSL_CAINFO={box.bundle}" in unset.fix
    Path(box.env["GIT_CONFIG_GLOBAL"]).write_text(f"[http]\n\tsslCAInfo = {box.bundle}\n")
    by_config = result(box.ctx(env=box.without("GIT_SSL_CAINFO")), "trust.clients")
    assert by_config.status is Status.OK and f"git config http.sslCAInfo={box.bundle}  [git]" in by_config.details
    broken = result(box.ctx(env=box.with_(SSL_CERT_FILE=str(tmp_path / "gone.pem"))), "trust.clients")
    assert broken.status is Status.FAIL and "SSL_CERT_FILE=" in broken.finding


def test_trust_verify_finds_every_bypass(box: Box) -> None:
    assert status(box.ctx(), "trust.verify") is Status.OK
    env_bypass = result(box.ctx(env=box.with_(GIT_SSL_NO_VERIFY="1", PYTHONHTTPSVERIFY="0")), "trust.verify")
    assert env_bypass.status is Status.FAIL
    assert "GIT_SSL_NO_VERIFY=1 in the environment" in env_bypass.finding
    assert "unset GIT_SSL_NO_VERIFY" in env_bypass.fix
    Path(box.env["GIT_CONFIG_GLOBAL"]).write_text('[http "https://gitee.com/"]\n\tsslVerify = no\n')
    (box.root / ".curlrc").write_text("silent\ninsecure\n")
    files = result(box.ctx(), "trust.verify")
    assert files.status is Status.FAIL
    assert "git config http.https://gitee.com/.sslverify=false" in files.finding
    assert f"{box.root / '.curlrc'}:2 `insecure`" in files.finding


def test_trust_online_handshakes_through_the_mirrors(world: World, box: Box, tmp_path: Path) -> None:
    spec = world.write_spec(tmp_path / "world.yaml")
    ctx = replace(box.ctx(), spec=doctor.context.build_context(root=None, spec=str(spec), environ=box.env).spec,
                  spec_arg=str(spec))
    untrusted = result(ctx, "trust.online")  # the workspace bundle has the public roots, not the world's CA
    assert untrusted.status is Status.FAIL and "certificate verify failed" in untrusted.finding
    assert untrusted.details == (f"127.0.0.1:{world.server.port}: certificate verify failed "
                                 "(unable to get local issuer certificate)",)
    build_bundle(box.bundle, [world.ca_pem], box.env)
    trusted = result(replace(ctx, memo=doctor.context.Memo()), "trust.online")
    assert trusted.status is Status.OK and trusted.finding == f"1 host(s): TLS verified with {box.bundle}"
    down = replace(ctx, environ=box.with_(NPUENV_MIRRORS="https://gitee.com/=https://127.0.0.1:9/;"
                                                         "https://github.com/=https://127.0.0.1:9/"),
                   memo=doctor.context.Memo())
    unreachable = result(down, "trust.online")
    assert unreachable.status is Status.FAIL and "unreachable" in unreachable.finding
    assert "NPUENV_MIRRORS" in unreachable.fix


# --- toolchain -----------------------------------------------------------------------------------------


def _decord_strategy(ctx, strategy: str):
    builds = dict(ctx.spec.builds, decord=replace(ctx.spec.builds["decord"], strategy=strategy))
    return replace(ctx, spec=replace(ctx.spec, builds=builds))


def test_toolchain_when_nothing_builds_from_source(box: Box) -> None:
    ctx = _decord_strategy(on(box.ctx(), glibc="2.36"), "auto")  # decord2 comes prebuilt; apex still builds from source
    assert result(ctx, "toolchain.uv").finding.startswith("uv ")
    assert result(ctx, "toolchain.git").finding.startswith("git version ")
    assert status(ctx, "toolchain.ffmpeg") is Status.SKIP
    assert "prebuilt here: decord" in result(ctx, "toolchain.ffmpeg").finding


@pytest.mark.skipif(not all(shutil.which(t) for t in ("cmake", "c++", "patch", "pkg-config")),
                    reason="needs cmake, a C++ compiler, patch and pkg-config on this machine")
def test_toolchain_for_source_builds(box: Box, tmp_path: Path) -> None:
    old = _decord_strategy(on(box.ctx(), glibc="2.17"), "auto")  # too old for decord2: decord builds from source
    assert result(on(box.ctx(), glibc="2.36"), "toolchain.cmake").status is Status.OK  # the default spec builds it anyway
    assert result(old, "toolchain.cmake").finding.startswith("cmake version ")
    assert result(old, "toolchain.compiler").status is Status.OK
    if ffmpeg_4_to_6():
        assert result(old, "toolchain.ffmpeg").finding.startswith("FFmpeg ")
    empty = tmp_path / "empty"
    empty.mkdir()
    bare = on(replace(old, environ=box.with_(PATH=str(empty))), os_release=_os_release("debian"))
    for name, package in (("toolchain.cmake", "cmake"), ("toolchain.compiler", "g++"), ("toolchain.git", "git")):
        missing = result(bare, name)
        assert missing.status is Status.FAIL and "not on PATH" in missing.finding
        assert missing.fix.startswith("apt-get install -y") and package in missing.fix.split()
    assert "pkg-config is not on PATH" in result(bare, "toolchain.ffmpeg").finding
    nothing = replace(old, environ=box.with_(PKG_CONFIG_LIBDIR=str(empty), PKG_CONFIG_PATH=""))
    assert result(nothing, "toolchain.ffmpeg").finding.startswith("missing: libavcodec, libavformat")


def ffmpeg_4_to_6() -> bool:
    proc = subprocess.run(["pkg-config", "--modversion", "libavcodec"], capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.split(".")[0] in ("58", "59", "60")


def test_toolchain_ffmpeg_7_is_refused(box: Box, tmp_path: Path) -> None:
    if not shutil.which("pkg-config"):
        pytest.skip("needs pkg-config")
    pcdir = tmp_path / "pc"
    pcdir.mkdir()
    versions = {"libavcodec": "61.3.100", "libavformat": "61.1.100", "libavutil": "59.8.100",
                "libavdevice": "61.1.100", "libavfilter": "10.1.100", "libswresample": "5.1.100",
                "libswscale": "8.1.100"}
    for module, version in versions.items():
        (pcdir / f"{module}.pc").write_text(f"Name: {module}\nDescription: stand-in\nVersion: {version}\n")
    ctx = on(box.ctx(env=box.with_(PKG_CONFIG_LIBDIR=str(pcdir))), glibc="2.17")
    seven = result(ctx, "toolchain.ffmpeg")
    assert seven.status is Status.FAIL and seven.finding.startswith("FFmpeg 7 (libavcodec 61.3.100)")


# --- isolation -----------------------------------------------------------------------------------------


def test_isolation_checks(box: Box, tmp_path: Path) -> None:
    ctx = box.ctx()
    assert result(ctx, "isolation.tag") == ok("NPUENV_USER=alice")
    assert result(ctx, "isolation.home") == ok(f"HOME={box.root}")
    assert result(ctx, "isolation.caches").finding == f"under {box.persistent}"
    assert result(ctx, "isolation.models").finding == f"under {box.persistent}"
    assert result(ctx, "isolation.init") == skip(f"no init.sh in {box.root}: not a folder user.add made")
    assert status(box.ctx(env=box.without("NPUENV_USER")), "isolation.tag") is Status.WARN
    away = box.ctx(env=box.with_(HOME="/root", UV_CACHE_DIR="/tmp/uv", TORCH_HOME="/tmp/torch"))
    assert status(away, "isolation.home") is Status.WARN
    caches = result(away, "isolation.caches")
    assert caches.status is Status.WARN and "UV_CACHE_DIR=/tmp/uv" in caches.finding
    assert "uv cache: /tmp/uv (UV_CACHE_DIR) — outside" in caches.details and "user.add" in caches.fix
    models = result(away, "isolation.models")
    assert models.status is Status.WARN and models.finding.endswith("lost at a restart: TORCH_HOME=/tmp/torch")
    not_modelarts = box.ctx(env=box.with_(NPUENV_PERSISTENT_ROOT=str(tmp_path / "absent")))
    assert status(not_modelarts, "isolation.home") is Status.SKIP


def test_isolation_checks_in_a_folder_user_add_made(box: Box) -> None:
    """doctor in ROOT/NAME looks at NAME's init.sh too, and wants this shell tagged NAME."""
    from npuenv.users.add import add_user

    add_user(box.persistent, "alice", shell="bash", environ=box.env)
    init_sh = box.root / "init.sh"
    assert result(box.ctx(), "isolation.init") == ok(f"{init_sh} (bash)")
    bob = result(box.ctx(env=box.with_(NPUENV_USER="bob")), "isolation.tag")
    assert bob.status is Status.FAIL and bob.finding.startswith("NPUENV_USER is 'bob', not 'alice'")
    away = result(box.ctx(env=box.with_(PIP_CACHE_DIR="/tmp/pip")), "isolation.caches")
    assert away.fix == f"init.sh points PIP_CACHE_DIR into {box.root}: remove what overrides it below its marker"
    init_sh.chmod(0o644)
    assert status(box.ctx(), "isolation.init") is Status.FAIL


# --- target env: a real CPython 3.10 venv with the world's stand-in wheels ------------------------------


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _uv_env(world: World, cache: Path) -> Dict[str, str]:
    env = {k: v for k, v in clean_env().items() if not k.startswith("UV_") and k != "VIRTUAL_ENV"}
    env.update(SSL_CERT_FILE=str(world.ca_pem), UV_CACHE_DIR=str(cache), UV_NO_CONFIG="1",
               UV_PYTHON_DOWNLOADS="never")
    return env


STAND_IN = '"""Test stand-in for {name}, made by npuenv\'s tests. NOT the real {name}."""\nSTAND_IN = True\n'


@dataclass
class TargetBox:
    root: Path
    site: Path
    cann: StandInCann

    @property
    def torch(self) -> str:
        """The torch the world installs: x86_64's torch_npu requires PyTorch's CPU build (UPSTREAM.md)."""
        return "2.1.0+cpu" if platform.machine() == "x86_64" else "2.1.0"

    def env(self, cann: bool = True) -> Dict[str, str]:
        env = base_env()  # CANN is NOT sourced here: the probe sources set_env.sh itself
        env.update(self.cann.env() if cann else {"NPUENV_CANN_ROOT": str(self.root / "no-cann")})
        return env

    def ctx(self, cann: bool = True, deep: bool = False, **fields: object):
        return replace(build_context(root=str(self.root), spec=None, environ=self.env(cann)),
                       deep=deep, **fields)


@pytest.fixture(scope="module")
def target_box(world: World, tmp_path_factory: pytest.TempPathFactory) -> TargetBox:
    """alice's workspace with MindSpeed-MM/.venv: CPython 3.10, the world's stand-in torch 2.1.0 and torch_npu
    2.1.0.post8 (its __init__ swapped for one that needs CANN's libhccl.so on LD_LIBRARY_PATH, like the real
    one), and stand-in apex, decord, mindspeed packages and a megatron/ folder in the project."""
    if world.python310 is None:
        pytest.skip("no CPython 3.10 interpreter found (pyenv versions dir or PATH)")
    base = tmp_path_factory.mktemp("target")
    root = base / "alice"
    venv = root / "MindSpeed-MM" / ".venv"
    env = _uv_env(world, base / "uv-cache")
    for argv in ([_uv(), "venv", "--quiet", "--python", str(world.python310), str(venv)],
                 [_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "--index-url",
                  f"{world.url}/simple", "--extra-index-url", world.mirrors["https://download.pytorch.org/whl/cpu"],
                  "torch==2.1.0", "torch-npu==2.1.0.post8"]):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    site = venv / "lib" / "python3.10" / "site-packages"
    (site / "torch_npu" / "__init__.py").write_text(TORCH_NPU_NEEDS_CANN)
    for name in ("apex", "decord", "mindspeed"):
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(STAND_IN.format(name=name))
    # Megatron-LM core_r0.8.0 has no megatron/__init__.py: a namespace package (megatron/core has one)
    (root / "MindSpeed-MM" / "megatron" / "core").mkdir(parents=True)
    (root / "MindSpeed-MM" / "megatron" / "core" / "__init__.py").write_text(STAND_IN.format(name="megatron.core"))
    return TargetBox(root, site, make_cann(base / "Ascend"))


def test_target_env_healthy_finds_the_modules_without_importing_them(target_box: TargetBox) -> None:
    ctx = target_box.ctx()
    outcomes = run_checks(doctor.select(["target"]), ctx)
    found = {o.check.name: o.result for o in outcomes}
    # the spec has no lock beside it here: target.lock has nothing to compare with
    assert found.pop("target.lock").status is Status.SKIP
    assert all(r.status is Status.OK for r in found.values()), found
    assert found["target.python"].finding.startswith("CPython 3.10.")
    # the CPU index's torch, as torch_npu's x86_64 wheel asks for (torch==2.1.0 admits 2.1.0+cpu)
    assert found["target.torch"].finding == f"torch {target_box.torch} (the spec asks for torch==2.1.0)"
    assert found["target.torch_npu"].finding == "torch_npu 2.1.0.post8, built for CANN 8.0.RC3 (installed)"
    assert found["target.imports"].finding == ("torch, torch_npu, apex, decord, mindspeed, megatron found (not "
                                               "imported; --deep imports them)")
    details = found["target.imports"].details
    assert details[0] == f"torch {target_box.torch}: {target_box.site / 'torch' / '__init__.py'}"
    assert details[1] == f"torch_npu 2.1.0.post8: {target_box.site / 'torch_npu' / '__init__.py'}"
    assert details[-1] == ("megatron (no installed distribution): "
                           f"{target_box.root / 'MindSpeed-MM' / 'megatron'} (a folder)")
    assert found["target.duplicates"].finding == "every module comes from one distribution"
    assert sum(1 for o in outcomes) == 6  # python, torch, torch_npu, imports, duplicates, lock


def _dist_info(site: Path, name: str, version: str, files: list) -> Path:
    folder = site / f"{name}-{version}.dist-info"
    folder.mkdir()
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (folder / "RECORD").write_text("".join(f"{f},,\n" for f in [*files, f"{folder.name}/METADATA"]))
    return folder


def test_target_duplicates_flags_decord_and_decord2_installed_together(target_box: TargetBox) -> None:
    """After switching strategies, decord 0.6.0 and decord2 3.4.0 both claim decord/ (issue: two distributions)."""
    made = [_dist_info(target_box.site, "decord", "0.6.0", ["decord/__init__.py", "decord/libdecord.so"]),
            _dist_info(target_box.site, "decord2", "3.4.0", ["decord/__init__.py", "decord2.libs/libavcodec.so"])]
    try:
        found = result(target_box.ctx(), "target.duplicates")
    finally:
        for folder in made:
            shutil.rmtree(folder)
    assert found.status is Status.FAIL
    assert found.finding == "decord is installed by decord 0.6.0 and decord2 3.4.0: they overwrite each other's files"
    assert "uv pip uninstall" in found.fix and "decord decord2" in found.fix and "--only build:decord" in found.fix


def test_target_env_healthy_with_deep_imports_and_cann_sourced_by_the_probe(target_box: TargetBox) -> None:
    outcomes = run_checks(doctor.select(["target"]), target_box.ctx(deep=True))
    found = {o.check.name: o.result for o in outcomes}
    # the spec has no lock beside it here: target.lock has nothing to compare with
    assert found.pop("target.lock").status is Status.SKIP
    assert all(r.status is Status.OK for r in found.values()), found
    assert found["target.torch_npu"].finding == "torch_npu 2.1.0.post8, built for CANN 8.0.RC3 (installed)"
    assert found["target.imports"].finding == (f"torch, torch_npu, apex, decord, mindspeed, megatron import "
                                               f"(with {target_box.cann.set_env} sourced)")
    assert found["target.imports"].details[:2] == ("torch: ok", "torch_npu: ok")


def test_target_imports_by_default_imports_nothing(target_box: TargetBox, tmp_path: Path) -> None:
    """`import torch` takes seconds on a real box: the default check must not run any module's code."""
    marker = tmp_path / "apex-was-imported"
    init = target_box.site / "apex" / "__init__.py"
    original = init.read_text()
    init.write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('apex_C missing')\n")
    try:
        cheap = result(target_box.ctx(), "target.imports")
        assert cheap.status is Status.OK and not marker.exists()
        deep = result(target_box.ctx(deep=True), "target.imports")
        assert marker.exists()
    finally:
        init.write_text(original)
    assert deep.status is Status.FAIL and deep.finding.startswith("apex do(es) not import")
    assert "apex: ImportError: apex_C missing" in deep.details


def test_target_imports_fail_without_cann_and_say_source_set_env(target_box: TargetBox) -> None:
    found = result(target_box.ctx(cann=False, deep=True), "target.imports")
    assert found.status is Status.FAIL
    assert found.finding.startswith("torch_npu do(es) not import (no CANN set_env.sh found): torch_npu: "
                                    "ImportError: libhccl.so: cannot open shared object file")
    assert "source /usr/local/Ascend/ascend-toolkit/set_env.sh" in found.fix


def test_without_cann_the_default_check_still_finds_torch_npu_and_reads_its_version(target_box: TargetBox) -> None:
    ctx = target_box.ctx(cann=False)
    assert result(ctx, "target.imports").status is Status.OK
    assert result(ctx, "target.torch_npu") == ok("torch_npu 2.1.0.post8 (built for CANN 8.0.RC3; no CANN found here)")


@pytest.mark.parametrize("deep", [False, True], ids=["default", "deep"])
def test_target_imports_name_the_step_that_provides_a_missing_module(target_box: TargetBox, deep: bool) -> None:
    decord = target_box.site / "decord"
    hidden = target_box.site / "decord-hidden"
    decord.rename(hidden)
    try:
        found = result(target_box.ctx(deep=deep), "target.imports")
    finally:
        hidden.rename(decord)
    assert found.status is Status.FAIL
    assert "No module named 'decord'" in found.finding
    assert found.finding.startswith("decord do(es) not import" if deep else "decord not found in the target env")
    assert found.fix == f"invoke bootstrap --root {target_box.root} --only build:decord"
    assert "decord: ModuleNotFoundError: No module named 'decord'" in found.details


def test_target_versions_against_the_spec_and_cann(target_box: TargetBox, tmp_path: Path) -> None:
    ctx = target_box.ctx()
    spec = ctx.spec
    wrong_python = result(replace(ctx, spec=replace(spec, python="3.11")), "target.python")
    assert wrong_python.status is Status.FAIL and "the spec asks for CPython 3.11" in wrong_python.finding
    env = replace(spec.env, packages=tuple("torch==2.2.0" if p.startswith("torch==") else p for p in spec.env.packages))
    wrong_torch = result(replace(target_box.ctx(), spec=replace(spec, env=env)), "target.torch")
    assert wrong_torch.finding == f"torch {target_box.torch} is installed, the spec asks for torch==2.2.0"
    wheels = dict(spec.wheels, torch_npu=replace(spec.wheels["torch_npu"], version="2.1.0.post10"))
    wrong_npu = result(replace(target_box.ctx(), spec=replace(spec, wheels=wheels)), "target.torch_npu")
    assert wrong_npu.finding == "torch_npu 2.1.0.post8 is installed, the spec asks for 2.1.0.post10"
    newer = make_cann(tmp_path / "newer", version="8.0.0")
    mismatch = result(on(target_box.ctx(), cann_root=newer.toolkit), "target.torch_npu")
    assert mismatch.status is Status.WARN
    assert mismatch.finding.startswith("torch_npu 2.1.0.post8 is built for CANN 8.0.RC3, CANN 8.0.0 is installed")
    assert "torch_npu 2.1.0.post10" in mismatch.fix


def test_target_env_missing(target_box: TargetBox, tmp_path: Path) -> None:
    empty = tmp_path / "bob"
    empty.mkdir()
    ctx = replace(target_box.ctx(), root=empty)
    missing = result(ctx, "target.python")
    assert missing.status is Status.FAIL and missing.finding.startswith("no target env: ")
    assert missing.fix == f"invoke bootstrap --root {empty} --only env"
    assert status(ctx, "target.imports") is Status.SKIP


def test_target_env_with_a_broken_set_env(target_box: TargetBox, tmp_path: Path) -> None:
    broken = make_cann(tmp_path / "broken")
    broken.set_env.write_text("echo 'set_env.sh: cannot find the driver' >&2\nreturn 3\n")
    found = result(on(target_box.ctx(), cann_root=broken.toolkit), "target.python")
    assert found.status is Status.FAIL
    assert found.finding == f"{broken.set_env} failed when sourced (exit 3): set_env.sh: cannot find the driver"


def test_probe_output_parsing_of_found_modules() -> None:
    out = (target.MARK + '{"kind": "found", "module": "torch", "ok": true, "where": "/s/torch/__init__.py"}\n' +
           target.MARK + '{"kind": "found", "module": "apex", "ok": false, "error": "No module named \'apex\'"}\n')
    facts = target.parse_probe(out)
    assert facts.found == {"torch": (True, "/s/torch/__init__.py"), "apex": (False, "No module named 'apex'")}
    assert facts.imports == {} and facts.died_importing is None


def test_probe_output_parsing_survives_noise_and_a_crash() -> None:
    out = ("set_env noise\n" + target.MARK + '{"kind": "python", "version": "3.10.13"}\n' + target.MARK +
           '{"kind": "versions", "versions": {"torch": "2.1.0"}}\n' + target.MARK +
           '{"kind": "importing", "module": "torch"}\n' + target.MARK + '{"kind": "import", "module": "torch", '
           '"ok": true}\n' + target.MARK + '{"kind": "importing", "module": "torch_npu"}\n')
    facts = target.parse_probe(out)
    assert facts.python["version"] == "3.10.13" and facts.versions == {"torch": "2.1.0"}
    assert facts.imports == {"torch": (True, "")} and facts.died_importing == "torch_npu"


def test_probe_argv_sources_set_env_through_arguments(tmp_path) -> None:
    set_env = tmp_path / "a b" / "set_env.sh"
    set_env.parent.mkdir()
    set_env.write_text("export PROBE_SOURCED=yes\n")
    argv = target.probe_argv(Path(sys.executable), "import os; print(os.environ['PROBE_SOURCED'])", set_env)
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.stdout == "yes\n", out
    assert target.probe_argv(Path("/py"), "x", None) == ["/py", "-c", "x"]


# --- sources: a tiny git repo and a spec of its own -----------------------------------------------------


def _git(*args: str, cwd: Path) -> str:
    env = {**base_env(), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t.invalid"}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


PATCH = """--- a/setup.py
+++ b/setup.py
@@ -1,2 +1,2 @@
 name = "tiny"
-install_with_pip = True
+install_with_pip = False
"""


@dataclass
class SourcesBox:
    root: Path
    checkout: Path
    spec: Path
    commit: str

    def ctx(self):
        env = {**base_env(), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
        return build_context(root=str(self.root), spec=str(self.spec), environ=env)


@pytest.fixture
def sources_box(tmp_path: Path) -> SourcesBox:
    """A workspace with repo `tiny` at its pin, the patch applied, the overlay and the copy in place."""
    root = tmp_path / "ws"
    checkout = root / "tiny"
    checkout.mkdir(parents=True)
    files = {"setup.py": 'name = "tiny"\ninstall_with_pip = True\n', "src/a.py": "A = 1\n", "dst/b.py": "B = 2\n",
             "pkg/__init__.py": "X = 3\n"}
    for name, text in files.items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(text)
    _git("init", "-q", cwd=checkout)
    _git("add", ".", cwd=checkout)
    _git("commit", "-q", "-m", "tiny", cwd=checkout)
    commit = _git("rev-parse", "HEAD", cwd=checkout)
    (tmp_path / "tiny.patch").write_text(PATCH)
    _git("apply", str(tmp_path / "tiny.patch"), cwd=checkout)
    shutil.copy2(checkout / "src" / "a.py", checkout / "dst" / "b.py")
    shutil.copytree(checkout / "pkg", root / "copied" / "pkg")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps({
        "name": "tiny", "python": "3.10",
        "repos": {"tiny": {"url": "https://example.invalid/tiny.git", "commit": commit, "path": "tiny"}},
        "patches": {"tiny-fix": {"repo": "tiny", "file": "tiny.patch"}},
        "overlays": {"tiny-over": {"from": {"repo": "tiny", "path": "src/a.py"},
                                   "to": {"repo": "tiny", "path": "dst/b.py"}}},
        "copies": {"tiny-copy": {"repo": "tiny", "path": "pkg", "to": "copied/pkg"}},
    }))
    return SourcesBox(root, checkout, spec, commit)


def test_sources_intact(sources_box: SourcesBox) -> None:
    found = {o.check.name: o.result for o in run_checks(doctor.select(["sources"]), sources_box.ctx())}
    assert found["sources.repos"] == ok("1 repo(s) at their pinned commits", ["repo:tiny"])
    assert found["sources.patches"] == ok("1 patch(es) applied", ["patch:tiny-fix"])
    assert found["sources.overlays"] == ok("1 overlay(s) intact", ["overlay:tiny-over"])
    assert found["sources.copies"] == ok("1 copied folder(s) intact", ["copy:tiny-copy"])


def test_sources_drift_names_the_bootstrap_steps(sources_box: SourcesBox) -> None:
    box = sources_box
    _git("checkout", "-q", "--", "setup.py", cwd=box.checkout)  # the patch is gone
    (box.checkout / "dst" / "b.py").write_text("edited by hand\n")
    fix = f"invoke bootstrap --root {box.root} --spec {box.spec} --only"
    patches = result(box.ctx(), "sources.patches")
    assert patches == CheckResult(Status.FAIL, "1 of 1 patch(es): patch:tiny-fix: not applied",
                                  f"{fix} patch:tiny-fix")
    overlays = result(box.ctx(), "sources.overlays")
    assert overlays.status is Status.FAIL and "drifted: dst/b.py differs from src/a.py" in overlays.finding
    assert overlays.fix == f"{fix} overlay:tiny-over"
    _git("commit", "-q", "-am", "moved on", cwd=box.checkout)
    repos = result(box.ctx(), "sources.repos")
    assert repos.status is Status.FAIL and f"the spec pins {box.commit[:12]}" in repos.finding
    assert repos.fix == f"{fix} repo:tiny"


def test_sources_copy_drift_against_the_recorded_tree(sources_box: SourcesBox) -> None:
    from npuenv.state import State
    from npuenv.steps.copy import tree_digest

    box = sources_box
    State(box.root / ".npuenv" / "state.json").save_step("copy:tiny-copy", "fp", {
        "tree": tree_digest(box.root / "copied" / "pkg")}, 0.0)
    assert status(box.ctx(), "sources.copies") is Status.OK
    (box.root / "copied" / "pkg" / "__init__.py").write_text("X = 4\n")
    changed = result(box.ctx(), "sources.copies")
    assert changed.status is Status.FAIL and "files in copied/pkg were changed" in changed.finding


def test_sources_without_the_checkout(sources_box: SourcesBox) -> None:
    shutil.rmtree(sources_box.checkout)
    ctx = sources_box.ctx()
    assert result(ctx, "sources.repos").finding == "1 of 1 repo(s): repo:tiny: missing"
    assert result(ctx, "sources.patches").finding == "1 of 1 patch(es): patch:tiny-fix: not checked: repo:tiny missing"


# --- the task, for real: `invoke doctor` in a subprocess ------------------------------------------------


def invoke(*args: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "doctor", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_task_healthy_box_exits_0_with_a_table(box: Box) -> None:
    proc = invoke("--root", str(box.root), "--check", "cann,npu", "--check", "isolation,trust.verify", env=box.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "CANN & driver"
    assert any(line.startswith("  ✓ cann.sourced") for line in lines)
    assert "NPU devices & processes" in lines and "isolation" in lines
    assert lines[-1] == "doctor: 14 checks, no issues found (1 skipped)"  # isolation.init: no init.sh here


def test_task_broken_box_exits_1_and_shows_the_fix(box: Box) -> None:
    env = box.with_(NPUENV_DRIVER_ROOT=str(box.tmp / "nodriver"), NPUS_PER_NODE="8")
    proc = invoke("--root", str(box.root), "--check", "cann.driver,npu.devices,isolation.tag", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "  ✗ cann.driver" in proc.stdout and "fix: export NPUS_PER_NODE=4" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "doctor: 3 checks, 2 failed, 0 warnings"


def test_task_json_has_one_object_per_check(box: Box) -> None:
    proc = invoke("--root", str(box.root), "--json", "--check", "system,storage.free,cann.driver", env=box.env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [d["name"] for d in data] == ["system.arch", "system.glibc", "system.os", "storage.free", "cann.driver"]
    assert set(data[0]) == {"name", "group", "status", "finding", "fix", "details", "seconds"}
    assert data[-1]["status"] == "ok" and data[-1]["finding"].startswith("driver 24.1.rc3")


def test_task_list_checks_and_unknown_names(box: Box) -> None:
    listed = invoke("--list-checks", env=box.env)
    assert listed.returncode == 0
    for name in doctor.REGISTRY:
        assert f"  {name} " in listed.stdout
    assert "(--online) a real TLS handshake" in listed.stdout
    unknown = invoke("--check", "cann,bogus", env=box.env)
    assert unknown.returncode == 2
    assert "error: unknown check: bogus" in unknown.stderr and "checks: system.arch" in unknown.stderr


def test_task_log_triage(box: Box, tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("step 1\nRuntimeError: NPU out of memory. Tried to allocate 2.00 GiB\nstep 2\n"
                   "RuntimeError: The Inner error is reported as above. The process exits for this inner error, "
                   "and the current working operator name is HcclAllreduce.\n")
    found = invoke("--log", str(log), env=box.env)
    assert found.returncode == 1, found.stderr
    assert f"✗ {log}:2: NPU out of memory" in found.stdout
    assert f"✗ {log}:4: " in found.stdout and "here probably line 2: NPU out of memory" in found.stdout
    clean = tmp_path / "clean.log"
    clean.write_text("all good\n")
    assert invoke("--log", str(clean), env=box.env).returncode == 0
    missing = invoke("--log", str(tmp_path / "nope.log"), env=box.env)
    assert missing.returncode == 2 and f"error: --log {tmp_path / 'nope.log'}: no such file" in missing.stderr


def test_task_deep_option_imports_and_the_default_only_finds(target_box: TargetBox, tmp_path: Path) -> None:
    env = target_box.env()
    cheap = invoke("--root", str(target_box.root), "--check", "target", env=env)
    assert cheap.returncode == 0, cheap.stdout + cheap.stderr
    assert ("✓ target.imports     torch, torch_npu, apex, decord, mindspeed, megatron found (not imported; --deep "
            "imports them)") in cheap.stdout
    assert "✓ target.torch_npu   torch_npu 2.1.0.post8, built for CANN 8.0.RC3 (installed)" in cheap.stdout
    deep = invoke("--root", str(target_box.root), "--check", "target.imports", "--deep", "--json", env=env)
    assert deep.returncode == 0, deep.stdout + deep.stderr
    [found] = json.loads(deep.stdout)
    assert found["finding"] == (f"torch, torch_npu, apex, decord, mindspeed, megatron import "
                                f"(with {target_box.cann.set_env} sourced)")
    broken = invoke("--root", str(target_box.root), "--check", "target.imports", "--deep",
                    env=target_box.env(cann=False))
    assert broken.returncode == 1 and "torch_npu do(es) not import" in broken.stdout
    assert "fix: source /usr/local/Ascend/ascend-toolkit/set_env.sh" in broken.stdout
    log = tmp_path / "train.log"
    log.write_text("fine\n")
    refused = invoke("--log", str(log), "--deep", env=env)
    assert refused.returncode == 2 and "--deep" in refused.stderr
    assert "--deep" in invoke("--help", env=env).stdout
