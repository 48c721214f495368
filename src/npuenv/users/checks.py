"""`user.check NAME`: doctor's isolation checks, run on NAME's folder and the environment NAME's init.sh gives.

The checks are the doctor's (npuenv.doctor.isolation); this module only hands them NAME's folder instead
of this shell's workspace, so `invoke doctor` and `invoke user.check` report the same facts the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..doctor import isolation
from ..doctor.base import Outcome, run_checks
from ..doctor.context import Memo
from ..errors import UsageError
from ..workspace import persistent_root
from .folders import find_user
from .initsh import probe_environment
from .names import UserPaths


@dataclass(frozen=True)
class PersonContext:
    """What the isolation checks read, for one person: `root` is ROOT/NAME (doctor's workspace), and
    `environ` the environment NAME's init.sh gives, started from `outer` (run once, on first use; it
    raises IsolationError when init.sh does not run)."""

    paths: UserPaths
    persistent: Path
    outer: Mapping[str, str]
    memo: Memo = field(default_factory=Memo, compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.paths.home

    @property
    def environ(self) -> Mapping[str, str]:
        return self.memo.get("environ", lambda: probe_environment(self.paths.init_sh, self.outer))


@dataclass(frozen=True)
class UserCheck:
    """user.check's answer: the isolation group's outcomes for `paths`, judged against `persistent`
    (`missing`: the default persistent folder, when it does not exist here and ROOT stands in for it)."""

    paths: UserPaths
    persistent: Path
    missing: Optional[Path]
    outcomes: list[Outcome]


def persistent_folder(given: Optional[str | os.PathLike], root: Path,
                      environ: Mapping[str, str]) -> tuple[Path, Optional[Path]]:
    """--persistent (which must be a folder), else NPUENV_PERSISTENT_ROOT or /home/ma-user/work; when that
    does not exist (not a ModelArts box), ROOT, and the missing default second."""
    if given:
        path = Path(os.fspath(given)).expanduser().absolute()
        if not path.is_dir():
            raise UsageError(f"--persistent {os.fspath(given)}: not a folder",
                             hint="pass the folder that survives a restart")
        return path, None
    default = persistent_root(environ)
    return (default, None) if default.is_dir() else (root, default)


def check_user(root: str | os.PathLike, name: str, environ: Mapping[str, str],
               persistent: Optional[str | os.PathLike] = None) -> UserCheck:
    """The isolation checks for NAME: init.sh's state and that it runs, then where the environment it
    gives puts NPUENV_USER, HOME, the caches and the models. IsolationError when NAME has no folder."""
    paths = find_user(root, name)
    base, missing = persistent_folder(persistent, paths.root, environ)
    outcomes = run_checks(isolation.CHECKS, PersonContext(paths, base, environ))
    return UserCheck(paths, base, missing, outcomes)
