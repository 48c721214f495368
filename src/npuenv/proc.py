"""Running external commands: argument lists only, output to a log file, failures as typed errors."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Callable, Optional

from .errors import NpuenvError


class CommandFailed(NpuenvError):
    """A command exited non-zero. `output` holds what it printed (when captured)."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str = "", hint: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        shown = " ".join(self.argv)
        super().__init__(f"command failed with exit code {returncode}: {shown}", hint)


def run(
    argv: Sequence[str],
    *,
    cwd: Optional[Path] = None,
    env: Optional[Mapping[str, str]] = None,
    log: Optional[IO[str]] = None,
    check: bool = True,
    hint: str = "",
) -> subprocess.CompletedProcess:
    """Run `argv`. With `log`, stdout and stderr go to it (and are not returned); else they are captured."""
    argv = [os.fspath(a) for a in argv]
    if log is not None:
        log.write(f"$ {' '.join(argv)}" + (f"   (in {cwd})" if cwd else "") + "\n")
        log.flush()
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT, text=True)
        output = ""
    else:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True)
        output = (proc.stdout or "") + (proc.stderr or "")
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, output, hint)
    return proc


def run_streaming(
    argv: Sequence[str],
    *,
    cwd: Optional[Path],
    env: Mapping[str, str],
    log: IO[str],
    on_line: Callable[[str], None],
    hint: str = "",
) -> None:
    """Run `argv`, copying each output line to `log` and to `on_line` (a live status). Non-zero: CommandFailed."""
    argv = [os.fspath(a) for a in argv]
    log.write(f"$ {' '.join(argv)}" + (f"   (in {cwd})" if cwd else "") + "\n")
    log.flush()
    with subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            on_line(line.rstrip("\n"))
        returncode = proc.wait()
    log.flush()
    if returncode != 0:
        raise CommandFailed(argv, returncode, "", hint)
