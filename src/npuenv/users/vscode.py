"""`user.vscode`: NAME's init.sh as the default terminal profile of a VS Code folder, merged into its
.vscode/settings.json with comments and every other key kept (npuenv.users.jsonc does the splicing)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import IsolationError, UsageError
from .files import BACKUP_SUFFIX, guard, inside, make_dir, write_file
from .jsonc import set_in
from .names import UserPaths
from .folders import find_user, inspect_user

PROFILES_KEY = "terminal.integrated.profiles.linux"
DEFAULT_PROFILE_KEY = "terminal.integrated.defaultProfile.linux"


def profile_settings(profile: str, path: str) -> list[tuple[list[str], Any]]:
    """The settings that add terminal profile `profile` running `path` and make it the default."""
    return [([PROFILES_KEY, profile, "path"], path), ([DEFAULT_PROFILE_KEY], profile)]


def merge_terminal_profile(text: str, profile: str, path: str, source: str = "") -> str:
    """settings.json `text` with the profile added (or its path updated) and made the default."""
    for keys, value in profile_settings(profile, path):
        text = set_in(text, keys, value, source)
    return text


def snippet(profile: str, path: str) -> str:
    """The lines to paste into a settings.json object by hand."""
    profiles = json.dumps({profile: {"path": path}}, indent=4, ensure_ascii=False).replace("\n", "\n    ")
    return (f"    {json.dumps(PROFILES_KEY)}: {profiles},\n"
            f"    {json.dumps(DEFAULT_PROFILE_KEY)}: {json.dumps(profile, ensure_ascii=False)},")


def profile_name(paths: UserPaths) -> str:
    """The VS Code terminal profile's name: "zsh (alice)", after the shell init.sh starts."""
    info = inspect_user(paths)
    return f"{info.shell or 'zsh'} ({paths.name})"


def vscode_snippet(paths: UserPaths) -> str:
    """The settings.json lines that make this person's init.sh the default terminal."""
    return snippet(profile_name(paths), str(paths.init_sh))


@dataclass
class VscodeResult:
    settings: Path
    profile: str
    state: str  # created | updated | unchanged
    backup: Optional[Path] = None


def install_vscode_profile(root: str | os.PathLike, name: str, project: str | os.PathLike) -> VscodeResult:
    """Merge the terminal profile into PROJECT/.vscode/settings.json, keeping comments and other keys.

    PROJECT must be inside ROOT/NAME: a workspace setting elsewhere would open other people's terminals
    as NAME. The previous file is kept as settings.json.npuenv-backup; a file that cannot be parsed is
    refused (JsoncError with line and column) and left as it is."""
    paths = find_user(root, name)
    settings = _settings_file(paths, project)
    profile = profile_name(paths)
    old = _read_settings(settings)
    bom = "\ufeff" if old.startswith("\ufeff") else ""
    new = bom + merge_terminal_profile(old[len(bom):], profile, str(paths.init_sh), source=str(settings))
    result = VscodeResult(settings, profile, "unchanged")
    if new == old and settings.exists():
        return result
    mode = 0o644
    if settings.exists():
        mode = settings.stat().st_mode & 0o777
        result.backup = settings.with_name(settings.name + BACKUP_SUFFIX)
        write_file(result.backup, old, mode)
        result.state = "updated"
    else:
        result.state = "created"
    write_file(settings, new, mode)
    return result


def _settings_file(paths: UserPaths, project: str | os.PathLike) -> Path:
    """PROJECT/.vscode/settings.json, PROJECT checked to be a folder inside the person's; .vscode is made."""
    folder = Path(os.fspath(project)).expanduser().absolute()
    if not folder.is_dir():
        raise UsageError(f"--project {project}: not a folder", hint="pass the folder you open in VS Code")
    if not inside(folder, paths.home):
        raise UsageError(
            f"--project {project} is not inside {paths.home}: a workspace setting there would open "
            f"everyone's terminals as {paths.name}",
            hint=f"open a folder inside {paths.home} in VS Code, or paste `invoke user.show {paths.name}`'s "
                 "snippet into your own settings")
    vscode_dir = folder / ".vscode"
    make_dir(vscode_dir, 0o755, paths.home)
    settings = guard(vscode_dir / "settings.json", paths.home)
    if settings.exists() and not settings.is_file():
        raise IsolationError(f"{settings} is not a regular file", hint="move it aside, then run again")
    return settings


def _read_settings(path: Path) -> str:
    if not path.exists():
        return ""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise IsolationError(f"cannot read {path}: {exc}", hint="fix or move the file aside, then run again") from exc
