"""Finding a CPython of the spec's version for the target env, robust to pyenv shims.

uv is asked first (with shim folders taken off PATH: a pyenv shim for an inactive version makes
`uv python find` fail hard), then well-known install locations, then `uv python install` into the
workspace. Every candidate is run once to confirm its version.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

PROBE = "import json, platform, sys; print(json.dumps({'version': platform.python_version(), " \
        "'executable': sys.executable, 'machine': platform.machine(), 'implementation': sys.implementation.name}))"


def probe(interpreter: str) -> Optional[dict]:
    """Facts about an interpreter, or None when it does not run."""
    try:
        proc = subprocess.run([interpreter, "-I", "-c", PROBE], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        facts = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    # a program that is not Python may still print valid JSON ("3.10" reads as the number 3.1)
    keys = ("version", "executable", "machine", "implementation")
    if not isinstance(facts, dict) or not all(isinstance(facts.get(k), str) for k in keys):
        return None
    return facts


def matches(facts: Optional[dict], version: str) -> bool:
    if not facts or facts.get("implementation") != "cpython":
        return False
    return facts["version"] == version or facts["version"].startswith(version + ".")


def without_shims(path_value: str) -> str:
    """PATH minus folders of version-manager shims (pyenv, asdf): they are named `shims`."""
    return os.pathsep.join(p for p in path_value.split(os.pathsep) if p and Path(p).name != "shims")


def known_locations(version: str, environ: Mapping[str, str]) -> list[str]:
    """Interpreters in the usual places: pyenv versions, conda envs (ModelArts images ship conda)."""
    home = environ.get("HOME", "")
    roots = [environ.get("PYENV_ROOT", ""), f"{home}/.pyenv"]
    patterns = [f"{r}/versions/{version}*/bin/python{version}" for r in roots if r]
    conda_roots = [environ.get("CONDA_PREFIX", ""), f"{home}/anaconda3", f"{home}/miniconda3",
                   "/home/ma-user/anaconda3", "/opt/conda"]
    for root in filter(None, conda_roots):
        patterns += [f"{root}/bin/python{version}", f"{root}/envs/*/bin/python{version}"]
    found: list[str] = []
    for pattern in patterns:
        for hit in sorted(glob.glob(pattern), reverse=True):
            if hit not in found:
                found.append(hit)
    return found


def uv_find(uv: str, version: str, environ: Mapping[str, str]) -> Optional[str]:
    env = dict(environ, PATH=without_shims(environ.get("PATH", "")))
    proc = subprocess.run([uv, "python", "find", "--no-project", version], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def uv_install(uv: str, version: str, environ: Mapping[str, str]) -> tuple[Optional[str], str]:
    """Let uv download a CPython; returns (interpreter or None, what uv said)."""
    # --no-bin: no python3.x link in ~/.local/bin, outside the workspace (and wiped on ModelArts)
    from .commands import run  # a download that must not outlive npuenv

    proc = run([uv, "python", "install", "--no-bin", version], env=dict(environ), check=False)
    said = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        return None, said
    return uv_find(uv, version, environ), said
