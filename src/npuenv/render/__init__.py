"""Rendering: the only code that turns results into what a person reads (text) or a program reads (JSON).

- console.py: the terminal (lines, one live line that the next line replaces, errors and warnings);
- one module per task family (bootstrap, doctor, smoke, kill_npu, users, wheels) holding its text layout;
- to_json(): one JSON document from result objects, for every task's --json.

The library never prints: it returns results (npuenv.results) or raises NpuenvError; the tasks hand them
to a renderer here.
"""

from __future__ import annotations

import json
from typing import Any

SYMBOLS = {"ok": "✓", "done": "✓", "up-to-date": "·", "warn": "!", "fail": "✗", "skip": "-", "not-run": "-",
           "crash": "☠"}


def symbol(status: Any) -> str:
    """The one-character mark of a status (a Status or its value)."""
    return SYMBOLS[getattr(status, "value", status)]


def to_json(document: Any) -> str:
    """A result, a list of results, or a dict holding them, as indented JSON."""
    return json.dumps(_plain(document), indent=2)


def _plain(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)
