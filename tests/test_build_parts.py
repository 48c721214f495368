"""The pieces behind build steps: distro install commands, build-log triage, the wheel cache, strategy."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from npuenv import buildlog, toolchain
from npuenv.keyvalues import parse_key_values
from npuenv.spec import load_spec
from npuenv.machine import glibc_version
from npuenv.steps.build import choose_strategy
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
    found = toolchain.install_command(parse_key_values(text), ["cmake", "c++", "libavcodec"])
    assert found == command


def test_euleros_uses_yum_unless_dnf_exists_and_unknown_distros_get_none():
    command = toolchain.install_command(parse_key_values(EULER), ["libavcodec", "libavformat"])
    assert command[0] in ("yum", "dnf") and command[1:] == ["install", "-y", "ffmpeg-devel"]
    assert command[0] == ("dnf" if shutil.which("dnf") else "yum")
    assert toolchain.install_command({"ID": "plan9"}, ["cmake"]) is None


def test_key_value_files_os_release_and_cann_versions_share_one_parser():
    """/etc/os-release and CANN's version files: comments skipped, quotes and spaces removed, other lines ignored."""
    text = '# a comment\n  ID="openEuler"  \n#ID=fake\nversion=8.0.RC3\nPRETTY_NAME=\'Open Euler\'\nno pair here\n=x\n'
    assert parse_key_values(text) == {"ID": "openEuler", "version": "8.0.RC3", "PRETTY_NAME": "Open Euler"}
    assert toolchain.family(parse_key_values(text)) == "rhel"


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
    default = load_spec("mindspeed-mm-internvl2.5").builds["decord"]
    assert choose_strategy(default, "x86_64", "2.36") == "source"  # the default builds decord, as the team did
    decord = dataclasses.replace(default, strategy="auto")
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


# --- a built wheel with an invalid version (Ascend apex's 0.1-ascend) --------------------------------------


def _apex_like_wheel(folder, version_in_name="0.1_ascend", metadata_version="0.1-ascend"):
    """A wheel named and filled the way setuptools 65.7 + wheel write apex after Ascend's npu.patch."""
    import zipfile

    from tests.world.wheels import _record_hash

    dist_info = f"apex-{version_in_name}.dist-info"
    entries = {
        "apex/__init__.py": b"import apex_C\n",
        "apex_C.cpython-310-x86_64-linux-gnu.so": b"\x7fELF stand-in",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: apex\nVersion: {metadata_version}\n\nApex.\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp310-cp310-linux_x86_64\n",
        f"{dist_info}/top_level.txt": b"apex\napex_C\n",
    }
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in entries.items()) + f"{dist_info}/RECORD,,\n"
    entries[f"{dist_info}/RECORD"] = record.encode()
    path = folder / f"apex-{version_in_name}-cp310-cp310-linux_x86_64.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_installers_refuse_the_apex_wheel_name_and_reversion_fixes_it(tmp_path):
    import base64
    import hashlib
    import zipfile

    from npuenv.reversion import installable, name_problem

    built = _apex_like_wheel(tmp_path / "dist")
    assert "invalid version" in name_problem(built.name).lower()
    fixed, note = installable(built, "0.1+ascend", tmp_path / "out", "builds.apex")
    assert fixed.name == "apex-0.1+ascend-cp310-cp310-linux_x86_64.whl" and not name_problem(fixed.name)
    assert "re-versioned apex-0.1_ascend" in note
    with zipfile.ZipFile(fixed) as archive:
        names = archive.namelist()
        assert not any("0.1_ascend" in n for n in names)
        assert "apex-0.1+ascend.dist-info/METADATA" in names and "apex/__init__.py" in names
        metadata = archive.read("apex-0.1+ascend.dist-info/METADATA").decode()
        assert "Version: 0.1+ascend\n" in metadata and "0.1-ascend" not in metadata
        record = archive.read("apex-0.1+ascend.dist-info/RECORD").decode().splitlines()
        assert record[-1] == "apex-0.1+ascend.dist-info/RECORD,,"
        for line in record[:-1]:  # every other entry's hash and size are right
            path, digest, size = line.rsplit(",", 2)
            data = archive.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data)), path
        assert len(record) == len(names)
        assert archive.read("apex_C.cpython-310-x86_64-linux-gnu.so") == b"\x7fELF stand-in"


