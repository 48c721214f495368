"""env — the target env: a uv project that npuenv writes, synced into MindSpeed-MM's .venv.

npuenv does not edit MindSpeed-MM's pyproject.toml (that would dirty the pinned checkout). It writes its
own small project under .npuenv/target/ that depends on MindSpeed-MM and MindSpeed (editable path
sources, so no workspace membership is inferred), the spec's packages, the requirements files the spec
names, and the wheels from the wheelhouse; `uv sync` locks it and fills the venv. The uv.lock it leaves
is the record of every resolved version. A package the spec pins to another index (`env.sources`: torch
from PyTorch's CPU index on x86_64) becomes a uv source on an explicit index, with a platform marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import json
import hashlib
import os
import re
from pathlib import Path
from typing import IO, Any, Optional

from ..errors import CommandFailed, NpuenvError
from ..digest import sha256_file
from ..commands import logged_text, run
from ..atomic import write_atomic
from ..pep503 import normalize
from ..confine import remove
from .base import (OK, Checked, Context, Kind, Step, containing_repo, drifted, fresh_tmp_sibling, missing,
                   step_ids)
from .. import schema as s


# --- the spec section -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """`env.sources.torch: {index: pytorch-cpu, arch: [x86_64]}`: take a package from a named index only."""

    package: str
    index: str
    arch: Tuple[str, ...] = ()  # empty: every architecture


@dataclass(frozen=True)
class EnvSpec:
    venv: str
    project: Optional[str]
    editable: Tuple[str, ...]
    requirements: Tuple[Tuple[str, str], ...]
    packages: Tuple[str, ...]
    wheels: Tuple[str, ...]
    sources: Tuple[Source, ...] = ()


def parse(ck: s.Checker, data: dict, parsed: dict) -> Optional[EnvSpec]:
    """env: {venv, project?, editable?, requirements?, packages?, wheels?, sources?}"""
    repos, wheels, indexes = parsed["repos"], parsed["wheels"], parsed["indexes"]
    if data.get("env") is None:
        return None
    repo = s.ref(repos, "repo", "repos")
    requirement = {"repo": (repo, True), "file": (s.relpath("the repo"), True)}
    schema = {"venv": (s.relpath("the workspace root"), True), "project": (repo, False),
              "editable": (s.list_of(repo), False),
              "requirements": (s.list_of(lambda c, kp, v: s.fields(c, kp, v, requirement)), False),
              "packages": (s.list_of(s.requirement), False),
              "wheels": (s.list_of(s.ref(wheels, "wheel", "wheels")), False),
              "sources": (lambda c, kp, v: _sources(c, kp, v, indexes), False)}
    f = s.fields(ck, ("env",), data["env"], schema)
    reqs = tuple((r.get("repo"), r.get("file")) for r in f.get("requirements", ()))
    return EnvSpec(f.get("venv"), f.get("project"), f.get("editable", ()), reqs, f.get("packages", ()),
                   f.get("wheels", ()), f.get("sources", ()))


def _sources(ck: s.Checker, kp: s.KeyPath, value: Any, indexes: Dict[str, str]) -> Tuple[Source, ...]:
    """`sources: {torch: {index: pytorch-cpu, arch: [x86_64]}}`: a package taken from a named index."""
    if not s.mapping(ck, kp, value):
        return ()
    schema = {"index": (s.ref(indexes, "index", "indexes"), True), "arch": (s.arches, False)}
    out = []
    for package, item in value.items():
        if s.is_tls_key(package):
            continue
        if s.package(ck, kp + (package,), package) is None:
            continue
        f = s.fields(ck, kp + (package,), item, schema)
        if f.get("index"):
            out.append(Source(package, f["index"], f.get("arch") or ()))
    return tuple(out)


# --- the step -----------------------------------------------------------------------------------------


# index settings from the box would silently change what gets installed: the spec names the index
FOREIGN_INDEX_VARS = ("UV_INDEX", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS")
# the tool env's own virtualenv, when npuenv runs under `uv run`, is not the target
FOREIGN_VARS = (*FOREIGN_INDEX_VARS, "VIRTUAL_ENV")


def requirement_lines(text: str, source: str) -> list[str]:
    """Requirement strings from a requirements.txt; options (-r, -e, --index-url) are refused."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise NpuenvError(f"{source}:{number}: option lines are not supported: {line}",
                              hint="list the requirement in env.packages of the spec instead")
        lines.append(line)
    return lines


