"""Finding CPython 3.10 for the target env, for real on this machine: probes, pyenv, uv and the shim trap.

pyenv's shims are the trap: in a folder whose .python-version names another version, the `python3.10`
shim exits 127, and uv, finding it first on PATH, fails hard instead of looking further. npuenv takes
shim folders off PATH for uv and looks in pyenv's versions itself.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from npuenv import pythons, workspace
from tests.world.fixtures import clean_env

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO / "env_specs" / "mindspeed-mm-internvl2.5.yaml"


# --- what this machine has ------------------------------------------------------------------------------

def pyenv_root() -> Optional[Path]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    return root if (root / "versions").is_dir() else None


def pyenv_versions(root: Path) -> List[str]:
    """Installed CPython versions (X.Y.Z folders) in pyenv's versions/."""
    names = [p.name for p in (root / "versions").iterdir() if re.fullmatch(r"\d+\.\d+\.\d+", p.name)]
    return sorted(names, key=lambda v: tuple(int(x) for x in v.split(".")))


def pyenv_310(root: Optional[Path]) -> List[Path]:
    if root is None:
        return []
    return [root / "versions" / v / "bin" / "python3.10" for v in pyenv_versions(root)
            if v.startswith("3.10.") and (root / "versions" / v / "bin" / "python3.10").is_file()]


def other_pyenv_version(root: Path) -> Optional[str]:
    """pyenv's global version when it is not 3.10, else any installed version that is not 3.10."""
    installed = [v for v in pyenv_versions(root) if not v.startswith("3.10.")]
    version_file = root / "version"
    if version_file.is_file():
        lines = version_file.read_text().split()
        if lines and lines[0] in installed:
            return lines[0]
    return installed[-1] if installed else None


@pytest.fixture
def pyenv() -> Path:
    root = pyenv_root()
    if root is None:
        pytest.skip("no pyenv on this machine (neither $PYENV_ROOT nor ~/.pyenv has versions/)")
    return root


