"""`user.check`: does everything of a person's live where it survives a restart?"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import IsolationError
from .initsh import MARKER, probe_environment
from .names import DEFAULT_VENV, UserPaths
from .show import find_user, inspect_user


@dataclass(frozen=True)
class Finding:
    status: str  # ok | warn | fail
    label: str
    detail: str
    fix: str = ""


def _locations(env: Mapping[str, str], paths: UserPaths) -> list[tuple[str, str, str]]:
    """(label, the variable that decides it, path) for what must survive a restart."""
    home = env.get("HOME", "")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    hf_home = env.get("HF_HOME") or os.path.join(cache, "huggingface")
    hub_var = next((v for v in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE") if env.get(v)),
                   "HF_HOME")
    places = [
        ("HOME", "HOME", home),
        ("workspace", "--root", str(paths.home)),
        ("uv cache", "UV_CACHE_DIR", env.get("UV_CACHE_DIR") or os.path.join(cache, "uv")),
        ("uv's Pythons", "UV_PYTHON_INSTALL_DIR",
         env.get("UV_PYTHON_INSTALL_DIR") or os.path.join(data, "uv", "python")),
        ("pip cache", "PIP_CACHE_DIR", env.get("PIP_CACHE_DIR") or os.path.join(cache, "pip")),
        ("models (Hugging Face)", hub_var, env.get(hub_var) if hub_var != "HF_HOME" else os.path.join(hf_home, "hub")),
        ("models (ModelScope)", "MODELSCOPE_CACHE", env.get("MODELSCOPE_CACHE") or os.path.join(cache, "modelscope")),
        ("models (torch hub)", "TORCH_HOME", env.get("TORCH_HOME") or os.path.join(cache, "torch")),
    ]
    if env.get("CONDA_ENVS_PATH"):
        places.append(("conda envs", "CONDA_ENVS_PATH", env["CONDA_ENVS_PATH"].split(os.pathsep)[0]))
    if env.get("VIRTUAL_ENV"):
        places.append(("target env", "VIRTUAL_ENV", env["VIRTUAL_ENV"]))
    ckpt = paths.home / "MindSpeed-MM" / "ckpt"
    if ckpt.exists() or ckpt.is_symlink():
        places.append(("models (checkpoints)", "MindSpeed-MM/ckpt", str(ckpt)))
    return places


def persistence_findings(env: Mapping[str, str], paths: UserPaths, persistent: Path) -> list[Finding]:
    """Whether HOME, the caches, the workspace and the models of `env` live under `persistent`."""
    findings = []
    tag = env.get("NPUENV_USER", "")
    if tag != paths.name:
        findings.append(Finding("fail", "NPUENV_USER", f"is {tag!r}, not {paths.name!r}: kill-npu tells "
                                "people's processes apart by it", "do not set NPUENV_USER below the marker"))
    for label, var, value in _locations(env, paths):
        if not value or not os.path.isabs(value):
            findings.append(Finding("warn", label, f"{var} is {value!r}, not an absolute path",
                                    f"set {var} to a folder inside {paths.home}"))
            continue
        real = Path(value).resolve()
        shown = value if str(real) == value else f"{value} -> {real}"
        if real.is_relative_to(persistent.resolve()):
            findings.append(Finding("ok", label, shown))
            continue
        if var == "HOME":
            fix = f"enter through init.sh: ssh with RemoteCommand {paths.init_sh}, or run it"
        elif var == "--root":
            fix = f"move the folder under {persistent} and run user.add there"
        elif var.startswith("MindSpeed-MM") or value != str(real):
            fix = f"move it under {persistent} (it is a symlink to {real})"
        else:
            fix = f"point {var} into {paths.home}: init.sh does, so remove what overrides it (below the marker?)"
        findings.append(Finding("warn", label, f"{shown} is outside {persistent}: lost at a restart", fix))
    return findings


def check_user(root: str | os.PathLike, name: str, environ: Mapping[str, str], persistent: Path,
               venv_rel: str = DEFAULT_VENV) -> list[Finding]:
    """init.sh's state, then where the environment it gives puts HOME, caches, workspace and models."""
    paths = find_user(root, name, venv_rel)
    info = inspect_user(paths)
    state_findings = {
        "npuenv": Finding("ok", "init.sh", f"{paths.init_sh} ({info.shell})"),
        "edited": Finding("warn", "init.sh", "npuenv's part was edited by hand: user.add will replace it",
                          "move your changes below the marker line"),
        "outdated": Finding("warn", "init.sh", "written by an older npuenv", f"run: invoke user.add {name}"),
        "foreign": Finding("warn", "init.sh", "not written by npuenv", f"run: invoke user.add {name} --adopt"),
        "broken": Finding("fail", "init.sh", "its marker line is gone", f"put it back: {MARKER}"),
        "unreadable": Finding("fail", "init.sh", "cannot be read", f"check {paths.init_sh}"),
    }
    findings = [state_findings[info.state]]
    if not os.access(paths.init_sh, os.X_OK):
        findings.append(Finding("fail", "init.sh", "is not executable: ssh and VS Code cannot run it",
                                f"chmod 755 {shlex.quote(str(paths.init_sh))}"))
        return findings
    try:
        env = probe_environment(paths.init_sh, environ)
    except IsolationError as exc:
        return findings + [Finding("fail", "init.sh -c", exc.message, exc.hint)]
    return findings + persistence_findings(env, paths, persistent)
