"""isolation: on the shared ma-user account, this shell is tagged with its person, and HOME and the caches
live under the persistent folder (only /home/ma-user/work survives a restart)."""

from __future__ import annotations

import os
from pathlib import Path

from .base import CheckResult, check, ok, skip, warn
from .context import is_under

ENTER = "invoke user.add NAME, then enter through ROOT/NAME/init.sh (ssh RemoteCommand or the VS Code profile)"


def _not_modelarts(ctx) -> CheckResult:
    return skip(f"{ctx.persistent} does not exist here: not a ModelArts box")


@check("isolation.tag", "NPUENV_USER tags this shell, so kill-npu can tell your processes from your teammates'")
def tag(ctx) -> CheckResult:
    name = ctx.environ.get("NPUENV_USER", "")
    if not name:
        return warn("NPUENV_USER is not set: everyone is ma-user, so kill-npu cannot tell your processes apart",
                    ENTER)
    if "/" in name or name in (".", "..") or name != name.strip():
        return warn(f"NPUENV_USER={name!r} is not a plain name", ENTER)
    return ok(f"NPUENV_USER={name}")


@check("isolation.home", "HOME is under the persistent folder (dot-files elsewhere are wiped at a restart)")
def home(ctx) -> CheckResult:
    if not ctx.persistent.is_dir():
        return _not_modelarts(ctx)
    value = ctx.environ.get("HOME", "")
    if not value:
        return warn("HOME is not set", ENTER)
    if not is_under(Path(value), ctx.persistent):
        return warn(f"HOME={value} is outside {ctx.persistent}: your dot-files, shell history and keys are lost "
                    "at a restart", ENTER)
    return ok(f"HOME={value}")


def cache_locations(environ) -> list[tuple[str, str]]:
    """(variable, path) of the caches that grow big: uv, pip, Hugging Face, and XDG's cache."""
    home = environ.get("HOME", "")
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return [("XDG_CACHE_HOME", cache),
            ("UV_CACHE_DIR", environ.get("UV_CACHE_DIR") or os.path.join(cache, "uv")),
            ("PIP_CACHE_DIR", environ.get("PIP_CACHE_DIR") or os.path.join(cache, "pip")),
            ("HF_HOME", environ.get("HF_HOME") or os.path.join(cache, "huggingface"))]


@check("isolation.caches", "the uv, pip and Hugging Face caches are under the persistent folder")
def caches(ctx) -> CheckResult:
    if not ctx.persistent.is_dir():
        return _not_modelarts(ctx)
    places = cache_locations(ctx.environ)
    outside = [f"{var}={path}" for var, path in places if not path or not is_under(Path(path), ctx.persistent)]
    details = [f"{var}={path}" for var, path in places]
    if outside:
        return warn(f"outside {ctx.persistent}, lost at a restart (and downloaded again): {', '.join(outside)}",
                    ENTER, details)
    return ok(f"under {ctx.persistent}", details)


CHECKS = [tag, home, caches]
