"""Per-person folders on the shared ma-user account: ROOT/NAME with an init.sh that is the login entry.

Everyone logs in as ma-user and only /home/ma-user/work survives a restart, so each person gets
ROOT/NAME as HOME, with the XDG folders, caches, tmp and the CA bundle inside it, and an init.sh that
sets all of that up and starts their shell (the SSH RemoteCommand, the VS Code terminal profile).
init.sh belongs half to npuenv and half to its owner: everything above the marker line is rewritten by
`user.add`, everything below it is the owner's and is kept. Nothing here prints; the tasks render.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import cann
from .atomic import write_atomic
from .errors import IsolationError, NpuenvError, RootError, UsageError, UserNameError
from .trust import CLIENT_VARS, BundleInfo, build_bundle
from .workspace import NOT_WRITABLE, PERSISTENT, Layout, unwritable

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SHELLS = ("zsh", "bash")
DEFAULT_VENV = "MindSpeed-MM/.venv"  # the default spec's env.venv, relative to ROOT/NAME
INIT_FORMAT = 1
MARKER = ("# ---- npuenv: your own lines go below this line; they run before the shell starts, "
          "and user.add keeps them ----")
BACKUP_SUFFIX = ".npuenv-backup"

_HEADER = re.compile(r"^# npuenv-init (\d+) user=(\S+) shell=(\S+) sha256=([0-9a-f]{64})$", re.MULTILINE)
_DIGEST = re.compile(r"sha256=[0-9a-f]{64}")
_DEFAULT_USER_LINES = """\
# for example:
# export WANDB_MODE=offline
# export ASCEND_RT_VISIBLE_DEVICES=0,1,2,3
"""


# --- names, roots and paths ---------------------------------------------------------------------------


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
    why = f" ({'; '.join(problems)})" if problems else ""
    suggestion = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:32]
    if suggestion and not suggestion[0].isalpha():
        suggestion = "u" + suggestion[:31]
    hint = f"{rules}, e.g. {suggestion}" if NAME_PATTERN.fullmatch(suggestion) else rules
    raise UserNameError(f"user name {name!r} is not allowed{why}", hint=hint)


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


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base.resolve())
    except OSError:
        return False


def _guard(path: Path, base: Path) -> Path:
    """Refuse to write `path` when it (through a symlink) leads outside `base`."""
    if not _inside(path, base):
        raise IsolationError(f"{path} leads outside {base} (a symlink?): npuenv writes only inside {base}",
                             hint="remove or fix the symlink, then run again")
    return path


# --- files --------------------------------------------------------------------------------------------


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Atomically, with `mode`: a running bash reads its script as it goes, so init.sh is never rewritten
    in place."""
    write_atomic(path, text, mode=mode)


def _write_if_changed(path: Path, text: str, mode: int) -> bool:
    try:
        same = path.read_text(encoding="utf-8") == text and (path.stat().st_mode & 0o777) == mode
    except (OSError, UnicodeDecodeError):
        same = False
    if not same:
        write_file(path, text, mode)
    return not same


def _make_dir(path: Path, mode: int, base: Path) -> None:
    """Make a folder inside `base`; one that is there already is left as it is (a symlink must stay inside)."""
    if path.exists() or path.is_symlink():
        _guard(path, base)
        if not path.is_dir():
            raise IsolationError(f"{path} exists and is not a folder", hint="move it aside, then run again")
        return
    path.mkdir(mode=mode)
    os.chmod(path, mode)  # mkdir's mode is reduced by the umask


# --- init.sh and the shells' startup files -------------------------------------------------------------

