"""What every models task starts from: the spec (the workspace's, else the default), where models live,
the hub endpoint (HF_ENDPOINT, else https://huggingface.co through the mirrors) and the CA bundle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from ..errors import ModelError, UsageError
from .catalog import HUB, Model, model_named
from .places import Places, places


@dataclass(frozen=True)
class Session:
    spec: Any
    places: Places
    environ: Mapping[str, str]
    root: Optional[Path]  # the workspace, when one was given or is the default one
    mirrors_config: Any = None

    def model(self, name: str) -> Model:
        return model_named(self.spec, name)

    def endpoint(self) -> str:
        from ..workspace import mirror_layers

        return hub_endpoint(mirror_layers(self.spec, self.mirrors_config, self.environ).rewrite, self.environ)

    def ca_bundle(self, extras: Sequence[str]) -> Path:
        """npuenv's CA bundle for the hub, under PERSISTENT/models/.npuenv (verification is never off)."""
        from ..trust import build_bundle, extra_bundles, refuse_insecure

        refuse_insecure(self.environ)
        return build_bundle(self.places.ca_bundle, extra_bundles(extras, self.environ), self.environ).path


def hub_endpoint(rewrite: Callable[[str], str], environ: Mapping[str, str]) -> str:
    """HF_ENDPOINT when set, else the hub's URL rewritten by the mirrors; https only."""
    given = environ.get("HF_ENDPOINT", "").strip()
    endpoint = given or rewrite(HUB + "/")
    endpoint = endpoint.rstrip("/")
    origin = "HF_ENDPOINT" if given else "the mirror rule for https://huggingface.co/"
    if urlsplit(endpoint).scheme != "https" or not urlsplit(endpoint).netloc:
        raise ModelError(f"{origin} gives {endpoint!r}: the hub must be an https:// server",
                         hint="models come from a hub or a hub mirror over https (a local folder cannot "
                              "serve the hub's API); fix HF_ENDPOINT or the mirror rule")
    return endpoint


def open_session(spec: Optional[str], persistent: Optional[str], root: Optional[str],
                 environ: Mapping[str, str], mirrors_config: Any = None) -> Session:
    """The spec: --spec, else the one the workspace (--root, else the default one when it exists) was made
    with, else the default spec."""
    from .. import workspace
    from ..spec import load_spec

    folder = _workspace(root, environ)
    argument = workspace.spec_argument(spec, workspace.recorded_spec(folder))
    return Session(load_spec(argument), places(persistent, environ), environ, folder, mirrors_config)


def _workspace(root: Optional[str], environ: Mapping[str, str]) -> Optional[Path]:
    from ..workspace import resolve_root

    if root:
        return resolve_root(root, environ, create=False)
    try:
        return resolve_root(None, environ, create=False)
    except UsageError:
        return None  # no default workspace: the default spec then
