"""isolation: on the shared ma-user account, a shell is tagged with its person, and HOME, the caches and the
models live under the persistent folder (only /home/ma-user/work survives a restart).

The checks judge `ctx.environ` against `ctx.persistent` and look at the workspace `ctx.root`. In
`invoke doctor` that is this shell and its workspace. In `invoke user.check NAME` it is the environment
NAME's init.sh gives, and ROOT/NAME (npuenv.users.checks.PersonContext: its `environ` runs init.sh once,
and raises IsolationError when init.sh does not run; isolation.init reports that, the others skip).
A workspace holding an init.sh is a person's folder made by user.add (ROOT/NAME): its init.sh is checked,
and NPUENV_USER must be NAME.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import IsolationError
from ..users.initsh import MARKER, read_init
from ..users.names import UserPaths
from .base import CheckResult, check, fail, ok, skip, warn
from .context import is_under

ENTER = "invoke user.add NAME, then enter through ROOT/NAME/init.sh (ssh RemoteCommand or the VS Code profile)"
NO_ENVIRONMENT = "init.sh did not run (see isolation.init)"


@dataclass(frozen=True)
class Location:
    """A place that must survive a restart: `variable` decides it (an environment variable, or a path
    inside the workspace); `direct` when that variable is set and holds the path itself."""

    topic: str  # home | caches | models: the check that looks at it
    label: str
    variable: str
    path: str
    direct: bool = False


def locations(env: Mapping[str, str], workspace: Optional[Path]) -> list[Location]:
    """Every place of the environment `env` (and of the workspace) that must survive a restart, by what
    init.sh sets and the tools' own defaults: HOME; the XDG, uv and pip caches, uv's Pythons, conda's envs,
    the active venv; the Hugging Face, ModelScope and torch hub models, and the workspace's MindSpeed-MM/ckpt.
    The one list: doctor and user.check judge the same places."""
    home = env.get("HOME", "")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    hf_home = env.get("HF_HOME") or os.path.join(cache, "huggingface")
    hub = next((v for v in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE") if env.get(v)), "")

    def place(topic: str, label: str, variable: str, default: str) -> Location:
        return Location(topic, label, variable, env.get(variable) or default, bool(env.get(variable)))

    places = [Location("home", "HOME", "HOME", home, True),
              place("caches", "XDG cache", "XDG_CACHE_HOME", cache),
              place("caches", "uv cache", "UV_CACHE_DIR", os.path.join(cache, "uv")),
              place("caches", "uv's Pythons", "UV_PYTHON_INSTALL_DIR", os.path.join(data, "uv", "python")),
              place("caches", "pip cache", "PIP_CACHE_DIR", os.path.join(cache, "pip"))]
    if env.get("CONDA_ENVS_PATH"):
        first = env["CONDA_ENVS_PATH"].split(os.pathsep)[0]
        places.append(Location("caches", "conda envs", "CONDA_ENVS_PATH", first, True))
    if env.get("VIRTUAL_ENV"):
        places.append(place("caches", "active venv", "VIRTUAL_ENV", ""))
    places += [place("models", "Hugging Face models", hub, "") if hub else
               Location("models", "Hugging Face models", "HF_HOME", os.path.join(hf_home, "hub")),
               place("models", "ModelScope models", "MODELSCOPE_CACHE", os.path.join(cache, "modelscope")),
               place("models", "torch hub models", "TORCH_HOME", os.path.join(cache, "torch"))]
    ckpt = workspace / "MindSpeed-MM" / "ckpt" if workspace is not None else None
    if ckpt is not None and (ckpt.exists() or ckpt.is_symlink()):
        places.append(Location("models", "checkpoints", "MindSpeed-MM/ckpt", str(ckpt)))
    return places


def person(ctx) -> Optional[UserPaths]:
    """The workspace as a person's folder, ROOT/NAME, when it holds an init.sh."""
    root = ctx.root
    if root is None or not (root / "init.sh").is_file():
        return None
    return UserPaths(root.parent, root.name)


def _environ(ctx) -> Optional[Mapping[str, str]]:
    """The environment judged; None when it cannot be had (user.check's init.sh does not run)."""
    try:
        return ctx.environ
    except IsolationError:
        return None


def _not_modelarts(ctx) -> CheckResult:
    return skip(f"{ctx.persistent} does not exist here: not a ModelArts box")


# --- init.sh ------------------------------------------------------------------------------------------


@check("isolation.init", "the workspace's init.sh (user.add's login entry) is npuenv's, current, and runs")
def init(ctx) -> CheckResult:
    owner = person(ctx)
    if owner is None:
        return skip(f"no init.sh in {ctx.root}: not a folder user.add made" if ctx.root is not None
                    else "no workspace (see storage.workspace)")
    found = _init_state(owner)
    if found.status.bad:
        return found
    init_sh = owner.init_sh
    if not os.access(init_sh, os.X_OK):
        return fail(f"{init_sh} is not executable: ssh and VS Code cannot run it",
                    f"chmod 755 {shlex.quote(str(init_sh))}")
    try:
        ctx.environ  # noqa: B018 - in user.check this runs init.sh: does it?
    except IsolationError as exc:
        return fail(exc.message, exc.hint)
    return found


