"""system: the machine's architecture, its C library, its distribution."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from .base import CheckResult, check, fail, ok, warn

# torch_npu's wheels are manylinux2014 (glibc 2.17); decord2's prebuilt wheel needs glibc 2.28
MANYLINUX2014_GLIBC = "2.17"


@check("system.arch", "the CPU architecture, and whether the spec can make its target env there")
def arch(ctx) -> CheckResult:
    from ..plan import platform_problems

    problems = platform_problems(ctx.spec, ctx.machine, _wheel_requirements(ctx))
    if problems:
        return fail(f"{ctx.arch}: the spec cannot make its target env here: {'; '.join(problems)}",
                    "run on an aarch64 (Ascend) box, or give the spec what this architecture needs",
                    problems if len(problems) > 1 else ())
    note = "" if ctx.arch == "aarch64" else " (a build box: Ascend NPU boxes are aarch64)"
    return ok(f"{ctx.arch}: the spec has what it needs here{note}")


def _wheel_requirements(ctx) -> dict:
    """Requires-Dist of the spec's wheels for this architecture, for those already in the wheelhouse."""
    from ..wheelhouse import wheel_requires

    found = {}
    for wheel in ctx.spec.wheels.values():
        entry = wheel.files.get(ctx.arch)
        if entry is not None and ctx.wheels_dir is not None and (ctx.wheels_dir / entry.filename).is_file():
            found[wheel.name] = wheel_requires(ctx.wheels_dir / entry.filename)
    return found


@check("system.glibc", "the C library: glibc >= 2.17 for torch_npu's wheels, >= 2.28 for prebuilt decord")
def glibc(ctx) -> CheckResult:
    found = ctx.machine.glibc
    if not found:
        return fail("no glibc found (musl or another C library?): torch_npu's manylinux wheels need glibc",
                    "use a glibc-based image (EulerOS, openEuler, Ubuntu)")
    try:
        version = Version(found)
    except InvalidVersion:
        return warn(f"glibc {found}: cannot read the version")
    if version < Version(MANYLINUX2014_GLIBC):
        return fail(f"glibc {found} is older than {MANYLINUX2014_GLIBC}: torch_npu's wheels need {MANYLINUX2014_GLIBC}",
                    "use a newer image (EulerOS 2.8+, Ubuntu 18.04+)")
    prebuilt = [b for b in ctx.spec.builds.values() if b.strategy == "auto" and b.glibc]
    late = [b for b in prebuilt if version < Version(b.glibc)]
    if late:
        names = ", ".join(f"{b.name} (needs {b.glibc})" for b in late)
        return ok(f"glibc {found}; no prebuilt wheel fits it, so these build from source: {names}")
    return ok(f"glibc {found}")


@check("system.os", "the distribution, so install hints name the right package manager")
def distribution(ctx) -> CheckResult:
    release = ctx.machine.os_release
    name = release.get("PRETTY_NAME") or release.get("ID") or "unknown"
    family = ctx.machine.family
    if family is None:
        return warn(f"{name}: not a distribution npuenv knows, so its hints cannot name packages",
                    "install missing tools with your package manager (names differ per distribution)")
    return ok(f"{name} ({'apt' if family == 'debian' else 'yum/dnf'})")


CHECKS = [arch, glibc, distribution]
