"""PEP 503's normalised project name, without importing packaging (the up-to-date path must stay light):
the same result as packaging.utils.canonicalize_name for every valid name."""

from __future__ import annotations

import re

_RUNS = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    """'Torch_NPU' -> 'torch-npu'."""
    return _RUNS.sub("-", name).lower()
