"""Built wheels, stored in the wheelhouse under a content key, so a rebuild with the same inputs is a copy.

Layout: wheels/built/<build>/<key>/<file>.whl with key.json beside it (the inputs, for `invoke wheels`).
An entry appears by renaming a finished folder into place: a half-written wheel is never seen. A wheel
that installers refuse (an invalid version in its name) never enters, and one an older npuenv left is
not an entry: the next build replaces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .confine import remove

KEY_LENGTH = 20


def cache_key(inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class Entry:
    build: str
    key: str
    wheel: Path
    inputs: dict[str, Any]
    created: float

    @property
    def size(self) -> int:
        return self.wheel.stat().st_size


class WheelCache:
    def __init__(self, wheels_dir: Path) -> None:
        self.root = wheels_dir / "built"

    def folder(self, build: str, key: str) -> Path:
        return self.root / build / key

    def lock_path(self, build: str, key: str) -> Path:
        """Held while an entry is looked up, built, stored or installed from (npuenv.flock.entry_lock)."""
        return self.root / build / f".{key}.lock"

    def get(self, build: str, key: str) -> Optional[Entry]:
        return self._entry(self.folder(build, key))

    def put(self, build: str, key: str, wheel: Path, inputs: dict[str, Any]) -> Entry:
        """Copy `wheel` into the cache under `key` (atomically: a temp folder renamed into place)."""
        from .reversion import name_problem
        from .errors import WheelNameError

        problem = name_problem(wheel.name)
        if problem:
            raise WheelNameError(f"{wheel.name} is not installable ({problem}): not caching it")
        final = self.folder(build, key)
        self.sweep(final.parent)
        tmp = final.parent / f".{key}.tmp-{os.getpid()}"
        old = final.parent / f".{key}.old-{os.getpid()}"
        remove(tmp, self.root)  # a run with this PID before us
        tmp.mkdir(parents=True)
        try:
            shutil.copy2(wheel, tmp / wheel.name)
            meta = {"build": build, "key": key, "wheel": wheel.name, "inputs": inputs, "created": time.time()}
            (tmp / "key.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            if final.exists():  # (a forced rebuild) the old entry steps aside, the new one takes its name
                os.replace(final, old)
            os.replace(tmp, final)
        finally:
            remove(tmp, self.root)
            remove(old, self.root)
        entry = self._entry(final)
        assert entry is not None
        return entry

    def entries(self) -> list[Entry]:
        if not self.root.is_dir():
            return []
        found = (self._entry(folder) for build in sorted(self.root.iterdir()) if build.is_dir()
                 for folder in sorted(build.iterdir()) if not folder.name.startswith("."))
        return [e for e in found if e is not None]

    def sweep(self, folder: Path) -> list[Path]:
        """Remove what killed runs left in `folder` (`.<key>.tmp-PID`, `.<key>.old-PID` of dead PIDs)."""
        removed = []
        for leftover in sorted(folder.glob(".*.tmp-*")) + sorted(folder.glob(".*.old-*")) if folder.is_dir() else []:
            pid = leftover.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                remove(leftover, self.root)
                removed.append(leftover)
        return removed

    def sweep_all(self) -> list[Path]:
        return [p for build in sorted(self.root.glob("*")) if build.is_dir() for p in self.sweep(build)]

    def remove(self, entry: Entry) -> None:
        remove(entry.wheel.parent, self.root)

    def _entry(self, folder: Path) -> Optional[Entry]:
        try:
            meta = json.loads((folder / "key.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        wheel = folder / meta.get("wheel", "")
        if not wheel.is_file() or not _valid_name(wheel.name):
            return None
        return Entry(meta["build"], meta["key"], wheel, meta.get("inputs", {}), meta.get("created", 0.0))


def _valid_name(filename: str) -> bool:
    from .reversion import name_problem

    return not name_problem(filename)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
