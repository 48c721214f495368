"""`user.*`: a folder and a login entry (init.sh) per person on the shared ma-user account.

Each task parses its options, calls one function of npuenv.users and hands the result to
npuenv.render.users. Keep this module light: `invoke --list` imports it.
"""

from __future__ import annotations

from typing import Any

from invoke import Collection, Exit, task

from ..defaults import DEFAULT_SPEC
from .boundary import boundary, positive_int

DEFAULT_ROOT = "/home/ma-user/work"
ROOT_HELP = f"the folder that holds everyone's folders (default {DEFAULT_ROOT})"


def _venv_rel(spec: str) -> str:
    """The target env's folder inside the person's folder, from the spec (its env.venv)."""
    from ..spec import load_spec
    from ..users.names import DEFAULT_VENV

    env = load_spec(spec).env
    return env.venv if env else DEFAULT_VENV


@task(
    help={
        "name": "the person's name: 1-32 lowercase letters, digits, '-' or '_', starting with a letter",
        "root": ROOT_HELP,
        "shell": "zsh or bash (default zsh when installed, else bash)",
        "ca-bundle": "FILE: an extra CA file (PEM) to trust besides the public roots (repeatable)",
        "spec": f"the spec whose target env init.sh activates (default {DEFAULT_SPEC})",
        "adopt": "replace an init.sh that npuenv did not write (it is kept as init.sh.npuenv-backup)",
        "shared-tools": "also copy uv to ROOT/.local/bin, on everyone's PATH and kept across restarts",
    },
    iterable=["ca_bundle"],
    auto_shortflags=False,
)
@boundary
def add(c: Any, name, root=DEFAULT_ROOT, shell=None, ca_bundle=None, spec=DEFAULT_SPEC, adopt=False,
        shared_tools=False):
    """Create or update ROOT/NAME and its init.sh (the login entry); your lines in init.sh are kept."""
    import os
    from pathlib import Path

    from ..render import users as render
    from ..render.console import Console
    from ..trust import extra_bundles
    from ..users.add import add_user
    from ..workspace import uv_binary

    extras = extra_bundles(list(ca_bundle or []), os.environ)
    uv = Path(uv_binary()) if shared_tools else None
    result = add_user(root, name, shell=shell, venv_rel=_venv_rel(spec), extras=extras, environ=os.environ,
                      adopt=adopt, shared_uv=uv)
    console = Console()
    console.lines(render.added(result))
    for warning in result.warnings:
        console.warn(warning)


@task(name="list", help={"root": ROOT_HELP}, auto_shortflags=False)
@boundary
def list_(c: Any, root=DEFAULT_ROOT):
    """List the people's folders under ROOT: shell, init.sh state, whether the target env exists."""
    from ..render import users as render
    from ..render.console import Console
    from ..users.folders import list_users

    Console().lines(render.people(list_users(root, _venv_rel(DEFAULT_SPEC)), root))


@task(
    help={
        "name": "the person's name",
        "root": ROOT_HELP,
        "host": "the SSH host alias to print (default ict)",
        "hostname": "the box's address for HostName (default: a placeholder to fill in)",
        "port": "the box's SSH port (default: a placeholder to fill in)",
    },
    auto_shortflags=False,
)
@boundary
def show(c: Any, name, root=DEFAULT_ROOT, host="ict", hostname="HOSTNAME", port="PORT"):
    """Print the SSH config block and the VS Code settings snippet that enter NAME's folder."""
    from ..render import users as render
    from ..render.console import Console
    from ..users.show import snippets

    port = _ssh_port(port)
    _ssh_word("--host", host, "ict")
    _ssh_word("--hostname", hostname, "10.0.0.5")
    Console().lines(render.snippets(snippets(root, name, host, hostname, port)))


def _ssh_word(option: str, value: str, example: str) -> None:
    """--host and --hostname go into ~/.ssh/config as one word each."""
    from ..errors import UsageError

    if not value or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise UsageError(f"{option} {value!r}: an SSH {option[2:]} has no spaces or control characters",
                         hint=f"e.g. {option} {example}")


def _ssh_port(port: str) -> str:
    """--port checked to be a TCP port (1-65535); the placeholder PORT stays as it is."""
    if port == "PORT":
        return port
    from ..errors import UsageError

    number = positive_int(port, "--port", 22)
    if number > 65535:
        raise UsageError(f"--port {port}: a TCP port is at most 65535", hint="e.g. --port 22")
    return str(number)


@task(
    help={
        "name": "the person's name",
        "project": "the folder you open in VS Code (inside ROOT/NAME); its .vscode/settings.json is merged",
        "root": ROOT_HELP,
    },
    auto_shortflags=False,
)
@boundary
def vscode(c: Any, name, project=None, root=DEFAULT_ROOT):
    """Make NAME's init.sh the default terminal of a VS Code folder (comments and other keys kept)."""
    from ..errors import UsageError
    from ..render import users as render
    from ..render.console import Console
    from ..users.vscode import install_vscode_profile

    if not project:
        raise UsageError("user.vscode needs --project DIR", hint="the folder you open in VS Code, inside ROOT/NAME")
    Console().lines(render.vscode(install_vscode_profile(root, name, project)))


@task(
    help={
        "name": "the person's name",
        "root": ROOT_HELP,
        "persistent": f"the folder that survives a restart (default {DEFAULT_ROOT}; ROOT when that is missing)",
        "strict": "exit 1 on warnings too, not only on failures",
        "json": "print one JSON object per check, as doctor --json does",
    },
    auto_shortflags=False,
)
@boundary
def check(c: Any, name, root=DEFAULT_ROOT, persistent=None, strict=False, json_=False):
    """Run doctor's isolation checks for NAME: init.sh, and where the HOME, caches and models it gives live."""
    import os

    from ..render import to_json, users as render
    from ..render.console import Console
    from ..users.checks import check_user

    report = check_user(root, name, os.environ, persistent)
    Console().lines([to_json(report.outcomes)] if json_ else render.check(report))
    if any(o.result.status.bad or (strict and o.result.status.value == "warn") for o in report.outcomes):
        raise Exit(code=1)


ns = Collection("user")
for _task in (add, list_, show, vscode, check):
    ns.add_task(_task)
