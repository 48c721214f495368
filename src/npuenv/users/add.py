"""`user.add`: make or update ROOT/NAME, its CA bundle, shell files and init.sh; share uv under ROOT.

Idempotent: a second run with the same options writes nothing, and the owner's lines below init.sh's
marker are always kept. Writes only inside ROOT/NAME (and ROOT/.local/bin for the shared uv).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import IsolationError, RootError, UsageError
from ..trust import BundleInfo, build_bundle
from ..workspace import NOT_WRITABLE, PERSISTENT, unwritable
from .files import BACKUP_SUFFIX, guard, inside, make_dir, write_if_changed
from .initsh import MARKER, InitFile, example_lines, read_init, render_init, render_shell_files
from .names import DEFAULT_VENV, SHELLS, UserPaths, default_shell, user_paths


@dataclass
class AddResult:
    paths: UserPaths
    shell: str
    created: bool  # the person's folder is new
    init: str  # created | updated | unchanged
    changed: list[Path] = field(default_factory=list)
    backup: Optional[Path] = None  # the previous init.sh, kept when npuenv's part had been edited by hand
    bundle: Optional[BundleInfo] = None
    shared_uv: Optional[Path] = None
    warnings: list[str] = field(default_factory=list)


def add_user(root: str | os.PathLike, name: str, *, shell: Optional[str] = None, venv_rel: str = DEFAULT_VENV,
             extras: Sequence[Path] = (), environ: Mapping[str, str], adopt: bool = False,
             shared_uv: Optional[Path] = None, persistent: Path = PERSISTENT) -> AddResult:
    """Create or update ROOT/NAME and its init.sh; idempotent, and the owner's lines in init.sh are kept.

    Writes only inside ROOT/NAME, and into ROOT/.local/bin when `shared_uv` (a uv binary to share) is given.
    """
    paths = user_paths(root, name, venv_rel)
    shell = shell or default_shell()
    if shell not in SHELLS:
        raise UsageError(f"--shell {shell}: not a shell npuenv sets up", hint=f"use one of: {', '.join(SHELLS)}")
    home = paths.home
    _check_home(home)
    result = AddResult(paths, shell, created=not home.exists(), init="unchanged")
    previous = _previous_init(paths, adopt)
    for path, mode in paths.dirs():
        make_dir(path, mode, home if path != home else paths.root)
    result.bundle = build_bundle(guard(paths.ca_bundle, home), list(extras), environ)
    for path, text in render_shell_files(paths).items():
        if write_if_changed(guard(path, home), text, 0o644):
            result.changed.append(path)
    _write_init(paths, shell, previous, result)
    if shared_uv is not None:
        result.shared_uv = install_shared_uv(paths.root, shared_uv)
    result.warnings += _add_warnings(paths, shell, persistent)
    return result


def _check_home(home: Path) -> None:
    """ROOT/NAME must be a real folder (or not yet there) that this user can write."""
    if home.is_symlink():
        raise IsolationError(f"{home} is a symlink (to {os.readlink(home)}): user.add never writes through a link",
                             hint="move the link aside and run again: user.add makes a real folder there")
    if home.exists() and not home.is_dir():
        raise IsolationError(f"{home} exists and is not a folder", hint="move it aside, then run again")
    where = unwritable(home)
    if where is not None:
        raise RootError(f"{where} {NOT_WRITABLE}",
                        hint=f"pass a --root you can write to (on ModelArts {PERSISTENT})")


def _previous_init(paths: UserPaths, adopt: bool) -> Optional[InitFile]:
    init_sh = paths.init_sh
    if init_sh.is_symlink() or (init_sh.exists() and not init_sh.is_file()):
        raise IsolationError(f"{init_sh} is not a regular file", hint="move it aside, then run again")
    if not init_sh.exists():
        return None
    try:
        previous = read_init(init_sh.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise IsolationError(f"cannot read {init_sh}: {exc}", hint="move it aside, then run again") from exc
    if previous.state == "foreign" and not adopt:
        raise IsolationError(
            f"{init_sh} exists and was not written by npuenv",
            hint=f"run again with --adopt: it is kept as init.sh{BACKUP_SUFFIX} and replaced; "
                 "then copy the lines you need below the marker line of the new init.sh")
    if previous.state == "broken":
        raise IsolationError(
            f"{init_sh} has lost its marker line, so npuenv cannot tell your lines from its own",
            hint=f"put this line back above your own lines (or move the file aside):\n{MARKER}")
    return previous


def _write_init(paths: UserPaths, shell: str, previous: Optional[InitFile], result: AddResult) -> None:
    init_sh = guard(paths.init_sh, paths.home)
    mine = example_lines() if previous is None or previous.state == "foreign" else previous.mine
    text = render_init(paths, shell) + mine
    if previous is not None and previous.state in ("foreign", "edited"):
        result.backup = init_sh.with_name(init_sh.name + BACKUP_SUFFIX)
        shutil.copy2(init_sh, result.backup)
    if write_if_changed(init_sh, text, 0o755):
        result.changed.append(init_sh)
        result.init = "created" if previous is None else "updated"


def _add_warnings(paths: UserPaths, shell: str, persistent: Path) -> list[str]:
    warnings = []
    if persistent.is_dir() and not inside(paths.home, persistent):
        warnings.append(f"{paths.home} is not under {persistent}: on ModelArts it is wiped at a restart")
    if not shutil.which(shell):
        warnings.append(f"{shell} is not installed here: init.sh starts bash until it is")
    return warnings


def install_shared_uv(root: Path, uv: Path) -> Path:
    """Copy the uv binary to ROOT/.local/bin (on everyone's PATH through init.sh), unless it is there."""
    local = root / ".local"
    for folder in (local, local / "bin"):
        make_dir(folder, 0o755, root)
    dest = local / "bin" / "uv"
    if dest.is_symlink() or (dest.exists() and not dest.is_file()):
        raise IsolationError(f"{dest} is not a regular file", hint="move it aside, then run again")
    if dest.is_file() and _file_digest(dest) == _file_digest(uv):
        return dest
    fd, tmp = tempfile.mkstemp(prefix=".uv.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(uv, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
