"""The spec compiled into steps with dependencies, for one machine (pure: reads only the spec and `Machine`).

Every kind compiles its own steps (npuenv.steps.KINDS); this module only puts them together.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional, Sequence

from .machine import Machine
from .steps import KINDS
from .steps.base import Kind, Step


def compile_steps(spec: Any, machine: Machine, kinds: Sequence[Kind] = KINDS) -> list[Step]:
    """The spec's steps on this machine, kind by kind in registry order."""
    spec = on_machine(spec, machine, kinds)
    return [step for kind in kinds for step in kind.compile(spec, machine)]


def on_machine(spec: Any, machine: Machine, kinds: Sequence[Kind] = KINDS) -> Any:
    """The spec as this machine makes it: a repo only a prebuilt-wheel build would read is not cloned at
    all, and its patches go with it."""
    spared = set().union(*(kind.spares(spec, machine) for kind in kinds))
    used = set().union(*(kind.uses(spec, machine) for kind in kinds))
    keep = {name for name in spec.repos if name not in spared or name in used}
    return replace(spec, repos={n: r for n, r in spec.repos.items() if n in keep},
                   patches={n: p for n, p in spec.patches.items() if p.repo in keep})


def platform_problems(spec: Any, machine: Machine, requires: Optional[dict[str, list[str]]] = None,
                      kinds: Sequence[Kind] = KINDS) -> list[str]:
    """Why the spec cannot make its target env on this machine ([] when it can), kind by kind.

    `requires` holds the Requires-Dist lines of the spec's wheels (by wheel name) where they are known."""
    return [problem for kind in kinds for problem in kind.problems(spec, machine, requires or {})]
