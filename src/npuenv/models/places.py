"""Where models live: beside the workspaces, in the folder that survives a restart (PERSISTENT).

PERSISTENT/models/NAME       the hub's files, as the hub lays them out
PERSISTENT/models_ms/NAME    MindSpeed-MM's checkpoint converted from them
PERSISTENT/models/.npuenv/   npuenv's own files for models: the CA bundle, per-model locks, logs
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import UsageError
from ..workspace import persistent_root

MARKER = ".npuenv-model.json"  # in a model folder: what was verified complete, per file (size, mtime, hash)
PROVENANCE = ".npuenv-convert.json"  # in a converted folder: what it was made from, and its outputs' hashes


@dataclass(frozen=True)
class Places:
    persistent: Path

    @property
    def models(self) -> Path:
        return self.persistent / "models"

    @property
    def converted_root(self) -> Path:
        return self.persistent / "models_ms"

    @property
    def home(self) -> Path:
        return self.models / ".npuenv"

    def model(self, name: str) -> Path:
        return self.models / name

    def converted(self, name: str) -> Path:
        return self.converted_root / name

    def marker(self, name: str) -> Path:
        return self.model(name) / MARKER

    def lock(self, name: str) -> Path:
        return self.home / "locks" / name

    @property
    def ca_bundle(self) -> Path:
        return self.home / "ca-bundle.pem"

    @property
    def hf_home(self) -> Path:
        """HF_HOME of the hub client: its token and caches stay here, not in a HOME that a restart wipes."""
        return self.home / "hf"


def places(given: Optional[str], environ: Mapping[str, str]) -> Places:
    """--persistent DIR, else NPUENV_PERSISTENT_ROOT, else /home/ma-user/work; it must exist (npuenv makes
    models/ and models_ms/ inside it, never the folder itself)."""
    root = Path(given).expanduser().absolute() if given else persistent_root(environ)
    if not root.is_dir():
        where = f"--persistent {given}" if given else f"{root}"
        raise UsageError(f"{where}: no such folder to keep models in",
                         hint="pass --persistent DIR (a folder that survives a restart; on ModelArts "
                              "/home/ma-user/work), or set NPUENV_PERSISTENT_ROOT")
    return Places(root)
