"""build:<name> — a wheel built from a pinned repo by the spec's commands (or a pinned prebuilt wheel),
kept in the wheel cache under a content key, installed into the target env and verified there.

The strategy `auto` takes the prebuilt wheel when this platform has one (architecture and glibc),
else builds. A cache hit installs in seconds and runs no compiler: the toolchain is not even probed.
A built wheel that installers refuse (apex's `0.1-ascend`) is re-versioned before it is cached;
`--force` skips the cache. Everything run with the target interpreter has CANN sourced when CANN is
installed; where it is not, the spec's `cann_check` is recorded as not verified here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Tuple

import glob
import json
import os
import time
from pathlib import Path
from typing import IO, Any, Optional

from .. import cann, toolchain
from ..confine import remove
from ..data import TEST_VIDEO
from ..digest import sha256_file
from ..errors import BuildFailed, CommandFailed, NpuenvError
from ..commands import logged_text, run, run_streaming
from .base import OK, Checked, Context, Kind, Step, drifted, missing, patches_of, step_ids
from .wheel import Wheel, check_wheel_files, fetch_pinned, wheel_files
from .. import schema as s


# --- the spec section -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """A wheel built from a repo by the spec's commands (or taken prebuilt), cached and installed."""

    name: str
    package: str
    strategy: str  # source | wheel | auto
    repo: Optional[str]
    commands: Tuple[Tuple[str, ...], ...]
    wheels: Optional[str]  # glob, relative to the repo, of what the commands produce
    clean: Tuple[str, ...]  # folders in the repo the build makes and cannot make twice
    key: Tuple[str, ...]  # versions that enter the cache key: target-env packages or pkgconfig:<module>
    tools: Tuple[str, ...]
    pkgconfig: Tuple[str, ...]
    packages: Tuple[str, ...]  # requirements the target env must meet before building
    check: str  # Python run by the target interpreter after installing, everywhere
    prebuilt: Optional[Wheel] = None
    glibc: Optional[str] = None  # the prebuilt wheel's minimum glibc
    cann_check: str = ""  # Python that needs CANN (e.g. `import apex` imports torch_npu): run where CANN is
    version: Optional[str] = None  # the version a built wheel with an invalid one is given ("0.1+ascend")
    # (url, commit) of the repos the build's own scripts clone (apex's build.sh clones NVIDIA/apex): not
    # used online, where the scripts clone them through the mirrors; `invoke bundle` carries them
    fetches: Tuple[Tuple[str, str], ...] = ()


def _key_item(ck: s.Checker, kp: s.KeyPath, value: Any) -> Optional[str]:
    text = s.nonempty(ck, kp, value)
    if text is None:
        return None
    name = text.split(":", 1)[1] if text.startswith("pkgconfig:") else text
    if not s.PACKAGE_RE.match(name):
        ck.add(kp, f"{text!r}: name a target-env package (torch) or a pkg-config module (pkgconfig:libavcodec)")
        return None
    return text


PREBUILT = {"package": (s.package, True), "version": (s.version, True), "glibc": (s.version, False),
            "files": (lambda ck, kp, value: wheel_files(ck, kp, value), True)}


def _prebuilt(ck: s.Checker, kp: s.KeyPath, value: Any) -> Tuple[Optional[Wheel], Optional[str]]:
    f = s.fields(ck, kp, value, PREBUILT)
    wheel = Wheel(kp[-2], f.get("package"), f.get("version"), "index", f.get("files") or {})
    check_wheel_files(ck, kp, wheel)
    return wheel, f.get("glibc")


