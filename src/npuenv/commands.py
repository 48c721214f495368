"""Running external commands: argument lists only, output to a log file, failures as typed errors.

Every command runs under npuenv.reaper's supervisor, in a session of its own: a signal to npuenv's
process group (a SIGKILL too) kills npuenv, and the supervisor, told by the kernel, then stops the
command and everything it started. On an interrupt npuenv stops what is still running itself
(`stop_all`), so Ctrl-C does not wait for a build to finish.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Callable, Optional

from .errors import CommandFailed
from .reaper import GRACE, supervised

# The supervisors this npuenv process has running (signals and interrupts are process-wide, so is this).
_LIVE: set = set()
_LIVE_LOCK = threading.Lock()


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen:
    """Start `argv` under the supervisor (see the module's docstring); stop it with `stop`."""
    proc = subprocess.Popen(supervised(argv), start_new_session=True, **popen)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def finish(proc: subprocess.Popen, input_done: Callable[[], Any]) -> Any:
    """`input_done()` (communicate, or reading the output) then wait; on any exception (an interrupt
    included) stop the command first, so nothing outlives the caller."""
    try:
        result = input_done()
        proc.wait()
        return result
    except BaseException:
        stop(proc)
        raise
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)


def stop(proc: subprocess.Popen) -> None:
    """Ask the supervisor to stop its command's group (SIGTERM, then SIGKILL after its grace), and wait."""
    try:
        proc.terminate()
        proc.wait(timeout=GRACE + 10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_all() -> None:
    """Stop every command this process still has running (after an interrupt, before waiting on threads)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        if proc.poll() is None:
            stop(proc)


def logged_text(log: IO[str]) -> str:
    """What a log file holds so far (flushed first): a failed command's output, to explain it; '' for a
    stream that is no file."""
    log.flush()
    name = getattr(log, "name", None)
    return Path(name).read_text(encoding="utf-8", errors="replace") if isinstance(name, str) else ""


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
        proc = spawn(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                     text=True)
        stdout, stderr = finish(proc, proc.communicate)
        output = ""
    else:
        proc = spawn(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
        stdout, stderr = finish(proc, proc.communicate)
        output = (stdout or "") + (stderr or "")
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, output, hint)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


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
    proc = spawn(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)

    def copy_lines() -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                log.write(line)
                on_line(line.rstrip("\n"))

    finish(proc, copy_lines)
    log.flush()
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, "", hint)
