"""Run a command so that it dies with npuenv: no build, uv or smoke test is left behind holding NPUs.

`supervised(argv)` wraps a command in this file, run as a tiny script by npuenv's own interpreter. The
script asks the kernel for a signal when its parent (npuenv) dies, even by SIGKILL (PR_SET_PDEATHSIG),
starts the command in a process group of its own, and when npuenv dies or it is told to stop (SIGTERM,
SIGINT, SIGHUP), stops that whole group: SIGTERM, then SIGKILL after a grace. When the command exits,
anything it left in its group goes too. The kernel clears the death signal in children, so a supervisor
per command (not a flag on the command) is what covers grandchildren: make, gcc, torchrun's workers.

npuenv starts the supervisor in a session of its own (npuenv.commands), so a signal to npuenv's process group
does not kill it before it has stopped the command.

Standard library only, and no npuenv import: it runs with `python -I -S`, outside any package.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import List, Optional, Sequence

PR_SET_PDEATHSIG = 1  # linux/prctl.h
GRACE = 5.0  # seconds between SIGTERM and SIGKILL for the command's group
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def supervised(argv: Sequence[str]) -> List[str]:
    """`argv`, run under this supervisor by the interpreter running npuenv."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), *map(os.fspath, argv)]


def _death_signal(sig: int) -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _die_with_parent() -> bool:
    """Ask for SIGTERM when the parent dies; False when the parent is already gone."""
    parent = os.getppid()
    _death_signal(signal.SIGTERM)
    return os.getppid() == parent and parent != 1


def _own_group_dying_with_us() -> None:
    """In the command, before exec: a process group of its own (so the group can be stopped as one), and
    SIGKILL should the supervisor itself be killed."""
    os.setpgrp()
    _death_signal(signal.SIGKILL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # the supervisor holds them back; the command not


def _stop_group(pgid: int, grace: float) -> None:
    """SIGTERM the group; reap its leader (our child) as it exits, or SIGKILL the group after `grace`.

    Called from a signal handler while the main thread may sit in Popen.wait(): os.waitpid, not
    Popen.wait, so no lock of Popen's is needed."""
    import time

    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pgid, os.WNOHANG)[0]:
                break
        except ChildProcessError:
            break
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)  # what is left of the group, the leader too if it would not go
        os.waitpid(pgid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def main(argv: Sequence[str]) -> int:
    import subprocess

    if not argv:
        sys.stderr.write("usage: reaper.py COMMAND [ARGS...]\n")
        return 2
    if not _die_with_parent():
        return 128 + signal.SIGTERM
    child: Optional[subprocess.Popen] = None

    def stop(signum: int, _frame: object) -> None:
        if child is not None:
            _stop_group(child.pid, GRACE)
        os._exit(128 + signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    # held back until `child` is set: a stop that came while the command was starting would find no child
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        # a single-threaded process: preexec_fn is safe here
        child = subprocess.Popen(list(argv), preexec_fn=_own_group_dying_with_us)
    except OSError as exc:
        sys.stderr.write(f"cannot run {argv[0]}: {exc.strerror}\n")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    code = child.wait()
    try:
        os.killpg(child.pid, signal.SIGKILL)  # stragglers the command left in its group
    except ProcessLookupError:
        pass
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