_INIT = r"""#!/bin/bash
# npuenv-init @FORMAT@ user=@NAME@ shell=@SHELL@ sha256=@DIGEST@
# @NAME@'s way into the shared ma-user account (the SSH RemoteCommand, the VS Code terminal profile):
# HOME, caches, tmp and shell history live in @NAME@'s folder, which survives a restart; then the CA
# bundle, CANN, PATH and the target env; then @SHELL@ starts.
#   init.sh             an interactive login shell
#   init.sh -c 'CMD'    runs CMD in this environment (any arguments go to the shell as they are)
# `invoke user.add @NAME@` rewrites everything above the marker line; your own lines go below it.

_npuenv_args=("$@")
set --  # sourced files below must not see our arguments
_npuenv_old_home=${HOME:-}
export NPUENV_USER=@NAME@  # the tag kill-npu goes by: everyone is ma-user
export HOME=@HOME@
export XDG_CONFIG_HOME="$HOME/.config" XDG_CACHE_HOME="$HOME/.cache"
export XDG_DATA_HOME="$HOME/.local/share" XDG_STATE_HOME="$HOME/.local/state"
export UV_CACHE_DIR=@UV_CACHE@ UV_PYTHON_INSTALL_DIR="$HOME/.npuenv/python"  # bootstrap's too
export PIP_CACHE_DIR="$XDG_CACHE_HOME/pip" HF_HOME="$XDG_CACHE_HOME/huggingface"
export CONDA_ENVS_PATH="$HOME/.conda/envs" CONDA_PKGS_DIRS="$HOME/.conda/pkgs"
export TMPDIR="$HOME/tmp" TMP="$HOME/tmp" TEMP="$HOME/tmp"
# inherited, these would point outside this folder (or into another person's)
unset HISTFILE ZDOTDIR VIRTUAL_ENV PYTHONHOME HF_HUB_CACHE HUGGINGFACE_HUB_CACHE TRANSFORMERS_CACHE
mkdir -p -- "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$XDG_STATE_HOME" "$TMPDIR" 2>/dev/null

# the CA bundle npuenv built (public roots + the box's CAs + extras), for every client
_npuenv_ca="$HOME/.npuenv/ca-bundle.pem"
if [ -r "$_npuenv_ca" ]; then
@CA_EXPORTS@
fi

# CANN (NPUENV_CANN_SET_ENV names another set_env.sh); what it prints goes to stderr, keeping -c output clean
_npuenv_cann=${NPUENV_CANN_SET_ENV:-@CANN@}
if [ -r "$_npuenv_cann" ]; then . "$_npuenv_cann" >&2; fi

# PATH: the target env, then personal and shared tools in front; entries another person's init.sh
# added (a shell entered from theirs) are dropped
_npuenv_venv=@VENV@
_npuenv_add="$HOME/.local/bin":@SHARED_BIN@
if [ -x "$_npuenv_venv/bin/python" ]; then
  export VIRTUAL_ENV="$_npuenv_venv"
  _npuenv_add="$_npuenv_venv/bin:$_npuenv_add"
fi
_npuenv_keep= _npuenv_rest=${PATH:-/usr/local/bin:/usr/bin:/bin}
while [ -n "$_npuenv_rest" ]; do
  _npuenv_dir=${_npuenv_rest%%:*}
  case $_npuenv_rest in *:*) _npuenv_rest=${_npuenv_rest#*:} ;; *) _npuenv_rest= ;; esac
  case ":${NPUENV_PATH_ADDED:-}:$_npuenv_add:" in *":$_npuenv_dir:"*) continue ;; esac
  _npuenv_keep=${_npuenv_keep:+$_npuenv_keep:}$_npuenv_dir
done
export PATH="$_npuenv_add${_npuenv_keep:+:$_npuenv_keep}" NPUENV_PATH_ADDED="$_npuenv_add"

# arriving by SSH lands in ma-user's own home: start here instead (a VS Code terminal keeps its folder)
if [ "$PWD" = "$_npuenv_old_home" ] || [ "$PWD" = / ]; then cd "$HOME" || :; fi

# your lines: everything below the marker line at the end of this file runs here, in this shell
set -- "${_npuenv_args[@]}"
_npuenv_mine= _npuenv_seen=
while IFS= read -r _npuenv_line || [ -n "$_npuenv_line" ]; do
  if [ -n "$_npuenv_seen" ]; then _npuenv_mine+=$_npuenv_line$'\n'
  elif [ "$_npuenv_line" = @MARKER@ ]; then _npuenv_seen=1; fi
done < "${BASH_SOURCE[0]}"
eval "$_npuenv_mine"

_npuenv_shell=@SHELL@
if ! command -v "$_npuenv_shell" >/dev/null 2>&1; then
  if [ ${#_npuenv_args[@]} -eq 0 ]; then
    echo "npuenv: $_npuenv_shell is not installed here (from apt, it is gone after a restart); starting bash" >&2
  fi
  _npuenv_shell=bash
fi
export SHELL
SHELL=$(command -v "$_npuenv_shell")
export NPUENV_PATH="$PATH"  # the shell's startup files put back what they drop of it
if [ "$_npuenv_shell" = zsh ]; then
  export ZDOTDIR="$HOME/.npuenv/shell/zsh"
  if [ ${#_npuenv_args[@]} -eq 0 ]; then exec "$SHELL" -l; fi
  exec "$SHELL" "${_npuenv_args[@]}"
fi
exec "$SHELL" --rcfile "$HOME/.npuenv/shell/bashrc" "${_npuenv_args[@]}"
exit 127  # exec failed: never fall through to the lines below
"""

