"""One command on one node over SSH, through Fabric (paramiko, with ssh_config as OpenSSH reads it: HostName,
User, Port, IdentityFile, ProxyJump, ConnectTimeout).

Host keys are checked: the node's key must be in /etc/ssh/ssh_known_hosts, ~/.ssh/known_hosts or ssh_config's
UserKnownHostsFile. Fabric alone accepts any key; npuenv refuses an unknown one and names the fix (`ssh NODE`
once, as OpenSSH asks). A node that cannot be reached is told apart: dns, refused, timeout, auth, hostkey.

The command is an argument list. It reaches the node's shell as one line only because SSH carries a string:
every word is quoted (shlex.join), and a constant wrapper runs it through the person's init.sh when the
node's workspace has one (`init.sh -c` prints nothing of its own, so the command's output arrives clean).
"""

from __future__ import annotations

import shlex
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .hosts import Node

# $1: the workspace root ("" for none); then the command. Through ROOT/init.sh when it is there.
WRAPPER = ('root=$1; shift; '
           'if [ -n "$root" ] && [ -x "$root/init.sh" ]; then exec "$root/init.sh" -c \'exec "$@"\' npuenv "$@"; fi; '
           'exec "$@"')
FAILED = "✗"  # how npuenv's tables mark a failed row (render.SYMBOLS)
KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "~/.ssh/known_hosts")

UNREACHABLE_HINTS = {
    "dns": "the name does not resolve: check the host in the hosts file or HostName in ~/.ssh/config",
    "refused": "nothing listens there: is sshd running on the node, and is the port right?",
    "timeout": "no answer in time: is the node up, and is a firewall or a ProxyJump in the way? (--timeout)",
    "auth": "the node refused the key: check User and IdentityFile in ~/.ssh/config, or ssh-add the key",
    "hostkey": "run `ssh NODE` once by hand to check and accept its host key (npuenv never accepts one itself)",
    "changed": "the node's host key changed: if the node was reinstalled, remove its old key with "
               "`ssh-keygen -R HOST`; otherwise do not connect",
    "ssh": "the SSH session failed: try `ssh NODE true` by hand",
}


@dataclass(frozen=True)
class Options:
    timeout: float = 10.0  # connecting, and the server's banner and authentication
    ssh_config: Optional[str] = None  # a file to read instead of ~/.ssh/config (and /etc/ssh/ssh_config)


@dataclass
class Outcome:
    """How the command went on one node: ok (exit 0), failed (another exit code) or unreachable."""

    node: str
    host: str
    status: str
    seconds: float
    exit_code: Optional[int] = None
    stdout: str = ""
    stderr: str = ""
    reason: str = ""  # unreachable: dns, refused, timeout, auth, hostkey, changed, ssh; failed: the first failure
    detail: str = ""  # unreachable: what the SSH layer said
    data: Any = field(default=None)  # a caller's parse of stdout (a snapshot, probe results)
    address: str = ""  # the IP address SSH reached the node at

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_json(self) -> dict[str, Any]:
        out = {"node": self.node, "host": self.host, "status": self.status, "seconds": round(self.seconds, 3),
               "address": self.address, "exit_code": self.exit_code, "reason": self.reason, "detail": self.detail,
               "stdout": self.stdout, "stderr": self.stderr}
        if self.status == "unreachable":
            out["hint"] = UNREACHABLE_HINTS.get(self.reason, "")
        return out


def remote_line(root: Optional[str], argv: Sequence[str]) -> str:
    """The line the node's login shell runs: the wrapper, the root, then the command, each word quoted."""
    return shlex.join(["sh", "-c", WRAPPER, "npuenv-fleet", root or "", *argv])


class _Lines:
    """A stream Fabric writes a command's output to: whole lines go to `on_line` as they come."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.pending = ""

    def write(self, text: str) -> None:
        self.pending += text
        *done, self.pending = self.pending.replace("\r", "\n").split("\n")
        for line in done:
            if line.strip():
                self.on_line(line)

    def flush(self) -> None:
        pass


def connection(node: Node, options: Options) -> Any:
    """A Fabric Connection to the node that checks host keys, its ProxyJump hops' too (not opened yet)."""
    import logging

    from fabric import Config, Connection

    # paramiko logs a failed connection's traceback from its own thread; the outcome already says what failed
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    config = Config(runtime_ssh_path=options.ssh_config) if options.ssh_config else Config()
    timeout = max(1, int(options.timeout))
    conn = Connection(node.host, user=node.user, port=node.port, config=config, connect_timeout=timeout,
                      connect_kwargs={"banner_timeout": options.timeout, "auth_timeout": options.timeout})
    hop = conn
    while isinstance(hop, Connection):  # Fabric makes each ProxyJump hop a Connection that accepts any key
        _check_host_keys(hop)
        hop = hop.gateway
    return conn


