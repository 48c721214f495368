"""`invoke wheels` as text: each item with its size, age and who uses it; what a prune removed."""

from __future__ import annotations

from typing import Any

from .console import human_bytes


def listing(found: Any) -> list[str]:
    if not found.items and found.pruned is None:
        return [f"{found.folder}: empty"]
    lines: list[str] = []
    for item in found.items:
        lines.append(f"{item.kind:<10}  {item.name}")
        lines.append(f"{'':<10}  {human_bytes(item.size)}, {item.age_days:.1f} days old, used by: "
                     f"{', '.join(item.used_by) or 'unused'}")
        if item.detail:
            lines.append(f"{'':<10}  {item.detail}")
    if found.pruned is not None:
        freed = sum(i.size for i in found.pruned)
        lines.append(f"pruned {len(found.pruned)} item(s), {human_bytes(freed)} freed"
                     + (f"; removed {len(found.leftovers)} leftover(s) of interrupted runs" if found.leftovers else ""))
    return lines