def locked_versions(lock_text: str) -> dict[str, str]:
    """name -> version of every package a uv.lock installs (the generated project itself excluded)."""
    found = {}
    for block in re.split(r"(?m)^\[\[package\]\]\s*$", lock_text)[1:]:
        name = re.search(r'(?m)^name = "([^"]+)"', block)
        version = re.search(r'(?m)^version = "([^"]+)"', block)
        if name and version and not re.search(r"(?m)^source = \{ virtual =", block):
            found[normalize(name.group(1))] = version.group(1)
    return found


def installed_versions(venv: Path) -> dict[str, str]:
    """name -> version of every distribution in a venv, from its .dist-info folder names."""
    found = {}
    for site in venv.glob("lib/python3*/site-packages"):
        for entry in os.scandir(site):
            if entry.name.endswith(".dist-info") and "-" in entry.name:
                name, version = entry.name[: -len(".dist-info")].rsplit("-", 1)
                found[normalize(name)] = version
    return found


def installed_records(venv: Path) -> dict[str, str]:
    """name -> sha256 of its RECORD (every installed file with its hash): another build of the same version,
    or a reinstall from elsewhere, changes it."""
    found = {}
    for site in venv.glob("lib/python3*/site-packages"):
        for entry in os.scandir(site):
            record = Path(entry.path) / "RECORD"
            if entry.name.endswith(".dist-info") and "-" in entry.name and record.is_file():
                found[normalize(entry.name[: -len(".dist-info")].rsplit("-", 1)[0])] = sha256_file(record)
    return found


# RECORD lines that depend on where the venv is rather than on what was installed: scripts outside
# site-packages (their shebang names the venv), the installer's own files (uv_cache.json: uv's timestamps of
# an editable source), editable installs' hooks
_PLACE_BOUND = re.compile(r"^(\.\./|[^/,]*\.dist-info/(direct_url\.json|uv_cache\.json|INSTALLER|REQUESTED|RECORD),|[^/,]*\.pth,|__editable__)")


def build_records(venv: Path) -> dict[str, str]:
    """name -> sha256 of its RECORD without the lines that depend on the venv's location: the same wheel
    installed into two workspaces (two nodes) gives the same digest; another build does not."""
    found = {}
    for site in venv.glob("lib/python3*/site-packages"):
        for entry in os.scandir(site):
            record = Path(entry.path) / "RECORD"
            if entry.name.endswith(".dist-info") and "-" in entry.name and record.is_file():
                lines = [line for line in record.read_text(errors="replace").splitlines()
                         if line and not _PLACE_BOUND.match(line)]
                digest = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
                found[normalize(entry.name[: -len(".dist-info")].rsplit("-", 1)[0])] = digest
    return found


