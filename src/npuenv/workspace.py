"""The workspace root, npuenv's layout inside it, and the run context built from both."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import UsageError

PERSISTENT = Path("/home/ma-user/work")
# where uv downloads CPython builds from; mirrored like any other github.com URL
PYTHON_DOWNLOADS = "https://github.com/astral-sh/python-build-standalone/releases/download"


@dataclass(frozen=True)
class Layout:
    """Where npuenv keeps its own files in a workspace."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / ".npuenv"

    @property
    def state(self) -> Path:
        return self.home / "state.json"

    @property
    def lock(self) -> Path:
        return self.home / "lock"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def ca_bundle(self) -> Path:
        return self.home / "ca-bundle.pem"


def resolve_root(given: Optional[str], environ: Mapping[str, str], persistent: Path = PERSISTENT) -> Path:
    """--root, else /home/ma-user/work/$NPUENV_USER when it exists; a missing folder is made if its parent exists."""
    if not given:
        user = environ.get("NPUENV_USER", "")
        if user in (".", "..") or "/" in user:  # a tag, not a path: "/" would make the root "/"
            raise UsageError(f"NPUENV_USER={user!r} is not a user name (it must not contain '/' or be '.' or '..')",
                             hint="set NPUENV_USER to a plain name, or pass --root DIR")
        candidate = persistent / user if user else None
        if candidate is None or not candidate.is_dir():
            raise UsageError(
                "no workspace root: pass --root DIR",
                hint=f"npuenv defaults to {persistent}/$NPUENV_USER when that folder exists"
                     + ("" if user else " (NPUENV_USER is not set)"),
            )
        return candidate
    root = Path(given).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise UsageError(f"--root {given}: exists and is not a folder", hint="pass a folder for the workspace")
    if not root.exists():
        if not root.parent.is_dir():
            raise UsageError(f"--root {given}: neither it nor its parent folder {root.parent} exists",
                             hint="create the parent folder first, or pick another root")
        root.mkdir()
    return root


def root_warnings(root: Path, persistent: Path = PERSISTENT) -> list[str]:
    """On a ModelArts box only /home/ma-user/work survives a restart."""
    if persistent.is_dir() and not root.resolve().is_relative_to(persistent.resolve()):
        return [f"{root} is not under {persistent}: on ModelArts it is wiped when the notebook restarts"]
    return []


def default_wheels_dir(root: Path) -> Path:
    """The checkout's wheels/ when npuenv runs from a checkout, else ROOT/wheels."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "wheels").is_dir():
        return checkout / "wheels"
    return root / "wheels"


def machine() -> str:
    arch = platform.machine().lower()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(arch, arch)


def child_env(layout: Layout, environ: Mapping[str, str], bundle: Path, mirrors: Any) -> dict[str, str]:
    """The environment every subprocess gets: our CA bundle, git mirrors, uv's dirs inside the workspace."""
    from .trust import client_env

    env = dict(environ)
    env.update(client_env(bundle))
    env.update(mirrors.git_env(environ))
    env.update({
        "GIT_TERMINAL_PROMPT": "0",  # a wrong URL fails instead of waiting for a password
        "UV_CACHE_DIR": str(layout.home / "cache" / "uv"),
        "UV_PYTHON_INSTALL_DIR": str(layout.home / "python"),
    })
    mirrored = mirrors.rewrite(PYTHON_DOWNLOADS)
    if mirrored != PYTHON_DOWNLOADS:
        env.setdefault("UV_PYTHON_INSTALL_MIRROR", mirrored)
    return env


def mirror_layers(spec: Any, config_value: Any, environ: Mapping[str, str]) -> Any:
    """Mirrors from the spec, then invoke config (npuenv.mirrors), then NPUENV_MIRRORS: later wins."""
    from .mirrors import combine, parse_mirrors

    layers: list[Sequence[tuple[str, str]]] = [spec.mirrors]
    if isinstance(config_value, Mapping):
        layers.append(parse_mirrors("\n".join(f"{k}={v}" for k, v in config_value.items()), "config npuenv.mirrors"))
    elif config_value:
        layers.append(parse_mirrors(str(config_value), "config npuenv.mirrors"))
    if environ.get("NPUENV_MIRRORS"):
        layers.append(parse_mirrors(environ["NPUENV_MIRRORS"], "NPUENV_MIRRORS"))
    return combine(*layers)


def uv_binary() -> str:
    """An absolute path to uv (never a PATH shim: pyenv shims break in folders with .python-version)."""
    from uv import find_uv_bin

    return os.fspath(find_uv_bin())
