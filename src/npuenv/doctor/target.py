"""target env: the interpreter is the spec's exact Python, torch and torch_npu are the spec's versions and
torch_npu matches the CANN installed, and the stack is installed (with --deep: imports).

All four checks share ONE run of the target interpreter: a small probe script that prints JSON lines
(its version, package versions from importlib.metadata, then one line per module). By default it only
finds each module (importlib.util.find_spec of the top-level name: nothing is imported, so it takes a
fraction of a second where `import torch` alone takes seconds). With --deep (`DoctorContext.deep`) it imports each
module and prints the result as it happens, so a crash inside `import torch_npu` still names the module.
When CANN's set_env.sh exists, the probe runs with it sourced, as training does:
npuenv.cann.sourced(), an argument list.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .. import pythons
from . import cann
from ..npu import compat
from .base import CheckResult, check, fail, ok, skip, warn

MARK = "NPUENV-PROBE "
# distribution names per import name (decord also comes as the prebuilt decord2)
DISTRIBUTIONS = {"torch": ["torch"], "torch_npu": ["torch-npu", "torch_npu"], "apex": ["apex"],
                 "decord": ["decord", "decord2"], "mindspeed": ["mindspeed"],
                 "megatron": ["megatron-core", "megatron_core"]}

PROBE = r'''
import json, os, platform, sys, traceback
def emit(kind, **data):
    data["kind"] = kind
    sys.stdout.write("@MARK@" + json.dumps(data) + "\n")
    sys.stdout.flush()
emit("python", version=platform.python_version(), implementation=sys.implementation.name,
     executable=sys.executable)
try:
    from importlib import metadata
except ImportError:
    metadata = None
versions = {}
for key, names in @DISTRIBUTIONS@.items():
    for name in names:
        try:
            versions[key] = metadata.version(name)
            break
        except Exception:
            pass
emit("versions", versions=versions)
def top_names(dist):
    names = set()
    for path in dist.files or ():
        head = str(path).replace("\\", "/").split("/")[0]
        if head.endswith((".dist-info", ".data")) or head in ("..", "__pycache__"):
            continue
        names.add(head.split(".")[0])
    return names
providers = {}
for dist in (metadata.distributions() if metadata else ()):
    for name in top_names(dist) & set(@MODULES@):
        providers.setdefault(name, []).append("%s %s" % (dist.metadata["Name"], dist.version))
emit("providers", shared={k: sorted(set(v)) for k, v in providers.items() if len(set(v)) > 1})
def error(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]
for module in @MODULES@:
    if @DEEP@:
        emit("importing", module=module)
        try:
            __import__(module)
            emit("import", module=module, ok=True)
        except BaseException as exc:
            emit("import", module=module, ok=False, error=error(exc))
        continue
    import importlib.util
    try:
        spec = importlib.util.find_spec(module)
    except BaseException as exc:
        emit("found", module=module, ok=False, error=error(exc))
        continue
    if spec is None:
        emit("found", module=module, ok=False, error="ModuleNotFoundError: No module named %r" % module)
    elif spec.origin in (None, "namespace"):
        folders = dict.fromkeys(os.path.realpath(f) for f in spec.submodule_search_locations or [])
        emit("found", module=module, ok=True, where=" ".join(folders) + " (a folder)")
    else:
        emit("found", module=module, ok=True, where=spec.origin)
'''


@dataclass
class TargetFacts:
    python: Optional[dict] = None
    versions: Dict[str, str] = field(default_factory=dict)
    imports: Dict[str, Tuple[bool, str]] = field(default_factory=dict)
    found: Dict[str, Tuple[bool, str]] = field(default_factory=dict)  # module: (found, where it is or the error)
    shared: Dict[str, List[str]] = field(default_factory=dict)  # module: the distributions that all install it
    died_importing: Optional[str] = None
    returncode: int = 0
    stderr: str = ""
    cann_sourced: Optional[Path] = None


def parse_probe(stdout: str) -> TargetFacts:
    """Facts from the probe's output lines (anything else it printed, e.g. by set_env.sh, is ignored)."""
    facts = TargetFacts()
    pending = None
    for line in stdout.splitlines():
        if not line.startswith(MARK):
            continue
        try:
            data = json.loads(line[len(MARK):])
        except ValueError:
            continue
        what = data.get("kind")
        if what == "python":
            facts.python = data
        elif what == "versions":
            facts.versions = dict(data.get("versions") or {})
        elif what == "providers":
            facts.shared = {k: list(v) for k, v in (data.get("shared") or {}).items()}
        elif what == "importing":
            pending = data.get("module")
        elif what == "import":
            facts.imports[data["module"]] = (bool(data.get("ok")), data.get("error", ""))
            pending = None
        elif what == "found":
            found = bool(data.get("ok"))
            facts.found[data["module"]] = (found, data.get("where", "") if found else data.get("error", ""))
    facts.died_importing = pending
    return facts


