"""What is in the wheelhouse, and which of it a spec still references (for `invoke wheels`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .digest import sha256_file
from .wheelcache import WheelCache


@dataclass(frozen=True)
class Item:
    kind: str  # downloaded | built
    path: Path
    name: str  # file name, or the build's name
    detail: str  # key inputs of a built wheel
    size: int
    age_days: float
    used_by: tuple[str, ...]  # spec names that reference it

    @property
    def unused(self) -> bool:
        return not self.used_by

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": str(self.path), "detail": self.detail,
                "size": self.size, "age_days": round(self.age_days, 2), "used_by": list(self.used_by)}


@dataclass(frozen=True)
class Listing:
    """`invoke wheels`: the wheelhouse's items, and with --prune what went."""

    folder: Path
    items: list[Item]
    pruned: Optional[list[Item]] = None  # None: nothing was pruned (no --prune)
    leftovers: tuple[Path, ...] = ()  # partial files of interrupted runs that the prune removed

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"folder": str(self.folder), "items": [i.to_json() for i in self.items]}
        if self.pruned is not None:
            data["pruned"] = [i.to_json() for i in self.pruned]
            data["freed"] = sum(i.size for i in self.pruned)
            data["leftovers"] = [str(p) for p in self.leftovers]
        return data


def listing(given: Optional[str], extra_specs: Sequence[str], prune_unused: bool) -> Listing:
    """The wheelhouse (--wheels, else the default) against the built-in specs and `extra_specs`; with
    `prune_unused`, what no spec references is deleted."""
    from .errors import UsageError
    from .spec import available_specs, builtin_spec_dir, load_spec
    from .workspace import default_wheels_dir

    folder = Path(given).absolute() if given else default_wheels_dir(Path.cwd())
    if given and not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"--wheels {given}: {problem}", hint="pass the wheelhouse folder bootstrap used (--wheels)")
    specs = [load_spec(name) for name in [*available_specs(builtin_spec_dir()), *extra_specs]]
    items = inventory(folder, specs)
    if not prune_unused:
        return Listing(folder, items)
    removed = prune(items, folder)
    return Listing(folder, items, removed, tuple(sweep(folder)))


def pinned_files(spec: Any) -> set[str]:
    files = {f.filename for w in spec.wheels.values() for f in w.files.values()}
    files |= {f.filename for b in spec.builds.values() if b.prebuilt for f in b.prebuilt.files.values()}
    return files


def references_build(spec: Any, inputs: dict[str, Any], build: str) -> bool:
    """A built wheel is still wanted by `spec` when its source commit and patches are the spec's."""
    entry = spec.builds.get(build)
    if entry is None or entry.repo not in spec.repos or spec.repos[entry.repo].commit != inputs.get("commit"):
        return False
    patch_hashes = {sha256_file(p.file) for p in spec.patches.values() if p.repo == entry.repo}
    return set(inputs.get("patches", {}).values()) <= patch_hashes


def describe_inputs(inputs: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in inputs.get("versions", {}).items())
    patches = len(inputs.get("patches", {}))
    return (f"{str(inputs.get('commit', '?'))[:12]} +{patches} patch{'es' if patches != 1 else ''}, "
            f"{inputs.get('python')}, {inputs.get('platform')}" + (f", {versions}" if versions else ""))


def inventory(wheels_dir: Path, specs: Sequence[Any]) -> list[Item]:
    now = time.time()
    items = []
    for path in sorted(wheels_dir.glob("*.whl")):
        stat = path.stat()
        users = tuple(dict.fromkeys(s.name for s in specs if path.name in pinned_files(s)))
        items.append(Item("downloaded", path, path.name, "", stat.st_size, (now - stat.st_mtime) / 86400, users))
    for entry in WheelCache(wheels_dir).entries():
        users = tuple(dict.fromkeys(s.name for s in specs if references_build(s, entry.inputs, entry.build)))
        items.append(Item("built", entry.wheel.parent, f"{entry.build}: {entry.wheel.name}",
                          describe_inputs(entry.inputs), entry.size, (now - entry.created) / 86400, users))
    return items


def prune(items: Sequence[Item], wheels_dir: Path) -> list[Item]:
    """Delete what no spec references (never anything outside `wheels_dir`); returns what was removed."""
    from .confine import remove

    removed = []
    for item in items:
        if item.unused:
            remove(item.path, wheels_dir)
            removed.append(item)
    return removed


def sweep(wheels_dir: Path) -> list[Path]:
    """Remove what killed runs left: half-downloaded `.part` files nobody is downloading now, and the
    temporary folders of the build cache whose process is gone."""
    from .confine import remove
    from .flock import try_entry_lock

    removed = WheelCache(wheels_dir).sweep_all()
    for part in sorted(wheels_dir.glob("*.part")) if wheels_dir.is_dir() else []:
        with try_entry_lock(wheels_dir / ".locks" / f"{part.name[:-len('.part')]}.lock") as free:
            if free:
                remove(part, wheels_dir)
                removed.append(part)
    return removed


def wheel_requires(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA ([] when the file cannot be read as a wheel)."""
    import zipfile
    from email.parser import HeaderParser

    try:
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
            text = archive.read(name).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile, StopIteration):
        return []
    return HeaderParser().parsestr(text).get_all("Requires-Dist") or []
