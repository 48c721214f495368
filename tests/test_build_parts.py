"""The pieces behind build steps: distro install commands, build-log triage, the wheel cache, strategy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from npuenv import buildlog, toolchain
from npuenv.spec import load_spec
from npuenv.steps.build import choose_strategy, glibc_version
from npuenv.wheelcache import WheelCache, cache_key

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n'
EULER = 'NAME="EulerOS"\nVERSION="2.0 (SP10)"\nID="euleros"\nVERSION_ID="2.0"\n'
OPENEULER = 'NAME="openEuler"\nID="openEuler"\nVERSION_ID="22.03"\n'


@pytest.mark.parametrize("text, command", [
    (DEBIAN, ["apt-get", "install", "-y", "cmake", "g++", "libavcodec-dev"]),
    (UBUNTU, ["apt-get", "install", "-y", "cmake", "g++", "libavcodec-dev"]),
    (OPENEULER, ["dnf", "install", "-y", "cmake", "gcc-c++", "ffmpeg-devel"]),
])
def test_install_command_per_distribution(text, command):
    found = toolchain.install_command(toolchain.parse_os_release(text), ["cmake", "c++", "libavcodec"])
    assert found == command


def test_euleros_uses_yum_unless_dnf_exists_and_unknown_distros_get_none():
    command = toolchain.install_command(toolchain.parse_os_release(EULER), ["libavcodec", "libavformat"])
    assert command[0] in ("yum", "dnf") and command[1:] == ["install", "-y", "ffmpeg-devel"]
    assert command[0] == ("dnf" if shutil.which("dnf") else "yum")
    assert toolchain.install_command({"ID": "plan9"}, ["cmake"]) is None


def test_ffmpeg_release_from_libavcodec():
    assert [toolchain.ffmpeg_release(v) for v in ("58.134.100", "59.37.100", "60.31.102", "61.3.100")] == [
        "FFmpeg 4", "FFmpeg 5", "FFmpeg 6", "FFmpeg 7"]


def test_probe_finds_real_tools_and_reports_missing_ones():
    found = toolchain.probe(["git", "no-such-tool-npuenv"], [], os.environ)
    assert found.tools["git"] == shutil.which("git")
    assert found.missing == ["no-such-tool-npuenv"]


@pytest.mark.skipif(not shutil.which("pkg-config"), reason="pkg-config is not installed")
def test_pkgconfig_version_is_read_for_real():
    proc = subprocess.run(["pkg-config", "--list-all"], capture_output=True, text=True)
    module = proc.stdout.split()[0] if proc.stdout.split() else None
    if module is None:
        pytest.skip("pkg-config knows no module here")
    expected = subprocess.run(["pkg-config", "--modversion", module], capture_output=True, text=True).stdout.strip()
    assert toolchain.pkgconfig_version(module, os.environ) == expected
    assert toolchain.pkgconfig_version("no-such-module-npuenv", os.environ) is None


FFMPEG5_LOG = """\
[ 40%] Building CXX object CMakeFiles/decord.dir/src/video/video_reader.cc.o
In file included from /w/decord/src/video/video_reader.cc:8:
/w/decord/src/video/ffmpeg/ffmpeg_common.h:187:5: error: 'AVBSFContext' was not declared in this scope
  187 |     AVBSFContext, Deleterp<AVBSFContext, void, av_bsf_free> >;
