"""models — a section with no steps: bootstrap never downloads weights (a 78B model is 150 GB);
`invoke models.fetch NAME` takes one model when asked (npuenv.models)."""

from __future__ import annotations

from typing import Any

from ..models.catalog import parse
from .base import Kind


def compile(spec: Any, machine: Any) -> list:
    return []


KIND = Kind("models", compile, section="models", parse=parse)