# Shared by the bash and zsh startup files: put back the entries of init.sh's PATH that a startup file
# (e.g. /etc/profile, which resets PATH on Debian and Ubuntu) dropped, in front, keeping what it added.
_RESTORE_PATH = r"""_npuenv_rest=${NPUENV_PATH-} _npuenv_front=
while [ -n "$_npuenv_rest" ]; do
  _npuenv_dir=${_npuenv_rest%%:*}
  case $_npuenv_rest in *:*) _npuenv_rest=${_npuenv_rest#*:} ;; *) _npuenv_rest= ;; esac
  case ":$PATH:" in *":$_npuenv_dir:"*) ;; *) _npuenv_front=${_npuenv_front:+$_npuenv_front:}$_npuenv_dir ;; esac
done
if [ -n "$_npuenv_front" ]; then export PATH="$_npuenv_front${PATH:+:$PATH}"; fi
unset _npuenv_rest _npuenv_front _npuenv_dir
"""

_BASHRC = r"""# npuenv: @NAME@'s bash startup file; init.sh starts bash with --rcfile this file.
# `invoke user.add @NAME@` rewrites it: your own settings go in ~/.bashrc (or ~/.bash_profile).
# Like a login shell: /etc/profile, then the first of your ~/.bash_profile, ~/.bash_login, ~/.profile,
# ~/.bashrc; then init.sh's PATH entries those dropped go back in front, and the prompt shows @NAME@.
if [ -r /etc/profile ]; then . /etc/profile; fi
for _npuenv_rc in "$HOME/.bash_profile" "$HOME/.bash_login" "$HOME/.profile" "$HOME/.bashrc"; do
  if [ -r "$_npuenv_rc" ]; then . "$_npuenv_rc"; break; fi
done
unset _npuenv_rc
@RESTORE@case ${PS1-} in *"(@NAME@)"*) ;; *) PS1="(@NAME@) ${PS1:-\s-\v\\\$ }" ;; esac
"""

_ZSH_FORWARD = r"""# npuenv: zsh reads its startup files from here ($ZDOTDIR) for @NAME@; this one runs your ~/@FILE@.
# `invoke user.add @NAME@` rewrites it: your own settings go in ~/@FILE@.
if [[ "$ZDOTDIR" != "$HOME" && -r "$HOME/@FILE@" ]]; then source "$HOME/@FILE@"; fi
"""

_ZSHRC_EXTRA = r"""[[ -n ${HISTFILE-} ]] || HISTFILE=$HOME/.zsh_history
(( ${SAVEHIST:-0} > 0 )) || SAVEHIST=10000
(( ${HISTSIZE:-0} >= SAVEHIST )) || HISTSIZE=$SAVEHIST
"""

ZSH_FILES = (".zshenv", ".zprofile", ".zshrc", ".zlogin")


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def _digest(managed: str) -> str:
    return hashlib.sha256(_DIGEST.sub("sha256=", managed, count=1).encode("utf-8")).hexdigest()


def render_init(paths: UserPaths, shell: str) -> str:
    """npuenv's part of init.sh, up to and including the marker line."""
    q = shlex.quote
    ca = "\n".join(f'  export {var}="$_npuenv_ca"' for var in CLIENT_VARS)
    text = _fill(_INIT, FORMAT=str(INIT_FORMAT), NAME=paths.name, SHELL=shell, HOME=q(str(paths.home)),
                 CA_EXPORTS=ca, CANN=q(cann.SET_ENV), VENV=q(str(paths.venv)),
                 SHARED_BIN=q(str(paths.shared_bin)), UV_CACHE=q(str(paths.uv_cache)), MARKER=q(MARKER)) + MARKER + "\n"
    return text.replace("@DIGEST@", _digest(text.replace("@DIGEST@", "0" * 64)))