def lock_differences(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """'name missing' or 'name X, locked Y' for each locked package the venv does not have as locked."""
    differs = []
    for name, version in sorted(locked.items()):
        have = installed.get(name)
        if have is None:
            differs.append(f"{name} missing")
        elif have != version and not _same_version(have, version):
            differs.append(f"{name} {have}, locked {version}")
    return differs


def _same_version(a: str, b: str) -> bool:
    """Equal as PEP 440 versions (1.0 and 1.0.0) when the texts differ."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def uv_failure_hint(output: str) -> str:
    """What to do, from what uv said: a failing index, a network that broke, or a resolution that failed."""
    status = re.search(r"\b(5\d\d) [A-Z][A-Za-z ]+\)", output) or re.search(r"status code:? (5\d\d)", output)
    if status:
        return (f"the package index answered HTTP {status.group(1)}: it is failing or overloaded. Run again later "
                "(finished steps are kept), or use a mirror of the index (spec mirrors:, NPUENV_MIRRORS)")
    network = ("error sending request", "connection closed", "Connection reset", "error decoding response body",
               "operation timed out", "dns error", "tcp connect error", "request or response body error")
    if any(needle in output for needle in network):
        return ("the connection to the package index broke or could not be made: check the network (or the "
                "mirror) and run again")
    if "No solution found" in output or "unsatisfiable" in output:
        return ("the resolver's message above says which requirement cannot be met: usually a package or "
                "version missing from the index (or from PyTorch's CPU index, for torch on x86_64)")
    return "read uv's message in the step's log"


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def toml_list(values: list[str]) -> str:
    return "[\n" + "".join(f"    {toml_str(v)},\n" for v in values) + "]"


def relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


class EnvStep(Step):
    kind = "env"
    version = 1

    def __init__(self, spec: Any, deps: tuple[str, ...] = ()) -> None:
        super().__init__("", deps)
        self.spec = spec
        self.env_spec = spec.env

    def project_dir(self, ctx: Context) -> Path:
        return ctx.home / "target"

    def venv(self, ctx: Context) -> Path:
        return ctx.path(self.env_spec.venv)

    def describe(self, ctx: Context) -> str:
        followed = f" (as {ctx.lock.path.name} locked it)" if ctx.lock else ""
        return f"{self.env_spec.venv}{followed}: " + ", ".join(
            [*(n for n in [self.env_spec.project, *self.env_spec.editable] if n), *self.env_spec.packages])

    def fingerprint(self, ctx: Context) -> Any:
        python = ctx.state.resolved("python")
        return {"env": ctx.spec.fragment("env"), "python": self.spec.python, "index": self.spec.index,
                "indexes": self.spec.indexes, "interpreter": [python.get("interpreter"), python.get("version")],
                "arch": ctx.arch, "lock": ctx.lock.uv_sha256 if ctx.lock else None}

    def uv_env(self, ctx: Context) -> dict[str, str]:
        env = {k: v for k, v in ctx.env.items() if k not in FOREIGN_VARS}
        env["UV_PROJECT_ENVIRONMENT"] = str(self.venv(ctx))
        return env

    def uv(self, ctx: Context, *args: str) -> list[str]:
        interpreter = ctx.state.resolved("python").get("interpreter") or f"python{self.spec.python}"
        # from a bundle: no index at all; the editables' build backends (setuptools) come from its wheels
        offline = ["--offline", "--find-links", str(ctx.offline_wheels)] if ctx.offline_wheels else []
        return [ctx.uv, *args, *offline, "--project", str(self.project_dir(ctx)), "--python", interpreter]

    def arches(self, ctx: Context) -> tuple[str, ...]:
        """The platforms the project resolves for: every one the lock covers, else this one."""
        return ctx.lock.arches if ctx.lock else (ctx.arch,)

    def locked_text(self, ctx: Context) -> str:
        """The spec's lock as this box installs it: its URLs through this box's mirrors."""
        from ..lockfile import rewrite_urls

        return rewrite_urls(ctx.lock.uv_lock, ctx.mirrors.rewrite)

    def check(self, ctx: Context) -> Checked:
        project = self.project_dir(ctx)
        lock = project / "uv.lock"
        if not (self.venv(ctx) / "bin" / "python").exists() or not lock.exists():
            return missing()
        if ctx.state.resolved(self.id).get("lock_sha256") not in (None, sha256_file(lock)):
            return drifted("uv.lock was changed outside npuenv")
        if (project / "pyproject.toml").read_text(encoding="utf-8") != self.pyproject(ctx, project):
            return drifted("the target env's requirements changed")
        if ctx.lock and lock.read_text(encoding="utf-8") != self.locked_text(ctx):
            return drifted(f"the target env does not follow {ctx.lock.path.name}")
        # what `uv sync --frozen --inexact --check` answers, from file reads instead of a subprocess
        recorded = ctx.state.resolved(self.id).get("packages") or locked_versions(lock.read_text(encoding="utf-8"))
        differs = lock_differences({normalize(k): v for k, v in recorded.items()}, installed_versions(self.venv(ctx)))
        if differs:
            return drifted(f"the target env differs from its lock: {', '.join(differs[:3])}"
                           + (f" (+{len(differs) - 3} more)" if len(differs) > 3 else ""))
        return OK

    def write_project(self, ctx: Context, project: Path, arches: tuple[str, ...], log: IO[str]) -> None:
        """pyproject.toml, and the spec's wheels for `arches` (those in the wheelhouse) in project/wheels/:
        the project names them by a path that does not depend on where the wheelhouse is."""
        link_wheels(ctx, self.env_spec.wheels, arches, project / "wheels")
        text = self.pyproject(ctx, project, arches)
        path = project / "pyproject.toml"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)
            log.write(f"wrote {path}\n{text}\n")

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        project = self.project_dir(ctx)
        self.write_project(ctx, project, self.arches(ctx), log)
        lock = project / "uv.lock"
        # inexact: wheels that build steps install later (apex, decord) stay in the env
        command = ["sync", "--inexact"]
        if ctx.lock:  # exactly the lock: nothing resolved, every file checked against its sha256
            write_atomic(lock, self.locked_text(ctx))
            log.write(f"following {ctx.lock.path}: uv sync --frozen\n")
            command.append("--frozen")
        try:
            run(self.uv(ctx, *command), env=self.uv_env(ctx), log=log)
        except CommandFailed as exc:
            exc.hint = uv_failure_hint(logged_text(log))
            raise
        # what the lock installed here: not what else is in the venv (`--inexact` keeps what others added)
        names = set(locked_versions(lock.read_text(encoding="utf-8")))
        packages = {normalize(n): v for n, v in self._installed(ctx).items() if normalize(n) in names}
        records = installed_records(self.venv(ctx))
        return {"venv": str(self.venv(ctx)), "lock": str(lock), "lock_sha256": sha256_file(lock),
                "followed": str(ctx.lock.path) if ctx.lock else None,
                "locked_sha256": ctx.lock.uv_sha256 if ctx.lock else None, "packages": packages,
                "records": {name: records[name] for name in packages if name in records}}

    def _installed(self, ctx: Context) -> dict[str, str]:
        proc = run([ctx.uv, "pip", "list", "--format", "json", "--python", str(self.venv(ctx) / "bin" / "python")],
                   env=self.uv_env(ctx))
        return {p["name"]: p["version"] for p in json.loads(proc.stdout)}

    def pyproject(self, ctx: Context, project: Path, arches: Optional[tuple[str, ...]] = None) -> str:
        """The target env's project file, generated from the spec (stable text: same spec, same file)."""
        env, spec = self.env_spec, self.spec
        arches = arches or self.arches(ctx)
        local = [n for n in [env.project, *env.editable] if n]
        deps = list(local)
        for repo_name, filename in env.requirements:
            source = ctx.path(spec.repos[repo_name].path) / filename
            if not source.is_file():
                raise NpuenvError(f"{filename} is missing in {repo_name} ({source})",
                                  hint=f"check env.requirements in the spec against {repo_name}'s files")
            deps += requirement_lines(source.read_text(encoding="utf-8"), str(source))
        deps += list(env.packages)
        deps = list(dict.fromkeys(deps))  # requirements.txt and the spec may name the same package
        sources = [f"{toml_str(n)} = {{ path = {toml_str(relative(ctx.path(spec.repos[n].path), project))}, "
                   f"editable = true }}" for n in local]
        for name in env.wheels:
            wheel = spec.wheels[name]
            deps.append(f"{wheel.package}=={wheel.version}")
            entries = [f"{{ path = {toml_str('wheels/' + wheel.files[arch].filename)}, "
                       f"marker = {toml_str(_arch_marker(arch))} }}" for arch in arches if arch in wheel.files]
            sources.append(f"{toml_str(wheel.package)} = [{', '.join(entries)}]")
        indexes, pinned = self._sources()
        sources += pinned
        markers = [f"sys_platform == 'linux' and {_arch_marker(arch)}" for arch in arches]
        return "\n".join([
            "# Generated by npuenv from the spec " + spec.name + ". Do not edit: edit the spec.",
            "[project]",
            'name = "npuenv-target-env"',
            'version = "0"',
            f"requires-python = {toml_str('==' + spec.python + '.*')}",
            f"dependencies = {toml_list(deps)}",
            "",
            "[tool.uv]",
            "package = false",
            f"environments = [{', '.join(toml_str(m) for m in markers)}]",
            "",
            "[tool.uv.sources]",
            *sources,
            "",
            "[[tool.uv.index]]",
            'name = "spec"',
            f"url = {toml_str(ctx.mirrors.rewrite(spec.index))}",
            "default = true",
            "",
            *(line for name in indexes for line in (
                "[[tool.uv.index]]", f"name = {toml_str(name)}",
                f"url = {toml_str(ctx.mirrors.rewrite(spec.indexes[name]))}", "explicit = true", "")),
        ])

    def _sources(self) -> tuple[list[str], list[str]]:
        """The indexes env.sources use, and a uv source line per package: only from that index, and only on
        the architectures named (a platform_machine marker)."""
        used, lines = [], []
        for source in self.env_spec.sources:
            used.append(source.index)
            entry = f"index = {toml_str(source.index)}"
            if source.arch:
                marker = " or ".join(f"platform_machine == '{arch}'" for arch in source.arch)
                entry += f", marker = {toml_str(marker)}"
            lines.append(f"{toml_str(source.package)} = [{{ {entry} }}]")
        return list(dict.fromkeys(used)), lines


def _arch_marker(arch: str) -> str:
    return f"platform_machine == '{arch}'"


def link_wheels(ctx: Context, names: tuple[str, ...], arches: tuple[str, ...], folder: Path) -> None:
    """The spec's wheels for `arches` that the wheelhouse holds, into `folder` (hard links where the
    filesystem allows, else copies); nothing else stays there."""
    import shutil

    wanted = {}
    for name in names:
        wheel = ctx.spec.wheels[name]
        for arch in arches:
            entry = wheel.files.get(arch)
            if entry and (ctx.wheels_dir / entry.filename).is_file():
                wanted[entry.filename] = (ctx.wheels_dir / entry.filename, entry.sha256)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name not in wanted or sha256_file(old) != wanted[old.name][1]:
            remove(old, ctx.root)
    for filename, (source, _sha) in wanted.items():
        if not (folder / filename).exists():
            tmp = fresh_tmp_sibling(folder / filename, ctx.root)
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, folder / filename)


