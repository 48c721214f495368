"""Step kinds: one module each, the same three verbs (fingerprint, check, apply)."""

from .build import BuildStep
from .copy import CopyStep
from .dirs import DirsStep
from .env import EnvStep
from .overlay import OverlayStep
from .patch import PatchStep
from .python import PythonStep
from .repo import RepoStep
from .smoke import SmokeStep
from .wheel import WheelStep

KINDS = {cls.kind: cls for cls in (PythonStep, BuildStep, RepoStep, CopyStep, PatchStep, OverlayStep, WheelStep,
                                   EnvStep, DirsStep, SmokeStep)}

__all__ = ["KINDS", "BuildStep", "CopyStep", "DirsStep", "EnvStep", "OverlayStep", "PatchStep", "PythonStep", "RepoStep",
           "SmokeStep", "WheelStep"]