def expected_modules(spec) -> List[str]:
    """The modules the spec's target env must import: torch, torch_npu, each build's package, MindSpeed
    (editable), and Megatron (copied into the project, importable from its folder)."""
    env = spec.env
    if env is None:
        return []
    found: List[str] = []
    for text in env.packages:
        try:
            if canonicalize_name(Requirement(text).name) == "torch":
                found.append("torch")
        except InvalidRequirement:
            continue
    if any(canonicalize_name(spec.wheels[w].package) == "torch-npu" for w in env.wheels if w in spec.wheels):
        found.append("torch_npu")
    found += [b.package.replace("-", "_") for b in spec.builds.values()]
    found += ["mindspeed"] if "mindspeed" in env.editable else []
    found += ["megatron"] if any(Path(c.to).name == "megatron" for c in spec.copies.values()) else []
    return list(dict.fromkeys(found))


def venv_python(ctx) -> Optional[Path]:
    if ctx.root is None or ctx.spec.env is None:
        return None
    return ctx.root / ctx.spec.env.venv / "bin" / "python"


def probe_argv(python: Path, code: str, set_env: Optional[Path]) -> List[str]:
    from ..cann import sourced

    return sourced([python, "-c", code], set_env, "npuenv-doctor")


def _cwd(ctx) -> Path:
    project = ctx.spec.env.project
    if project and project in ctx.spec.repos:
        folder = ctx.root / ctx.spec.repos[project].path
        if folder.is_dir():
            return folder
    return ctx.root


def run_probe(ctx) -> TargetFacts:
    python = venv_python(ctx)
    code = (PROBE.replace("@MARK@", MARK).replace("@DISTRIBUTIONS@", repr(DISTRIBUTIONS))
            .replace("@MODULES@", repr(expected_modules(ctx.spec))).replace("@DEEP@", repr(ctx.deep)))
    install = cann.installed(ctx)
    set_env = install.set_env if install is not None else None
    proc = subprocess.run(probe_argv(python, code, set_env), cwd=_cwd(ctx), env=dict(ctx.environ),
                          capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
                          timeout=ctx.probe_timeout)
    facts = parse_probe(proc.stdout)
    facts.returncode, facts.stderr, facts.cann_sourced = proc.returncode, proc.stderr, set_env
    return facts


def facts_for(ctx) -> Tuple[Optional[TargetFacts], Optional[CheckResult]]:
    """The probe's facts, or the result every target check reports when there are none."""
    if ctx.root is None:
        return None, skip(ctx.no_root)
    if ctx.spec.env is None:
        return None, skip("the spec has no target env")
    python = venv_python(ctx)
    if not python.exists():
        return None, fail(f"no target env: {python} does not exist", ctx.bootstrap_fix("--only", "env"))
    try:
        facts = ctx.memo.get("target-probe", lambda: run_probe(ctx))
    except subprocess.TimeoutExpired:
        return None, fail(f"{python} did not finish the probe within {ctx.probe_timeout:g} s",
                          f"run it by hand: {python} -c 'import torch, torch_npu'")
    except OSError as exc:
        return None, fail(f"the probe could not start: {exc}", f"run it by hand: {python} -c 'import torch'")
    sourcing = set_env_failure(facts.stderr)
    if sourcing is not None:  # the probe ran, but not in the environment training gets
        return None, fail(f"{facts.cann_sourced} failed when sourced (exit {sourcing[0]}): {sourcing[1]}",
                          f"run it by hand to see why: bash -c 'source {facts.cann_sourced}'")
    if facts.python is None:
        tail = _last_line(facts.stderr) or "no output"
        if facts.cann_sourced is not None:
            return None, fail(f"{python} did not start with {facts.cann_sourced} sourced (exit {facts.returncode}): "
                              f"{tail}", f"try by hand: bash -c 'source {facts.cann_sourced} && {python} -V'")
        return None, fail(f"{python} does not run (exit {facts.returncode}): {tail}",
                          ctx.bootstrap_fix("--only", "python,env"))
    return facts, None


