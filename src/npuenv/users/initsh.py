"""init.sh, a person's login entry, and the shells' startup files it starts them with.

init.sh belongs half to npuenv and half to its owner: everything above the marker line is npuenv's and
rewritten by `user.add`, everything below it is the owner's and kept. The shell text lives in the package's
shell/ folder (templates with @PLACEHOLDERS@); this module fills them in, reads back an existing init.sh,
and runs one (`init.sh -c env`) to see the environment it gives.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import cann
from ..errors import IsolationError
from ..trust import CLIENT_VARS
from .names import UserPaths

INIT_FORMAT = 1
MARKER = ("# ---- npuenv: your own lines go below this line; they run before the shell starts, "
          "and user.add keeps them ----")
ZSH_FILES = (".zshenv", ".zprofile", ".zshrc", ".zlogin")
SHELL_DIR = Path(__file__).resolve().parent / "shell"

_HEADER = re.compile(r"^# npuenv-init (\d+) user=(\S+) shell=(\S+) sha256=([0-9a-f]{64})$", re.MULTILINE)
_DIGEST = re.compile(r"sha256=[0-9a-f]{64}")
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_NO_DIGEST = "0" * 64


def shell_text(name: str) -> str:
    """A file of the package's shell/ folder."""
    return (SHELL_DIR / name).read_text(encoding="utf-8")


def fill(template: str, **values: str) -> str:
    """`template` with every @KEY@ replaced by values[KEY], in one pass (a value is never looked into);
    a placeholder without a value is a bug, and raises."""
    missing = sorted(set(_PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise KeyError(f"no value for {', '.join('@' + m + '@' for m in missing)}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _digest(managed: str) -> str:
    return hashlib.sha256(_DIGEST.sub("sha256=", managed, count=1).encode("utf-8")).hexdigest()


def render_init(paths: UserPaths, shell: str) -> str:
    """npuenv's part of init.sh, up to and including the marker line."""
    q = shlex.quote
    ca = "\n".join(f'  export {var}="$_npuenv_ca"' for var in CLIENT_VARS)
    text = fill(shell_text("init.sh.in"), FORMAT=str(INIT_FORMAT), NAME=paths.name, SHELL=shell,
                DIGEST=_NO_DIGEST, HOME=q(str(paths.home)), CA_EXPORTS=ca, CANN=q(cann.SET_ENV),
                VENV=q(str(paths.venv)), SHARED_BIN=q(str(paths.shared_bin)), UV_CACHE=q(str(paths.uv_cache)),
                MARKER=q(MARKER)) + MARKER + "\n"
    # the header line comes before any path, so the first sha256= is its own
    return text.replace(f"sha256={_NO_DIGEST}", f"sha256={_digest(text)}", 1)


def example_lines() -> str:
    """What goes below the marker of a new init.sh: commented-out examples."""
    return shell_text("init-example.sh")


def render_shell_files(paths: UserPaths) -> dict[Path, str]:
    """The bash rc file and zsh's $ZDOTDIR files init.sh starts the shells with."""
    name, restore = paths.name, shell_text("restore-path.sh").rstrip("\n")
    files = {paths.bashrc: fill(shell_text("bashrc.in"), NAME=name, RESTORE=restore)}
    for file in ZSH_FILES:
        if file == ".zshrc":
            text = fill(shell_text("zshrc.in"), NAME=name, RESTORE=restore)
        else:
            text = fill(shell_text("zsh-forward.in"), NAME=name, FILE=file)
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


def probe_environment(init_sh: Path, environ: Mapping[str, str], timeout: float = 30) -> dict[str, str]:
    """The environment a command gets through init.sh (`init.sh -c 'env'`), the owner's lines included;
    IsolationError when init.sh does not run or fails."""
    hint = f"try it by hand: {shlex.quote(str(init_sh))} -c env"
    # the dump goes inside the user's folder: npuenv writes nowhere else
    with tempfile.TemporaryDirectory(prefix=".npuenv-check-", dir=init_sh.parent) as tmp:
        out = Path(tmp) / "env"
        try:
            proc = subprocess.run([str(init_sh), "-c", 'env -0 > "$1"', "npuenv-check", str(out)],
                                  env=dict(environ), stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise IsolationError(f"{init_sh} -c did not run: {exc}", hint=hint) from exc
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise IsolationError(f"{init_sh} -c failed (exit {proc.returncode}){': ' + tail if tail else ''}",
                                 hint=hint)
        pairs = out.read_bytes().decode("utf-8", "replace").split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)