/w/decord/src/video/ffmpeg/ffmpeg_common.h:187:5: error: 'AVBSFContext' was not declared in this scope
make[2]: *** [CMakeFiles/decord.dir/build.make:76: CMakeFiles/decord.dir/src/video/video_reader.cc.o] Error 1
"""


def test_error_lines_are_the_compiler_errors_once_each():
    lines = buildlog.error_lines(FFMPEG5_LOG)
    assert lines[0].endswith("error: 'AVBSFContext' was not declared in this scope")
    assert len(lines) == 2 and "Error 1" in lines[1]


@pytest.mark.parametrize("log, words", [
    (FFMPEG5_LOG, "FFmpeg patch"),
    ("fatal error: libavcodec/avcodec.h: No such file or directory", "FFmpeg development headers"),
    ("ModuleNotFoundError: No module named 'torch'", "torch is not importable"),
    ("RuntimeError: setuptools 69.0.0 is too new for this build", "setuptools<=65.7.0"),
    ("-- No CMAKE_CXX_COMPILER could be found.", "no C++ compiler"),
    ("fatal: unable to access 'https://github.com/NVIDIA/apex.git/': Could not resolve host: github.com",
     "NPUENV_MIRRORS"),
])
def test_known_causes(log, words):
    assert words in buildlog.known_cause(log)


def test_no_hint_for_an_unknown_failure():
    assert buildlog.known_cause("something odd happened") is None


def test_wheel_cache_put_get_list_remove(tmp_path):
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel bytes")
    cache = WheelCache(tmp_path / "wheels")
    inputs = {"commit": "a" * 40, "patches": {"patch:p": "b" * 64}}
    key = cache_key(inputs)
    assert cache.get("x", key) is None
    entry = cache.put("x", key, wheel, inputs)
    assert entry.wheel.read_bytes() == b"wheel bytes" and entry.inputs == inputs
    assert cache.get("x", key) == entry and cache.entries() == [entry]
    assert not [p for p in (tmp_path / "wheels" / "built" / "x").iterdir() if p.name.startswith(".")]
    cache.remove(entry)
    assert cache.entries() == []


def test_cache_key_changes_with_any_input():
    base = {"commit": "a" * 40, "patches": {"patch:p": "b" * 64}, "versions": {"torch": "2.1.0"}}
    changed_patch = json.loads(json.dumps(base))
    changed_patch["patches"]["patch:p"] = "c" * 64
    changed_torch = json.loads(json.dumps(base))
    changed_torch["versions"]["torch"] = "2.2.0"
    keys = {cache_key(base), cache_key(changed_patch), cache_key(changed_torch)}
    assert len(keys) == 3 and cache_key(dict(reversed(list(base.items())))) == cache_key(base)


def test_a_half_written_entry_is_not_an_entry(tmp_path):
    folder = tmp_path / "wheels" / "built" / "x" / "k"
    folder.mkdir(parents=True)
    (folder / "key.json").write_text('{"build": "x", "key": "k", "wheel": "gone.whl"}')
    assert WheelCache(tmp_path / "wheels").entries() == []


def test_auto_strategy_takes_the_prebuilt_wheel_only_where_it_installs():
    decord = load_spec("mindspeed-mm-internvl2.5").builds["decord"]
    assert choose_strategy(decord, "x86_64", "2.36") == "wheel"
    assert choose_strategy(decord, "aarch64", "2.28") == "wheel"
    assert choose_strategy(decord, "aarch64", "2.17") == "source"  # CentOS 7-era glibc
    assert choose_strategy(decord, "riscv64", "2.36") == "source"
    assert choose_strategy(decord, "x86_64", None) == "source"


def test_glibc_version_is_this_machines():
    version = glibc_version()
    assert version and version.count(".") >= 1
    ldd = subprocess.run(["ldd", "--version"], capture_output=True, text=True).stdout
    assert version in ldd


def test_pkgconfig_conditions_split_and_judge_versions():
    assert toolchain.split_requirement("libavcodec>=58,<61") == ("libavcodec", ">=58,<61")
    assert toolchain.split_requirement("libswscale") == ("libswscale", "")
    found = toolchain.Toolchain(modules={"libavcodec": "61.3.100", "libavformat": "61.1.100"})
    assert toolchain.version_problems(["libavcodec>=58,<61", "libavformat"], found) == [
        "libavcodec 61.3.100 (FFmpeg 7) does not satisfy >=58,<61"]
    assert toolchain.version_problems(["libavcodec>=58,<62"], found) == []
