"""The spec compiled into steps with dependencies (pure: reads nothing but the spec)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from .steps.build import choose_strategy, glibc_version
from .workspace import machine
from .steps import (BuildStep, CopyStep, DirsStep, EnvStep, OverlayStep, PatchStep, PythonStep, RepoStep, SmokeStep,
                    WheelStep)
from .steps.base import Step, is_inside


def containing_repo(spec: Any, path: str, exclude: str = "") -> Optional[str]:
    """The step id of the deepest repo whose folder holds `path` (that repo must exist first)."""
    best: Optional[Any] = None
    for repo in spec.repos.values():
        if repo.name != exclude and is_inside(path, repo.path) and path != repo.path:
            if best is None or len(repo.path) > len(best.path):
                best = repo
    return f"repo:{best.name}" if best else None


def _ids(*ids: Optional[str]) -> tuple[str, ...]:
    seen: list[str] = []
    for step_id in ids:
        if step_id and step_id not in seen:
            seen.append(step_id)
    return tuple(seen)


def source_repos(spec: Any, arch: str, glibc: Optional[str]) -> set[str]:
    """Repos this platform needs: a repo only a prebuilt-wheel build would use is not cloned at all."""
    prebuilt_only = {b.repo for b in spec.builds.values() if choose_strategy(b, arch, glibc) == "wheel"}
    used = {c.repo for c in spec.copies.values()}
    used |= {o.from_repo for o in spec.overlays.values()} | {o.to_repo for o in spec.overlays.values()}
    used |= {b.repo for b in spec.builds.values() if choose_strategy(b, arch, glibc) != "wheel"}
    if spec.env is not None:
        used |= {n for n in [spec.env.project, *spec.env.editable] if n}
        used |= {r for r, _ in spec.env.requirements}
    return {name for name in spec.repos if name not in prebuilt_only or name in used}


def compile_steps(spec: Any, arch: Optional[str] = None, glibc: Optional[str] = None) -> list[Step]:
    """The spec's steps for this platform (arch and glibc decide whether a build takes its prebuilt wheel)."""
    arch = arch or machine()
    glibc = glibc if glibc is not None else glibc_version()
    keep = source_repos(spec, arch, glibc)
    spec = replace(spec, repos={n: r for n, r in spec.repos.items() if n in keep},
                   patches={n: p for n, p in spec.patches.items() if p.repo in keep})
    steps: list[Step] = [PythonStep(spec.python)]
    changers: dict[str, list[str]] = {name: [] for name in spec.repos}
    for patch in spec.patches.values():
        changers[patch.repo].append(f"patch:{patch.name}")
    for overlay in spec.overlays.values():
        changers[overlay.to_repo].append(f"overlay:{overlay.name}")
    for repo in spec.repos.values():
        parent = containing_repo(spec, repo.path, exclude=repo.name)
        steps.append(RepoStep(repo, _ids(parent), owned_by=tuple(changers[repo.name])))
    for copy in spec.copies.values():
        steps.append(CopyStep(copy, spec.repos[copy.repo], _ids(f"repo:{copy.repo}", containing_repo(spec, copy.to))))
    for patch in spec.patches.values():
        steps.append(PatchStep(patch, spec.repos[patch.repo], _ids(f"repo:{patch.repo}")))
    for overlay in spec.overlays.values():
        # after the target repo's patches, so the result does not depend on scheduling
        patches = [f"patch:{p.name}" for p in spec.patches.values() if p.repo == overlay.to_repo]
        steps.append(OverlayStep(overlay, spec.repos[overlay.from_repo], spec.repos[overlay.to_repo],
                                 _ids(f"repo:{overlay.from_repo}", f"repo:{overlay.to_repo}", *patches)))
    for wheel in spec.wheels.values():
        steps.append(WheelStep(wheel))
    if spec.env is not None:
        steps.append(EnvStep(spec, _ids(*env_needs(spec))))
    for build in spec.builds.values():
        steps.append(build_step(spec, build))
    if spec.dirs:
        steps.append(DirsStep(spec.dirs, _ids(*(containing_repo(spec, d) for d in spec.dirs))))
    if spec.env is not None:  # last: the finished env, with every build installed
        steps.append(SmokeStep(spec, _ids("env", *(f"build:{b}" for b in spec.builds), "dirs" if spec.dirs else None)))
    return steps


def env_needs(spec: Any) -> list[Optional[str]]:
    """What the target env consumes, and nothing else: the interpreter, the repos it installs or reads
    requirements from, what changes those repos (their patches, overlays and copies into them), its wheels,
    and the repo its venv lives in. A patch on decord is not among them: toggling it rebuilds decord only."""
    env = spec.env
    repos = [n for n in dict.fromkeys([env.project, *env.editable, *(r for r, _ in env.requirements)]) if n]
    ids = {f"repo:{n}" for n in repos}
    needs: list[Optional[str]] = ["python", *(f"repo:{n}" for n in repos)]
    needs += [f"patch:{p.name}" for p in spec.patches.values() if p.repo in repos]
    needs += [f"overlay:{o.name}" for o in spec.overlays.values() if o.to_repo in repos]
    needs += [f"copy:{c.name}" for c in spec.copies.values() if containing_repo(spec, c.to) in ids]
    needs += [f"wheel:{w}" for w in env.wheels]
    return [*needs, containing_repo(spec, env.venv)]


def build_step(spec: Any, build: Any) -> Step:
    """After the target env (torch, setuptools) and the repo with all its patches."""
    patches = tuple(f"patch:{p.name}" for p in spec.patches.values() if p.repo == build.repo)
    repo = f"repo:{build.repo}" if build.repo in spec.repos else None
    return BuildStep(build, spec, _ids("env" if spec.env else None, repo, *patches), patches=patches)


def platform_problems(spec: Any, arch: str, glibc: Optional[str],
                      requires: Optional[dict[str, list[str]]] = None) -> list[str]:
    """Why the spec cannot make its target env on this platform ([] when it can).

    `requires` holds the Requires-Dist lines of the spec's wheels (by wheel name) where they are known:
    a requirement on a local version (torch==2.1.0+cpu) exists on no default index, so the spec must take
    that package from another index here (env.sources)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    problems = [f"{w.name} has no wheel for {arch} (it has: {', '.join(sorted(w.files)) or 'none'})"
                for w in spec.wheels.values() if arch not in w.files]
    problems += [f"builds.{b.name} takes a prebuilt wheel, and there is none for {arch}"
                 for b in spec.builds.values() if choose_strategy(b, arch, glibc) == "wheel"
                 and arch not in b.prebuilt.files]
    routed = {canonicalize_name(s.package) for s in (spec.env.sources if spec.env else ())
              if not s.arch or arch in s.arch}
    for wheel, lines in (requires or {}).items():
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            local = [s.version for s in req.specifier if s.operator in ("==", "===") and _is_local(s.version)]
            if local and canonicalize_name(req.name) not in routed and _applies(req, arch):
                problems.append(f"the {wheel} wheel for {arch} requires {req.name}=={local[0]}, a local version no "
                                f"default index has: pin {req.name} to the index that has it (env.sources."
                                f"{req.name}: {{index: NAME, arch: [{arch}]}})")
    return problems


def _is_local(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).local is not None
    except InvalidVersion:
        return False


def _applies(req: Any, arch: str) -> bool:
    return req.marker is None or req.marker.evaluate({"platform_machine": arch, "sys_platform": "linux",
                                                       "extra": ""})