def render_shell_files(paths: UserPaths) -> dict[Path, str]:
    """The bash rc file and zsh's $ZDOTDIR files init.sh starts the shells with."""
    name = paths.name
    files = {paths.bashrc: _fill(_BASHRC, NAME=name, RESTORE=_RESTORE_PATH)}
    for file in ZSH_FILES:
        text = _fill(_ZSH_FORWARD, NAME=name, FILE=file)
        if file == ".zshrc":
            text = (text.replace("if [[", _ZSHRC_EXTRA + "if [[", 1) + _RESTORE_PATH
                    + f'[[ $PS1 == *"({name})"* ]] || PS1="({name}) $PS1"\n')
        files[paths.zdotdir / file] = text
    return files


@dataclass(frozen=True)
class InitFile:
    """What an init.sh is: `state` npuenv (as npuenv wrote it), edited (npuenv's part changed by hand),
    outdated (an older format), foreign (not written by npuenv), or broken (npuenv's, marker gone)."""

    state: str
    shell: str = ""
    managed: str = ""
    mine: str = ""


def read_init(text: str) -> InitFile:
    header = _HEADER.search(text.split("\n", 2)[1] if text.count("\n") >= 2 else "")
    if not header:
        return InitFile("foreign", mine=text)
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.rstrip("\r\n") == MARKER:
            managed, mine = "".join(lines[:index + 1]), "".join(lines[index + 1:])
            break
    else:
        return InitFile("broken", shell=header.group(3))
    if _digest(managed) != header.group(4):
        state = "edited"
    elif int(header.group(1)) < INIT_FORMAT:
        state = "outdated"
    else:
        state = "npuenv"
    return InitFile(state, shell=header.group(3), managed=managed, mine=mine)


# --- user.add -----------------------------------------------------------------------------------------


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
    if home.is_symlink():
        raise IsolationError(f"{home} is a symlink (to {os.readlink(home)}): user.add never writes through a link",
                             hint="move the link aside and run again: user.add makes a real folder there")
    if home.exists() and not home.is_dir():
        raise IsolationError(f"{home} exists and is not a folder", hint="move it aside, then run again")
    where = unwritable(home)
    if where is not None:
        raise RootError(f"{where} {NOT_WRITABLE}",
                        hint=f"pass a --root you can write to (on ModelArts {PERSISTENT})")
    result = AddResult(paths, shell, created=not home.exists(), init="unchanged")
    previous = _previous_init(paths, adopt)
    for path, mode in paths.dirs():
        _make_dir(path, mode, home if path != home else paths.root)
    result.bundle = build_bundle(_guard(paths.ca_bundle, home), list(extras), environ)
    for path, text in render_shell_files(paths).items():
        if _write_if_changed(_guard(path, home), text, 0o644):
            result.changed.append(path)
    _write_init(paths, shell, previous, result)
    if shared_uv is not None:
        result.shared_uv = install_shared_uv(paths.root, shared_uv)
    result.warnings += _add_warnings(paths, shell, persistent)
    return result


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
    init_sh = _guard(paths.init_sh, paths.home)
    mine = _DEFAULT_USER_LINES if previous is None or previous.state == "foreign" else previous.mine
    text = render_init(paths, shell) + mine
    if previous is not None and previous.state in ("foreign", "edited"):
        result.backup = init_sh.with_name(init_sh.name + BACKUP_SUFFIX)
        shutil.copy2(init_sh, result.backup)
    if _write_if_changed(init_sh, text, 0o755):
        result.changed.append(init_sh)
        result.init = "created" if previous is None else "updated"


def _add_warnings(paths: UserPaths, shell: str, persistent: Path) -> list[str]:
    warnings = []
    if persistent.is_dir() and not _inside(paths.home, persistent):
        warnings.append(f"{paths.home} is not under {persistent}: on ModelArts it is wiped at a restart")
    if not shutil.which(shell):
        warnings.append(f"{shell} is not installed here: init.sh starts bash until it is")
    return warnings


def install_shared_uv(root: Path, uv: Path) -> Path:
    """Copy the uv binary to ROOT/.local/bin (on everyone's PATH through init.sh), unless it is there."""
    local = root / ".local"
    for folder in (local, local / "bin"):
        _make_dir(folder, 0o755, root)
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


# --- user.list, user.show -------------------------------------------------------------------------------


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


