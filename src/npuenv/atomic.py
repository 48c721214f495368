"""Writing files so that a reader (or a crash) never sees half of them: temp file, fsync, os.replace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def write_atomic(path: Path, text: str, *, mode: Optional[int] = None, encoding: str = "utf-8") -> None:
    """Write `text` to `path` through a temp file in the same folder; `mode` sets the permissions."""
    import tempfile  # (with random) only when writing: an up-to-date run writes nothing

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
