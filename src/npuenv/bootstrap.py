"""`bootstrap` as a pipeline: options -> workspace -> spec -> trust -> steps -> engine."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import workspace
from .defaults import DEFAULT_SPEC
from .engine import Decision, Engine, Reporter, RunReport, failure, select
from .errors import UsageError
from .lock import workspace_lock
from .plan import compile_steps
from .state import State
from .steps.base import Context



@dataclass
class Options:
    root: Optional[str] = None
    spec: str = DEFAULT_SPEC
    dry_run: bool = False
    only: list[str] = field(default_factory=list)
    force: list[str] = field(default_factory=list)
    jobs: int = 4
    ca_bundle: list[str] = field(default_factory=list)
    python: Optional[str] = None
    wheels: Optional[str] = None
    wait: bool = False
    mirrors_config: Any = None


def split_ids(values: list[str]) -> list[str]:
    """--only a,b --only c -> [a, b, c]"""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@dataclass
class Prepared:
    ctx: Context
    engine: Engine
    forced: set[str]
    warnings: list[str]


def prepare(options: Options, reporter: Reporter, environ: Mapping[str, str]) -> Prepared:
    from .spec import load_spec
    from .trust import build_bundle, extra_bundles, refuse_insecure

    refuse_insecure(environ)
    root = workspace.resolve_root(options.root, environ)
    layout = workspace.Layout(root)
    spec = load_spec(options.spec)
    mirrors = workspace.mirror_layers(spec, options.mirrors_config, environ)
    extras = extra_bundles(options.ca_bundle, environ)
    steps = compile_steps(spec)
    selected, forced = select(steps, split_ids(options.only), split_ids(options.force))
    # a dry run reaches no server: it needs no bundle, and changes nothing but npuenv's lock file
    bundle = layout.ca_bundle if options.dry_run else build_bundle(layout.ca_bundle, extras, environ).path
    wheels_dir = Path(options.wheels).absolute() if options.wheels else workspace.default_wheels_dir(root)
    if wheels_dir.exists() and not wheels_dir.is_dir():
        raise UsageError(f"--wheels {options.wheels}: exists and is not a folder",
                         hint="pass a folder for the wheelhouse (it is made when missing)")
    ctx = Context(
        root=root, spec=spec, wheels_dir=wheels_dir, mirrors=mirrors, ca_bundle=bundle,
        env=workspace.child_env(layout, environ, bundle, mirrors), uv=workspace.uv_binary(),
        arch=workspace.machine(), state=State.load(layout.state), python=options.python,
        progress=getattr(reporter, "progress", lambda *a: None),
        status=getattr(reporter, "status", lambda *a: None), jobs=len(os.sched_getaffinity(0)) or 1,
    )
    ctx.state.set_meta(spec={"name": spec.name, "file": str(spec.file)})
    engine = Engine(ctx, selected, log_dir=layout.logs, reporter=reporter, jobs=options.jobs)
    return Prepared(ctx, engine, forced, workspace.root_warnings(root))


def bootstrap(options: Options, reporter: Reporter,
              environ: Optional[Mapping[str, str]] = None) -> tuple[RunReport, list[tuple[str, Decision]]]:
    """Run (or with dry_run, plan) the spec in the workspace. Raises StepFailed when a step failed."""
    environ = dict(os.environ if environ is None else environ)
    root = workspace.resolve_root(options.root, environ)
    on_wait = getattr(reporter, "waiting", None)
    with workspace_lock(workspace.Layout(root).lock, wait=options.wait, on_wait=on_wait):
        prepared = prepare(options, reporter, environ)
        for warning in prepared.warnings:
            getattr(reporter, "warn", lambda w: None)(warning)
        if options.dry_run:
            decisions = prepared.engine.plan(prepared.forced)
            reporter.plan(decisions)
            return RunReport(), decisions
        report = prepared.engine.run(prepared.forced)
    reporter.summary(report)
    if report.failed:
        raise failure(report, prepared.engine.by_id)
    return report, []