def ssh_config(paths: UserPaths, alias: str = "ict", hostname: str = "HOSTNAME", port: str = "PORT") -> str:
    """The ~/.ssh/config blocks that enter this person's folder, and a plain one for scp and VS Code."""
    command = shlex.quote(str(paths.init_sh)).replace("%", "%%")  # ssh expands %-tokens in RemoteCommand
    host = f"    HostName {hostname}\n    User ma-user\n    Port {port}\n"
    return (f"# ~/.ssh/config on your computer: `ssh {alias}` opens {paths.name}'s shell on the box\n"
            f"Host {alias}\n{host}    RemoteCommand {command}\n    RequestTTY yes\n"
            f"\n# scp, rsync, sftp and VS Code Remote-SSH need a host without RemoteCommand; commands too:\n"
            f"#   ssh {alias}-plain {command} -c 'npu-smi info'\n"
            f"Host {alias}-plain\n{host}")


def profile_name(paths: UserPaths) -> str:
    """The VS Code terminal profile's name: "zsh (alice)", after the shell init.sh starts."""
    info = inspect_user(paths)
    return f"{info.shell or 'zsh'} ({paths.name})"


# --- user.vscode ----------------------------------------------------------------------------------------


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
    from .vscode import merge_terminal_profile

    paths = find_user(root, name)
    folder = Path(os.fspath(project)).expanduser().absolute()
    if not folder.is_dir():
        raise UsageError(f"--project {project}: not a folder", hint="pass the folder you open in VS Code")
    if not _inside(folder, paths.home):
        raise UsageError(
            f"--project {project} is not inside {paths.home}: a workspace setting there would open "
            f"everyone's terminals as {name}",
            hint=f"open a folder inside {paths.home} in VS Code, or paste `invoke user.show {name}`'s "
                 "snippet into your own settings")
    vscode_dir = folder / ".vscode"
    _make_dir(vscode_dir, 0o755, paths.home)
    settings = _guard(vscode_dir / "settings.json", paths.home)
    if settings.exists() and not settings.is_file():
        raise IsolationError(f"{settings} is not a regular file", hint="move it aside, then run again")
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


def _read_settings(path: Path) -> str:
    if not path.exists():
        return ""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise IsolationError(f"cannot read {path}: {exc}", hint="fix or move the file aside, then run again") from exc


def vscode_snippet(paths: UserPaths) -> str:
    from .vscode import snippet

    return snippet(profile_name(paths), str(paths.init_sh))


# --- user.check: does everything live where it survives a restart? ------------------------------------


@dataclass(frozen=True)
class Finding:
    status: str  # ok | warn | fail
    label: str
    detail: str
    fix: str = ""