def _check_host_keys(conn: Any) -> None:
    from paramiko import RejectPolicy

    for name in [*KNOWN_HOSTS, *_split(conn.ssh_config.get("userknownhostsfile"))]:
        path = Path(name).expanduser()
        if path.is_file():
            conn.client.load_system_host_keys(str(path))
    conn.client.set_missing_host_key_policy(RejectPolicy())


def _split(value: Any) -> list[str]:
    if not value:
        return []
    return list(value) if isinstance(value, list) else str(value).split()


def run_on(node: Node, root: Optional[str], argv: Sequence[str], options: Options,
           on_line: Callable[[str], None] = lambda line: None,
           opened: Callable[[Any], None] = lambda conn: None) -> Outcome:
    """Run `argv` on the node (through ROOT/init.sh when there is one); never raises for the node's sake.
    `opened` gets the connection first, so that the caller can close it from another thread (Ctrl-C)."""
    began = time.monotonic()
    try:
        conn = connection(node, options)
    except Exception as exc:  # noqa: BLE001 - a bad ssh_config entry for this node (ProxyJump, Port)
        return Outcome(node.name, node.host, "unreachable", time.monotonic() - began, reason="ssh", detail=str(exc))
    opened(conn)
    try:
        try:
            conn.open()
        except Exception as exc:  # noqa: BLE001 - classified below; anything else from paramiko is "ssh"
            reason, detail = classify(exc)
            if reason == "ssh" and time.monotonic() - began >= options.timeout:
                # the banner never came: paramiko's own thread says so, the caller may hear "No existing session"
                reason = "timeout"
            return Outcome(node.name, node.host, "unreachable", time.monotonic() - began, reason=reason, detail=detail)
        address = conn.client.get_transport().getpeername()[0]
        result = conn.run(remote_line(root, argv), warn=True, hide=False, pty=False, in_stream=False,
                          out_stream=_Lines(on_line), err_stream=_Lines(on_line))
    except Exception as exc:  # noqa: BLE001 - the session broke midway
        reason, detail = classify(exc)
        return Outcome(node.name, node.host, "unreachable", time.monotonic() - began, reason=reason, detail=detail)
    finally:
        conn.close()
    code = result.exited
    status = "ok" if code == 0 else "failed"
    return Outcome(node.name, node.host, status, time.monotonic() - began, code, result.stdout, result.stderr,
                   "" if code == 0 else first_failure(result.stderr, result.stdout, code), address=address)


def first_failure(stderr: str, stdout: str, code: int) -> str:
    """npuenv's own `error:` line, else the first row its table marks failed (✗), else the last line it
    wrote, else the exit code."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    failed = next((line.strip()[1:].strip() for line in stdout.splitlines() if line.strip().startswith(FAILED)), None)
    if failed:
        return failed
    if code == 127:
        return "command not found on the node: " + (lines[-1] if lines else "set `npuenv:` in the hosts file")
    tail = lines or [line.strip() for line in stdout.splitlines() if line.strip()]
    return tail[-1] if tail else f"exit {code}"


def classify(exc: BaseException) -> tuple[str, str]:
    """(reason, what was said) for a failure to connect or to keep the session."""
    import paramiko
    from paramiko.ssh_exception import NoValidConnectionsError

    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, socket.gaierror):
        return "dns", detail
    if isinstance(exc, paramiko.BadHostKeyException):
        return "changed", detail
    if isinstance(exc, paramiko.AuthenticationException):
        return "auth", detail
    if isinstance(exc, NoValidConnectionsError):
        refused = all(isinstance(e, ConnectionRefusedError) for e in exc.errors.values())
        return ("refused" if refused else "ssh"), detail
    if isinstance(exc, ConnectionRefusedError):
        return "refused", detail
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout", detail or "timed out"
    if isinstance(exc, paramiko.SSHException):
        if "not found in known_hosts" in detail:
            return "hostkey", detail
        if "banner" in detail.lower() or "timeout" in detail.lower():
            return "timeout", detail
        if "authentication" in detail.lower():
            return "auth", detail
    return "ssh", detail
