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
        env = spec.env
        needs = ["python"]
        needs += [f"repo:{n}" for n in [env.project, *env.editable, *(r for r, _ in env.requirements)] if n]
        needs += [f"patch:{p}" for p in spec.patches] + [f"overlay:{o}" for o in spec.overlays]
        needs += [f"copy:{c}" for c in spec.copies] + [f"wheel:{w}" for w in env.wheels]
        needs.append(containing_repo(spec, env.venv))
        steps.append(EnvStep(spec, _ids(*needs)))
    for build in spec.builds.values():
        steps.append(build_step(spec, build))
    if spec.dirs:
        steps.append(DirsStep(spec.dirs, _ids(*(containing_repo(spec, d) for d in spec.dirs))))
    if spec.env is not None:  # last: the finished env, with every build installed
        steps.append(SmokeStep(spec, _ids("env", *(f"build:{b}" for b in spec.builds), "dirs" if spec.dirs else None)))
    return steps


def build_step(spec: Any, build: Any) -> Step:
    """After the target env (torch, setuptools) and the repo with all its patches."""
    patches = tuple(f"patch:{p.name}" for p in spec.patches.values() if p.repo == build.repo)
    repo = f"repo:{build.repo}" if build.repo in spec.repos else None
    return BuildStep(build, spec, _ids("env" if spec.env else None, repo, *patches), patches=patches)

