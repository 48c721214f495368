"""Nothing outlives npuenv: every command runs under npuenv.reaper, which stops the command's whole process
group when npuenv dies (SIGKILL included) or asks it to stop. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from npuenv.reaper import supervised

REPO = Path(__file__).resolve().parents[1]


def holders(token: str, argv0: bool = False) -> list:
    """PIDs of live (not zombie) processes whose command line mentions `token` (`argv0`: starts with it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (cmdline.startswith(token) if argv0 else token in cmdline) and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(event, timeout: float = 60.0) -> None:
    """Wait for the event itself (polling), failing after a generous `timeout`; never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not event():
        assert time.monotonic() < deadline, "the event never happened"
        time.sleep(0.02)


def killed_parent_leaves_nothing(code: str, token: str, running: tuple, kill) -> None:
    """Start a Python parent running `code`, wait until processes whose argv[0] start with each of
    `running` are up, `kill(parent)`, then wait until nothing mentioning `token` is left."""
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    try:
        wait_for(lambda: all(holders(name, argv0=True) for name in running))
        kill(parent)
        parent.wait()
        wait_for(lambda: not holders(token))
    finally:
        for pid in holders(token):
            os.kill(pid, signal.SIGKILL)


def test_a_command_and_its_children_die_with_a_sigkilled_parent(tmp_path):
    token = f"npuenv-reaper-{tmp_path.name}"
    # the parent: a Python process that runs a command with grandchildren under the supervisor, then waits
    script = f"(exec -a {token}-a sleep 300) & (exec -a {token}-b sleep 300) & wait"
    code = f"import subprocess; from npuenv.reaper import supervised; subprocess.run(supervised(['bash', '-c', {script!r}]))"
    # no handler, no cleanup: only the kernel's death signal is left
    killed_parent_leaves_nothing(code, token, (f"{token}-a", f"{token}-b"), lambda p: p.send_signal(signal.SIGKILL))


def test_told_to_stop_it_stops_the_group_politely_first(tmp_path):
    marker = tmp_path / "terminated"
    script = f'trap "echo bye > {marker}; exit 0" TERM; echo ready; while :; do sleep 0.1; done'
    proc = subprocess.Popen(supervised(["bash", "-c", script]), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert marker.read_text() == "bye\n"  # it had the chance to clean up before any SIGKILL


def test_exit_codes_and_a_missing_command(tmp_path):
    assert subprocess.run(supervised(["sh", "-c", "exit 3"])).returncode == 3
    assert subprocess.run(supervised(["sh", "-c", "kill -9 $$"])).returncode == 128 + signal.SIGKILL
    missing = subprocess.run(supervised([str(tmp_path / "nope")]), capture_output=True, text=True)
    assert missing.returncode == 127 and f"cannot run {tmp_path / 'nope'}" in missing.stderr


def test_a_smoke_test_dies_with_npuenv(tmp_path):
    """The smoke script (and torchrun's workers) no longer outlive a killed npuenv and keep the NPUs."""
    token = f"smoke-{tmp_path.name}"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/bash\nexec -a {token} sleep 300\n")
    fake.chmod(0o755)
    code = ("from pathlib import Path; from npuenv.npu import smoke; "
            f"smoke.run_smoke({str(fake)!r}, cann_set_env=None, env={{'PATH': '/usr/bin:/bin'}}, timeout=600)")
    killed_parent_leaves_nothing(code, token, (token,), lambda p: p.send_signal(signal.SIGKILL))


def test_a_sigkill_to_npuenvs_whole_process_group_still_stops_the_command(tmp_path):
    """kill -9 -PGID: npuenv and everything in its group die at once; the supervisor, in a session of its
    own, is told by the kernel and stops the command's group."""
    token = f"npuenv-group-{tmp_path.name}"
    script = f"(exec -a {token}-a sleep 300) & (exec -a {token}-b sleep 300) & wait"
    code = f"from npuenv.commands import run; run(['bash', '-c', {script!r}])"
    killed_parent_leaves_nothing(code, token, (f"{token}-a", f"{token}-b"), lambda p: os.killpg(p.pid, signal.SIGKILL))


def test_stop_all_stops_what_other_threads_are_running(tmp_path):
    """What the engine does on Ctrl-C, so the thread pool does not wait for a build to finish."""
    import threading

    from npuenv.commands import run, stop_all
    from npuenv.errors import CommandFailed

    token = f"npuenv-stopall-{tmp_path.name}"
    failures = []

    def step() -> None:
        try:
            run(["bash", "-c", f"exec -a {token} sleep 300"])
        except CommandFailed as exc:
            failures.append(exc.returncode)

    worker = threading.Thread(target=step)
    worker.start()
    wait_for(lambda: bool(holders(token, argv0=True)))
    stop_all()
    worker.join(timeout=60)
    assert not worker.is_alive() and failures == [128 + signal.SIGTERM]
    assert not holders(token)
