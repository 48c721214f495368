"""People's folders under ROOT: find one, say what its init.sh is, list them all (`user.list`)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..errors import IsolationError
from .initsh import read_init
from .names import DEFAULT_VENV, NAME_PATTERN, UserPaths, check_root, user_paths


@dataclass(frozen=True)
class UserInfo:
    name: str
    home: Path
    state: str  # InitFile.state, or "unreadable"
    shell: str
    env: bool  # the target env exists


def find_user(root: str | os.PathLike, name: str, venv_rel: str = DEFAULT_VENV) -> UserPaths:
    """The paths of an existing person's folder, else IsolationError pointing at user.add."""
    paths = user_paths(root, name, venv_rel)
    if paths.home.is_symlink() or not paths.home.is_dir() or not paths.init_sh.is_file():
        raise IsolationError(f"no user {name!r} in {paths.root} ({paths.init_sh} does not exist)",
                             hint=f"create it with: invoke user.add {name} --root {shlex.quote(str(paths.root))}")
    return paths


def inspect_user(paths: UserPaths) -> UserInfo:
    try:
        info = read_init(paths.init_sh.read_text(encoding="utf-8"))
        state, shell = info.state, info.shell
    except (OSError, UnicodeDecodeError):
        state, shell = "unreadable", ""
    return UserInfo(paths.name, paths.home, state, shell, (paths.venv / "bin" / "python").exists())


def list_users(root: str | os.PathLike, venv_rel: str = DEFAULT_VENV) -> list[UserInfo]:
    """Every folder of ROOT named like a user and holding an init.sh, npuenv's or not."""
    base = check_root(root)
    users = []
    for child in sorted(base.iterdir()):
        if NAME_PATTERN.fullmatch(child.name) and child.is_dir() and not child.is_symlink() \
                and (child / "init.sh").is_file():
            users.append(inspect_user(UserPaths(base, child.name, venv_rel)))
    return users
