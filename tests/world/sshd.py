"""Real OpenSSH servers for the fleet tests: one private `sshd` per node on 127.0.0.2, 127.0.0.3, ... (all
loopback on Linux), each with its own config, host key and environment, no PAM, accepting only a client key
made here; and the client side a person has: ~/.ssh/config with a Host entry per node, ~/.ssh/known_hosts
with each node's host key, the key itself. Tests run npuenv with HOME at that client home.

A node's environment (where its npu-smi, hccn_tool and CANN are, PATH to npuenv) is set by the node's sshd
(`SetEnv`), the way a real node's own installation would be found: so nodes can be made to differ.
.ci/run installs openssh-server and makes sshd's privilege-separation folder (/run/sshd).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import yaml

SSHD = "/usr/sbin/sshd"
PRIVSEP = Path("/run/sshd")


def require_sshd() -> None:
    """Fail loudly (never skip) when this machine cannot run a private sshd."""
    missing = [tool for tool in (SSHD, shutil.which("ssh-keygen")) if not tool or not os.access(tool, os.X_OK)]
    if missing:
        raise RuntimeError(f"the fleet tests need OpenSSH's server ({SSHD}) and ssh-keygen: "
                           "apt-get install openssh-server (.ci/run does)")
    if os.geteuid() == 0 and not PRIVSEP.is_dir():
        raise RuntimeError(f"sshd running as root needs {PRIVSEP}: mkdir -p {PRIVSEP} (.ci/run does)")


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


@dataclass
class SshNode:
    name: str
    address: str
    port: int
    folder: Path
    env: Dict[str, str]
    process: Optional[subprocess.Popen] = None
    log: List[str] = field(default_factory=list)
    listening: int = 0  # how many times it said "Server listening on" (once per start or reload)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


class SshFleet:
    """Private sshd instances and the client home that reaches them."""

    def __init__(self, base: Path) -> None:
        require_sshd()
        self.base = base
        self.home = base / "client-home"
        self.ssh_dir = self.home / ".ssh"
        self.ssh_dir.mkdir(parents=True, mode=0o700)
        self.key = self.ssh_dir / "id_ed25519"
        self.public_key = keygen(self.key)
        self.user = getpass.getuser()
        self.nodes: Dict[str, SshNode] = {}

    def start(self, name: str, index: int, env: Dict[str, str], authorized: Optional[str] = None) -> SshNode:
        """Node `name` on 127.0.0.{index}; `authorized` replaces the client's key (a node that refuses it)."""
        folder = self.base / "nodes" / name
        (folder / "home").mkdir(parents=True)
        host_key = folder / "ssh_host_ed25519_key"
        host_public = keygen(host_key)
        (folder / "authorized_keys").write_text((authorized or self.public_key) + "\n")
        address = f"127.0.0.{index}"
        node = SshNode(name, address, 0, folder, {"HOME": str(folder / "home"), **env})
        for _attempt in range(3):  # a port another process took between our probe and sshd's bind: try another
            node.port = free_port(address)
            if self._run(node, host_key):
                break
        else:
            raise RuntimeError(f"sshd for {name} did not start: {node.log[-3:]}")
        self.nodes[name] = node
        self._client_entry(node, host_public)
        return node

    def reload(self, node: SshNode) -> None:
        """Make the node's sshd read its sshd_config again (SIGHUP: sshd executes itself anew, on the same
        port and pipe), and wait until it listens again."""
        with node.changed:
            before = node.listening
            node.process.send_signal(signal.SIGHUP)
            node.changed.wait_for(lambda: node.listening > before or node.process.poll() is not None)
        if node.process.poll() is not None:
            raise RuntimeError(f"sshd for {node.name} stopped on reload: {node.log[-3:]}")

    def _run(self, node: SshNode, host_key: Path) -> bool:
        config = node.folder / "sshd_config"
        lines = [f"ListenAddress {node.address}:{node.port}", f"HostKey {host_key}",
                 f"AuthorizedKeysFile {node.folder / 'authorized_keys'}", "PidFile none", "UsePAM no",
                 "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                 "PubkeyAuthentication yes", f"AllowUsers {self.user}", "PermitRootLogin prohibit-password",
                 "LogLevel INFO", "SetEnv " + " ".join(f"{k}={v}" for k, v in sorted(node.env.items()))]
        config.write_text("\n".join(lines) + "\n")
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        node.log.clear()
        node.listening = 0

        def drain() -> None:  # sshd logs to stderr all along: keep reading so it never blocks
            for line in process.stderr:
                with node.changed:
                    node.log.append(line.rstrip())
                    node.listening += "Server listening on" in line
                    node.changed.notify_all()
            with node.changed:
                node.changed.notify_all()  # it exited

        threading.Thread(target=drain, daemon=True).start()
        with node.changed:
            node.changed.wait_for(lambda: node.listening > 0 or process.poll() is not None)
        if process.poll() is not None:
            process.wait()
            return False
        node.process = process
        return True

    def _client_entry(self, node: SshNode, host_public: str) -> None:
        kind, blob = host_public.split()[:2]
        with (self.ssh_dir / "known_hosts").open("a") as handle:
            handle.write(f"[{node.address}]:{node.port} {kind} {blob}\n")
        with (self.ssh_dir / "config").open("a") as handle:
            handle.write(f"Host {node.name}\n  HostName {node.address}\n  Port {node.port}\n  User {self.user}\n"
                         f"  IdentityFile {self.key}\n  IdentitiesOnly yes\n\n")

    def client_env(self, base: Dict[str, str]) -> Dict[str, str]:
        """`base` as the person's shell on their own computer: HOME at the client home, no ssh-agent."""
        env = {k: v for k, v in base.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        env["HOME"] = str(self.home)
        return env

    def hosts_file(self, path: Path, nodes: Dict[str, Dict[str, object]], defaults: Optional[dict] = None) -> Path:
        """A hosts.yaml naming `nodes` ({name: {root: ..., ...}}): the host is the name, an ssh_config alias."""
        doc: Dict[str, object] = {"nodes": {name: dict(fields) for name, fields in nodes.items()}}
        if defaults:
            doc["defaults"] = defaults
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
