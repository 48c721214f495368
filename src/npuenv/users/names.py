"""Who and where: a person's name, the ROOT that holds everyone's folders, and the paths inside ROOT/NAME."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import RootError, UserNameError
from ..workspace import PERSISTENT, Layout

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SHELLS = ("zsh", "bash")
DEFAULT_VENV = "MindSpeed-MM/.venv"  # the default spec's env.venv, relative to ROOT/NAME

# names of the account, of everyone, or of nobody in particular: a folder under them would mislead
RESERVED_NAMES = frozenset({"root", "ma-user", "mauser", "admin", "shared", "all", "everyone"})


def check_name(name: str) -> str:
    """`name` when it is 1-32 lowercase letters, digits, '-' or '_' starting with a letter, and not reserved;
    else UserNameError, naming every reason."""
    if NAME_PATTERN.fullmatch(name or "") and name not in RESERVED_NAMES:
        return name
    rules = "use 1-32 lowercase letters, digits, '-' or '_', starting with a letter"
    if name in RESERVED_NAMES:
        raise UserNameError(f"user name {name!r} is reserved: it names the account or everyone, not a person",
                            hint=f"give the person's own name ({rules})")
    problems = _name_problems(name)
    why = f" ({'; '.join(problems)})" if problems else ""
    suggestion = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:32]
    if suggestion and not suggestion[0].isalpha():
        suggestion = "u" + suggestion[:31]
    hint = f"{rules}, e.g. {suggestion}" if NAME_PATTERN.fullmatch(suggestion) else rules
    raise UserNameError(f"user name {name!r} is not allowed{why}", hint=hint)


def _name_problems(name: str) -> list[str]:
    problems = []
    if not name:
        problems.append("it is empty")
    if name.startswith("-"):
        problems.append("it starts with '-': an option where NAME should be? (help: invoke --help user.add)")
    elif name[:1].isdigit() or name[:1] == "_":
        problems.append(f"it starts with {name[0]!r}, not a letter")
    if "/" in name or "\\" in name:
        problems.append("a name is one folder under ROOT, not a path")
    if "." in name:
        problems.append("it has a dot")
    controls = [c for c in name if not c.isprintable()]
    if controls:
        problems.append(f"it has a control character ({', '.join(sorted({repr(c) for c in controls}))})")
    if any(c == " " or (c.isspace() and c.isprintable()) for c in name):
        problems.append("it has a space")
    if name and name.lower() != name:
        problems.append("it has capital letters")
    if len(name) > 32:
        problems.append("it is longer than 32 characters")
    return problems


def check_root(root: str | os.PathLike) -> Path:
    """ROOT as an absolute path; it must be an existing folder, and fit in PATH (no ':' or line break)."""
    text = os.fspath(root)
    path = Path(text).expanduser().absolute()
    if ":" in str(path) or "\n" in str(path):
        raise RootError(f"--root {text}: a folder with ':' or a line break in its path cannot go on PATH",
                        hint="pick a folder without them")
    if not path.is_dir():
        problem = "does not exist" if not path.exists() else "is not a folder"
        raise RootError(f"--root {text}: {problem}",
                        hint=f"pass the folder that holds everyone's folders (on ModelArts {PERSISTENT})")
    return path


@dataclass(frozen=True)
class UserPaths:
    """Where a person's things are: `home` is ROOT/NAME, and also their bootstrap workspace."""

    root: Path
    name: str
    venv_rel: str = DEFAULT_VENV

    @property
    def home(self) -> Path:
        return self.root / self.name

    @property
    def init_sh(self) -> Path:
        return self.home / "init.sh"

    @property
    def layout(self) -> Layout:
        return Layout(self.home)

    @property
    def ca_bundle(self) -> Path:
        return self.layout.ca_bundle

    @property
    def shell_dir(self) -> Path:
        return self.layout.home / "shell"

    @property
    def bashrc(self) -> Path:
        return self.shell_dir / "bashrc"

    @property
    def zdotdir(self) -> Path:
        return self.shell_dir / "zsh"

    @property
    def venv(self) -> Path:
        return self.home / self.venv_rel

    @property
    def shared_bin(self) -> Path:
        return self.root / ".local" / "bin"

    @property
    def uv_cache(self) -> Path:
        """uv's cache, shared by everyone under ROOT: bootstrap uses the same one (workspace.uv_cache_dir)."""
        return self.root / ".cache" / "uv"

    def dirs(self) -> list[tuple[Path, int]]:
        """The folders user.add makes, with their modes."""
        h = self.home
        return [(h, 0o755), (h / ".config", 0o700), (h / ".cache", 0o700), (h / ".local", 0o755),
                (h / ".local" / "bin", 0o755), (h / ".local" / "share", 0o700), (h / ".local" / "state", 0o700),
                (h / "tmp", 0o700), (self.layout.home, 0o755), (self.shell_dir, 0o755), (self.zdotdir, 0o755)]


def user_paths(root: str | os.PathLike, name: str, venv_rel: str = DEFAULT_VENV) -> UserPaths:
    name = check_name(name)
    return UserPaths(check_root(root), name, venv_rel)


def default_shell() -> str:
    """zsh when it is installed, else bash."""
    return "zsh" if shutil.which("zsh") else "bash"
