"""The spec's `models:` section: each model's hub id and, when pinned, its revision.

A section only: bootstrap makes no steps of it (a 78B model is 150 GB; `models.fetch` takes one model when
asked). Model names are the folder names under PERSISTENT/models, so they keep the hub's spelling
(`InternVL2_5-8B`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from .. import schema as s
from ..errors import ModelError

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
HUB = "https://huggingface.co"  # mirrored like any URL (mirrors:), or HF_ENDPOINT


@dataclass(frozen=True)
class Model:
    name: str
    hub: str  # the hub's repo id, "OpenGVLab/InternVL2_5-8B"
    revision: Optional[str] = None  # a pinned commit
    ref: str = "main"  # what an unpinned model follows

    @property
    def wanted(self) -> str:
        """The revision asked of the hub: the pin, else the ref."""
        return self.revision or self.ref


_hub_id = s.matching(HUB_ID_RE, "expected a hub repo id like 'OpenGVLab/InternVL2_5-8B', got {text!r}")
_SCHEMA: s.Schema = {"hub": (_hub_id, True), "revision": (s.commit, False), "ref": (s.nonempty, False)}


def parse(ck: s.Checker, data: dict, parsed: dict) -> dict[str, Model]:
    """models: {NAME: {hub: OWNER/REPO, revision: COMMIT, ref: BRANCH}}."""
    value = data.get("models")
    if value is None or not s.mapping(ck, ("models",), value):
        return {}
    out = {}
    for name, item in value.items():
        kp = ("models", name)
        if not isinstance(name, str) or not MODEL_NAME_RE.match(name):
            ck.add(kp, f"the model name {name!r} must match {MODEL_NAME_RE.pattern} (it is a folder name)")
            continue
        checked = s.fields(ck, kp, item, _SCHEMA)
        if checked.get("hub"):
            out[name] = Model(name, checked["hub"], checked.get("revision"), checked.get("ref") or "main")
    return out


def models_of(spec: Any) -> dict[str, Model]:
    return spec.sections.get("models") or {}


def model_named(spec: Any, name: str) -> Model:
    """The spec's model called `name` (case-insensitive when unambiguous); ModelError naming the choices."""
    models = models_of(spec)
    if name in models:
        return models[name]
    folded = [m for key, m in models.items() if key.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    listed = ", ".join(models) or "(none)"
    raise ModelError(f"the spec {spec.name} has no model named {name!r}",
                     hint=f"models in {s.shown(spec.file)}: {listed}; add yours under `models:` "
                          "(name: {hub: OWNER/REPO}) in a spec that extends it")

