"""sources: the checkouts are at their pinned commits, the patches applied, the overlays and copies intact.

These reuse the step kinds: the spec is compiled into bootstrap's steps and each repo/patch/overlay/copy
step's own check() looks at the workspace. Nothing is fetched or built. Drift names the fix:
`invoke bootstrap --only <step ids>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

from .. import git
from .base import CheckResult, check, fail, ok, skip
from .trust import workspace_bundle


def step_context(ctx):
    """bootstrap's step Context for the workspace, made cheaply: no bundle is built (the existing one, or
    the CA file the environment names, is passed) and the state is only read."""
    from .. import workspace
    from ..state import State
    from ..steps.base import Context

    layout = ctx.layout
    mirrors = workspace.mirror_layers(ctx.spec, ctx.mirrors_config, ctx.environ)
    bundle = workspace_bundle(ctx) or Path(ctx.environ.get("SSL_CERT_FILE") or layout.ca_bundle)
    return Context(root=ctx.root, spec=ctx.spec, wheels_dir=ctx.wheels_dir or workspace.wheels_dir(None, ctx.root),
                   env=workspace.child_env(layout, ctx.environ, bundle, mirrors), mirrors=mirrors,
                   ca_bundle=bundle, uv=workspace.uv_binary(), machine=ctx.machine,
                   state=State.load(layout.state))


def of_kind(ctx, name: str) -> list:
    """The spec's steps of one kind on this machine, as bootstrap makes them (npuenv.steps.KINDS)."""
    from ..plan import on_machine
    from ..steps import kind

    return kind(name).compile(on_machine(ctx.spec, ctx.machine), ctx.machine)


def _prepare(ctx, kind: str) -> Tuple[Optional[object], list, Optional[CheckResult]]:
    from ..errors import NpuenvError

    if ctx.root is None:
        return None, [], skip(ctx.no_root)
    chosen = ctx.memo.get(f"steps:{kind}", lambda: of_kind(ctx, kind))
    if not chosen:
        return None, [], skip(f"the spec has no {kind} step on this platform")
    try:
        step_ctx = ctx.memo.get("step-context", lambda: step_context(ctx))
    except NpuenvError as exc:
        return None, [], fail(exc.message, exc.hint)
    return step_ctx, chosen, None


def _missing_repos(step, step_ctx) -> List[str]:
    """The repo steps this step needs whose checkout is not there (its own check would be meaningless)."""
    return [d for d in step.deps if d.startswith("repo:")
            and not git.is_checkout(step_ctx.path(step_ctx.spec.repos[d.split(":", 1)[1]].path))]


def _report(ctx, kind: str, noun: str, intact: str) -> CheckResult:
    step_ctx, chosen, early = _prepare(ctx, kind)
    if early is not None:
        return early
    bad: List[Tuple[str, str]] = []
    for step in chosen:
        missing = _missing_repos(step, step_ctx)
        if missing:
            bad.append((step.id, f"not checked: {', '.join(missing)} missing"))
            continue
        answer = step.check(step_ctx)
        if not answer.ok:
            bad.append((step.id, answer.reason or "failed its check"))
    details = [f"{step_id}: {reason}" for step_id, reason in bad]
    if not bad:
        return ok(f"{len(chosen)} {noun} {intact}", [s.id for s in chosen])
    first_id, first = bad[0]
    more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
    return fail(f"{len(bad)} of {len(chosen)} {noun}: {first_id}: {first}{more}",
                ctx.bootstrap_fix("--only", ",".join(i for i, _r in bad)), details if len(bad) > 1 else ())


@check("sources.repos", "every repo is checked out at its pinned commit")
def repos(ctx) -> CheckResult:
    return _report(ctx, "repo", "repo(s)", "at their pinned commits")


@check("sources.patches", "every patch is applied (where its `when:` holds)")
def patches(ctx) -> CheckResult:
    return _report(ctx, "patch", "patch(es)", "applied")


@check("sources.overlays", "every overlay file is in place (same hash as its source)")
def overlays(ctx) -> CheckResult:
    return _report(ctx, "overlay", "overlay(s)", "intact")


@check("sources.copies", "every copied folder (megatron/) is there and unchanged")
def copies(ctx) -> CheckResult:
    return _report(ctx, "copy", "copied folder(s)", "intact")


CHECKS = [repos, patches, overlays, copies]