def _pkgconfig_module(ck: s.Checker, kp: s.KeyPath, value: Any) -> Optional[str]:
    """A pkg-config module, optionally with a version condition: libavcodec>=58,<61."""
    text = s.nonempty(ck, kp, value)
    if text is None:
        return None
    match = re.match(r"^([A-Za-z0-9_.+-]+?)\s*((?:[<>=!~].*)?)$", text)
    if not match:
        ck.add(kp, f"{text!r}: write a pkg-config module, optionally with a condition (libavcodec>=58,<61)")
        return None
    if match.group(2) and ck.pep:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(match.group(2))
        except InvalidSpecifier:
            ck.add(kp, f"{text!r}: {match.group(2)!r} is not a version condition such as '>=58,<61'")
            return None
    return text


def _requires(ck: s.Checker, kp: s.KeyPath, value: Any) -> Dict[str, Any]:
    schema = {"tools": (s.list_of(s.nonempty), False), "pkgconfig": (s.list_of(_pkgconfig_module), False),
              "packages": (s.list_of(s.requirement), False)}
    return s.fields(ck, kp, value, schema)


FETCH = {"url": (s.https, True), "commit": (s.commit, True)}


def parse(ck: s.Checker, data: dict, parsed: dict) -> Dict[str, Build]:
    """builds: {NAME: {package, strategy?, repo, commands, wheels, ... prebuilt?}}"""
    repos = parsed["repos"]
    schema = {"package": (s.package, True), "strategy": (s.choice("source", "wheel", "auto"), False),
              "repo": (s.ref(repos, "repo", "repos"), False), "commands": (s.list_of(s.command), False),
              "wheels": (s.relpath("the repo"), False), "clean": (s.list_of(s.relpath("the repo")), False),
              "key": (s.list_of(_key_item), False), "requires": (_requires, False), "check": (s.string, False),
              "cann_check": (s.string, False), "version": (s.version, False), "prebuilt": (_prebuilt, False),
              "fetches": (s.list_of(lambda c, kp, v: s.fields(c, kp, v, FETCH)), False)}
    out = {}
    for name, item in s.entries(ck, ("builds",), data.get("builds")):
        kp = ("builds", name)
        f = s.fields(ck, kp, item, schema)
        strategy = f.get("strategy") or "source"
        prebuilt, glibc = f.get("prebuilt") or (None, None)
        needs = {"source": ("repo", "commands", "wheels"), "wheel": ("prebuilt",),
                 "auto": ("repo", "commands", "wheels", "prebuilt")}.get(strategy, ())
        for key in needs:
            if isinstance(item, dict) and key not in item:
                ck.add(kp + (key,), f"missing (required with strategy {strategy!r})", at=kp)
        req = f.get("requires") or {}
        out[name] = Build(name, f.get("package"), strategy, f.get("repo"), tuple(f.get("commands") or ()),
                          f.get("wheels"), tuple(f.get("clean") or ()), tuple(f.get("key") or ()),
                          tuple(req.get("tools") or ()), tuple(req.get("pkgconfig") or ()),
                          tuple(req.get("packages") or ()), f.get("check") or "", prebuilt, glibc,
                          f.get("cann_check") or "", f.get("version"),
                          tuple((x.get("url"), x.get("commit")) for x in f.get("fetches") or ()))
    return out


# --- the step -----------------------------------------------------------------------------------------


def choose_strategy(build: Any, arch: str, glibc: Optional[str]) -> str:
    """source or wheel: `auto` takes the prebuilt wheel when this platform can install it."""
    if build.strategy != "auto":
        return build.strategy
    prebuilt = build.prebuilt
    if prebuilt is None or arch not in prebuilt.files:
        return "source"
    from packaging.version import Version

    if build.glibc and (glibc is None or Version(glibc) < Version(build.glibc)):
        return "source"
    return "wheel"


