"""Machine: the facts a plan depends on, read once from this machine (and built by hand in other tests)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from npuenv.machine import Machine, glibc_version


def test_read_takes_this_machine(tmp_path):
    found = Machine.read({"PATH": os.environ["PATH"]})
    expected = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    assert found.arch == expected
    assert found.glibc == glibc_version() and found.glibc == platform.libc_ver()[1]
    assert found.cores == len(os.sched_getaffinity(0))
    assert found.os_release.get("ID") and found.family in ("debian", "rhel", None)
    default = Path("/usr/local/Ascend/ascend-toolkit/set_env.sh")
    assert found.cann_set_env == default and found.cann_present == default.is_file()


def test_cann_is_where_the_environment_says_and_present_only_when_there(tmp_path):
    set_env = tmp_path / "Ascend" / "set_env.sh"
    absent = Machine.read({"NPUENV_CANN_SET_ENV": str(set_env), "NPUENV_CANN_ROOT": str(tmp_path / "Ascend")})
    assert absent.cann_set_env == set_env and absent.set_env is None
    assert absent.cann_root == tmp_path / "Ascend"
    set_env.parent.mkdir()
    set_env.write_text("export ASCEND_TOOLKIT_HOME=/x\n")
    assert Machine.read({"NPUENV_CANN_SET_ENV": str(set_env)}).set_env == set_env


def test_install_hints_say_dnf_only_on_a_rhel_box_that_has_it(tmp_path):
    euler = tmp_path / "os-release"
    euler.write_text('NAME="EulerOS"\nID="euleros"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert Machine.read({"PATH": str(bin_dir)}, str(euler)).install_command(["cmake"]) == ["yum", "install", "-y",
                                                                                         "cmake"]
    dnf = bin_dir / "dnf"
    dnf.write_text("#!/bin/sh\n")
    dnf.chmod(0o755)
    machine = Machine.read({"PATH": str(bin_dir)}, str(euler))
    assert machine.dnf and machine.install_command(["cmake"]) == ["dnf", "install", "-y", "cmake"]
    debian = tmp_path / "debian"
    debian.write_text("ID=ubuntu\nID_LIKE=debian\n")
    assert not Machine.read({"PATH": str(bin_dir)}, str(debian)).dnf  # no dnf lookup off rhel
