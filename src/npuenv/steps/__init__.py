"""Step kinds: one module each, the same three verbs (fingerprint, check, apply), and the registry.

Each `steps/<kind>.py` declares its `KIND` (npuenv.steps.base.Kind): the spec section it reads and that
section's schema, and how it compiles the spec into steps. Plan (the step graph) and spec (its top-level
keys) are derived from `KINDS`; adding a kind is one new module plus its line here.
"""

from . import build, copy, dirs, env, models, overlay, patch, python, repo, smoke, wheel
from .base import Kind

# the order steps are compiled in (and listed, among steps that do not depend on each other)
KINDS = (python.KIND, repo.KIND, copy.KIND, patch.KIND, overlay.KIND, wheel.KIND, env.KIND, build.KIND,
         dirs.KIND, smoke.KIND, models.KIND)


def kind(name: str) -> Kind:
    """The registered kind called `name` (KeyError for none)."""
    found = {k.name: k for k in KINDS}
    return found[name]