def compile(spec: Any, machine: Any) -> list[Step]:
    return [EnvStep(spec, step_ids(*needs(spec)))] if spec.env is not None else []


def needs(spec: Any) -> list[Optional[str]]:
    """What the target env consumes, and nothing else: the interpreter, the repos it installs or reads
    requirements from, what changes those repos (their patches, overlays and copies into them), its wheels,
    and the repo its venv lives in. A patch on decord is not among them: toggling it rebuilds decord only."""
    env = spec.env
    repos = _repos(spec)
    ids = {f"repo:{n}" for n in repos}
    found: list[Optional[str]] = ["python", *(f"repo:{n}" for n in repos)]
    found += [f"patch:{p.name}" for p in spec.patches.values() if p.repo in repos]
    found += [f"overlay:{o.name}" for o in spec.overlays.values() if o.to_repo in repos]
    found += [f"copy:{c.name}" for c in spec.copies.values() if containing_repo(spec, c.to) in ids]
    found += [f"wheel:{w}" for w in env.wheels]
    return [*found, containing_repo(spec, env.venv)]


def _repos(spec: Any) -> list[str]:
    env = spec.env
    return [n for n in dict.fromkeys([env.project, *env.editable, *(r for r, _ in env.requirements)]) if n]


def uses(spec: Any, machine: Any) -> set[str]:
    return set(_repos(spec)) if spec.env is not None else set()


