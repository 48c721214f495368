"""What npuenv may touch: paths inside the workspace root (and the wheelhouse), checked where they are used.

A spec, a symlink or a leftover can point anywhere. So every workspace path is resolved (symlinks followed)
before npuenv writes there, and everything npuenv deletes is checked at the moment of deletion: its
folder resolved, its last component never followed (a symlink is removed, not what it points at).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def within(path: Path, base: Path) -> bool:
    """Does `path`, symlinks followed, lie in `base` (itself resolved)?"""
    return _real(path).is_relative_to(_real(base))


def workspace_path(root: Path, relative: str) -> Path:
    """ROOT/relative, refused when a symlink on the way leads out of the root."""
    path = root / relative
    if not within(path, root):
        raise UsageError(f"{path} leads outside the workspace root {root} (to {_real(path)}): npuenv writes "
                         "only inside the root",
                         hint=f"remove or move the symlink, or pick another --root; npuenv never follows a link "
                              f"out of {root}")
    return path


def remove(path: Path, *bases: Path) -> None:
    """Delete a file, a symlink (not its target) or a folder npuenv made, if it exists: only when its folder
    resolves inside one of `bases`. Anything else is a bug or a hostile input, and is refused."""
    if not any(within(path.parent, base) for base in bases):
        raise UsageError(f"refusing to delete {path}: it is not inside {' or '.join(str(b) for b in bases)}",
                         hint="npuenv deletes only what it made inside the workspace root and the wheelhouse")
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        import shutil

        shutil.rmtree(path)
