"""`invoke lock`: the `lock` step, run by the bootstrap engine after the sources it reads.

It depends on every source step (python, repos, copies, patches, overlays, wheels), so a fresh root is
brought to the spec first, exactly as bootstrap would. It then fetches the spec's wheels for every locked
architecture, resolves the target env for all of them at once (`uv lock` on the same generated project the
env step installs from, in `.npuenv/lock-target/`) and writes `<spec>.lock` and `<spec>.uv.lock` beside the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Optional

from . import lockfile
from .commands import logged_text, run
from .errors import CommandFailed, LockFileError, NpuenvError, UsageError
from .steps.base import OK, Checked, Context, Step, drifted, missing

SOURCE_KINDS = ("python", "repo", "copy", "patch", "overlay", "wheel")
ARCHES = ("aarch64", "x86_64")


@dataclass(frozen=True)
class LockRequest:
    arches: tuple[str, ...] = ARCHES
    upgrade: bool = False  # resolve afresh instead of starting from the lock there is


def lock_step(spec: Any, steps: list[Step], request: LockRequest) -> "LockStep":
    if spec.env is None:
        raise UsageError(f"the spec {spec.name} has no env: section, so there is no target env to lock",
                          hint="lock a spec that installs a target env")
    missing_files = [f"wheels.{w}.files.{arch}" for w in spec.env.wheels for arch in request.arches
                     if arch not in spec.wheels[w].files]
    if missing_files:
        raise UsageError(f"the spec {spec.name} has no {', '.join(missing_files)}: it cannot be locked for "
                          f"{', '.join(request.arches)}",
                          hint="add those files to the spec, or lock fewer architectures (--arch)")
    return LockStep(spec, request, tuple(s.id for s in steps if s.kind in SOURCE_KINDS))


class LockStep(Step):
    kind = "lock"
    version = 1

    def __init__(self, spec: Any, request: LockRequest, deps: tuple[str, ...]) -> None:
        super().__init__("", deps)
        self.spec, self.request = spec, request

    def describe(self, ctx: Context) -> str:
        json_path, _uv = lockfile.paths(self.spec.file)
        return f"{json_path} for {', '.join(self.request.arches)}"

    def fingerprint(self, ctx: Context) -> Any:
        return {"content": lockfile.content_sha256(lockfile.locked_content(self.spec)),
                "arches": list(self.request.arches)}

    def check(self, ctx: Context) -> Checked:
        try:
            found = lockfile.read(self.spec.file)
        except LockFileError as exc:
            return drifted(exc.message)
        if found is None:
            return missing("no lock yet")
        changes = found.changes(self.spec)
        if changes:
            return drifted(f"the spec changed: {changes[0]}" + (f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""))
        if set(self.request.arches) - set(found.arches):
            return missing(f"the lock covers {', '.join(found.arches)} only")
        return OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        from .steps.env import EnvStep

        self._fetch_wheels(ctx, log)
        env = EnvStep(self.spec)
        project = ctx.home / "lock-target"  # beside target/: the same relative paths to the repos
        env.write_project(ctx, project, self.request.arches, log)
        self._seed(ctx, env, project / "uv.lock", log)
        ctx.status(self.id, f"resolving the target env for {', '.join(self.request.arches)}")
        command = ["lock", *(["--upgrade"] if self.request.upgrade else [])]
        try:
            run([ctx.uv, *command, "--project", str(project), "--python", _interpreter(ctx, self.spec)],
                env=env.uv_env(ctx), log=log)
        except CommandFailed as exc:
            from .steps.env import uv_failure_hint

            exc.hint = uv_failure_hint(logged_text(log))
            raise
        text = (project / "uv.lock").read_text(encoding="utf-8")
        unhashed = without_hashes(text)
        if unhashed:
            raise NpuenvError(f"the index gave no sha256 for {', '.join(unhashed)}: a lock without hashes proves "
                              "nothing", hint="use an index that publishes hashes (PEP 503 #sha256=, as PyPI does)")
        canonical = lockfile.rewrite_urls(text, lockfile.unmirror(ctx.mirrors.rules))
        written = lockfile.write(self.spec.file, facts(ctx, self.spec, self.request.arches), canonical)
        packages = len(re.findall(r"(?m)^\[\[package\]\]", canonical))
        return {"lock": str(written.path), "uv_sha256": written.uv_sha256, "arches": list(written.arches),
                "note": f"{packages} packages for {', '.join(written.arches)} in {written.path.name}"}

    def _fetch_wheels(self, ctx: Context, log: IO[str]) -> None:
        from .steps.wheel import fetch_pinned

        for name in self.spec.env.wheels:
            wheel = self.spec.wheels[name]
            for arch in self.request.arches:
                fetch_pinned(ctx, self.id, wheel, wheel.files[arch], log)

    def _seed(self, ctx: Context, env: Any, target: Path, log: IO[str]) -> None:
        """Start from the spec's lock there is, else from what the workspace resolved last, so versions move
        only where the spec moved (uv keeps a lock's versions that still satisfy the requirements)."""
        from .atomic import write_atomic
        from .confine import remove

        if self.request.upgrade:
            remove(target, ctx.root)
            return
        try:
            found = lockfile.read(self.spec.file)
        except LockFileError as exc:
            log.write(f"not starting from the lock there is: {exc.message}\n")
            found = None
        if found is not None:
            write_atomic(target, lockfile.rewrite_urls(found.uv_lock, ctx.mirrors.rewrite))
            log.write(f"starting from {found.path}\n")
            return
        resolved = env.project_dir(ctx) / "uv.lock"
        if resolved.is_file() and not target.exists():
            write_atomic(target, resolved.read_text(encoding="utf-8"))
            log.write(f"starting from what this workspace resolved: {resolved}\n")


def _interpreter(ctx: Context, spec: Any) -> str:
    return ctx.state.resolved("python").get("interpreter") or f"python{spec.python}"


_BLOCK = re.compile(r"(?m)^\[\[package\]\]\s*$")


def without_hashes(text: str) -> list[str]:
    """name==version of every package from an index whose sdist or a wheel has no sha256 in a uv lock."""
    found = []
    for block in _BLOCK.split(text)[1:]:
        if not re.search(r"(?m)^source = \{ registry = ", block):
            continue
        files = re.findall(r"\{ url = \"[^\"]+\"[^}]*\}", block)
        if not files or any('hash = "sha256:' not in f for f in files):
            name = re.search(r'(?m)^name = "([^"]+)"', block)
            version = re.search(r'(?m)^version = "([^"]+)"', block)
            found.append(f"{name.group(1) if name else '?'}=={version.group(1) if version else '?'}")
    return found


# --- what the lock records besides the spec -----------------------------------------------------------


def facts(ctx: Context, spec: Any, arches: tuple[str, ...]) -> dict[str, Any]:
    from .digest import sha256_file

    content = lockfile.locked_content(spec)
    return {
        "spec": {"name": spec.name, "file": spec.file.name, "sha256": lockfile.content_sha256(content)},
        "python": ctx.state.resolved("python").get("version"),
        "uv": {"version": _uv_version(ctx), "arches": list(arches), "index": spec.index},
        "repos": {name: _repo(ctx, repo) for name, repo in sorted(spec.repos.items())},
        "patches": {name: {"repo": p.repo, "sha256": sha256_file(p.file)} for name, p in sorted(spec.patches.items())},
        "overlays": {name: _overlay(ctx, spec, o) for name, o in sorted(spec.overlays.items())},
        "copies": {name: {"repo": c.repo, "path": c.path, "tree": _tree(ctx, spec.repos[c.repo], c.path)}
                   for name, c in sorted(spec.copies.items())},
        "wheels": {name: {arch: {"filename": f.filename, "sha256": f.sha256} for arch, f in sorted(w.files.items())}
                   for name, w in sorted(spec.wheels.items())},
        "builds": _builds(ctx, spec),
        "models": _models(ctx, spec),
        "seen_on": seen_on(ctx),
        "content": content,
    }


def _models(ctx: Context, spec: Any) -> dict[str, Any]:
    """Each model's resolved revision and its files' sha256 (the hub is asked; nothing is downloaded but
    the small files that have no sha256 of the hub's)."""
    from .models.catalog import models_of
    from .models.hubapi import locked_entry
    from .models.session import hub_endpoint

    models = models_of(spec)
    if not models:
        return {}
    endpoint = hub_endpoint(ctx.mirrors.rewrite, ctx.env)
    token = ctx.env.get("HF_TOKEN", "")
    return {name: locked_entry(endpoint, m.hub, m.wanted, ctx.ca_bundle, token) for name, m in sorted(models.items())}


def _checkout(ctx: Context, repo: Any) -> Optional[Path]:
    path = ctx.path(repo.path)
    return path if (path / ".git").exists() else None


def _git(ctx: Context, path: Path, *args: str) -> str:
    return run(["git", "-C", str(path), *args], env=ctx.env).stdout


def _repo(ctx: Context, repo: Any) -> dict[str, Any]:
    """URL and commit; the commits of its submodules as the pinned tree names them (gitlinks), where the
    repo is checked out here (a repo this machine does not clone, such as decord where its wheel is used,
    has `submodules: null`)."""
    path = _checkout(ctx, repo)
    submodules = None
    if path is not None:
        listing = _git(ctx, path, "ls-tree", "-r", "-z", repo.commit)
        submodules = {}
        for entry in filter(None, listing.split("\0")):
            meta, name = entry.split("\t", 1)
            mode, kind, sha = meta.split()
            if mode == "160000":
                submodules[name] = sha
    return {"url": repo.url, "commit": repo.commit, "path": repo.path, "submodules": submodules}


def _tree(ctx: Context, repo: Any, path: str) -> Optional[str]:
    checkout = _checkout(ctx, repo)
    return _git(ctx, checkout, "rev-parse", f"{repo.commit}:{path}").strip() if checkout else None


def _overlay(ctx: Context, spec: Any, overlay: Any) -> dict[str, Any]:
    repo = spec.repos[overlay.from_repo]
    checkout = _checkout(ctx, repo)
    blob = _git(ctx, checkout, "rev-parse", f"{repo.commit}:{overlay.from_path}").strip() if checkout else None
    return {"from": f"{overlay.from_repo}:{overlay.from_path}", "to": f"{overlay.to_repo}:{overlay.to_path}",
            "blob": blob}


def _builds(ctx: Context, spec: Any) -> dict[str, Any]:
    """The wheelhouse's built wheels of the spec's builds: cache key, platform inputs and sha256."""
    from .digest import sha256_file
    from .wheelcache import WheelCache

    out: dict[str, Any] = {}
    for entry in WheelCache(ctx.wheels_dir).entries():
        if entry.build in spec.builds:
            out.setdefault(entry.build, {})[entry.key] = {
                "wheel": entry.wheel.name, "sha256": sha256_file(entry.wheel),
                **{k: entry.inputs.get(k) for k in ("commit", "platform", "python", "glibc", "versions")}}
    return out


def seen_on(ctx: Context) -> dict[str, Any]:
    """What the lock was made on: observed, not pinned."""
    from .doctor.cann import find_cann, parse_driver_version
    from .doctor.context import DEFAULT_DRIVER_ROOT, DRIVER_VARIABLE

    machine = ctx.machine
    install = find_cann(machine.cann_root, machine.arch)
    driver_info = Path(ctx.env.get(DRIVER_VARIABLE) or DEFAULT_DRIVER_ROOT) / "version.info"
    driver = parse_driver_version(driver_info.read_text(errors="replace")) if driver_info.is_file() else None
    return {"arch": machine.arch, "glibc": machine.glibc, "os": machine.os_release.get("PRETTY_NAME"),
            "cann": install.version if install else None, "driver": driver}


def _uv_version(ctx: Context) -> str:
    return run([ctx.uv, "--version"], env=ctx.env).stdout.strip()
