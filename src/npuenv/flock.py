"""Locks (fcntl, released by the kernel on any exit): the workspace lock, so two npuenv runs in one
workspace never interleave; and entry locks, so runs of several workspaces that share a wheelhouse
download and build each thing once, and never replace what another is installing."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

from .errors import LockError


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _try(fd: int) -> bool:
    """Take the exclusive lock if it is free."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def workspace_lock(path: Path, *, wait: bool = False,
                   on_wait: Optional[Callable[[str], None]] = None) -> Iterator[None]:
    """Hold an exclusive lock on `path`. Busy: raise LockError, or with `wait` block until it is free."""
    fd = _open(path)
    try:
        if not _try(fd):
            holder = _holder(path)
            if not wait:
                raise LockError(
                    f"another npuenv run holds the workspace lock {path} ({holder})",
                    hint="wait for it to finish, or pass --wait to queue behind it",
                ) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


@contextmanager
def entry_lock(path: Path, *, on_wait: Optional[Callable[[], None]] = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (made when missing), waiting for another holder to finish."""
    fd = _open(path)
    try:
        if not _try(fd):
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def try_entry_lock(path: Path) -> Iterator[bool]:
    """Hold `path`'s lock if it is free (yields True), else yield False at once."""
    fd = _open(path)
    try:
        yield _try(fd)
    finally:
        os.close(fd)