def set_env_failure(stderr: str) -> Optional[Tuple[str, str]]:
    """(exit code, what set_env.sh said last) when sourcing it failed (npuenv.cann's prologue says so)."""
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^npuenv: sourcing .+ exited with (\d+)$", line)
        if match:
            said = [text.strip() for text in lines[:index] if text.strip()]
            return match.group(1), said[-1] if said else "no message"
    return None


def after_python(ctx) -> Tuple[Optional[TargetFacts], Optional[CheckResult]]:
    """facts_for() for the checks after target.python: where that one fails, they skip, pointing at it."""
    facts, result = facts_for(ctx)
    if result is not None and result.status.value == "fail":
        return None, skip("no target env (see target.python)")
    return facts, result


def _bootstrap_only(ctx, ids) -> str:
    return ctx.bootstrap_fix("--only", ",".join(ids))


@check("target.python", "the target env's interpreter runs and is the spec's exact Python version")
def python(ctx) -> CheckResult:
    facts, result = facts_for(ctx)
    if result is not None:
        return result
    found = facts.python
    if not pythons.matches(found, ctx.spec.python):
        return fail(f"{found.get('implementation')} {found.get('version')} at {venv_python(ctx)}, the spec "
                    f"asks for CPython {ctx.spec.python}", "move the env away and run " +
                    _bootstrap_only(ctx, ["python", "env"]))
    return ok(f"CPython {found['version']} ({venv_python(ctx)})")


def _installed(facts: TargetFacts, key: str) -> Optional[str]:
    return facts.versions.get(key)


def _spec_requirement(spec, name: str) -> Optional[Requirement]:
    for text in spec.env.packages:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == name:
            return req
    return None


@check("target.torch", "torch in the target env is the version the spec pins")
def torch(ctx) -> CheckResult:
    req = _spec_requirement(ctx.spec, "torch")
    facts, found, result = _version_in_env(ctx, "torch", req, lambda found: not req.specifier or SpecifierSet(
        str(req.specifier)).contains(found, prereleases=True))
    if result is not None:
        return result
    return ok(f"torch {found}" + (f" (the spec asks for {req})" if req is not None else ""))


def _version_in_env(ctx, package: str, wanted: Any, fits: Callable[[str], bool]) -> tuple:
    """(probe facts, installed version, None), or a result when the target env cannot answer, the spec
    installs no `package`, it is missing, or its version does not fit `wanted` (the spec's ask)."""
    facts, result = after_python(ctx)
    if result is not None:
        return facts, None, result
    found = _installed(facts, package)
    if found is None and wanted is None:
        return facts, None, skip(f"the spec installs no {package}")
    if found is None:
        return facts, None, fail(f"{package} is not installed in the target env (the spec asks for {wanted})",
                                 _bootstrap_only(ctx, ["env"]))
    if wanted is not None and not fits(found):
        return facts, found, fail(f"{package} {found} is installed, the spec asks for {wanted}",
                                  _bootstrap_only(ctx, ["env"]))
    return facts, found, None


def _same(a: str, b: str) -> bool:
    try:
        return Version(Version(a).public) == Version(Version(b).public)
    except InvalidVersion:
        return a == b


