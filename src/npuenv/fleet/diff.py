"""What differs between nodes' snapshots, or between them and a reference (the lock): only what differs,
grouped by category, the majority value against the outliers, as msprechecker's compare does for one
node's environment, over whatever a snapshot holds (commits, packages, CANN, NPUs, HCCL variables).

A snapshot is nested JSON-like data: {category: {key: value or nested}}. Leaves are compared; a key one
node lacks is the value MISSING for it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from ..lockfile import flatten  # the lock's own key paths: a node is compared as a lock is

MISSING = "(missing)"


def _key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Difference:
    key: str  # "category.rest.of.path"
    expected: Any  # the majority's (or the reference's) value; None with no majority
    holders: tuple[str, ...]  # the nodes that have it
    outliers: dict = field(default_factory=dict)  # node -> its value
    reference: bool = False  # `expected` is the reference's, not a majority's

    @property
    def category(self) -> str:
        return self.key.split(".", 1)[0]


def differences(snapshots: Mapping[str, Any], reference: Optional[Any] = None,
                ignore: tuple[str, ...] = ("node",)) -> list[Difference]:
    """Every leaf on which the nodes disagree, sorted by key. A leaf the reference (a lock) names is expected
    to hold the reference's value; any other is expected to hold the value most nodes have, and a tie has
    no majority (expected None, all outliers). Categories in `ignore` (what is meant to differ per node)
    are not compared."""
    flat = {node: {k: v for k, v in flatten(data).items() if k.split(".", 1)[0] not in ignore}
            for node, data in snapshots.items()}
    ref = flatten(reference) if reference is not None else {}
    keys = sorted(set().union(*flat.values(), ref))
    found = []
    for key in keys:
        values = {node: leaves.get(key, MISSING) for node, leaves in sorted(flat.items())}
        is_ref = key in ref
        has_majority, expected = (True, ref[key]) if is_ref else _majority(list(values.values()))
        if not has_majority:
            found.append(Difference(key, None, (), dict(values)))
            continue
        outliers = {n: v for n, v in values.items() if _key(v) != _key(expected)}
        if outliers:
            holders = tuple(n for n in values if n not in outliers)
            found.append(Difference(key, expected, holders, outliers, is_ref))
    return found


def _majority(values: list[Any]) -> tuple[bool, Any]:
    """(True, the value more nodes hold than any other), or (False, None) on a tie (MISSING and None count as
    values)."""
    counts = Counter(_key(v) for v in values)
    (top, first), *rest = counts.most_common()
    if rest and rest[0][1] == first:
        return False, None
    return True, next(v for v in values if _key(v) == top)


def grouped(found: list[Difference]) -> dict[str, list[Difference]]:
    out: dict[str, list[Difference]] = {}
    for item in found:
        out.setdefault(item.category, []).append(item)
    return out
