"""fleet.diff's comparison of the snapshots that came back: the nodes against each other (the majority), the
parts a lock pins against the lock, or each node against its own snapshot saved earlier."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import UsageError
from ..lockfile import flatten
from .diff import MISSING, Difference, differences
from .remote import Outcome

SAVED_FORMAT = 1


@dataclass
class Report:
    found: list[Difference]
    outcomes: list[Outcome]
    against: Optional[str] = None  # the lock or saved file compared with; None: the nodes with each other
    notes: tuple[str, ...] = ()
    reference_name: str = "the lock"  # what an expected value that is not a majority's comes from

    @property
    def same(self) -> bool:
        return not self.found and not self.notes

    def as_json(self) -> dict[str, Any]:
        return {"same": self.same, "against": self.against, "notes": list(self.notes),
                "differences": [{"key": d.key, "expected": d.expected, "reference": d.reference,
                                 "holders": list(d.holders), "outliers": d.outliers} for d in self.found],
                "nodes": {o.node: {**o.as_json(), "snapshot": o.data} for o in self.outcomes}}


def lock_reference(path: str) -> Any:
    """The lock at `path` (X.lock, with X.uv.lock beside it), read and checked intact."""
    from ..lockfile import read_files

    json_path = Path(path)
    if not json_path.is_file():
        raise UsageError(f"--lock {path}: no such file", hint="give a spec's .lock file (invoke lock writes it)")
    return read_files(json_path, json_path.with_name(json_path.name[: -len(".lock")] + ".uv.lock")
                      if json_path.name.endswith(".lock") else json_path.with_suffix(".uv.lock"))


def read_saved(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--against {path}: cannot read it ({exc.strerror})",
                         hint="give a file fleet.diff --save wrote") from None
    except ValueError as exc:
        raise UsageError(f"--against {path}: not JSON ({exc})", hint="give a file fleet.diff --save wrote") from None
    if not isinstance(data, dict) or data.get("format") != SAVED_FORMAT or not isinstance(data.get("nodes"), dict):
        raise UsageError(f"--against {path}: not a snapshot file of this npuenv (format {SAVED_FORMAT})",
                         hint="give a file fleet.diff --save wrote")
    return data["nodes"]


def save(path: str, outcomes: list[Outcome]) -> None:
    from ..atomic import write_atomic

    nodes = {o.node: o.data for o in outcomes if o.ok}
    write_atomic(Path(path), json.dumps({"format": SAVED_FORMAT, "nodes": nodes}, indent=1, sort_keys=True) + "\n")


def compare(outcomes: list[Outcome], lock: Any = None, saved: Optional[dict[str, Any]] = None,
            against: Optional[str] = None) -> Report:
    snaps = {o.node: o.data for o in outcomes if o.ok}
    if saved is not None:
        return _against_saved(snaps, saved, outcomes, against)
    reference = None
    if lock is not None and snaps:
        from .snapshot import reference_from_lock

        arches = Counter((s.get("system") or {}).get("arch") for s in snaps.values())
        reference = reference_from_lock(lock, arches.most_common(1)[0][0])
    return Report(differences(snaps, reference) if snaps else [], outcomes, against)


def _against_saved(snaps: dict[str, Any], saved: dict[str, Any], outcomes: list[Outcome], against: Optional[str]) -> Report:
    found: dict[tuple[str, str], Difference] = {}  # (key, what it was): nodes that were alike, together
    notes = [f"{node}: not in {against}" for node in snaps if node not in saved]
    for node, now in snaps.items():
        if node not in saved:
            continue
        then = {k: v for k, v in flatten(saved[node]).items() if not k.startswith("node.")}
        current = {k: v for k, v in flatten(now).items() if not k.startswith("node.")}
        for key in sorted(set(then) | set(current)):
            was, value = then.get(key, MISSING), current.get(key, MISSING)
            if json.dumps(was, sort_keys=True) != json.dumps(value, sort_keys=True):
                item = found.setdefault((key, json.dumps(was, sort_keys=True)), Difference(key, was, (), {}, True))
                item.outliers[node] = value
    return Report(sorted(found.values(), key=lambda d: d.key), outcomes, against, tuple(notes), "saved")
