"""Writing inside a person's folder: never through a symlink that leads out, and never half a file."""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import write_atomic
from ..errors import IsolationError

BACKUP_SUFFIX = ".npuenv-backup"  # a file npuenv replaced is kept beside it with this suffix


def inside(path: Path, base: Path) -> bool:
    """Does `path`, symlinks followed, lie in `base`? (False when it cannot be resolved.)"""
    try:
        return path.resolve().is_relative_to(base.resolve())
    except OSError:
        return False


def guard(path: Path, base: Path) -> Path:
    """`path`, refused when it (through a symlink) leads outside `base`."""
    if not inside(path, base):
        raise IsolationError(f"{path} leads outside {base} (a symlink?): npuenv writes only inside {base}",
                             hint="remove or fix the symlink, then run again")
    return path


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Atomically, with `mode`: a running bash reads its script as it goes, so init.sh is never rewritten
    in place."""
    write_atomic(path, text, mode=mode)


def write_if_changed(path: Path, text: str, mode: int) -> bool:
    """Write `path` unless it already holds `text` with `mode`; True when it was written."""
    try:
        same = path.read_text(encoding="utf-8") == text and (path.stat().st_mode & 0o777) == mode
    except (OSError, UnicodeDecodeError):
        same = False
    if not same:
        write_file(path, text, mode)
    return not same


def make_dir(path: Path, mode: int, base: Path) -> None:
    """Make a folder inside `base`; one that is there already is left as it is (a symlink must stay inside)."""
    if path.exists() or path.is_symlink():
        guard(path, base)
        if not path.is_dir():
            raise IsolationError(f"{path} exists and is not a folder", hint="move it aside, then run again")
        return
    path.mkdir(mode=mode)
    os.chmod(path, mode)  # mkdir's mode is reduced by the umask
