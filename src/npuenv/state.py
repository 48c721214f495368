"""The workspace state file: what each step resolved, recorded atomically after each step.

The format is versioned; a later `lock` of the whole stack is built from the `resolved` facts.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Optional

from .atomic import write_atomic
from .errors import NpuenvError

FORMAT = 1


class State:
    """Per-step records, safe to update from worker threads; every update is persisted at once."""

    def __init__(self, path: Path, data: Optional[dict] = None) -> None:
        self.path = path
        self._data = data or {"format": FORMAT, "steps": {}}
        self._lock = threading.Lock()
        self._staged: dict[str, dict] = {}  # facts of an applied step whose re-check has not passed yet

    @classmethod
    def load(cls, path: Path) -> "State":
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NpuenvError(
                f"cannot read the state file {path}: {exc}",
                hint="delete it: npuenv then re-checks every step and records it again",
            ) from exc
        if data.get("format") != FORMAT:
            raise NpuenvError(
                f"{path} has state format {data.get('format')!r}, this npuenv reads format {FORMAT}",
                hint="delete it (every step is re-checked) or use the npuenv version that wrote it",
            )
        return cls(path, data)

    def record(self, step_id: str) -> Optional[dict]:
        with self._lock:
            rec = self._data["steps"].get(step_id)
            return json.loads(json.dumps(rec)) if rec is not None else None

    def resolved(self, step_id: str) -> dict:
        """What a step resolved: its staged facts while it is being verified, else its record's."""
        with self._lock:
            if step_id in self._staged:
                return json.loads(json.dumps(self._staged[step_id]))
        rec = self.record(step_id)
        return rec["resolved"] if rec else {}

    def stage(self, step_id: str, resolved: Optional[dict[str, Any]]) -> None:
        """Make fresh facts visible to the step's own re-check, in memory only (None: drop them)."""
        with self._lock:
            if resolved is None:
                self._staged.pop(step_id, None)
            else:
                self._staged[step_id] = resolved

    def save_step(self, step_id: str, fingerprint: str, resolved: dict[str, Any], seconds: float) -> None:
        entry = {"fingerprint": fingerprint, "resolved": resolved, "seconds": round(seconds, 3),
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with self._lock:
            self._staged.pop(step_id, None)
            self._data["steps"][step_id] = entry
            write_atomic(self.path, json.dumps(self._data, indent=2, sort_keys=True) + "\n")

    def set_meta(self, **meta: Any) -> None:
        with self._lock:
            self._data.update(meta)

    def step_ids(self) -> list[str]:
        with self._lock:
            return list(self._data["steps"])