@check("target.torch_npu", "torch_npu is the spec's version, extends the installed torch, and matches CANN")
def torch_npu(ctx) -> CheckResult:
    wanted = cann.spec_torch_npu(ctx.spec)
    facts, found, result = _version_in_env(ctx, "torch_npu", wanted, lambda found: _same(found, wanted))
    if result is not None:
        return result
    torch_found = _installed(facts, "torch")
    base = compat.torch_for(found)
    if torch_found and base and not _same(Version(torch_found).base_version, base):
        return fail(f"torch_npu {found} extends torch {base}, but torch {torch_found} is installed",
                    _bootstrap_only(ctx, ["env"]))
    install = cann.installed(ctx)
    built_for = compat.cann_for(found)
    if install is None or install.version is None:
        return ok(f"torch_npu {found}" + (f" (built for CANN {built_for}; no CANN found here)" if built_for else ""))
    if built_for is None:
        return warn(f"torch_npu {found}: not in the torch_npu/CANN table, so its match with CANN "
                    f"{install.version} is unknown", f"check the {compat.SOURCE} table")
    if not compat.same_cann(built_for, install.version):
        better = compat.torch_npu_for(install.version, base or "")
        instead = f"torch_npu {better[0]} (Ascend's match for CANN {install.version}) or " if better else ""
        return warn(f"torch_npu {found} is built for CANN {built_for}, CANN {install.version} is installed: "
                    "expect `undefined symbol` errors", f"install {instead}CANN {built_for}")
    return ok(f"torch_npu {found}, built for CANN {built_for} (installed)")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else ""


# which bootstrap step provides each module
PROVIDERS = {"torch": "env", "torch_npu": "env", "mindspeed": "env", "megatron": "copy:megatron"}


def _provider(ctx, module: str) -> str:
    for build in ctx.spec.builds.values():
        if build.package.replace("-", "_") == module:
            return f"build:{build.name}"
    for copy in ctx.spec.copies.values():
        if Path(copy.to).name == module:
            return f"copy:{copy.name}"
    return PROVIDERS.get(module, "env")


def _import_fix(ctx, failures: List[Tuple[str, str]]) -> str:
    from ..npu.logtriage import triage

    for module, error in failures:
        if f"No module named '{module}'" in error:
            continue  # simply not installed: the step that installs it says more than any log hint
        found = triage(error)
        if found:
            return found[0].fix
    return _bootstrap_only(ctx, list(dict.fromkeys(_provider(ctx, m) for m, _e in failures)))


@check("target.imports", "torch, torch_npu, apex, decord, mindspeed and megatron are installed "
                         "(--deep: they import, with CANN sourced)")
def imports(ctx) -> CheckResult:
    facts, result = after_python(ctx)
    if result is not None:
        return result
    modules = expected_modules(ctx.spec)
    if not modules:
        return skip("the spec's target env names no module to import")
    if not ctx.deep:
        return _found(ctx, facts, modules)
    sourced = f" (with {facts.cann_sourced} sourced)" if facts.cann_sourced else " (no CANN set_env.sh found)"
    if facts.died_importing:
        tail = _last_line(facts.stderr) or f"exit {facts.returncode}"
        return fail(f"the interpreter died (exit {facts.returncode}) importing {facts.died_importing}: {tail}",
                    _import_fix(ctx, [(facts.died_importing, facts.stderr)]))
    results = {m: facts.imports.get(m, (False, "not imported")) for m in modules}
    failures = [(m, error) for m, (imported, error) in results.items() if not imported]
    details = [f"{m}: ok" if imported else f"{m}: {_last_line(error)}" for m, (imported, error) in results.items()]
    if failures:
        names = ", ".join(m for m, _e in failures)
        return fail(f"{names} do(es) not import{sourced}: {failures[0][0]}: {_last_line(failures[0][1])}",
                    _import_fix(ctx, failures), details)
    return ok(f"{', '.join(modules)} import{sourced}", details)


