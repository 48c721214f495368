"""sources: the checkouts are at their pinned commits, the patches applied, the overlays and copies intact.

These reuse the step kinds: the spec is compiled into bootstrap's steps and each repo/patch/overlay/copy
step's own check() looks at the workspace. Nothing is fetched or built. Drift names the fix:
`invoke bootstrap --only <step ids>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

from .. import git
from .base import CheckResult, check, fail, ok, skip, warn
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


def spec_lock(ctx) -> Tuple[Optional[object], Optional[CheckResult]]:
    """The spec's lock as bootstrap would follow it, or the result that says why there is none to follow."""
    from .. import lockfile
    from ..errors import LockFileError

    def read():
        try:
            return lockfile.read(ctx.spec.file), None
        except LockFileError as exc:
            return None, fail(exc.message, exc.hint)

    found, result = ctx.memo.get("spec-lock", read)
    if result is not None:
        return None, result
    if found is None:
        return None, skip(f"the spec {ctx.spec.name} has no lock (`invoke lock` writes one)")
    changes = found.changes(ctx.spec)
    relock = f"invoke lock --spec {ctx.spec.file}"
    if changes:
        more = f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""
        return None, warn(f"the spec changed since {found.path.name} was written, so bootstrap resolves afresh: "
                          f"{changes[0]}{more}", relock, changes)
    if ctx.machine.arch not in found.arches:
        return None, warn(f"{found.path.name} covers {', '.join(found.arches)}, not this box's {ctx.machine.arch}: "
                          "bootstrap resolves afresh here", relock + " (on a machine that reaches every index)")
    return found, None


@check("sources.lock", "the spec's lock is intact and current, and the checkouts hold what it locked "
                       "(submodule commits, overlaid files)")
def lock(ctx) -> CheckResult:
    found, result = spec_lock(ctx)
    if result is not None:
        return result
    if ctx.root is None:
        return ok(f"{found.path.name} is intact and current (no workspace to compare)")
    step_ctx = ctx.memo.get("step-context", lambda: step_context(ctx))
    differs = [*_submodules_differ(step_ctx, found), *_overlays_differ(step_ctx, found)]
    if differs:
        ids = sorted({d.split(":", 2)[0] + ":" + d.split(":", 2)[1] for d in differs})
        more = f" (+{len(differs) - 1} more)" if len(differs) > 1 else ""
        return fail(f"{differs[0]}{more}", ctx.bootstrap_fix("--only", ",".join(ids)), differs)
    return ok(f"the workspace holds what {found.path.name} locked")


def _submodules_differ(step_ctx, found) -> List[str]:
    out = []
    for name, locked in found.data["repos"].items():
        path = step_ctx.path(locked["path"])
        if not locked.get("submodules") or not git.is_checkout(path):
            continue
        for sub, commit in sorted(locked["submodules"].items()):
            have = git.head(path / sub, step_ctx.env) if git.is_checkout(path / sub) else None
            if have != commit:
                out.append(f"repo:{name}: submodule {sub} is at {(have or 'nothing')[:12]}, locked {commit[:12]}")
    return out


def _overlays_differ(step_ctx, found) -> List[str]:
    from ..commands import run

    out = []
    for name, locked in found.data["overlays"].items():
        to_repo, to_path = locked["to"].split(":", 1)
        target = step_ctx.path(step_ctx.spec.repos[to_repo].path) / to_path
        if locked.get("blob") is None or not target.is_file():
            continue
        blob = run(["git", "hash-object", "--no-filters", str(target)], env=step_ctx.env).stdout.strip()
        if blob != locked["blob"]:
            out.append(f"overlay:{name}: {to_repo}/{to_path} is not the file {found.path.name} locked")
    return out


CHECKS = [repos, patches, overlays, copies, lock]