def probe_environment(init_sh: Path, environ: Mapping[str, str], timeout: float = 30) -> dict[str, str]:
    """The environment a command gets through init.sh (`init.sh -c 'env'`), the owner's lines included."""
    # the dump goes inside the user's folder: npuenv writes nowhere else
    with tempfile.TemporaryDirectory(prefix=".npuenv-check-", dir=init_sh.parent) as tmp:
        out = Path(tmp) / "env"
        try:
            proc = subprocess.run([str(init_sh), "-c", 'env -0 > "$1"', "npuenv-check", str(out)],
                                  env=dict(environ), stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise IsolationError(f"{init_sh} -c did not run: {exc}",
                                 hint=f"try it by hand: {shlex.quote(str(init_sh))} -c env") from exc
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise IsolationError(f"{init_sh} -c failed (exit {proc.returncode}){': ' + tail if tail else ''}",
                                 hint=f"try it by hand: {shlex.quote(str(init_sh))} -c env")
        pairs = out.read_bytes().decode("utf-8", "replace").split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def _locations(env: Mapping[str, str], paths: UserPaths) -> list[tuple[str, str, str]]:
    """(label, the variable that decides it, path) for what must survive a restart."""
    home = env.get("HOME", "")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    hf_home = env.get("HF_HOME") or os.path.join(cache, "huggingface")
    hub_var = next((v for v in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE") if env.get(v)),
                   "HF_HOME")
    places = [
        ("HOME", "HOME", home),
        ("workspace", "--root", str(paths.home)),
        ("uv cache", "UV_CACHE_DIR", env.get("UV_CACHE_DIR") or os.path.join(cache, "uv")),
        ("uv's Pythons", "UV_PYTHON_INSTALL_DIR",
         env.get("UV_PYTHON_INSTALL_DIR") or os.path.join(data, "uv", "python")),
        ("pip cache", "PIP_CACHE_DIR", env.get("PIP_CACHE_DIR") or os.path.join(cache, "pip")),
        ("models (Hugging Face)", hub_var, env.get(hub_var) if hub_var != "HF_HOME" else os.path.join(hf_home, "hub")),
        ("models (ModelScope)", "MODELSCOPE_CACHE", env.get("MODELSCOPE_CACHE") or os.path.join(cache, "modelscope")),
        ("models (torch hub)", "TORCH_HOME", env.get("TORCH_HOME") or os.path.join(cache, "torch")),
    ]
    if env.get("CONDA_ENVS_PATH"):
        places.append(("conda envs", "CONDA_ENVS_PATH", env["CONDA_ENVS_PATH"].split(os.pathsep)[0]))
    if env.get("VIRTUAL_ENV"):
        places.append(("target env", "VIRTUAL_ENV", env["VIRTUAL_ENV"]))
    ckpt = paths.home / "MindSpeed-MM" / "ckpt"
    if ckpt.exists() or ckpt.is_symlink():
        places.append(("models (checkpoints)", "MindSpeed-MM/ckpt", str(ckpt)))
    return places


def persistence_findings(env: Mapping[str, str], paths: UserPaths, persistent: Path) -> list[Finding]:
    """Whether HOME, the caches, the workspace and the models of `env` live under `persistent`."""
    findings = []
    tag = env.get("NPUENV_USER", "")
    if tag != paths.name:
        findings.append(Finding("fail", "NPUENV_USER", f"is {tag!r}, not {paths.name!r}: kill-npu tells "
                                "people's processes apart by it", "do not set NPUENV_USER below the marker"))
    for label, var, value in _locations(env, paths):
        if not value or not os.path.isabs(value):
            findings.append(Finding("warn", label, f"{var} is {value!r}, not an absolute path",
                                    f"set {var} to a folder inside {paths.home}"))
            continue
        real = Path(value).resolve()
        shown = value if str(real) == value else f"{value} -> {real}"
        if real.is_relative_to(persistent.resolve()):
            findings.append(Finding("ok", label, shown))
            continue
        if var == "HOME":
            fix = f"enter through init.sh: ssh with RemoteCommand {paths.init_sh}, or run it"
        elif var == "--root":
            fix = f"move the folder under {persistent} and run user.add there"
        elif var.startswith("MindSpeed-MM") or value != str(real):
            fix = f"move it under {persistent} (it is a symlink to {real})"
        else:
            fix = f"point {var} into {paths.home}: init.sh does, so remove what overrides it (below the marker?)"
        findings.append(Finding("warn", label, f"{shown} is outside {persistent}: lost at a restart", fix))
    return findings


def check_user(root: str | os.PathLike, name: str, environ: Mapping[str, str], persistent: Path,
               venv_rel: str = DEFAULT_VENV) -> list[Finding]:
    """init.sh's state, then where the environment it gives puts HOME, caches, workspace and models."""
    paths = find_user(root, name, venv_rel)
    info = inspect_user(paths)
    state_findings = {
        "npuenv": Finding("ok", "init.sh", f"{paths.init_sh} ({info.shell})"),
        "edited": Finding("warn", "init.sh", "npuenv's part was edited by hand: user.add will replace it",
                          "move your changes below the marker line"),
        "outdated": Finding("warn", "init.sh", "written by an older npuenv", f"run: invoke user.add {name}"),
        "foreign": Finding("warn", "init.sh", "not written by npuenv", f"run: invoke user.add {name} --adopt"),
        "broken": Finding("fail", "init.sh", "its marker line is gone", f"put it back: {MARKER}"),
        "unreadable": Finding("fail", "init.sh", "cannot be read", f"check {paths.init_sh}"),
    }
    findings = [state_findings[info.state]]
    if not os.access(paths.init_sh, os.X_OK):
        findings.append(Finding("fail", "init.sh", "is not executable: ssh and VS Code cannot run it",
                                f"chmod 755 {shlex.quote(str(paths.init_sh))}"))
        return findings
    try:
        env = probe_environment(paths.init_sh, environ)
    except IsolationError as exc:
        return findings + [Finding("fail", "init.sh -c", exc.message, exc.hint)]
    return findings + persistence_findings(env, paths, persistent)