class BuildStep(Step):
    kind = "build"
    version = 1

    def __init__(self, build: Any, spec: Any, deps: tuple[str, ...] = (), patches: tuple[str, ...] = ()) -> None:
        super().__init__(build.name, deps)
        self.build = build
        self.spec = spec
        self.patch_ids = patches  # patch steps on the build's repo: their results enter the cache key

    # --- where things are ----------------------------------------------------------------------------

    def venv_python(self, ctx: Context) -> Path:
        return ctx.path(self.spec.env.venv) / "bin" / "python"

    def source_dir(self, ctx: Context) -> Path:
        return ctx.path(self.spec.repos[self.build.repo].path)

    def strategy(self, ctx: Context) -> str:
        return choose_strategy(self.build, ctx.arch, ctx.machine.glibc)

    def describe(self, ctx: Context) -> str:
        if self.strategy(ctx) == "wheel":
            entry = self.build.prebuilt.files[ctx.arch]
            return f"prebuilt {entry.filename} sha256 {entry.sha256}"
        repo = self.spec.repos[self.build.repo]
        return f"{self.build.package} from {repo.path} @ {repo.commit[:12]}, cached under a content key"

    # --- the three verbs -----------------------------------------------------------------------------

    def fingerprint(self, ctx: Context) -> Any:
        # CANN appearing (the same workspace on an NPU box) re-runs the check that needs it
        # `fetches` only tells `invoke bundle` what the script clones: it changes nothing built here
        build = {k: v for k, v in ctx.spec.fragment("builds", self.name).items() if k != "fetches"}
        return {"build": build, "strategy": self.strategy(ctx), "arch": ctx.arch,
                "cann": bool(self.build.cann_check) and ctx.machine.set_env is not None}

    def check(self, ctx: Context) -> Checked:
        recorded = ctx.state.resolved(self.id)
        dist_info = recorded.get("dist_info")
        if not dist_info:
            return missing()
        if not Path(dist_info).is_dir():
            return drifted(f"{self.build.package} is no longer installed in the target env")
        return OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        from packaging.utils import parse_wheel_filename

        if self.strategy(ctx) == "wheel":
            entry = self.build.prebuilt.files[ctx.arch]
            fetch_pinned(ctx, self.id, self.build.prebuilt, entry, log)
            wheel, facts = ctx.wheels_dir / entry.filename, {"strategy": "wheel", "sha256": entry.sha256}
            dist = parse_wheel_filename(wheel.name)[0]
            self._install(ctx, wheel, dist, log)
        else:
            # the cache entry's lock covers look-up, build, store and install: a second workspace on the same
            # wheelhouse waits, then installs what the first built; a forced rebuild never swaps the wheel
            # out from under an install
            with self._entry_lock(ctx, log):
                wheel, facts = self._from_source(ctx, log)
                dist = parse_wheel_filename(wheel.name)[0]
                self._install(ctx, wheel, dist, log)
        verified = self._verify(ctx, log)
        # the installed wheel's own hash (a forced rebuild keeps the key and path): what comes after sees a change
        facts.setdefault("sha256", sha256_file(wheel))
        return {**facts, **verified, "wheel": str(wheel), "dist": dist, "dist_info": self._dist_info(ctx, dist)}

    # --- building ------------------------------------------------------------------------------------

    def key_inputs(self, ctx: Context) -> dict[str, Any]:
        """Everything that decides the wheel's content: source, patches, interpreter, platform, versions."""
        repo = self.spec.repos[self.build.repo]
        python = ctx.state.resolved("python").get("version", self.spec.python)
        patches = {pid: ctx.state.resolved(pid).get("sha256") for pid in self.patch_ids
                   if ctx.state.resolved(pid).get("applied", True)}
        return {"build": self.build.name, "commit": repo.commit, "submodules": repo.submodules,
                "patches": patches, "python": "cp" + "".join(python.split(".")[:2]),
                "platform": f"linux_{ctx.arch}", "glibc": ctx.machine.glibc,
                "versions": {k: self._version_of(ctx, k) for k in self.build.key},
                "commands": [list(c) for c in self.build.commands], "clean": list(self.build.clean),
                "version": self.build.version}

    def _version_of(self, ctx: Context, item: str) -> Optional[str]:
        from packaging.utils import canonicalize_name

        if item.startswith("pkgconfig:"):
            return toolchain.pkgconfig_version(item.split(":", 1)[1], ctx.env)
        packages = {canonicalize_name(k): v for k, v in ctx.state.resolved("env").get("packages", {}).items()}
        return packages.get(canonicalize_name(item))

    def _entry_lock(self, ctx: Context, log: IO[str]):
        from ..flock import entry_lock
        from ..wheelcache import WheelCache, cache_key

        key = cache_key(self.key_inputs(ctx))

        def waiting() -> None:
            log.write(f"another npuenv is building {self.build.name} (key {key}): waiting for it\n")
            ctx.status(self.id, f"waiting for another npuenv building {self.build.name}")

        return entry_lock(WheelCache(ctx.wheels_dir).lock_path(self.build.name, key), on_wait=waiting)

    def _from_source(self, ctx: Context, log: IO[str]) -> tuple[Path, dict[str, Any]]:
        from ..wheelcache import WheelCache, cache_key

        inputs = self.key_inputs(ctx)
        key = cache_key(inputs)
        cache = WheelCache(ctx.wheels_dir)
        entry = None if self.id in ctx.forced else cache.get(self.build.name, key)
        if entry is not None:
            log.write(f"cache hit: {entry.wheel} (key {key}); nothing to compile\n")
            return entry.wheel, {"strategy": "source", "key": key, "cached": True, "inputs": inputs}
        why = "forced: rebuilding" if self.id in ctx.forced else "cache miss"
        log.write(f"{why} (key {key}): building\n{json.dumps(inputs, indent=2)}\n")
        self._preflight(ctx)
        built = self._installable(ctx, self._compile(ctx, log), log)
        entry = cache.put(self.build.name, key, built, inputs)
        log.write(f"cached {entry.wheel}\n")
        return entry.wheel, {"strategy": "source", "key": key, "cached": False, "inputs": inputs}

    def _installable(self, ctx: Context, built: Path, log: IO[str]) -> Path:
        """The built wheel, re-versioned beside it when its own version is invalid (nothing invalid is cached)."""
        from ..reversion import installable

        wheel, note = installable(built, self.build.version, built.parent / ".npuenv-reversioned",
                                  f"builds.{self.build.name}")
        if note:
            log.write(note + "\n")
        return wheel

    def _preflight(self, ctx: Context) -> None:
        """Fail in a second, with the install command for this distribution, not minutes into a build."""
        found = toolchain.probe(self.build.tools, self.build.pkgconfig, self._build_env(ctx))
        versions = toolchain.version_problems(self.build.pkgconfig, found)
        packages = self._unmet_packages(ctx)
        problems = [f"{m} is missing" for m in found.missing] + versions + packages
        if not problems:
            return
        command = ctx.machine.install_command(found.missing)
        if found.missing:
            hint = f"install them: {' '.join(command)}" if command else "install the missing tools and headers"
            if self.build.prebuilt is not None:
                hint += (f"; or take the prebuilt {self.build.prebuilt.package} wheel instead: "
                         f"`strategy: wheel` under builds.{self.build.name} in your spec")
        elif versions:
            hint = (f"build against a version the spec allows (builds.{self.build.name}.requires.pkgconfig), "
                    "point PKG_CONFIG_PATH at one, or use a prebuilt wheel (strategy: wheel) where the spec has one")
        else:
            hint = "add the requirements to env.packages in the spec and run bootstrap again"
        raise NpuenvError(f"cannot build {self.build.name}: " + "; ".join(problems), hint=hint)

    def _unmet_packages(self, ctx: Context) -> list[str]:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name

        installed = {canonicalize_name(k): v for k, v in ctx.state.resolved("env").get("packages", {}).items()}
        problems = []
        for text in self.build.packages:
            req = Requirement(text)
            have = installed.get(canonicalize_name(req.name))
            if have is None:
                problems.append(f"{req.name} is not installed in the target env")
            elif req.specifier and not req.specifier.contains(have, prereleases=True):
                problems.append(f"{req.name} {have} in the target env does not satisfy {text}")
        return problems

    def _build_env(self, ctx: Context) -> dict[str, str]:
        """The target env first on PATH, so scripts that call `python3.10` get the target interpreter."""
        venv = self.venv_python(ctx).parent.parent
        env = dict(ctx.env, VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{ctx.env.get('PATH', '')}",
                   UV_DEFAULT_INDEX=ctx.mirrors.rewrite(self.spec.index))
        for name in ("UV_INDEX_URL", "UV_INDEX", "UV_EXTRA_INDEX_URL", "PYTHONHOME"):
            env.pop(name, None)
        return env

    def _argv(self, ctx: Context, command: tuple[str, ...]) -> list[str]:
        values = {"{python}": str(self.venv_python(ctx)), "{python_version}": self.spec.python,
                  "{jobs}": str(ctx.machine.cores), "{uv}": ctx.uv}
        out = []
        for arg in command:
            for token, value in values.items():
                arg = arg.replace(token, value)
            out.append(arg)
        return out

    def _compile(self, ctx: Context, log: IO[str]) -> Path:
        source = self.source_dir(ctx)
        for folder in self.build.clean:
            log.write(f"removing {folder}/ (made by an earlier build)\n")
            remove(source / folder, ctx.root)
        for old in glob.glob(str(source / self.build.wheels)):
            remove(Path(old), ctx.root)
        env, began = self._build_env(ctx), time.monotonic()

        def status(line: str) -> None:
            ctx.status(self.id, f"{time.monotonic() - began:5.0f}s  {line.strip()[:100]}")

        set_env = ctx.machine.set_env
        for command in self.build.commands:
            try:
                run_streaming(cann.sourced(self._argv(ctx, command), set_env), cwd=source, env=env, log=log,
                              on_line=status)
            except CommandFailed as exc:
                raise self._failure(exc, log) from None
        built = sorted(glob.glob(str(source / self.build.wheels)))
        if len(built) != 1:
            raise NpuenvError(f"{self.build.name}: expected one wheel matching {self.build.wheels}, found "
                              f"{len(built)}", hint=f"check builds.{self.build.name}.wheels in the spec")
        return Path(built[0])

    def _failure(self, exc: CommandFailed, log: IO[str]) -> BuildFailed:
        from .. import buildlog

        text = logged_text(log)
        lines = buildlog.error_lines(text)
        shown = "\n".join(f"  {line}" for line in lines)
        message = f"building {self.build.name} failed: {' '.join(exc.argv)} exited {exc.returncode}"
        return BuildFailed(message + (f"\nerrors:\n{shown}" if shown else ""),
                           hint=buildlog.known_cause(text) or "read the build log for the first error")

    # --- installing and verifying --------------------------------------------------------------------

    def _install(self, ctx: Context, wheel: Path, dist: str, log: IO[str]) -> None:
        env = {k: v for k, v in ctx.env.items() if k not in ("VIRTUAL_ENV", "UV_INDEX_URL", "UV_INDEX")}
        python = str(self.venv_python(ctx))
        rivals = self._rivals(ctx, dist)
        if rivals:  # decord and decord2 both install decord/: one at a time
            log.write(f"removing {', '.join(rivals)}: {dist} provides the same import\n")
            run([ctx.uv, "pip", "uninstall", "--python", python, *rivals], env=env, log=log)
        run([ctx.uv, "pip", "install", "--python", python, "--reinstall-package", dist,
             "--default-index", ctx.mirrors.rewrite(self.spec.index), str(wheel)],
            env=env, log=log, hint="the wheel's dependencies must come from the spec's index")

    def _rivals(self, ctx: Context, dist: str) -> list[str]:
        """The build's other distributions (source vs prebuilt) that are installed in the target env."""
        from packaging.utils import canonicalize_name

        names = {self.build.package, *([self.build.prebuilt.package] if self.build.prebuilt else [])}
        others = sorted({canonicalize_name(n) for n in names} - {canonicalize_name(dist)})
        if not others:
            return []
        code = ("import importlib.metadata as m, sys\n"
                "for name in sys.argv[1:]:\n"
                "    try: m.distribution(name); print(name)\n"
                "    except m.PackageNotFoundError: pass\n")
        proc = run([str(self.venv_python(ctx)), "-c", code, *others], env=ctx.env)
        return proc.stdout.split()

    def _target_run(self, ctx: Context, code: str, *args: str, env: Optional[dict[str, str]] = None):
        """Python in the target env, with CANN sourced where it is installed."""
        env = dict(ctx.env if env is None else env)
        env.pop("VIRTUAL_ENV", None)
        argv = cann.sourced([str(self.venv_python(ctx)), "-c", code, *args], ctx.machine.set_env)
        return run(argv, env=env, check=False)

    def _verify(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        """The spec's check everywhere; its cann_check where CANN is installed, else recorded as not verified."""
        env = dict(ctx.env, NPUENV_TEST_VIDEO=str(TEST_VIDEO))
        if self.build.check:
            self._run_check(ctx, "check", self.build.check, env, log)
        if not self.build.cann_check:
            return {}
        if ctx.machine.set_env is not None:
            self._run_check(ctx, "cann_check", self.build.cann_check, env, log)
            return {}
        skipped = self.build.cann_check.strip().replace("\n", "; ")
        log.write(f"cann_check ({skipped}): {cann.NOT_VERIFIED} ({ctx.machine.cann_set_env} is absent)\n")
        return {"note": f"{cann.NOT_VERIFIED} ({skipped})", "not_verified": skipped}

    def _run_check(self, ctx: Context, field_name: str, code: str, env: dict[str, str], log: IO[str]) -> None:
        proc = self._target_run(ctx, code, env=env)
        log.write(f"{field_name}:\n{code}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["(no output)"]
            raise NpuenvError(f"{self.build.package} was installed but its check failed: {last[0]}",
                              hint=f"the check is builds.{self.build.name}.{field_name} in the spec; the log has "
                                   "the whole output")

    def _dist_info(self, ctx: Context, dist: str) -> str:
        """The installed distribution's metadata folder: its presence is the cheap check."""
        code = ("import importlib.metadata as m, sys; d = m.distribution(sys.argv[1]); "
                "print(next(d.locate_file(f).parent for f in d.files if f.name == 'METADATA'))")
        proc = self._target_run(ctx, code, dist)
        if proc.returncode != 0:
            raise NpuenvError(f"{dist} is not installed in the target env after installing it: "
                              f"{(proc.stdout + proc.stderr).strip()[-300:]}")
        return proc.stdout.strip().splitlines()[-1]


def compile(spec: Any, machine: Any) -> list[Step]:
    """After the target env (torch, setuptools) and the repo with all its patches."""
    steps: list[Step] = []
    for build in spec.builds.values():
        patches = patches_of(spec, build.repo)
        repo = f"repo:{build.repo}" if build.repo in spec.repos else None
        steps.append(BuildStep(build, spec, step_ids("env" if spec.env else None, repo, *patches), patches=patches))
    return steps


def _by_strategy(spec: Any, machine: Any, wheel: bool) -> set[str]:
    return {b.repo for b in spec.builds.values() if (choose_strategy(b, machine.arch, machine.glibc) == "wheel") == wheel}


def problems(spec: Any, machine: Any, requires: dict) -> list[str]:
    return [f"builds.{b.name} takes a prebuilt wheel, and there is none for {machine.arch}"
            for b in spec.builds.values() if choose_strategy(b, machine.arch, machine.glibc) == "wheel"
            and machine.arch not in b.prebuilt.files]


KIND = Kind("build", compile, section="builds", parse=parse, needs_index=True, uses=lambda spec, machine: _by_strategy(spec, machine, False),
            spares=lambda spec, machine: _by_strategy(spec, machine, True), problems=problems)