@pytest.fixture
def python310(pyenv) -> Path:
    found = pyenv_310(pyenv)
    if not found:
        pytest.skip(f"pyenv at {pyenv} has no 3.10.x")
    return found[-1]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def base_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in clean_env().items()
           if not k.startswith(("NPUENV_", "PYENV_VERSION", "UV_", "CONDA_", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


def bootstrap_python(cwd: Path, root: Path, env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "bootstrap", "--only", "python",
            "--root", str(root), "--spec", str(DEFAULT_SPEC), *args]
    return subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def recorded_python(root: Path) -> dict:
    state = json.loads((root / ".npuenv" / "state.json").read_text())
    return state["steps"]["python"]["resolved"]


# --- without_shims, probe, matches ----------------------------------------------------------------------

def test_without_shims_drops_shim_folders_only():
    path = os.pathsep.join(["/root/.pyenv/shims", "/usr/local/bin", "/root/.pyenv/plugins/pyenv-virtualenv/shims",
                            "", "/home/me/.asdf/shims/", "/opt/shimsy/bin", "/opt/shims-tools", "/usr/bin"])
    assert pythons.without_shims(path) == os.pathsep.join(
        ["/usr/local/bin", "/opt/shimsy/bin", "/opt/shims-tools", "/usr/bin"])
    assert pythons.without_shims("") == ""


def test_probe_a_real_interpreter():
    facts = pythons.probe(sys.executable)
    assert facts is not None
    assert facts["version"] == platform.python_version()
    assert facts["implementation"] == sys.implementation.name
    assert facts["machine"] == platform.machine()
    assert Path(facts["executable"]).resolve() == Path(sys.executable).resolve()


def test_probe_something_that_is_not_an_interpreter(tmp_path):
    script = tmp_path / "python3.10"
    script.write_text("#!/bin/sh\necho 3.10\n")
    script.chmod(0o644)
    assert not os.access(script, os.X_OK)
    assert pythons.probe(str(script)) is None  # not executable
    assert pythons.probe(str(tmp_path / "missing")) is None  # not there
    assert pythons.probe(str(tmp_path)) is None  # a folder
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert pythons.probe(str(script)) is None  # runs, but says nothing a probe understands
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho '{\"version\": \"3.10.1\"}'\nexit 3\n")
    failing.chmod(0o755)
    assert pythons.probe(str(failing)) is None  # a non-zero exit is not a working interpreter


def test_matches_compares_version_components():
    facts = {"version": "3.10.13", "implementation": "cpython", "executable": "/x", "machine": "x86_64"}
    assert pythons.matches(facts, "3.10") and pythons.matches(facts, "3.10.13")
    assert not pythons.matches(facts, "3.1")
    assert not pythons.matches(facts, "3.10.1")
    assert not pythons.matches(dict(facts, version="3.100.0"), "3.10")
    assert not pythons.matches(dict(facts, implementation="pypy"), "3.10")
    assert not pythons.matches(None, "3.10")


# --- known locations ------------------------------------------------------------------------------------

def test_known_locations_finds_pyenvs_310(pyenv, python310, tmp_path):
    found = pythons.known_locations("3.10", {"PYENV_ROOT": str(pyenv), "HOME": str(tmp_path)})
    assert str(python310) in found
    for path in found:
        assert os.path.isabs(path) and "shims" not in Path(path).parts
        assert pythons.matches(pythons.probe(path), "3.10"), path


def test_known_locations_looks_in_home_pyenv_without_pyenv_root(python310, tmp_path):
    bindir = tmp_path / ".pyenv" / "versions" / "3.10.99" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python3.10").symlink_to(python310)
    found = pythons.known_locations("3.10", {"HOME": str(tmp_path)})
    assert found[0] == str(bindir / "python3.10")
    assert pythons.matches(pythons.probe(found[0]), "3.10")


def test_known_locations_is_empty_where_there_is_nothing(tmp_path):
    empty = {"HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")}
    if any(Path(p).exists() for p in ("/home/ma-user/anaconda3", "/opt/conda")):
        pytest.skip("this machine has a system conda")
    assert pythons.known_locations("3.10", empty) == []


# --- uv and the shims -----------------------------------------------------------------------------------

def shim_trap(pyenv: Path, folder: Path) -> Dict[str, str]:
    """An environment with pyenv's shims first on PATH, and in `folder` a .python-version naming another
    version, so that the python3.10 shim fails there (skips when this pyenv has nothing to set it with)."""
    other = other_pyenv_version(pyenv)
    if other is None:
        pytest.skip("pyenv has no version besides 3.10 to set the shim trap with")
    (folder / ".python-version").write_text(other + "\n")
    # offline: a lookup that fails must not turn into a download
    env = base_env(PATH=os.pathsep.join([str(pyenv / "shims"), os.environ.get("PATH", "")]),
                   PYENV_ROOT=str(pyenv), UV_OFFLINE="1")
    shim = subprocess.run(["python3.10", "-c", "pass"], cwd=folder, env=env, capture_output=True, text=True)
    if shim.returncode == 0:
        pytest.skip("the python3.10 shim works in a folder naming another version (a system python3.10?)")
    return env


def test_uv_find_in_the_shim_trap(pyenv, python310, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = shim_trap(pyenv, tmp_path)
    env["UV_PYTHON_INSTALL_DIR"] = str(tmp_path / "uv-pythons")
    uv = workspace.uv_binary()
    # uv itself (0.13) stops at the failing shim with an error; npuenv's lookup just finds nothing here
    assert pythons.uv_find(uv, "3.10", env) is None
    # a python3.10 the user has on PATH behind the shims (a symlink to pyenv's, as in ~/bin) is found as itself
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3.10").symlink_to(python310)
    env["PATH"] = os.pathsep.join([str(pyenv / "shims"), str(bindir), "/usr/bin", "/bin"])
    found = pythons.uv_find(uv, "3.10", env)
    assert found is not None and "shims" not in Path(found).parts
    assert pythons.matches(pythons.probe(found), "3.10")


def test_the_shim_trap_bootstrap_still_finds_310(pyenv, python310, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    env = shim_trap(pyenv, project)
    root = tmp_path / "ws"
    proc = bootstrap_python(project, root, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved = recorded_python(root)
    interpreter = Path(resolved["interpreter"])
    assert interpreter.is_absolute() and "shims" not in interpreter.parts
    assert not interpreter.is_relative_to(root / ".npuenv" / "python"), "installed by uv instead of found"
    facts = pythons.probe(str(interpreter))
    assert pythons.matches(facts, "3.10") and facts["version"] == resolved["version"]
    again = bootstrap_python(project, root, env, "--dry-run")
    assert re.search(r"skip +python +up to date", again.stdout), again.stdout + again.stderr


def test_python_of_another_version_is_refused_naming_it(tmp_path):
    in_pyenv = sorted((pyenv_root() or tmp_path).glob("versions/3.*/bin/python3"))
    candidates = [sys.executable, "/usr/bin/python3", *map(str, in_pyenv)]
    facts = next((f for f in map(pythons.probe, candidates) if f and not pythons.matches(f, "3.10")), None)
    if facts is None:
        pytest.skip("no interpreter other than 3.10 here")
    given = facts["executable"]
    proc = bootstrap_python(tmp_path, tmp_path / "ws", base_env(), "--python", given)
    everything = proc.stdout + proc.stderr
    assert proc.returncode == 2, everything
    assert "Traceback" not in everything
    assert f"--python {given}: wanted CPython 3.10, found cpython {facts['version']}" in proc.stderr
    assert "python3.10" in [line for line in proc.stderr.splitlines() if line.startswith("hint: ")][-1]
    assert not (tmp_path / "ws" / ".npuenv" / "state.json").exists()


def test_python_that_is_not_python_is_refused_without_a_traceback(tmp_path):
    given = tmp_path / "python3.10"
    given.write_text("#!/bin/sh\necho 3.10\n")  # valid JSON on its last line, but no interpreter
    given.chmod(0o755)
    proc = bootstrap_python(tmp_path, tmp_path / "ws", base_env(), "--python", str(given))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"--python {given}: it does not run" in proc.stderr


def test_python_that_does_not_exist_is_refused(tmp_path):
    given = tmp_path / "no-python"
    proc = bootstrap_python(tmp_path, tmp_path / "ws", base_env(), "--python", str(given))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"--python {given}: no such file" in proc.stderr


def test_offline_with_no_310_anywhere_says_to_pass_python(tmp_path, closed_port):
    minimal_path = "/usr/bin:/bin"
    if any((Path(d) / "python3.10").exists() for d in minimal_path.split(":")):
        pytest.skip(f"{minimal_path} has a python3.10")
    home, pyenv_root_dir = tmp_path / "home", tmp_path / "pyenv"
    home.mkdir()
    pyenv_root_dir.mkdir()
    env = base_env(HOME=str(home), PYENV_ROOT=str(pyenv_root_dir), PATH=minimal_path, UV_OFFLINE="1",
                   UV_PYTHON_INSTALL_MIRROR=f"https://127.0.0.1:{closed_port}")
    if pythons.known_locations("3.10", env):
        pytest.skip("a CPython 3.10 in a well-known location (system conda)")
    proc = bootstrap_python(tmp_path, tmp_path / "ws", env)  # its timeout fails a hang; no wall-time assertion
    everything = proc.stdout + proc.stderr
    assert proc.returncode == 1, everything
    assert "Traceback" not in everything
    assert "step python failed: no CPython 3.10 found" in proc.stderr
    hint = [line for line in proc.stderr.splitlines() if line.startswith("hint: ")][-1]
    assert "--python" in hint
    assert not list((tmp_path / "ws" / ".npuenv" / "python").glob("cpython-*"))