def _found(ctx, facts: TargetFacts, modules: List[str]) -> CheckResult:
    """The cheap check: each module is found where the target interpreter would import it from, with its
    distribution's version. Nothing is imported (--deep does that)."""
    results = {m: facts.found.get(m, (False, "not looked for (the probe stopped early)")) for m in modules}
    details = []
    for module, (found, text) in results.items():
        version = facts.versions.get(module)
        label = f"{module} {version}" if version else f"{module} (no installed distribution)"
        details.append(f"{label}: {text}" if found else f"{module}: {_last_line(text)}")
    missing = [m for m, (found, _t) in results.items() if not found]
    if missing:
        first = _last_line(results[missing[0]][1])
        return fail(f"{', '.join(missing)} not found in the target env: {first}",
                    _bootstrap_only(ctx, list(dict.fromkeys(_provider(ctx, m) for m in missing))), details)
    return ok(f"{', '.join(modules)} found (not imported; --deep imports them)", details)


@check("target.duplicates", "each of torch, torch_npu, apex, decord, mindspeed, megatron comes from one "
                            "distribution (decord and decord2 overwrite each other's files)")
def duplicates(ctx) -> CheckResult:
    facts, result = after_python(ctx)
    if result is not None:
        return result
    if not facts.shared:
        return ok("every module comes from one distribution")
    module, dists = next(iter(facts.shared.items()))
    details = [f"{m}: {', '.join(d)}" for m, d in facts.shared.items()]
    keep = _provider(ctx, module)
    names = " ".join(d.split(" ")[0] for d in dists)
    return fail(f"{module} is installed by {' and '.join(dists)}: they overwrite each other's files",
                f"uv pip uninstall --python {venv_python(ctx)} {names}, then " + _bootstrap_only(ctx, [keep]),
                details if len(details) > 1 else ())


@check("target.lock", "the target env is what the spec's lock installs: no package missing, extra, or at "
                      "another version or build")
def lock(ctx) -> CheckResult:
    from ..steps.env import installed_records, installed_versions, lock_differences
    from .sources import spec_lock, step_context

    if ctx.root is None:
        return skip(ctx.no_root)
    found, result = spec_lock(ctx)
    if result is not None:
        return skip(f"no lock to compare with (see sources.lock): {result.finding}")
    step_ctx = ctx.memo.get("step-context", lambda: step_context(ctx))
    record = step_ctx.state.resolved("env")
    venv = venv_python(ctx).parent.parent
    if not venv_python(ctx).exists():
        return fail(f"no target env: {venv_python(ctx)} does not exist", _bootstrap_only(ctx, ["env"]))
    if record.get("locked_sha256") != found.uv_sha256:  # from beside the spec, or from a bundle
        return fail(f"the target env was not installed from {found.path.name} as it is now",
                    _bootstrap_only(ctx, ["env"]))
    locked = {canonicalize_name(k): v for k, v in (record.get("packages") or {}).items()}
    installed = installed_versions(venv)
    differs = lock_differences(locked, installed)
    records = installed_records(venv)
    differs += [f"{name} {installed.get(name)}: another build than the one installed from the lock"
                for name, digest in sorted((record.get("records") or {}).items())
                if name in records and records[name] != digest and installed.get(name) == locked.get(name)]
    built = {b.package for b in ctx.spec.builds.values()} | {
        b.prebuilt.package for b in ctx.spec.builds.values() if b.prebuilt}
    extra = sorted(set(installed) - set(locked) - {canonicalize_name(p) for p in built})
    if differs:
        more = f" (+{len(differs) - 1} more)" if len(differs) > 1 else ""
        return fail(f"{differs[0]}{more}", _bootstrap_only(ctx, ["env"]), differs)
    if extra:
        return warn(f"installed but not in {found.path.name}: {', '.join(extra[:5])}"
                    + (f" (+{len(extra) - 5} more)" if len(extra) > 5 else ""),
                    f"uninstall what you do not need ({venv_python(ctx)} -m pip uninstall NAME), or add it to the "
                    "spec's env.packages and run `invoke lock`", extra)
    return ok(f"{len(locked)} packages as {found.path.name} locked them")


CHECKS = [python, torch, torch_npu, imports, duplicates, lock]
