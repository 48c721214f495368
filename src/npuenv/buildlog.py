"""Reading a failed build's log: the compiler's error lines and a hint for the causes we know."""

from __future__ import annotations

import re
from typing import Optional

ERROR_LINE = re.compile(r"(\berror\b|\bError\b|fatal error|CMake Error|No module named|undefined reference|"
                        r"not declared|command not found|Could NOT find)")

# (pattern in the log, hint); the first match wins
KNOWN_CAUSES = (
    (re.compile(r"AVBSFContext.*(not declared|does not name)|bsf\.h"),
     "decord v0.6.0 meets FFmpeg 5 or newer: the decord FFmpeg patch must be applied (its `when:` "
     "condition reads `pkg-config --modversion libavcodec`); check that pkg-config sees the FFmpeg you build against"),
    (re.compile(r"invalid conversion from .const AVCodec|ch_layout|AVChannelLayout"),
     "FFmpeg 7 changed the audio API that decord 0.6.0 uses (decord issue #312): build against FFmpeg 4-6, "
     "or use the prebuilt decord2 wheel (builds.decord.strategy: wheel)"),
    (re.compile(r"lib(avcodec|avformat|avutil|avfilter|avdevice|swresample|swscale)[^\n]*(No such file|not found)"),
     "the FFmpeg development headers are missing: install them (Debian/Ubuntu: libavcodec-dev libavformat-dev "
     "libavutil-dev libavdevice-dev libavfilter-dev libswresample-dev libswscale-dev; EulerOS/openEuler: ffmpeg-devel)"),
    (re.compile(r"No module named .?torch"),
     "torch is not importable by the interpreter the build uses: the target env must be complete first "
     "(invoke bootstrap --only env), and the build must run with it first on PATH"),
    (re.compile(r"setuptools.{0,80}(too new|newer|<=\s*65\.7|65\.7\.0)|option --cpp_ext not recognized",
                re.IGNORECASE),
     "setuptools in the target env is too new for this build: pin setuptools<=65.7.0 in env.packages"),
    (re.compile(r"No CMAKE_CXX_COMPILER|c\+\+: command not found|g\+\+: (command )?not found"),
     "no C++ compiler: install g++ (Debian/Ubuntu) or gcc-c++ (EulerOS/openEuler)"),
    (re.compile(r"cmake: (command )?not found|CMake [0-9.]+ or higher is required"),
     "CMake is missing or too old: install cmake >= 3.8"),
    (re.compile(r"Could not resolve host|Failed to connect|certificate verify failed|SSL certificate problem"),
     "a clone made by the build script could not reach its server: set a mirror (NPUENV_MIRRORS) or pass "
     "the proxy's CA with --ca-bundle; npuenv hands both to git for clones that scripts make themselves"),
)


def error_lines(text: str, limit: int = 12) -> list[str]:
    """The lines that carry an error, de-duplicated, at most `limit` (the first ones: later ones cascade)."""
    seen: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if ERROR_LINE.search(line) and line not in seen:
            seen.append(line)
            if len(seen) >= limit:
                break
    return seen


def known_cause(text: str) -> Optional[str]:
    for pattern, hint in KNOWN_CAUSES:
        if pattern.search(text):
            return hint
    return None
