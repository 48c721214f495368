"""storage: the workspace exists where it survives a restart, and has room."""

from __future__ import annotations

import os
import shutil

from .base import CheckResult, check, fail, ok, skip, warn
from .context import GIB, is_under


@check("storage.workspace", "the workspace exists, is writable, and lives under the persistent folder")
def workspace(ctx) -> CheckResult:
    if ctx.root is None:
        return warn(ctx.root_note, "invoke bootstrap --root DIR (on ModelArts: a folder under "
                                   f"{ctx.persistent})")
    if not os.access(ctx.root, os.W_OK | os.X_OK):
        return fail(f"{ctx.root} is not writable", f"chmod u+rwx {ctx.root}, or pick another --root")
    if not ctx.persistent.is_dir():
        return ok(f"{ctx.root} ({ctx.persistent} does not exist here: not a ModelArts box)")
    if not is_under(ctx.root, ctx.persistent):
        return warn(f"{ctx.root} is not under {ctx.persistent}: on ModelArts it is wiped when the notebook "
                    "restarts", f"bootstrap again under {ctx.persistent}, e.g. "
                                f"invoke bootstrap --root {ctx.persistent}/$NPUENV_USER")
    return ok(f"{ctx.root} (under {ctx.persistent})")


def _human(count: float) -> str:
    return f"{count / GIB:.1f} GiB"


@check("storage.free", "free space where the workspace lives")
def free(ctx) -> CheckResult:
    where = ctx.root if ctx.root is not None else (ctx.persistent if ctx.persistent.is_dir() else None)
    if where is None:
        return skip(ctx.no_root)
    usage = shutil.disk_usage(where)
    found = f"{_human(usage.free)} free of {_human(usage.total)} at {where}"
    if usage.free < ctx.free_fail_bytes:
        return fail(f"only {found}: the target env alone needs several GiB",
                    f"free space (du -sh {where}/* | sort -h), e.g. old checkpoints or "
                    "`invoke wheels --prune`")
    if usage.free < ctx.free_warn_bytes:
        return warn(f"{found}: checkpoints and datasets will not fit",
                    f"free space (du -sh {where}/* | sort -h) or `invoke wheels --prune`")
    return ok(found)


CHECKS = [workspace, free]
