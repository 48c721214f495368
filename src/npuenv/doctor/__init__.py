"""`invoke doctor`: small independent checks, grouped, each saying ok / warn / fail / skip, what it found
and the fix. One module per group; each exposes CHECKS; this module assembles the registry."""

from __future__ import annotations

from collections.abc import Iterable

from importlib import import_module
from typing import Any

from ..errors import UsageError
from .base import Check, CheckResult, Outcome, Status, count, run_checks
from .context import DoctorContext, build_context

# group -> its title in the table, in the order the table shows them
GROUPS = {
    "system": "system",
    "storage": "storage",
    "cann": "CANN & driver",
    "npu": "NPU devices & processes",
    "trust": "trust & network",
    "toolchain": "toolchain",
    "target": "target env",
    "sources": "sources",
    "isolation": "isolation",
    "models": "models",
}


def registry() -> dict[str, Check]:
    """Every check by name, group by group in GROUPS' order: each group's module is imported here, not when
    the package is (fleet.snapshot on every node needs the context, not the checks)."""
    return {c.name: c for group in GROUPS for c in import_module(f".{group}", __name__).CHECKS}


def __getattr__(name: str) -> Any:
    """`doctor.REGISTRY` and `doctor.<group>` as attributes, imported on first use."""
    if name == "REGISTRY":
        return registry()
    if name in GROUPS:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["GROUPS", "REGISTRY", "registry", "Check", "CheckResult", "DoctorContext", "Outcome", "Status", "build_context",
           "count", "run_checks", "select"]


def _split(values: Iterable[str]) -> list[str]:
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def select(names: Iterable[str] = (), online: bool = False) -> list[Check]:
    """The checks to run, in registry order. No names: every check (online ones only with `online`).
    A group name selects its checks (online ones only with `online`); a check named outright always runs."""
    wanted = _split(names)
    REGISTRY = registry()  # noqa: N806 - the registry, as the module attribute names it
    unknown = [n for n in wanted if n not in REGISTRY and n not in GROUPS]
    if unknown:
        raise UsageError(f"unknown check{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
                         hint=f"groups: {', '.join(GROUPS)}; checks: {', '.join(REGISTRY)} "
                              "(invoke doctor --list-checks describes each)")
    if not wanted:
        return [c for c in REGISTRY.values() if online or not c.online]
    named = set(wanted)
    return [c for c in REGISTRY.values()
            if c.name in named or (c.group in named and (online or not c.online))]
