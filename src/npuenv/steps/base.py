"""What every step kind shares: the context it runs in and the three verbs' contract."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Optional

from ..confine import remove, workspace_path
from ..machine import Machine
from ..state import State


@dataclass(frozen=True)
class Checked:
    """The answer of a step's check(): is its result there and intact, and if not, why."""

    ok: bool
    reason: str = ""


OK = Checked(True)


def missing(reason: str = "missing") -> Checked:
    return Checked(False, reason)


def drifted(reason: str) -> Checked:
    return Checked(False, f"drifted: {reason}")


@dataclass
class Context:
    """Everything a step may look at: built once per run, passed down, never global."""

    root: Path
    spec: Any  # npuenv.spec.Spec
    wheels_dir: Path
    env: dict[str, str]  # environment for subprocesses: CA variables, git mirrors, uv dirs
    mirrors: Any  # npuenv.mirrors.Mirrors
    ca_bundle: Path
    uv: str
    machine: Machine  # arch, glibc, cores, distribution, CANN: read once per run
    state: State
    python: Optional[dict] = None  # the interpreter the user named (--python), probed: executable, version
    progress: Callable[[str, int, Optional[int]], None] = field(default=lambda *a: None)
    status: Callable[[str, str], None] = field(default=lambda *a: None)  # a live one-line status per step
    forced: frozenset = frozenset()  # step ids the user forced: they redo their work (a build skips its cache)
    lock: Any = None  # npuenv.lockfile.StackLock: the spec's lock the env step follows, or None
    offline_wheels: Optional[Path] = None  # a bundle's wheels: uv runs offline and builds only from these

    @property
    def arch(self) -> str:
        return self.machine.arch

    @property
    def home(self) -> Path:
        """npuenv's own folder inside the workspace."""
        return self.root / ".npuenv"

    def path(self, relative: str) -> Path:
        """ROOT/relative; a symlink that leads out of the root is refused (npuenv writes only inside it)."""
        return workspace_path(self.root, relative)


class Step:
    """A unit of the plan. Subclasses set `kind` and `version` and implement the three verbs.

    - fingerprint(ctx): JSON-able data that determines the result (the engine adds the kind, its version
      and the fingerprints of the dependencies);
    - check(ctx): a cheap look at the world;
    - apply(ctx, log): do the work, idempotently; returns the facts it resolved (recorded in the state).
    """

    kind = "step"
    version = 1

    def __init__(self, name: str, deps: tuple[str, ...] = ()) -> None:
        self.name = name
        self.deps = tuple(deps)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind

    def fingerprint(self, ctx: Context) -> Any:
        raise NotImplementedError

    def check(self, ctx: Context) -> Checked:
        raise NotImplementedError

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self, ctx: Context) -> str:
        """One line for the plan: what this step pins."""
        return ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} deps={list(self.deps)}>"


def _nothing(spec: Any, machine: Machine) -> set[str]:
    return set()


@dataclass(frozen=True)
class Kind:
    """A step kind as the registry (npuenv.steps.KINDS) knows it: everything plan and spec need of it.

    - name: the step kind, the part of a step id before the colon;
    - compile(spec, machine): the spec's steps of this kind on this machine, with their dependencies;
    - section, parse: the top-level spec key the kind reads and its schema check,
      parse(checker, data, parsed) -> the checked value (`parsed` holds the sections parsed before it);
      None for a kind derived from other sections (smoke);
    - uses(spec, machine) / spares(spec, machine): the repos its steps read here / the repos it would
      read elsewhere but not here (a build taking its prebuilt wheel): a repo only spared is not cloned;
    - problems(spec, machine, requires): why this machine cannot have what the kind's section asks;
    - needs_index: a spec with this section must name a package index (index:).
    """

    name: str
    compile: Callable[[Any, Machine], list]
    section: Optional[str] = None
    parse: Optional[Callable[[Any, dict, dict], Any]] = None
    uses: Callable[[Any, Machine], set] = _nothing
    spares: Callable[[Any, Machine], set] = _nothing
    problems: Callable[[Any, Machine, dict], list] = lambda spec, machine, requires: []
    needs_index: bool = False


def step_ids(*ids: Optional[str]) -> tuple[str, ...]:
    """The given ids in order, without None and repeats: a step's dependencies."""
    return tuple(dict.fromkeys(i for i in ids if i))


def containing_repo(spec: Any, path: str, exclude: str = "") -> Optional[str]:
    """The step id of the deepest repo whose folder holds `path` (that repo must exist first)."""
    best: Optional[Any] = None
    for repo in spec.repos.values():
        if repo.name != exclude and is_inside(path, repo.path) and path != repo.path:
            if best is None or len(repo.path) > len(best.path):
                best = repo
    return f"repo:{best.name}" if best else None


def patches_of(spec: Any, repo: str) -> tuple[str, ...]:
    """The step ids of the patches on `repo`."""
    return tuple(f"patch:{p.name}" for p in spec.patches.values() if p.repo == repo)


def is_inside(child: str, parent: str) -> bool:
    """Is workspace path `child` inside (or equal to) `parent`? Both relative, normalised."""
    child_parts = Path(child).parts
    parent_parts = Path(parent).parts
    return child_parts[: len(parent_parts)] == parent_parts


def fresh_tmp_sibling(path: Path, inside: Path) -> Path:
    """Where work for `path` happens before the atomic rename: a hidden sibling on the same filesystem.

    The workspace lock makes one run at a time, so a leftover of a killed run is simply removed.
    """
    tmp = path.parent / f".{path.name}.npuenv-tmp"
    remove(tmp, inside)
    return tmp


def backup_path(target: Path) -> Path:
    """TARGET.npuenv-backup, or .npuenv-backup.2, .3, ...: an earlier backup is never replaced."""
    path = target.with_name(f"{target.name}.npuenv-backup")
    number = 1
    while os.path.lexists(path):
        number += 1
        path = target.with_name(f"{target.name}.npuenv-backup.{number}")
    return path
