"""toolchain: uv and git (always needed), and what this platform's source builds need: CMake, a C++
compiler and patch, FFmpeg's development files. A tool no build needs here is not asked for."""

from __future__ import annotations

import re
import subprocess
from typing import Optional

from packaging.version import InvalidVersion, Version

from .. import toolchain as tools
from ..steps.build import choose_strategy
from .base import CheckResult, check, fail, ok, skip

CMAKE_MINIMUM = "3.8.2"  # decord v0.6.0's CMakeLists.txt
FFMPEG_MAX_MAJOR = 60  # libavcodec 61 is FFmpeg 7: decord 0.6.0 does not build against it (decord #312)
OWN_CHECKS = ("git", "cmake", "pkg-config")


def source_builds(ctx) -> list:
    return [b for b in ctx.spec.builds.values() if choose_strategy(b, ctx.arch, ctx.machine.glibc) == "source"]


def needs(ctx, tool: str) -> list[str]:
    """The builds that need `tool` (a tool or pkg-config module) on this platform."""
    return [b.name for b in source_builds(ctx) if tool in b.tools or tool in b.pkgconfig]


def _first_line(argv: list[str], environ) -> str:
    try:
        proc = subprocess.run(argv, env=dict(environ), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"does not run: {exc}"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def install_fix(ctx, missing: list[str]) -> str:
    command = ctx.machine.install_command(missing)
    return " ".join(command) if command else f"install {', '.join(missing)} with the package manager"


def _not_needed(ctx) -> str:
    prebuilt = [b.name for b in ctx.spec.builds.values() if choose_strategy(b, ctx.arch, ctx.machine.glibc) == "wheel"]
    why = f" (prebuilt here: {', '.join(prebuilt)})" if prebuilt else ""
    return f"not needed: no source build here needs it{why}"


@check("toolchain.uv", "uv (npuenv's own copy, never a PATH shim) runs")
def uv(ctx) -> CheckResult:
    from ..workspace import uv_binary

    try:
        path = uv_binary()
    except (ImportError, OSError) as exc:
        return fail(f"npuenv's uv is missing: {exc}", "uv sync (in this checkout), or pip install uv")
    line = _first_line([path, "--version"], ctx.environ)
    if not line.startswith("uv "):
        return fail(f"{path} {line or 'printed nothing'}", "uv sync (in this checkout), or pip install -U uv")
    return ok(f"{line} ({path})")


@check("toolchain.git", "git is on PATH (every repo, and apex's build, clone with it)")
def git(ctx) -> CheckResult:
    path = tools.find_tool("git", ctx.environ)
    if path is None:
        return fail("git is not on PATH", install_fix(ctx, ["git"]))
    return ok(f"{_first_line([path, '--version'], ctx.environ)} ({path})")


def _cmake_version(line: str) -> Optional[Version]:
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", line)
    try:
        return Version(match.group(1)) if match else None
    except InvalidVersion:
        return None


@check("toolchain.cmake", f"CMake >= {CMAKE_MINIMUM}, where a source build (decord) needs it")
def cmake(ctx) -> CheckResult:
    wanted = needs(ctx, "cmake")
    path = tools.find_tool("cmake", ctx.environ)
    if not wanted:
        if path is None:
            return skip(f"cmake {_not_needed(ctx)}")
        return ok(f"{_first_line([path, '--version'], ctx.environ)} ({path}); {_not_needed(ctx)}")
    if path is None:
        return fail(f"cmake is not on PATH, and {', '.join(wanted)} build(s) from source with it",
                    install_fix(ctx, ["cmake"]))
    line = _first_line([path, "--version"], ctx.environ)
    version = _cmake_version(line)
    if version is not None and version < Version(CMAKE_MINIMUM):
        return fail(f"{line}: {', '.join(wanted)} need(s) CMake >= {CMAKE_MINIMUM}",
                    f"{install_fix(ctx, ['cmake'])} (or pip install cmake into the tool env)")
    return ok(f"{line} ({path})")


@check("toolchain.compiler", "a C++ compiler and the other tools (patch, ...) the source builds need")
def compiler(ctx) -> CheckResult:
    builds = source_builds(ctx)
    wanted = list(dict.fromkeys(t for b in builds for t in b.tools if t not in OWN_CHECKS))
    if not wanted:
        return skip(f"a compiler {_not_needed(ctx)}")
    found = {t: tools.find_tool(t, ctx.environ) for t in wanted}
    missing = [t for t, p in found.items() if p is None]
    if missing:
        users = sorted({b.name for b in builds for t in missing if t in b.tools})
        return fail(f"{', '.join(missing)} not on PATH: {', '.join(users)} build(s) from source with it",
                    install_fix(ctx, missing))
    cxx = found.get("c++")
    head = _first_line([cxx, "--version"], ctx.environ) if cxx else ""
    return ok("; ".join([f"{head} ({cxx})" if cxx else "", *(f"{t} {p}" for t, p in found.items() if t != "c++")])
              .strip("; "))


@check("toolchain.ffmpeg", "FFmpeg's development files (pkg-config), where decord builds from source")
def ffmpeg(ctx) -> CheckResult:
    builds = source_builds(ctx)
    modules = list(dict.fromkeys(m for b in builds for m in b.pkgconfig))
    if not modules:
        return skip(f"FFmpeg's headers {_not_needed(ctx)}")
    if tools.find_tool("pkg-config", ctx.environ) is None:
        return fail("pkg-config is not on PATH: FFmpeg cannot be found", install_fix(ctx, ["pkg-config", *modules]))
    found = tools.probe([], modules, ctx.environ).modules
    missing = [m for m, v in found.items() if v is None]
    if missing:
        return fail(f"missing: {', '.join(missing)} (pkg-config finds no .pc file)", install_fix(ctx, missing))
    avcodec = found.get("libavcodec")
    details = [f"{m} {v}" for m, v in found.items()]
    if avcodec:
        release = tools.ffmpeg_release(avcodec)
        if int(avcodec.split(".")[0]) > FFMPEG_MAX_MAJOR:
            return fail(f"{release} (libavcodec {avcodec}): decord 0.6.0 builds against FFmpeg 4-6 only "
                        "(decord issue #312)", "install FFmpeg 6 or older development files, or use a box "
                                               "with glibc >= 2.28 where decord2 comes prebuilt", details)
        return ok(f"{release} (libavcodec {avcodec})", details)
    return ok(", ".join(details), details)


CHECKS = [uv, git, cmake, compiler, ffmpeg]
