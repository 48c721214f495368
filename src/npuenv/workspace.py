"""The workspace root, npuenv's layout inside it, and the run context built from both."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import UsageError

PERSISTENT = Path("/home/ma-user/work")
PERSISTENT_VARIABLE = "NPUENV_PERSISTENT_ROOT"  # the folder that survives a restart (tests point it elsewhere)
UV_CACHE_VARIABLE = "NPUENV_UV_CACHE"  # uv's cache for every workspace on the box
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

    @property
    def tmp(self) -> Path:
        """TMPDIR of every command npuenv runs in this workspace."""
        return self.home / "tmp"


def check_writable(root: Path, *, write: bool) -> None:
    """npuenv's folder must stay inside the root, and (unless nothing will be written) the root writable."""
    from .confine import workspace_path

    home = workspace_path(root, ".npuenv")
    where = unwritable(home) if write else None
    if where is not None:
        raise UsageError(f"{where} {NOT_WRITABLE}",
                         hint="pick a --root you can write to; on ModelArts that is a folder under /home/ma-user/work")


NOT_WRITABLE = "is not writable (a read-only mount, or another user's folder)"


def unwritable(folder: Path) -> Optional[Path]:
    """Where writing into `folder` is refused: the folder, or while it does not exist its parent (which must
    make it), when that is not writable; None when the write can go ahead."""
    where = folder if folder.is_dir() else folder.parent
    return None if os.access(where, os.W_OK) else where


def persistent_root(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(PERSISTENT_VARIABLE) or PERSISTENT)


def resolve_root(given: Optional[str], environ: Mapping[str, str], persistent: Optional[Path] = None, *,
                 create: bool = True) -> Path:
    """--root, else /home/ma-user/work/$NPUENV_USER when it exists; a missing folder is made if its parent
    exists (unless `create` is false: a dry run makes nothing)."""
    persistent = persistent if persistent is not None else persistent_root(environ)
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
        if create:
            if unwritable(root) is not None:
                raise UsageError(f"--root {given}: {root.parent} is not writable, so the root cannot be made there",
                                 hint="pick a --root inside a folder you can write to")
            root.mkdir()
    return root


def uv_cache_dir(root: Path, environ: Mapping[str, str]) -> Path:
    """One uv cache for every workspace on the box (uv's cache is safe for concurrent use): $NPUENV_UV_CACHE,
    else <persistent>/.cache/uv when the root is inside the persistent folder, else ROOT/.npuenv/cache/uv."""
    if environ.get(UV_CACHE_VARIABLE):
        return Path(environ[UV_CACHE_VARIABLE]).expanduser().absolute()
    persistent = persistent_root(environ)
    if persistent.is_dir() and root.resolve().is_relative_to(persistent.resolve()):
        return persistent / ".cache" / "uv"
    return Layout(root).home / "cache" / "uv"


def _recorded(root: Optional[Path], key: str) -> Any:
    """What bootstrap recorded under `key` in the workspace's state, or None."""
    import json

    if root is None:
        return None
    try:
        data = json.loads(Layout(root).state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get(key) if isinstance(data, dict) else None


def recorded_spec(root: Optional[Path]) -> Optional[dict]:
    """The spec the workspace was made with, as bootstrap recorded it in its state, or None."""
    spec = _recorded(root, "spec")
    return spec if isinstance(spec, dict) and (spec.get("arg") or spec.get("file")) else None


def wheels_dir(given: Optional[str], root: Path) -> Path:
    """The wheelhouse for a task on a workspace: --wheels when given, else the one bootstrap last used
    there, else the default (default_wheels_dir)."""
    recorded = _recorded(root, "wheels")
    if given:
        return Path(given).expanduser().absolute()
    return Path(recorded) if isinstance(recorded, str) and recorded else default_wheels_dir(root)


def spec_argument(given: Optional[str], recorded: Optional[dict]) -> str:
    """The spec for a task on a workspace: --spec when given, else the one the workspace was made with
    (`recorded_spec`), else the default. A recorded spec file that is gone is an error: silently taking the
    default would re-pin."""
    from .defaults import DEFAULT_SPEC

    if given:
        return given
    if recorded is None:
        return DEFAULT_SPEC
    from .spec import is_bare_name

    argument = str(recorded.get("arg") or recorded["file"])
    if not is_bare_name(argument) and not Path(argument).is_file():
        raise UsageError(f"this workspace was made with the spec {recorded.get('name')} from {argument}, "
                         "which no longer exists",
                         hint="pass --spec NAME|FILE to say which spec the workspace follows now")
    return argument


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


def child_env(layout: Layout, environ: Mapping[str, str], bundle: Path, mirrors: Any) -> dict[str, str]:
    """The environment every subprocess gets: our CA bundle, git mirrors, uv's cache and Pythons."""
    from .trust import client_env

    env = dict(environ)
    env.update(client_env(bundle))
    env.update(mirrors.git_env(environ))
    env.update({
        "GIT_TERMINAL_PROMPT": "0",  # a wrong URL fails instead of waiting for a password
        "UV_CACHE_DIR": str(uv_cache_dir(layout.root, environ)),
        "UV_PYTHON_INSTALL_DIR": str(layout.home / "python"),
        # temporary files too (uv's lock files, compilers' scratch): inside the root, not the box's /tmp
        "TMPDIR": str(layout.tmp),
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
    """An absolute path to uv (never a PATH shim: pyenv shims break in folders with .python-version).

    The `uv` package puts it in this environment's scripts folder, which is where find_uv_bin() looks
    first; looking there directly spares importing sysconfig on every run."""
    import sys

    beside = os.path.join(sys.prefix, "bin", "uv")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    from uv import find_uv_bin

    return os.fspath(find_uv_bin())
