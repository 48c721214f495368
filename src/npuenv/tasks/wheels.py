"""`wheels`: what the wheelhouse holds, and pruning what no spec references."""

from __future__ import annotations

from pathlib import Path

from invoke import task

from .boundary import boundary


@task(
    help={
        "wheels": "the wheelhouse folder (default: this checkout's wheels/)",
        "spec": "NAME|FILE: also count this spec (name or file) as referencing wheels (repeatable); built-in specs always count",
        "prune": "delete cached wheels that no spec references",
    },
    iterable=["spec"],
)
@boundary
def wheels(c, wheels=None, spec=None, prune=False):
    """List the wheelhouse (downloaded and built wheels, their key inputs, size, age); --prune the unused."""
    from .. import wheelhouse
    from ..render.console import Console, human_bytes
    from ..spec import available_specs, builtin_spec_dir, load_spec
    from ..errors import UsageError
    from ..workspace import default_wheels_dir

    folder = Path(wheels).absolute() if wheels else default_wheels_dir(Path.cwd())
    if wheels and not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"--wheels {wheels}: {problem}", hint="pass the wheelhouse folder bootstrap used (--wheels)")
    names = [*available_specs(builtin_spec_dir()), *(spec or [])]
    specs = [load_spec(name) for name in names]
    items = wheelhouse.inventory(folder, specs)
    out = Console()
    if not items and not prune:
        out.line(f"{folder}: empty")
        return
    for item in items:
        used = ", ".join(item.used_by) or "unused"
        out.line(f"{item.kind:<10}  {item.name}")
        out.line(f"{'':<10}  {human_bytes(item.size)}, {item.age_days:.1f} days old, used by: {used}"
                 + (f"\n{'':<10}  {item.detail}" if item.detail else ""))
    if prune:
        removed = wheelhouse.prune(items, folder)
        freed = sum(i.size for i in removed)
        leftovers = wheelhouse.sweep(folder)
        out.line(f"pruned {len(removed)} item(s), {human_bytes(freed)} freed"
                 + (f"; removed {len(leftovers)} leftover(s) of interrupted runs" if leftovers else ""))
