"""`user.show`: what a person pastes on their own computer to enter their folder: the SSH config block,
and the VS Code settings that make init.sh the default terminal."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from .folders import find_user
from .names import UserPaths
from .vscode import vscode_snippet


def ssh_config(paths: UserPaths, alias: str = "ict", hostname: str = "HOSTNAME", port: str = "PORT") -> str:
    """The ~/.ssh/config blocks that enter this person's folder, and a plain one for scp and VS Code."""
    command = shlex.quote(str(paths.init_sh)).replace("%", "%%")  # ssh expands %-tokens in RemoteCommand
    host = f"    HostName {hostname}\n    User ma-user\n    Port {port}\n"
    return (f"# ~/.ssh/config on your computer: `ssh {alias}` opens {paths.name}'s shell on the box\n"
            f"Host {alias}\n{host}    RemoteCommand {command}\n    RequestTTY yes\n"
            f"\n# scp, rsync, sftp and VS Code Remote-SSH need a host without RemoteCommand; commands too:\n"
            f"#   ssh {alias}-plain {command} -c 'npu-smi info'\n"
            f"Host {alias}-plain\n{host}")


@dataclass(frozen=True)
class Snippets:
    paths: UserPaths
    ssh_config: str  # for ~/.ssh/config
    vscode: str  # lines for a .vscode/settings.json object


def snippets(root: str | os.PathLike, name: str, alias: str = "ict", hostname: str = "HOSTNAME",
             port: str = "PORT") -> Snippets:
    """NAME's SSH config block and VS Code settings; IsolationError when NAME has no folder."""
    paths = find_user(root, name)
    return Snippets(paths, ssh_config(paths, alias, hostname, port), vscode_snippet(paths))
