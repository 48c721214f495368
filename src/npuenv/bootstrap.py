"""`bootstrap` as a pipeline: options -> workspace -> spec -> trust -> steps -> engine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from . import workspace
from .engine import Engine, Reporter, RunReport, failure, select
from .errors import UsageError
from .flock import workspace_lock
from .machine import Machine
from .plan import compile_steps
from .state import State
from .steps.base import Context


@dataclass
class Options:
    root: Optional[str] = None
    spec: Optional[str] = None  # None: the spec the workspace was made with, else the default
    dry_run: bool = False
    only: list[str] = field(default_factory=list)
    force: list[str] = field(default_factory=list)
    jobs: int = 4
    ca_bundle: list[str] = field(default_factory=list)
    python: Optional[str] = None
    wheels: Optional[str] = None
    wait: bool = False
    mirrors_config: Any = None
    locked: bool = False  # refuse when the spec has no lock this box can follow as it is
    # instead of the spec's steps, one made by final_step(spec, steps) after the steps it depends on
    # (`invoke lock`, `invoke bundle`): a Step, or the error that says why it cannot be made
    final_step: Optional[Callable[[Any, list], Any]] = None
    bundle: Optional[str] = None  # an `invoke bundle` file: everything comes from it, nothing from the network


def split_ids(values: list[str]) -> list[str]:
    """--only a,b --only c -> [a, b, c]"""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@dataclass
class Prepared:
    ctx: Context
    engine: Engine
    forced: set[str]
    warnings: list[str]


def prepare(options: Options, reporter: Reporter, environ: Mapping[str, str], root: Path) -> Prepared:
    """Everything the engine needs. With dry_run nothing is written: no bundle, no folder, no state."""
    from .spec import load_spec
    from .steps.python import given
    from .trust import build_bundle, extra_bundles, refuse_insecure

    refuse_insecure(environ)
    layout = workspace.Layout(root)
    recorded = workspace.recorded_spec(root)
    argument = workspace.spec_argument(options.spec, recorded)
    recorded = recorded or {}
    spec = load_spec(argument, checked=[recorded.get("checked", "")])
    mirrors = workspace.mirror_layers(spec, options.mirrors_config, environ)
    extras = extra_bundles(options.ca_bundle, environ)
    state = State.load(layout.state)
    python = given(options.python, spec.python, state.resolved("python")) if options.python else None
    machine = Machine.read(environ)
    steps = compile_steps(spec, machine)
    only, force, stack_lock, lock_warnings = split_ids(options.only), split_ids(options.force), None, []
    if options.final_step is not None:
        final = options.final_step(spec, steps)
        steps.append(final)
        only = [final.id]
    else:
        stack_lock, lock_warnings = follow_lock(spec, machine, options.locked) if not options.bundle else (None, [])
    offline = _unpack(options, layout, root, spec, machine, environ)
    if offline is not None:
        from .mirrors import combine

        mirrors, stack_lock = combine(mirrors.rules, offline.mirrors), offline.lock
    selected, forced = select(steps, only, force)
    # a dry run reaches no server: it needs no bundle
    bundle = layout.ca_bundle if options.dry_run else build_bundle(layout.ca_bundle, extras, environ).path
    if not options.dry_run:
        layout.tmp.mkdir(parents=True, exist_ok=True)
    wheels_dir = workspace.wheels_dir(options.wheels, root)
    if wheels_dir.exists() and not wheels_dir.is_dir():
        raise UsageError(f"--wheels {options.wheels}: exists and is not a folder",
                         hint="pass a folder for the wheelhouse (it is made when missing)")
    env = workspace.child_env(layout, environ, bundle, mirrors)
    if offline is not None:
        from .bundle import seed_wheelhouse

        seed_wheelhouse(offline, spec, machine.arch, wheels_dir)
        # for the uv a build runs itself (decord's `uv build`): no index, its build backend from the bundle
        env.update(UV_OFFLINE="1", UV_FIND_LINKS=str(offline.folder / "wheels"))
    ctx = Context(
        root=root, spec=spec, wheels_dir=wheels_dir, mirrors=mirrors, ca_bundle=bundle,
        env=env, uv=workspace.uv_binary(),
        machine=machine, state=state, python=python, progress=reporter.progress, status=reporter.status,
        forced=frozenset(forced), lock=stack_lock, offline_wheels=offline.folder / "wheels" if offline else None,
    )
    warnings = workspace.root_warnings(root) + _switch_warnings(recorded, spec) + lock_warnings
    ctx.state.set_meta(spec={"name": spec.name, "file": str(spec.file), "arg": _spec_record(argument, spec),
                             "checked": spec.digest}, wheels=str(wheels_dir))
    engine = Engine(ctx, selected, log_dir=layout.logs, reporter=reporter, jobs=options.jobs)
    return Prepared(ctx, engine, forced, warnings)


def _unpack(options: Options, layout: Any, root: Path, spec: Any, machine: Machine, environ: Mapping[str, str]) -> Any:
    """The bundle of --bundle, verified and unpacked into the workspace (None without one)."""
    if not options.bundle:
        return None
    if options.dry_run:
        raise UsageError("--bundle with --dry-run: a bundle is unpacked into the root before anything is planned, "
                         "and a dry run writes nothing",
                         hint=f"check the file without writing: invoke bundle --verify {options.bundle}")
    from .bundle import unpack

    layout.home.mkdir(parents=True, exist_ok=True)
    return unpack(Path(options.bundle).absolute(), layout.home, root, spec, machine.arch, dict(environ))


def follow_lock(spec: Any, machine: Machine, locked: bool) -> tuple[Any, list[str]]:
    """The spec's lock when this box can follow it as it is, with the warnings why not otherwise;
    `locked` (bootstrap --locked) turns each of those reasons into a refusal."""
    from . import lockfile
    from .errors import LockFileError

    json_path, _uv = lockfile.paths(spec.file)
    found = lockfile.read(spec.file)
    if found is None:
        if locked:
            raise LockFileError(f"--locked: the spec {spec.name} has no lock ({json_path} does not exist)",
                                f"run `invoke lock --spec {spec.file}` first")
        return None, []
    changes = found.changes(spec)
    if changes:
        problem = f"the spec changed since {json_path.name} was written:\n" + "\n".join(f"  {c}" for c in changes)
        fix = f"run `invoke lock --spec {spec.file}` to lock the changed spec"
    elif machine.arch not in found.arches:
        problem = f"{json_path.name} covers {', '.join(found.arches)} only, not this box's {machine.arch}"
        fix = f"run `invoke lock --spec {spec.file}` on a machine that reaches every index, for both architectures"
    else:
        return found, []
    if locked:
        raise LockFileError(f"--locked: {problem}", fix)
    return None, [f"{problem}\nthe target env is resolved afresh, as for a spec without a lock ({fix})"]


def _spec_record(argument: str, spec: Any) -> str:
    """What later tasks on this root pass as --spec: a built-in spec by name, any other by its absolute path."""
    from .spec import is_bare_name

    return argument if is_bare_name(argument) else str(spec.file)


def _switch_warnings(recorded: dict, spec: Any) -> list[str]:
    if recorded.get("file") in (None, str(spec.file)):
        return []
    return [f"switching this workspace from the spec {recorded.get('name')} ({recorded.get('file')}) to "
            f"{spec.name} ({spec.file}): the steps whose part of the spec differs run again "
            "(--dry-run shows which)"]


def bootstrap(options: Options, reporter: Reporter, environ: Optional[Mapping[str, str]] = None) -> RunReport:
    """Run (or with dry_run, plan) the spec in the workspace. Raises StepFailed when a step failed; a dry
    run's report holds the plan and no outcomes."""
    environ = dict(os.environ if environ is None else environ)
    root = workspace.resolve_root(options.root, environ, create=not options.dry_run)
    workspace.check_writable(root, write=not options.dry_run)
    # a dry run only reads: it takes no lock (the state file is replaced atomically, never torn)
    lock = contextlib.nullcontext() if options.dry_run else \
        workspace_lock(workspace.Layout(root).lock, wait=options.wait, on_wait=reporter.waiting)
    with lock:
        prepared = prepare(options, reporter, environ, root)
        for warning in prepared.warnings:
            reporter.warn(warning)
        if options.dry_run:
            decisions = prepared.engine.plan(prepared.forced)
            reporter.plan(decisions)
            return RunReport(plan=decisions)
        report = prepared.engine.run(prepared.forced)
    reporter.summary(report)
    if report.failed:
        raise failure(report)
    return report