def problems(spec: Any, machine: Any, requires: dict) -> list[str]:
    """A wheel's requirement on a local version (torch==2.1.0+cpu) exists on no default index, so the spec
    must take that package from another index here (env.sources). `requires` holds the Requires-Dist lines
    of the spec's wheels (by wheel name) where they are known."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    arch = machine.arch
    routed = {canonicalize_name(s.package) for s in (spec.env.sources if spec.env else ())
              if not s.arch or arch in s.arch}
    found = []
    for wheel, lines in requires.items():
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            local = [s.version for s in req.specifier if s.operator in ("==", "===") and _is_local(s.version)]
            if local and canonicalize_name(req.name) not in routed and _applies(req, arch):
                found.append(f"the {wheel} wheel for {arch} requires {req.name}=={local[0]}, a local version no "
                             f"default index has: pin {req.name} to the index that has it (env.sources."
                             f"{req.name}: {{index: NAME, arch: [{arch}]}})")
    return found


def _is_local(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).local is not None
    except InvalidVersion:
        return False


def _applies(req: Any, arch: str) -> bool:
    return req.marker is None or req.marker.evaluate({"platform_machine": arch, "sys_platform": "linux",
                                                       "extra": ""})


KIND = Kind("env", compile, section="env", parse=parse, uses=uses, problems=problems, needs_index=True)
