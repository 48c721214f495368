"""`models.list`: each model of the spec and what is on disk for it (no network, no hashing)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from .places import PROVENANCE
from .session import Session
from .verify import changed_since, read_marker


@dataclass(frozen=True)
class ModelState:
    name: str
    hub: str
    pinned: Optional[str]
    folder: str
    state: str  # absent | incomplete | complete | changed
    revision: Optional[str]  # of the verified download
    size: int
    converted: Optional[str]  # the source revision the conversion was made from, when there is one
    detail: str = ""


def state_of(session: Session, name: str) -> ModelState:
    model = session.model(name)
    folder = session.places.model(name)
    marker = read_marker(folder)
    converted = _converted_from(session, name)
    base = dict(name=name, hub=model.hub, pinned=model.revision, folder=str(folder), converted=converted)
    if marker is None:
        state = "incomplete" if folder.is_dir() and any(folder.iterdir()) else "absent"
        return ModelState(**base, state=state, revision=None, size=0)
    changed = changed_since(folder, marker)
    return ModelState(**base, state="changed" if changed else "complete", revision=marker.revision, size=marker.total,
                      detail=changed or "")


def _converted_from(session: Session, name: str) -> Optional[str]:
    try:
        data = json.loads((session.places.converted(name) / PROVENANCE).read_text(encoding="utf-8"))
        return str(data["source"]["revision"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def listing(session: Session) -> list[ModelState]:
    from .catalog import models_of

    return [state_of(session, name) for name in models_of(session.spec)]