def _init_state(owner: UserPaths) -> CheckResult:
    init_sh, name = owner.init_sh, owner.name
    add = f"invoke user.add {name} --root {shlex.quote(str(owner.root))}"
    try:
        info = read_init(init_sh.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return fail(f"{init_sh} cannot be read: {exc}", f"check {init_sh}")
    if info.state == "edited":
        return warn(f"{init_sh}: npuenv's part was edited by hand, and user.add will replace it",
                    "move your changes below the marker line")
    if info.state == "outdated":
        return warn(f"{init_sh} was written by an older npuenv", add)
    if info.state == "foreign":
        return warn(f"{init_sh} was not written by npuenv", f"{add} --adopt")
    if info.state == "broken":
        return fail(f"{init_sh} has lost its marker line", f"put it back: {MARKER}")
    return ok(f"{init_sh} ({info.shell})")


# --- the tag ------------------------------------------------------------------------------------------


@check("isolation.tag", "NPUENV_USER tags this shell, so kill-npu can tell your processes from your teammates'")
def tag(ctx) -> CheckResult:
    env = _environ(ctx)
    if env is None:
        return skip(NO_ENVIRONMENT)
    name = env.get("NPUENV_USER", "")
    owner = person(ctx)
    if owner is not None and name != owner.name:
        return fail(f"NPUENV_USER is {name!r}, not {owner.name!r}: kill-npu tells people's processes apart by it",
                    f"enter {owner.home} through {owner.init_sh}, and do not set NPUENV_USER below its marker")
    if not name:
        return warn("NPUENV_USER is not set: everyone is ma-user, so kill-npu cannot tell your processes apart",
                    ENTER)
    if "/" in name or name in (".", "..") or name != name.strip():
        return warn(f"NPUENV_USER={name!r} is not a plain name", ENTER)
    return ok(f"NPUENV_USER={name}")


# --- where things live ------------------------------------------------------------------------------------


def _judge(ctx, topic: str) -> CheckResult:
    """ok when every `topic` location is under the persistent folder; else warn, naming each one outside
    (or unset) and what to change."""
    if not ctx.persistent.is_dir():
        return _not_modelarts(ctx)
    env = _environ(ctx)
    if env is None:
        return skip(NO_ENVIRONMENT)
    persistent = ctx.persistent
    places = [p for p in locations(env, ctx.root) if p.topic == topic]
    bad = [p for p in places if not p.path or not os.path.isabs(p.path) or not is_under(Path(p.path), persistent)]
    details = () if topic == "home" else [f"{p.label}: {_shown(p.path)} ({p.variable})"
                                         + (" — outside" if p in bad else "") for p in places]
    if not bad:
        return ok(f"HOME={places[0].path}") if topic == "home" else ok(f"under {persistent}", details)
    outside = [_named(p) for p in bad if os.path.isabs(p.path)]
    unset = [f"{p.variable} is not set" if not p.path else f"{p.variable}={p.path!r} (not an absolute path)"
             for p in bad if not os.path.isabs(p.path)]
    found = ([f"outside {persistent}, lost at a restart: {', '.join(outside)}"] if outside else []) + unset
    return warn("; ".join(found), _fixes(bad, persistent, person(ctx), env), details)


def _shown(path: str) -> str:
    real = os.path.realpath(path) if path and os.path.isabs(path) else path
    return path if real == path else f"{path} -> {real}"


def _named(place: Location) -> str:
    return f"{place.variable}={_shown(place.path)}" if place.direct else f"{place.label} {_shown(place.path)}"


def _fixes(bad: list[Location], persistent: Path, owner: Optional[UserPaths], env: Mapping[str, str]) -> str:
    """One fix for the places outside: move what is in the wrong place, point the variables home."""
    if owner is None:
        return ENTER
    fixes, point = [], []
    for place in bad:
        value, var = place.path, place.variable
        real = os.path.realpath(value) if os.path.isabs(value) else value
        if var == "HOME" and value == str(owner.home):
            fixes.append(f"move {owner.home} under {persistent} and run user.add there")
        elif real != value and is_under(Path(os.path.dirname(value)), persistent):
            fixes.append(f"move {real} under {persistent} ({value} is a symlink to it)")
        elif not var.isidentifier():  # a path inside the workspace, not a variable
            fixes.append(f"move {value} under {persistent}")
        else:
            point.append(var)
    if point:
        what = f"{', '.join(point)} into {owner.home}"
        entered = env.get("NPUENV_USER") == owner.name  # init.sh tags what it starts
        fixes.append(f"init.sh points {what}: remove what overrides {'it' if len(point) == 1 else 'them'} "
                     "below its marker" if entered else
                     f"enter through {owner.init_sh} (ssh RemoteCommand, or run it): it points {what}")
    return "; ".join(fixes)


@check("isolation.home", "HOME is under the persistent folder (dot-files elsewhere are wiped at a restart)")
def home(ctx) -> CheckResult:
    return _judge(ctx, "home")


@check("isolation.caches", "the XDG, uv and pip caches, uv's Pythons, conda's envs and the active venv are under "
                           "the persistent folder")
def caches(ctx) -> CheckResult:
    return _judge(ctx, "caches")


@check("isolation.models", "downloaded models (Hugging Face, ModelScope, torch hub) and MindSpeed-MM/ckpt are under "
                           "the persistent folder")
def models(ctx) -> CheckResult:
    return _judge(ctx, "models")


CHECKS = [init, tag, home, caches, models]
