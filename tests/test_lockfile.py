"""The lock's file format, its checks and its URL rewriting, without a world: files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from npuenv import lockfile
from npuenv.errors import LockFileError
from npuenv.locking import without_hashes
from npuenv.mirrors import combine

UV_LOCK = '''version = 1
revision = 5

[[package]]
name = "pyyaml"
version = "6.0.2"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/packages/pyyaml-6.0.2.tar.gz", hash = "sha256:aa", size = 1 }
wheels = [
    { url = "https://files.pythonhosted.org/packages/PyYAML-6.0.2-cp310-cp310-manylinux_2_17_aarch64.whl", hash = "sha256:bb", size = 2 },
]

[[package]]
name = "torch-npu"
version = "2.1.0.post8"
source = { path = "wheels/torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl" }
wheels = [
    { filename = "torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", hash = "sha256:cc" },
]
'''


def data(**content) -> dict:
    return {"spec": {"name": "x"}, "uv": {"arches": ["aarch64", "x86_64"]},
            "content": {"spec": {"repos": {"a": {"commit": "1" * 40}}, **content}, "patch_files": {"p": "a" * 64}}}


def written(tmp_path: Path) -> Path:
    spec = tmp_path / "x.yaml"
    spec.write_text("name: x\n")
    lockfile.write(spec, data(), UV_LOCK)
    return spec


def test_both_files_are_written_beside_the_spec_and_read_back(tmp_path):
    spec = written(tmp_path)
    assert lockfile.paths(spec) == (tmp_path / "x.lock", tmp_path / "x.uv.lock")
    found = lockfile.read(spec)
    assert found.uv_lock == UV_LOCK and found.arches == ("aarch64", "x86_64")
    assert lockfile.read(tmp_path / "other.yaml") is None  # no lock: not an error


@pytest.mark.parametrize("damage, message", [
    (lambda j, u: j.write_text(j.read_text().replace('"aarch64",', '')), "x.lock was changed by hand"),
    (lambda j, u: u.write_text(UV_LOCK.replace("6.0.2", "6.0.1")), "x.uv.lock was changed by hand"),
    (lambda j, u: u.unlink(), "cannot read the uv lock that x.lock names"),
    (lambda j, u: j.write_text(j.read_text()[:40]), "x.lock: cannot read the lock"),
    (lambda j, u: j.write_text(json.dumps({"format": 99})), "lock format 99, this npuenv reads format 1"),
])
def test_a_damaged_lock_is_refused_by_name_with_the_fix(tmp_path, damage, message):
    spec = written(tmp_path)
    damage(*lockfile.paths(spec))
    with pytest.raises(LockFileError) as caught:
        lockfile.read(spec)
    assert message in caught.value.message and "invoke lock" in caught.value.hint


def test_differences_name_each_changed_key():
    old = data(env={"packages": ["a", "b"]}, python="3.10")["content"]
    new = data(env={"packages": ["b", "c"]}, python="3.11")["content"]
    new["spec"]["repos"]["a"]["commit"] = "2" * 40
    new["patch_files"]["p"] = "b" * 64
    assert lockfile.differences(old, new) == [
        "env.packages: + c, - a", "python: 3.10 -> 3.11", "repos.a.commit: 1111111… -> 2222222…",
        "patches.p: its file changed"]
    assert lockfile.differences(old, old) == []


def test_mirrors_are_taken_out_of_a_lock_and_put_back_by_each_box():
    rules = combine([("https://pypi.org/simple", "https://mirror.example/pypi/simple"),
                     ("https://files.pythonhosted.org/", "file:///srv/files/")])
    mirrored = lockfile.rewrite_urls(UV_LOCK, rules.rewrite)
    assert '"https://mirror.example/pypi/simple"' in mirrored and '"file:///srv/files/packages/pyyaml-6.0.2.tar.gz"' in mirrored
    assert "pythonhosted" not in mirrored
    assert lockfile.rewrite_urls(mirrored, lockfile.unmirror(rules.rules)) == UV_LOCK


def test_a_package_without_a_sha256_is_named():
    assert without_hashes(UV_LOCK) == []  # a path wheel has its hash in `filename = ..., hash = ...`
    stripped = UV_LOCK.replace(', hash = "sha256:bb"', "")
    assert without_hashes(stripped) == ["pyyaml==6.0.2"]


def _invoke(*args: str, cwd: Path) -> "subprocess.CompletedProcess[str]":
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(repo), *args], cwd=cwd,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_lock_refuses_an_unknown_architecture_by_name(tmp_path):
    proc = _invoke("lock", "--root", str(tmp_path), "--arch", "armv7l", cwd=tmp_path)
    assert proc.returncode == 2 and "--arch armv7l: not an architecture npuenv locks" in proc.stderr
    assert "aarch64 or x86_64" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_lock_refuses_a_spec_without_a_target_env(tmp_path):
    spec = tmp_path / "bare.yaml"
    spec.write_text("name: bare\npython: \"3.10\"\nindex: https://pypi.org/simple\ndirs: [logs]\n")
    proc = _invoke("lock", "--root", str(tmp_path / "ws"), "--spec", str(spec), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "the spec bare has no env: section, so there is no target env to lock" in proc.stderr
    assert not (tmp_path / "bare.lock").exists()


def test_a_bundle_takes_the_wheels_this_platform_and_python_install():
    from npuenv.bundle import compatible_wheels

    base = "https://files.pythonhosted.org/packages/x/"
    files = ["charset_normalizer-3.5.2-cp310-cp310-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
             "charset_normalizer-3.5.2-cp310-cp310-manylinux_2_28_x86_64.whl",
             "charset_normalizer-3.5.2-cp37-abi3-manylinux_2_28_x86_64.whl",
             "charset_normalizer-3.5.2-cp310-cp310-musllinux_1_2_x86_64.whl",
             "charset_normalizer-3.5.2-cp310-cp310-manylinux_2_17_aarch64.whl",
             "charset_normalizer-3.5.2-cp311-cp311-manylinux_2_17_x86_64.whl",
             "charset_normalizer-3.5.2-py3-none-any.whl"]
    package = {"wheels": [(base + f, "0" * 64) for f in files]}
    chosen = [url.rsplit("/", 1)[-1] for url, _sha in compatible_wheels(package, "x86_64", "3.10.13")]
    assert chosen == files[:2]  # this Python's own builds, every glibc level; not abi3, musl, aarch64, 3.11
    pure = {"wheels": [(base + files[2], "0" * 64), (base + files[-1], "0" * 64)]}
    assert [u.rsplit("/", 1)[-1] for u, _ in compatible_wheels(pure, "aarch64", "3.10.13")] == [files[-1]]
    torch = {"wheels": [("https://download.pytorch.org/whl/cpu/torch-2.1.0%2Bcpu-cp310-cp310-linux_x86_64.whl", "0" * 64)]}
    assert len(compatible_wheels(torch, "x86_64", "3.10.1")) == 1  # an escaped + in the URL
    # abi3 from several CPythons (bcrypt 5: cp38-abi3 and cp39-abi3): only the newest at or below 3.10,
    # which is the one an installer takes
    abi3 = ["bcrypt-5.0.0-cp38-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            "bcrypt-5.0.0-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            "bcrypt-5.0.0-cp39-abi3-manylinux_2_34_x86_64.whl",
            "bcrypt-5.0.0-cp311-abi3-manylinux_2_34_x86_64.whl"]
    bcrypt = {"wheels": [(base + f, "0" * 64) for f in abi3]}
    assert [u.rsplit("/", 1)[-1] for u, _ in compatible_wheels(bcrypt, "x86_64", "3.10.13")] == abi3[1:3]