def test_a_valid_wheel_is_kept_and_an_invalid_one_without_a_version_is_refused(tmp_path):
    from npuenv.reversion import installable
    from npuenv.errors import WheelNameError

    valid = _apex_like_wheel(tmp_path / "ok", "0.1+ascend", "0.1+ascend")
    assert installable(valid, "9.9", tmp_path / "out", "builds.apex") == (valid, "")
    invalid = _apex_like_wheel(tmp_path / "bad")
    with pytest.raises(WheelNameError) as caught:
        installable(invalid, None, tmp_path / "out", "builds.apex")
    assert "no installer accepts" in caught.value.message and "builds.apex.version" in caught.value.hint
    with pytest.raises(WheelNameError, match="does not make"):
        installable(invalid, "not a version", tmp_path / "out", "builds.apex")


def test_uv_installs_the_reversioned_wheel_and_refuses_the_original(tmp_path):
    """Real uv, into a real venv: the reason for all this."""
    from npuenv.reversion import reversion
    from npuenv.workspace import uv_binary

    built = _apex_like_wheel(tmp_path / "dist")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1", "UV_OFFLINE": "1"}
    subprocess.run([uv_binary(), "venv", "--quiet", "--python", sys.executable, str(venv)], env=env, check=True)
    refused = subprocess.run([uv_binary(), "pip", "install", "--python", str(venv / "bin" / "python"), "--no-deps",
                              str(built)], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "0.1_ascend" in refused.stderr
    fixed = reversion(built, "0.1+ascend", tmp_path / "out")
    # the tag says cp310/linux_x86_64: install it as files, whatever this interpreter is
    subprocess.run([uv_binary(), "pip", "install", "--python", str(venv / "bin" / "python"), "--no-deps",
                    "--python-platform", "x86_64-manylinux_2_17", "--python-version", "3.10", "--target",
                    str(tmp_path / "target"), str(fixed)], env=env, check=True, capture_output=True)
    installed = list((tmp_path / "target").glob("apex-*.dist-info"))
    assert [p.name for p in installed] == ["apex-0.1+ascend.dist-info"]
    assert "Version: 0.1+ascend" in (installed[0] / "METADATA").read_text()


def test_the_cache_never_holds_an_invalid_wheel(tmp_path):
    from npuenv.errors import WheelNameError

    cache = WheelCache(tmp_path / "wheels")
    invalid = _apex_like_wheel(tmp_path / "dist")
    with pytest.raises(WheelNameError, match="not caching it"):
        cache.put("apex", "k" * 20, invalid, {})
    assert not (tmp_path / "wheels" / "built" / "apex" / ("k" * 20)).exists()
    # an entry an older npuenv left with such a wheel is not an entry: the next build replaces it
    folder = tmp_path / "wheels" / "built" / "apex" / ("j" * 20)
    folder.mkdir(parents=True)
    shutil.copy2(invalid, folder / invalid.name)
    (folder / "key.json").write_text(json.dumps({"build": "apex", "key": "j" * 20, "wheel": invalid.name}))
    assert cache.get("apex", "j" * 20) is None and cache.entries() == []
    valid = _apex_like_wheel(tmp_path / "ok", "0.1+ascend", "0.1+ascend")
    assert cache.put("apex", "j" * 20, valid, {}).wheel.name == valid.name
    assert [e.wheel.name for e in cache.entries()] == [valid.name]


def test_leftovers_of_killed_runs_are_swept_but_not_what_is_in_use(tmp_path):
    """`.<key>.tmp-PID` of a dead process goes; a live one's stays; a `.part` someone downloads stays."""
    from npuenv import wheelhouse
    from npuenv.flock import entry_lock

    wheels = tmp_path / "wheels"
    folder = wheels / "built" / "apex"
    dead = _dead_pid()
    (folder / f".k.tmp-{dead}").mkdir(parents=True)
    (folder / f".k.old-{dead}").mkdir()
    (folder / f".k.tmp-{os.getpid()}").mkdir()
    (wheels / "idle.whl.part").write_bytes(b"half")
    (wheels / "busy.whl.part").write_bytes(b"half")
    with entry_lock(wheels / ".locks" / "busy.whl.lock"):
        removed = wheelhouse.sweep(wheels)
    assert sorted(p.name for p in removed) == [f".k.old-{dead}", f".k.tmp-{dead}", "idle.whl.part"]
    assert (folder / f".k.tmp-{os.getpid()}").is_dir() and (wheels / "busy.whl.part").is_file()


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
