"""Synthetic upstreams that npuenv builds from source: Ascend apex (plus the NVIDIA apex it clones) and
decord v0.6.0 (plus its dlpack and dmlc-core submodules), and a tiny test video.

All file contents are our own writing, shaped like the real projects only where npuenv touches them:
- apex's ``scripts/build.sh`` takes ``--python=3.7|3.8|3.9|3.10``, clones NVIDIA apex by a hard-coded
  URL into ``apex/`` (a second run fails there, as upstream's does), checks out a fixed commit, applies
  ``patch/npu.patch`` with ``patch -p1``, copies ``src/`` and ``tests/`` in and runs
  ``python3.X setup.py --cpp_ext bdist_wheel``; the patched setup.py needs torch importable and
  setuptools <= 65.7.0 and builds a real C extension ``apex_C``. As upstream, the patch sets
  ``version='0.1-ascend'``, so the wheel is ``apex-0.1_ascend-...whl``, a name installers refuse; and
  ``import apex`` imports torch_npu (apex/amp/handle.py line 21, as patched), hence needs CANN, while
  ``import torch, apex_C`` needs neither. As the real one (a torch CppExtension), apex_C is linked against
  torch's libc10.so (the stand-in torch's ``torch/lib/libc10.so``) with no rpath, so ``import apex_C`` alone
  fails ("libc10.so: cannot open shared object file") and works after ``import torch``.
- decord's CMake project builds ``build/libdecord.so`` from a C++ source that includes headers from both
  submodules; ``python/setup.py`` finds the library in ``../build`` and puts it in the wheel;
  ``decord.answer()`` calls into it. The two files npuenv's FFmpeg 5 patch edits carry the exact
  context lines. As upstream, the default build compiles them against the system FFmpeg (found with
  pkg-config; configuring fails without it) and FFmpeg >= 5 needs the patch; ``-DWORLD_BUILD_VIDEO=OFF``
  (a world-only switch) builds without them, for tests that need no FFmpeg.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from tests.world.upstream import Commit, Gitlink, build_repo

NVIDIA_APEX_URL = "https://github.com/NVIDIA/apex.git"
DLPACK_URL = "https://github.com/dmlc/dlpack"  # as in decord's .gitmodules: no .git suffix
DMLC_CORE_URL = "https://github.com/dmlc/dmlc-core"

# -- NVIDIA apex (cloned by Ascend apex's build.sh) ---------------------------------------------

NV_SETUP = '''\
"""setup.py of the npuenv test world's apex, shaped like NVIDIA's: C++/CUDA extensions on request."""
import sys

from setuptools import find_packages, setup

import torch
from torch.utils.cpp_extension import BuildExtension, CppExtension

ext_modules = []
if "--cpp_ext" in sys.argv:
    sys.argv.remove("--cpp_ext")
    ext_modules.append(CppExtension("apex_C", ["csrc/flatten_unflatten.cpp"]))
if "--cuda_ext" in sys.argv:
    raise RuntimeError("--cuda_ext needs CUDA, which the npuenv test world does not have")

setup(
    name="apex",
    version="0.1",
    packages=find_packages(exclude=("build", "csrc", "tests*")),
    ext_modules=ext_modules,
    cmdclass={"build_ext": BuildExtension},
    description="Synthetic apex (npuenv test world)",
)
'''

# The same file after Ascend's NPU patch (the patch is the difference, computed below).
NV_SETUP_NPU = '''\
"""setup.py of the npuenv test world's apex, shaped like NVIDIA's: C++/CUDA extensions on request."""
import os
import sys

import setuptools
from setuptools import Extension, find_packages, setup

try:
    import torch  # the NPU build needs torch importable, as the real one does
except ImportError:
    sys.exit("apex: cannot import torch with %s; install torch 2.1.0 before building apex" % sys.executable)

MAX_SETUPTOOLS = (65, 7, 0)


def version_tuple(text):
    """(major, minor, micro) of a version string, ignoring any suffix."""
    numbers = []
    for piece in text.split(".")[:3]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        numbers.append(int(digits or 0))
    return tuple(numbers + [0] * (3 - len(numbers)))


if version_tuple(setuptools.__version__) > MAX_SETUPTOOLS:
    raise RuntimeError("apex: setuptools %s is too new for the NPU build; install setuptools<=65.7.0"
                       % setuptools.__version__)

ext_modules = []
if "--cpp_ext" in sys.argv:
    sys.argv.remove("--cpp_ext")
    # Linked against torch's libc10.so as torch's CppExtension links it: torch/lib in library_dirs, no rpath.
    ext_modules.append(Extension("apex_C", ["csrc/npu_flatten.c"], libraries=["c10"],
                                 library_dirs=[os.path.join(os.path.dirname(torch.__file__), "lib")]))
if "--cuda_ext" in sys.argv:
    raise RuntimeError("--cuda_ext needs CUDA, which the npuenv test world does not have")

setup(
    name="apex",
    version='0.1-ascend',  # as Ascend's npu.patch writes it: not PEP 440, so bdist_wheel names it 0.1_ascend
    packages=find_packages(exclude=("build", "csrc", "tests*")),
    ext_modules=ext_modules,
    description="Synthetic apex (npuenv test world)",
)
'''

# Master moved on: the lines the NPU patch changes are different, so the patch needs the pinned commit.
NV_SETUP_LATER = NV_SETUP.replace('["csrc/flatten_unflatten.cpp"]',
                                  '["csrc/flatten_unflatten.cpp"], extra_compile_args=["-O3"]')

# apex/__init__.py: like NVIDIA's at the pin, it imports torch, then its amp package (and has no __version__).
# Ascend's patch leaves it alone; the torch_npu import comes in through apex/amp/handle.py.
NV_INIT = '''\
"""apex of the npuenv test world (NVIDIA-shaped): importing it imports torch, then apex.amp."""
import torch  # noqa: F401

from . import amp  # noqa: F401
'''

NV_AMP_INIT = '''\
"""amp of the npuenv test world's apex: loss scaling, from handle.py."""
from .handle import scale_loss  # noqa: F401
'''

NV_AMP_HANDLE = '''\
"""Loss scaling of the npuenv test world's apex (NVIDIA-shaped)."""
import contextlib

import torch  # noqa: F401


@contextlib.contextmanager
def scale_loss(loss, loss_scale=1.0):
    """Yield ``loss`` times ``loss_scale``."""
    yield loss * loss_scale
'''

# After Ascend's NPU patch handle.py imports torch_npu on line 21, as the real patched file does: so
# `import apex` needs torch_npu, hence CANN, while `import torch, apex_C` (the compiled part) needs neither.
NV_AMP_HANDLE_NPU = '''\
# apex/amp/handle.py of the npuenv test world, after Ascend's NPU patch.
#
# Our own lines, not Ascend's or NVIDIA's. The patch puts a licence header of this
# length on top of NVIDIA's file, which moves the imports down: the line that
# matters to npuenv is `import torch_npu` below, which must stay on line 21
# (UPSTREAM.md: "apex/amp/handle.py line 21"). Importing apex imports apex.amp,
# which imports this file, so `import apex` fails wherever torch_npu cannot
# load, e.g. on a build box without CANN.
#
# What the real file does with torch_npu: it clears the NPU's overflow flag
# when the loss scaler is dynamic. This stand-in only imports it.
#
# The build itself never imports apex: setup.py needs torch (and setuptools
# <= 65.7.0) only; the compiled extension apex_C needs torch imported first.
#
"""Loss scaling of the npuenv test world's apex (NPU build)."""

import contextlib

import torch  # noqa: F401
import torch_npu  # noqa: F401 - Ascend's apex needs torch_npu at run time, not to build


@contextlib.contextmanager
def scale_loss(loss, loss_scale=1.0):
    """Yield ``loss`` times ``loss_scale``."""
    yield loss * loss_scale
'''

NV_FLATTEN_CPP = """\
// flatten_unflatten.cpp of the npuenv test world: a torch C++ extension in NVIDIA's apex.
// Ascend's NPU patch builds csrc/npu_flatten.c instead, so this file is never compiled here.
#include <torch/extension.h>

at::Tensor world_flatten(std::vector<at::Tensor> tensors);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("flatten", &world_flatten, "Flatten dense tensors");
}
"""

NPU_FLATTEN_C = """\
/* apex_C of the npuenv test world: one function, built by `setup.py --cpp_ext` after the NPU patch.
 * Linked against torch's libc10.so (no rpath), like the real torch extension: load torch first. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* In the stand-in torch's torch/lib/libc10.so. */
extern int c10_stand_in(void);

/* flatten_size(sizes) -> how many elements a flat buffer holding tensors of these sizes needs. */
static PyObject *flatten_size(PyObject *self, PyObject *args)
{
    PyObject *sizes, *iterator, *item;
    long long total = 0;

    (void)self;
    if (!PyArg_ParseTuple(args, "O", &sizes))
        return NULL;
    iterator = PyObject_GetIter(sizes);
    if (iterator == NULL)
        return NULL;
    while ((item = PyIter_Next(iterator)) != NULL) {
        long long value = PyLong_AsLongLong(item);
        Py_DECREF(item);
        if (value == -1 && PyErr_Occurred()) {
            Py_DECREF(iterator);
            return NULL;
        }
        total += value;
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromLongLong(total);
}

static PyMethodDef apex_c_methods[] = {
    {"flatten_size", flatten_size, METH_VARARGS, "Total element count of the given tensor sizes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef apex_c_module = {
    PyModuleDef_HEAD_INIT, "apex_C", "NPU helpers of the npuenv test world's apex.", -1, apex_c_methods,
};

PyMODINIT_FUNC PyInit_apex_C(void)
{
    PyObject *module = PyModule_Create(&apex_c_module);

    /* A call into libc10.so, so the link is real (the library stays in DT_NEEDED even with --as-needed). */
    if (module != NULL && PyModule_AddIntConstant(module, "C10", c10_stand_in()) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
"""


def _diff(path: str, old: str, new: str) -> str:
    """A unified diff of one file for ``patch -p1`` (``old`` empty: the file is created)."""
    fromfile = "/dev/null" if not old else f"a/{path}"
    lines = difflib.unified_diff(old.splitlines(True), new.splitlines(True), fromfile, f"b/{path}")
    return "".join(lines)


def npu_patch() -> str:
    """patch/npu.patch of the world's Ascend apex: turns the NVIDIA-shaped tree into the NPU build."""
    return (_diff("apex/amp/handle.py", NV_AMP_HANDLE, NV_AMP_HANDLE_NPU)
            + _diff("csrc/npu_flatten.c", "", NPU_FLATTEN_C) + _diff("setup.py", NV_SETUP, NV_SETUP_NPU))


def nvidia_apex_history() -> List[Commit]:
    pin = Commit("Apex with C++ extensions", "2023-09-20T10:00:00", {
        "README.md": "# apex (npuenv test world)\n\nSynthetic stand-in for NVIDIA apex; Ascend's build clones it.\n",
        "setup.py": NV_SETUP,
        "apex/__init__.py": NV_INIT,
        "apex/amp/__init__.py": NV_AMP_INIT,
        "apex/amp/handle.py": NV_AMP_HANDLE,
        "csrc/flatten_unflatten.cpp": NV_FLATTEN_CPP,
        "tests/L0/README.md": "Level-0 tests of the synthetic apex.\n",
    })
    later = Commit("Optimise the C++ extension build", "2024-06-01T10:00:00", {"setup.py": NV_SETUP_LATER})
    return [pin, later]


# -- Ascend apex --------------------------------------------------------------------------------

ASCEND_BUILD_SH = """\
#!/bin/bash
# scripts/build.sh of the npuenv test world's Ascend apex. Our own script, shaped like the real one
# where npuenv relies on it: the --python option, the clone by a fixed URL, the fixed commit,
# the NPU patch, the copies and the python"${PY_VERSION}" setup.py call.
set -e

SUPPORTED_PY_VERSION=(3.7 3.8 3.9 3.10)
PY_VERSION="3.7"
NVIDIA_APEX_URL="@NVIDIA_APEX_URL@"
NVIDIA_APEX_COMMIT="@NVIDIA_APEX_COMMIT@"

usage() {
    echo "usage: bash scripts/build.sh --python=3.7|3.8|3.9|3.10" >&2
}

for arg in "$@"; do
    case "$arg" in
        --python=*) PY_VERSION="${arg#--python=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown option: $arg" >&2; usage; exit 1 ;;
    esac
done

supported=0
for version in "${SUPPORTED_PY_VERSION[@]}"; do
    if [ "$version" = "$PY_VERSION" ]; then
        supported=1
    fi
done
if [ "$supported" -ne 1 ]; then
    echo "build.sh: PY_VERSION=${PY_VERSION} is not supported; use one of ${SUPPORTED_PY_VERSION[*]}" >&2
    exit 1
fi

ROOT_DIR="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
cd "$ROOT_DIR"

echo "build.sh: cloning ${NVIDIA_APEX_URL}"
git clone "$NVIDIA_APEX_URL" apex
cd apex
git checkout "$NVIDIA_APEX_COMMIT"
patch -p1 < ../patch/npu.patch
cp -r ../src/apex/* ./apex/
cp -r ../tests/* ./tests/

python"${PY_VERSION}" setup.py --cpp_ext bdist_wheel
echo "build.sh: wheel in ${ROOT_DIR}/apex/dist"
"""

ASCEND_NPU_INIT = '''\
"""NPU helpers that Ascend's build copies into apex (npuenv test world)."""

DEVICE = "npu"


def flat_size(sizes):
    """Elements needed to hold tensors of ``sizes`` in one flat buffer (via the C extension)."""
    import apex_C

    return apex_C.flatten_size(list(sizes))
'''

ASCEND_TEST = '''\
"""Test of the NPU helpers (npuenv test world); copied into apex/tests by build.sh."""


def test_flat_size():
    from apex.npu import flat_size

    assert flat_size([2, 3, 4]) == 9
'''


def ascend_build_sh(nvidia_apex_commit: str) -> str:
    """The build script with NVIDIA apex's URL and commit filled in."""
    return ASCEND_BUILD_SH.replace("@NVIDIA_APEX_URL@", NVIDIA_APEX_URL) \
        .replace("@NVIDIA_APEX_COMMIT@", nvidia_apex_commit)


def ascend_apex_history(nvidia_apex_commit: str) -> List[Commit]:
    pin = Commit("Build apex for Ascend NPUs", "2025-02-10T10:00:00", {
        "README.md": "# apex for Ascend (npuenv test world)\n\nBuild: `bash scripts/build.sh --python=3.10`; "
                     "the wheel lands in apex/dist/.\n",
        "scripts/build.sh": ascend_build_sh(nvidia_apex_commit),
        "patch/npu.patch": npu_patch(),
        "src/apex/npu/__init__.py": ASCEND_NPU_INIT,
        "tests/npu/test_flat_size.py": ASCEND_TEST,
    })
    later = Commit("Document the build", "2025-05-20T10:00:00", {
        "README.md": "# apex for Ascend (npuenv test world)\n\nBuild: `bash scripts/build.sh --python=3.10`, "
                     "with torch and setuptools<=65.7.0 installed; the wheel lands in apex/dist/.\n",
    })
    return [pin, later]


# -- dlpack and dmlc-core (decord's submodules) ---------------------------------------------------

DLPACK_H = """\
/*!
 * dlpack.h of the npuenv test world: a stand-in header at the path decord includes.
 */
#ifndef DLPACK_DLPACK_H_
#define DLPACK_DLPACK_H_

#define DLPACK_WORLD_VERSION 6

#ifdef __cplusplus
extern "C" {
#endif

/*! \\brief A two-dimensional shape. */
typedef struct {
  int rows;
  int cols;
} DLWorldShape;

/*! \\brief Number of elements of a shape. */
static inline int DLWorldShapeSize(DLWorldShape shape) { return shape.rows * shape.cols; }

#ifdef __cplusplus
}  /* extern "C" */
#endif
#endif  /* DLPACK_DLPACK_H_ */
"""

DMLC_BASE_H = """\
/*!
 * dmlc/base.h of the npuenv test world: a stand-in header at the path decord includes.
 */
#ifndef DMLC_BASE_H_
#define DMLC_BASE_H_

#define DMLC_WORLD_CORE 1

namespace dmlc {

/*! \\brief ``value`` limited to [low, high]. */
template <typename T>
inline T Clamp(T value, T low, T high) {
  return value < low ? low : (high < value ? high : value);
}

}  // namespace dmlc
#endif  // DMLC_BASE_H_
"""

DMLC_LOGGING_H = """\
/*!
 * dmlc/logging.h of the npuenv test world: CHECK_GE and LOG(FATAL) that throw std::runtime_error.
 */
#ifndef DMLC_LOGGING_H_
#define DMLC_LOGGING_H_

#include <sstream>
#include <stdexcept>
#include <string>

#include "./base.h"

namespace dmlc {

class LogMessageFatal {
 public:
  LogMessageFatal(const char* file, int line) { stream_ << file << ":" << line << ": "; }
  std::ostringstream& stream() { return stream_; }
  ~LogMessageFatal() noexcept(false) { throw std::runtime_error(stream_.str()); }

 private:
  std::ostringstream stream_;
};

}  // namespace dmlc

#define LOG_FATAL ::dmlc::LogMessageFatal(__FILE__, __LINE__).stream()
#define LOG(severity) LOG_##severity
#define CHECK_GE(x, y) \\
  if ((x) >= (y)) {} else ::dmlc::LogMessageFatal(__FILE__, __LINE__).stream() << "Check failed: " #x " >= " #y ": "

#endif  // DMLC_LOGGING_H_
"""


def dlpack_history() -> List[Commit]:
    pin = Commit("dlpack header", "2020-06-01T10:00:00", {
        "README.md": "# dlpack (npuenv test world)\n\nStand-in header for decord's 3rdparty/dlpack.\n",
        "include/dlpack/dlpack.h": DLPACK_H,
    })
    later = Commit("Later dlpack", "2022-01-01T10:00:00", {"README.md": "# dlpack (npuenv test world)\n\nMoved on.\n"})
    return [pin, later]


def dmlc_core_history() -> List[Commit]:
    pin = Commit("dmlc-core headers", "2020-06-01T10:00:00", {
        "README.md": "# dmlc-core (npuenv test world)\n\nStand-in headers for decord's 3rdparty/dmlc-core.\n",
        "include/dmlc/base.h": DMLC_BASE_H,
        "include/dmlc/logging.h": DMLC_LOGGING_H,
    })
    later = Commit("Later dmlc-core", "2022-01-01T10:00:00",
                   {"README.md": "# dmlc-core (npuenv test world)\n\nMoved on.\n"})
    return [pin, later]


# -- decord v0.6.0 ------------------------------------------------------------------------------

DECORD_CMAKE = """\
# CMakeLists.txt of the npuenv test world's decord (our own, shaped like decord v0.6.0's interface:
# CMake >= 3.8.2, C++11, USE_CUDA, libdecord.so in the build folder, headers from two submodules).
cmake_minimum_required(VERSION 3.8.2)
project(decord C CXX)

option(USE_CUDA "Build with CUDA" OFF)
option(WORLD_BUILD_VIDEO "npuenv test world: compile src/video against the system FFmpeg (OFF: skip it)" ON)

if(USE_CUDA)
  message(FATAL_ERROR "USE_CUDA is ON, but the npuenv test world has no CUDA: configure with -DUSE_CUDA=0")
endif()

set(CMAKE_CXX_STANDARD 11)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()

include_directories(include 3rdparty/dlpack/include 3rdparty/dmlc-core/include)
set(DECORD_SOURCES src/runtime/c_runtime_api.cc)

if(WORLD_BUILD_VIDEO)
  # Like upstream (cmake/modules/FFmpeg.cmake), FFmpeg is required and its absence stops the configure.
  find_package(PkgConfig)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(FFMPEG libavcodec libavformat libavutil libavdevice libavfilter libswresample libswscale)
  endif()
  if(NOT FFMPEG_FOUND)
    message(FATAL_ERROR "Unable to find FFMPEG automatically, please specify FFMPEG location")
  endif()
  include_directories(${FFMPEG_INCLUDE_DIRS})
  list(APPEND DECORD_SOURCES src/video/video_reader.cc src/video/world_decoder.cc)
endif()

add_library(decord SHARED ${DECORD_SOURCES})
if(WORLD_BUILD_VIDEO)
  target_link_libraries(decord ${FFMPEG_LDFLAGS})
endif()
"""

DECORD_RUNTIME_CC = """\
/*!
 * c_runtime_api.cc of the npuenv test world's decord: the C entry points python/decord loads.
 */
#include <decord/runtime/c_runtime_api.h>
#include <dlpack/dlpack.h>
#include <dmlc/base.h>

extern "C" int decord_answer() {
  DLWorldShape shape = {6, 7};
  return dmlc::Clamp(DLWorldShapeSize(shape), 0, 1000);
}

extern "C" int decord_dlpack_version() {
  return DLPACK_WORLD_VERSION;
}
"""

DECORD_RUNTIME_H = """\
/*!
 * c_runtime_api.h of the npuenv test world's decord.
 */
#ifndef DECORD_RUNTIME_C_RUNTIME_API_H_
#define DECORD_RUNTIME_C_RUNTIME_API_H_

#ifdef __cplusplus
extern "C" {
#endif

/*! \\brief 42, computed from the dlpack and dmlc-core headers. */
int decord_answer();
/*! \\brief The stand-in dlpack header's version. */
int decord_dlpack_version();
/* The rest exist only in a build with video (the default; not with -DWORLD_BUILD_VIDEO=OFF). */
/*! \\brief Index of the best video stream of ``path``, or -1. */
int decord_video_stream(const char* path);
/*! \\brief Every frame of ``path`` decoded to RGB24, or NULL (see decord_world_last_error). */
void* decord_world_open(const char* path);
int decord_world_frame_count(void* video);
int decord_world_width(void* video);
int decord_world_height(void* video);
/*! \\brief Copy frame ``index`` (height * width * 3 bytes) into ``buffer``; 0 on success. */
int decord_world_copy_frame(void* video, int index, unsigned char* buffer);
void decord_world_close(void* video);
const char* decord_world_last_error();

#ifdef __cplusplus
}
#endif
#endif  // DECORD_RUNTIME_C_RUNTIME_API_H_
"""

# Lines 20-26 must be exactly the block of FFmpeg includes that npuenv's FFmpeg 5 patch targets.
DECORD_FFMPEG_COMMON_H = """\
/*!
 * ffmpeg_common.h of the npuenv test world's decord (our own lines, shaped like decord v0.6.0's
 * src/video/ffmpeg/ffmpeg_common.h where npuenv's FFmpeg 5 patch edits it).
 *
 * Compiled by default (-DWORLD_BUILD_VIDEO=OFF skips it). With FFmpeg >= 5, libavcodec/avcodec.h no longer
 * declares AVBSFContext: the patch adds libavcodec/bsf.h next to it.
 */
#ifndef DECORD_VIDEO_FFMPEG_FFMPEG_COMMON_H_
#define DECORD_VIDEO_FFMPEG_FFMPEG_COMMON_H_

#include <memory>
#include <string>

#include <dmlc/logging.h>

// The FFmpeg headers are C headers: keep their declarations unmangled.
// The block below is where the FFmpeg 5 patch adds an include, after
// libavcodec/avcodec.h; npuenv's tests rely on it being lines 20-26.

#ifdef __cplusplus
extern "C" {
#endif
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavfilter/avfilter.h>
#include <libavutil/avutil.h>
#ifdef __cplusplus
}
#endif

namespace decord {
namespace ffmpeg {

struct AVFormatContextDeleter {
  void operator()(AVFormatContext* ctx) const { avformat_close_input(&ctx); }
};

struct AVBSFContextDeleter {
  void operator()(AVBSFContext* ctx) const { av_bsf_free(&ctx); }
};

using AVFormatContextPtr = std::unique_ptr<AVFormatContext, AVFormatContextDeleter>;
using AVBSFContextPtr = std::unique_ptr<AVBSFContext, AVBSFContextDeleter>;

}  // namespace ffmpeg
}  // namespace decord
#endif  // DECORD_VIDEO_FFMPEG_FFMPEG_COMMON_H_
"""

DECORD_VIDEO_READER_H = """\
/*!
 * video_reader.h of the npuenv test world's decord.
 */
#ifndef DECORD_VIDEO_VIDEO_READER_H_
#define DECORD_VIDEO_VIDEO_READER_H_

#include <cstdint>
#include <string>

#include "ffmpeg/ffmpeg_common.h"

namespace decord {

class VideoReader {
 public:
  explicit VideoReader(const std::string& path);
  void SetVideoStream(int stream_nb = -1);
  int ActiveStream() const { return actv_stm_idx_; }
  int64_t FrameCount() const;
  int Width() const;
  int Height() const;
  double AverageFPS() const;
  double DurationSeconds() const;
  std::string Describe() const;
  const std::string& CodecName() const { return codec_name_; }

 private:
  const AVStream* ActiveAVStream() const;

  std::string path_;
  ffmpeg::AVFormatContextPtr fmt_ctx_;
  ffmpeg::AVBSFContextPtr bsf_ctx_;
  int actv_stm_idx_ = -1;
  std::string codec_name_;
};

}  // namespace decord
#endif  // DECORD_VIDEO_VIDEO_READER_H_
"""

# The SetVideoStream block starts at line 115 (the blank line before it), where npuenv's FFmpeg 5
# patch expects it; the test world's tests check that.
DECORD_VIDEO_READER_CC = """\
/*!
 * video_reader.cc of the npuenv test world's decord.
 *
 * Our own lines, shaped like decord v0.6.0's src/video/video_reader.cc only where npuenv's
 * FFmpeg 5 patch edits it: the start of VideoReader::SetVideoStream. The default build compiles
 * it against the system FFmpeg, as upstream; -DWORLD_BUILD_VIDEO=OFF (world only) skips it.
 *
 * What changed in FFmpeg 5 that matters here: av_find_best_stream hands back the decoder it
 * picked through a `const AVCodec **`. In C++ an `AVCodec **` does not convert to that, so the
 * unpatched declaration `AVCodec *dec;` fails to compile with FFmpeg >= 5; the patch makes it
 * `const AVCodec *dec;`, which FFmpeg 4 accepts too.
 *
 * The reader here only opens a file, picks its best video stream and reports what it found:
 * enough for a C entry point that tests call through ctypes (decord_video_stream), and for the
 * FFmpeg headers, the bitstream-filter type and the decoder pointer to be compiled for real.
 */
#include "video_reader.h"

#include <decord/runtime/c_runtime_api.h>

#include <cstring>
#include <exception>
#include <sstream>

namespace decord {

namespace {

/*! \\brief FFmpeg's error text for ``code``. */
std::string ErrorText(int code) {
    char buffer[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, buffer, sizeof(buffer));
    return std::string(buffer);
}

/*! \\brief Frames per second of ``rate``, or 0 when it is unknown. */
double RateToFPS(AVRational rate) {
    if (rate.num <= 0 || rate.den <= 0) return 0.0;
    return static_cast<double>(rate.num) / rate.den;
}

/*! \\brief Whether ``stream`` carries video. */
bool IsVideo(const AVStream *stream) {
    return stream != nullptr && stream->codecpar != nullptr &&
           stream->codecpar->codec_type == AVMEDIA_TYPE_VIDEO;
}

}  // namespace

VideoReader::VideoReader(const std::string& path) : path_(path) {
    AVFormatContext *raw = nullptr;
    int ret = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
    CHECK_GE(ret, 0) << "ERROR cannot open video file: " << path << " (" << ErrorText(ret) << ")";
    fmt_ctx_.reset(raw);
    ret = avformat_find_stream_info(fmt_ctx_.get(), nullptr);
    CHECK_GE(ret, 0) << "ERROR cannot read the stream info of " << path << " (" << ErrorText(ret) << ")";
    SetVideoStream(-1);
}

const AVStream* VideoReader::ActiveAVStream() const {
    if (!fmt_ctx_ || actv_stm_idx_ < 0) return nullptr;
    const AVStream *stream = fmt_ctx_->streams[actv_stm_idx_];
    return IsVideo(stream) ? stream : nullptr;
}

int64_t VideoReader::FrameCount() const {
    const AVStream *stream = ActiveAVStream();
    if (stream == nullptr) return 0;
    if (stream->nb_frames > 0) return stream->nb_frames;
    double seconds = fmt_ctx_->duration > 0 ? static_cast<double>(fmt_ctx_->duration) / AV_TIME_BASE : 0.0;
    return static_cast<int64_t>(seconds * AverageFPS() + 0.5);
}

int VideoReader::Width() const {
    const AVStream *stream = ActiveAVStream();
    return stream == nullptr ? 0 : stream->codecpar->width;
}

int VideoReader::Height() const {
    const AVStream *stream = ActiveAVStream();
    return stream == nullptr ? 0 : stream->codecpar->height;
}

double VideoReader::AverageFPS() const {
    const AVStream *stream = ActiveAVStream();
    return stream == nullptr ? 0.0 : RateToFPS(stream->avg_frame_rate);
}

double VideoReader::DurationSeconds() const {
    const AVStream *stream = ActiveAVStream();
    if (stream != nullptr && stream->duration > 0) {
        return static_cast<double>(stream->duration) * stream->time_base.num / stream->time_base.den;
    }
    return fmt_ctx_ && fmt_ctx_->duration > 0 ? static_cast<double>(fmt_ctx_->duration) / AV_TIME_BASE : 0.0;
}

std::string VideoReader::Describe() const {
    std::ostringstream out;
    out << path_ << ": stream " << actv_stm_idx_;
    if (!codec_name_.empty()) out << " (" << codec_name_ << ")";
    out << ", " << Width() << "x" << Height();
    out << ", " << FrameCount() << " frames";
    out << " at " << AverageFPS() << " fps";
    out << ", " << DurationSeconds() << " s";
    return out.str();
}

// SetVideoStream picks the video stream to decode: the best one when stream_nb is -1,
// else the one asked for. It fails (CHECK_GE throws) when the file has no such stream.
//
// The decoder that av_find_best_stream returns is only read here (its name). Keeping the
// declaration of `dec` on its own line, right after the fmt_ctx_ check, is what lets the
// FFmpeg 5 patch change it with three lines of context on each side (at line 115 of
// this file, as in decord v0.6.0).

void VideoReader::SetVideoStream(int stream_nb) {
    if (!fmt_ctx_) return;
    AVCodec *dec;
    int st_nb = av_find_best_stream(fmt_ctx_.get(), AVMEDIA_TYPE_VIDEO, stream_nb, -1, &dec, 0);
    // LOG(INFO) << "find best stream: " << st_nb;
    CHECK_GE(st_nb, 0) << "ERROR cannot find video stream with wanted index: " << stream_nb;
    actv_stm_idx_ = st_nb;
    codec_name_ = dec ? dec->name : "";
}

}  // namespace decord

extern "C" int decord_video_stream(const char* path) {
    try {
        decord::VideoReader reader(path);
        return reader.ActiveStream();
    } catch (const std::exception&) {
        return -1;
    }
}

extern "C" int64_t decord_video_frame_count(const char* path) {
    try {
        decord::VideoReader reader(path);
        return reader.FrameCount();
    } catch (const std::exception&) {
        return -1;
    }
}

extern "C" int decord_video_describe(const char* path, char* buffer, int size) {
    std::string text;
    try {
        text = decord::VideoReader(path).Describe();
    } catch (const std::exception& error) {
        text = error.what();
    }
    if (buffer != nullptr && size > 0) {
        std::strncpy(buffer, text.c_str(), static_cast<size_t>(size) - 1);
        buffer[size - 1] = '\\0';
    }
    return static_cast<int>(text.size());
}
"""

DECORD_WORLD_DECODER_CC = """\
/*!
 * world_decoder.cc of the npuenv test world's decord (our own code; compiled unless
 * -DWORLD_BUILD_VIDEO=OFF): decodes every frame of a small video to RGB24 through FFmpeg, for
 * python/decord's VideoReader. Like video_reader.cc it includes ffmpeg_common.h, so it needs the
 * FFmpeg 5 patch on FFmpeg >= 5.
 */
#include <decord/runtime/c_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "ffmpeg/ffmpeg_common.h"

extern "C" {
#include <libswscale/swscale.h>
}

namespace decord {
namespace {

struct Frames {
    int width = 0;
    int height = 0;
    std::vector<std::vector<uint8_t>> rgb;
};

struct CodecContextDeleter {
    void operator()(AVCodecContext* ctx) const { avcodec_free_context(&ctx); }
};
struct FrameDeleter {
    void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct PacketDeleter {
    void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct ScaleDeleter {
    void operator()(SwsContext* sws) const { sws_freeContext(sws); }
};

thread_local std::string last_error;

class Decoder {
 public:
    Decoder(AVCodecContext* ctx, Frames* out) : ctx_(ctx), out_(out), frame_(av_frame_alloc()) {}

    void Send(const AVPacket* packet) {
        CHECK_GE(avcodec_send_packet(ctx_, packet), 0) << "ERROR the decoder refused a packet";
        while (avcodec_receive_frame(ctx_, frame_.get()) == 0) {
            Convert(frame_.get());
            av_frame_unref(frame_.get());
        }
    }

 private:
    void Convert(const AVFrame* frame) {
        if (!sws_) {
            sws_.reset(sws_getContext(frame->width, frame->height, static_cast<AVPixelFormat>(frame->format),
                                      out_->width, out_->height, AV_PIX_FMT_RGB24, SWS_BILINEAR,
                                      nullptr, nullptr, nullptr));
            CHECK_GE(sws_ != nullptr, true) << "ERROR cannot convert frames to RGB24";
        }
        std::vector<uint8_t> rgb(static_cast<size_t>(out_->width) * out_->height * 3);
        uint8_t* planes[4] = {rgb.data(), nullptr, nullptr, nullptr};
        int strides[4] = {out_->width * 3, 0, 0, 0};
        sws_scale(sws_.get(), frame->data, frame->linesize, 0, frame->height, planes, strides);
        out_->rgb.push_back(std::move(rgb));
    }

    AVCodecContext* ctx_;
    Frames* out_;
    std::unique_ptr<AVFrame, FrameDeleter> frame_;
    std::unique_ptr<SwsContext, ScaleDeleter> sws_;
};

Frames* DecodeAll(const char* path) {
    AVFormatContext* raw = nullptr;
    CHECK_GE(avformat_open_input(&raw, path, nullptr, nullptr), 0) << "ERROR cannot open video file: " << path;
    ffmpeg::AVFormatContextPtr fmt(raw);
    CHECK_GE(avformat_find_stream_info(fmt.get(), nullptr), 0) << "ERROR cannot read the stream info of " << path;
    int index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    CHECK_GE(index, 0) << "ERROR cannot find a video stream in " << path;
    const AVCodecParameters* par = fmt->streams[index]->codecpar;
    const AVCodec* codec = avcodec_find_decoder(par->codec_id);
    CHECK_GE(codec != nullptr, true) << "ERROR no decoder for the video stream of " << path;
    std::unique_ptr<AVCodecContext, CodecContextDeleter> ctx(avcodec_alloc_context3(codec));
    CHECK_GE(avcodec_parameters_to_context(ctx.get(), par), 0) << "ERROR bad codec parameters in " << path;
    CHECK_GE(avcodec_open2(ctx.get(), codec, nullptr), 0) << "ERROR cannot open the decoder for " << path;

    std::unique_ptr<Frames> out(new Frames);
    out->width = par->width;
    out->height = par->height;
    Decoder decoder(ctx.get(), out.get());
    std::unique_ptr<AVPacket, PacketDeleter> packet(av_packet_alloc());
    while (av_read_frame(fmt.get(), packet.get()) >= 0) {
        if (packet->stream_index == index) decoder.Send(packet.get());
        av_packet_unref(packet.get());
    }
    decoder.Send(nullptr);  // flush
    return out.release();
}

const Frames* Get(void* video) { return static_cast<const Frames*>(video); }

}  // namespace
}  // namespace decord

extern "C" void* decord_world_open(const char* path) {
    try {
        return decord::DecodeAll(path);
    } catch (const std::exception& error) {
        decord::last_error = error.what();
        return nullptr;
    }
}

extern "C" int decord_world_frame_count(void* video) {
    return static_cast<int>(decord::Get(video)->rgb.size());
}

extern "C" int decord_world_width(void* video) { return decord::Get(video)->width; }

extern "C" int decord_world_height(void* video) { return decord::Get(video)->height; }

extern "C" int decord_world_copy_frame(void* video, int index, unsigned char* buffer) {
    const decord::Frames* frames = decord::Get(video);
    if (index < 0 || static_cast<size_t>(index) >= frames->rgb.size()) return -1;
    std::memcpy(buffer, frames->rgb[index].data(), frames->rgb[index].size());
    return 0;
}

extern "C" void decord_world_close(void* video) { delete static_cast<decord::Frames*>(video); }

extern "C" const char* decord_world_last_error() { return decord::last_error.c_str(); }
"""

DECORD_LIBINFO = '''\
"""Where libdecord.so is, and decord's version (npuenv test world)."""
import os

__version__ = "@VERSION@"


def find_lib_path():
    """Existing paths of libdecord.so: DECORD_LIBRARY_PATH, LD_LIBRARY_PATH, <repo>/build, the package.

    Raises RuntimeError when there is none.
    """
    here = os.path.dirname(os.path.abspath(os.path.expanduser(__file__)))
    package = os.path.dirname(here)
    dirs = []
    for variable in ("DECORD_LIBRARY_PATH", "LD_LIBRARY_PATH"):
        dirs += [d for d in os.environ.get(variable, "").split(os.pathsep) if d]
    dirs += [os.path.join(package, "..", "..", "build"), package]
    found = [os.path.join(d, "libdecord.so") for d in dirs]
    found = [path for path in found if os.path.isfile(path)]
    if not found:
        raise RuntimeError("Cannot find libdecord.so; looked in: " + ", ".join(dirs))
    return found
'''

DECORD_INIT = '''\
"""decord of the npuenv test world: a ctypes front to libdecord.so.

``answer()`` always works. ``VideoReader`` needs a libdecord.so built with video (the default; not with
-DWORLD_BUILD_VIDEO=OFF). It decodes every frame to RGB24 up front: for the world's tiny test videos only.
Its frames are ``NDArray`` objects with ``shape`` and ``asnumpy()``, like decord's.
"""
import ctypes
import os

from ._ffi.libinfo import __version__, find_lib_path

_LIB = ctypes.CDLL(find_lib_path()[0], ctypes.RTLD_GLOBAL)
_VIDEO = hasattr(_LIB, "decord_world_open")
if _VIDEO:
    _LIB.decord_world_open.restype = ctypes.c_void_p
    _LIB.decord_world_open.argtypes = [ctypes.c_char_p]
    _LIB.decord_world_last_error.restype = ctypes.c_char_p
    for _name in ("decord_world_frame_count", "decord_world_width", "decord_world_height", "decord_world_close"):
        getattr(_LIB, _name).argtypes = [ctypes.c_void_p]
    _LIB.decord_world_copy_frame.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]


def answer():
    """An int computed in C++ by libdecord.so (42)."""
    return int(_LIB.decord_answer())


def video_stream(path):
    """Index of the best video stream of ``path``, or -1."""
    _require_video()
    return int(_LIB.decord_video_stream(os.fsencode(path)))


def _require_video():
    if not _VIDEO:
        raise RuntimeError("this libdecord.so was built without video support: "
                           "configure with -DWORLD_BUILD_VIDEO=ON, the default (npuenv test world)")


class NDArray(object):
    """uint8 pixels of one frame (height, width, 3) or of a batch (n, height, width, 3)."""

    def __init__(self, data, shape):
        self._data = data
        self.shape = tuple(shape)

    def asnumpy(self):
        import numpy

        return numpy.frombuffer(self._data, dtype=numpy.uint8).reshape(self.shape).copy()


class VideoReader(object):
    """Frames of a video file, decoded by libdecord.so."""

    def __init__(self, uri):
        _require_video()
        self._handle = _LIB.decord_world_open(os.fsencode(uri))
        if not self._handle:
            raise RuntimeError(_LIB.decord_world_last_error().decode())
        self._length = _LIB.decord_world_frame_count(self._handle)
        self._shape = (_LIB.decord_world_height(self._handle), _LIB.decord_world_width(self._handle), 3)

    def __len__(self):
        return self._length

    def _frame_bytes(self, index):
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("frame index %d out of range (%d frames)" % (index, self._length))
        buffer = ctypes.create_string_buffer(self._shape[0] * self._shape[1] * 3)
        _LIB.decord_world_copy_frame(self._handle, index, buffer)
        return buffer.raw

    def __getitem__(self, index):
        return NDArray(self._frame_bytes(index), self._shape)

    def get_batch(self, indices):
        data = b"".join(self._frame_bytes(int(i)) for i in indices)
        return NDArray(data, (len(indices),) + self._shape)

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            _LIB.decord_world_close(handle)
'''

DECORD_SETUP = '''\
"""setup.py of the npuenv test world's decord: packs ../build/libdecord.so into the wheel."""
import os
import shutil

from setuptools import find_packages, setup
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def load_libinfo():
    """Run decord/_ffi/libinfo.py without importing decord (which would load the library)."""
    namespace = {"__file__": os.path.join(HERE, "decord", "_ffi", "libinfo.py")}
    with open(namespace["__file__"]) as handle:
        exec(compile(handle.read(), namespace["__file__"], "exec"), namespace)
    return namespace


class BinaryDistribution(Distribution):
    """The wheel carries a shared library: make it platform-specific."""

    def has_ext_modules(self):
        return True


LIBINFO = load_libinfo()
LIB = LIBINFO["find_lib_path"]()[0]
TARGET = os.path.join(HERE, "decord", "libdecord.so")
if os.path.abspath(LIB) != TARGET:
    shutil.copy(LIB, TARGET)

setup(
    name="decord",
    version=LIBINFO["__version__"],
    description="Synthetic decord (npuenv test world)",
    packages=find_packages(include=["decord", "decord.*"]),
    package_data={"decord": ["libdecord.so"]},
    install_requires=["numpy"],  # like upstream: frames come back as numpy arrays
    distclass=BinaryDistribution,
    zip_safe=False,
)
'''

DECORD_GITMODULES = f"""\
[submodule "3rdparty/dmlc-core"]
\tpath = 3rdparty/dmlc-core
\turl = {DMLC_CORE_URL}
[submodule "3rdparty/dlpack"]
\tpath = 3rdparty/dlpack
\turl = {DLPACK_URL}
"""


def decord_history(dlpack_commit: str, dmlc_core_commit: str) -> List[Commit]:
    pin = Commit("Release 0.6.0", "2021-06-14T10:00:00", {
        "README.md": "# decord (npuenv test world)\n\nBuild: `cmake -S . -B build -DUSE_CUDA=0 "
                     "-DCMAKE_BUILD_TYPE=Release && cmake --build build`, then build python/.\n",
        ".gitmodules": DECORD_GITMODULES,
        "3rdparty/dlpack": Gitlink(dlpack_commit),
        "3rdparty/dmlc-core": Gitlink(dmlc_core_commit),
        "CMakeLists.txt": DECORD_CMAKE,
        "include/decord/runtime/c_runtime_api.h": DECORD_RUNTIME_H,
        "src/runtime/c_runtime_api.cc": DECORD_RUNTIME_CC,
        "src/video/ffmpeg/ffmpeg_common.h": DECORD_FFMPEG_COMMON_H,
        "src/video/video_reader.h": DECORD_VIDEO_READER_H,
        "src/video/video_reader.cc": DECORD_VIDEO_READER_CC,
        "src/video/world_decoder.cc": DECORD_WORLD_DECODER_CC,
        "python/setup.py": DECORD_SETUP,
        "python/decord/__init__.py": DECORD_INIT,
        "python/decord/_ffi/__init__.py": "",
        "python/decord/_ffi/libinfo.py": DECORD_LIBINFO.replace("@VERSION@", "0.6.0"),
    })
    later = Commit("Start 0.6.1", "2022-03-01T10:00:00", {
        "python/decord/_ffi/libinfo.py": DECORD_LIBINFO.replace("@VERSION@", "0.6.1.dev0"),
    })
    return [pin, later]


# -- the FFmpeg 5 changes, for tests that build the video sources without npuenv's patch file -----

FFMPEG5_CHANGES: Tuple[Tuple[str, str, str], ...] = (
    ("src/video/ffmpeg/ffmpeg_common.h", "#include <libavcodec/avcodec.h>\n",
     "#include <libavcodec/avcodec.h>\n#include <libavcodec/bsf.h>\n"),
    ("src/video/video_reader.cc", "    AVCodec *dec;\n", "    const AVCodec *dec;\n"),
)


def apply_ffmpeg5_changes(checkout: Path) -> None:
    """Make the two FFmpeg 5 changes in a decord checkout by plain text replacement."""
    for relpath, old, new in FFMPEG5_CHANGES:
        path = Path(checkout) / relpath
        text = path.read_text()
        if text.count(old) != 1:
            raise ValueError(f"{relpath}: expected one {old.strip()!r}")
        path.write_text(text.replace(old, new))


# -- tools and the test video --------------------------------------------------------------------

TEST_VIDEO_ARGS: Tuple[str, ...] = ("-f", "lavfi", "-i", "testsrc=duration=2:size=64x48:rate=10",
                                    "-pix_fmt", "yuv420p")
TEST_VIDEO_FRAMES = 20
TEST_VIDEO_SHAPE = (48, 64, 3)


def missing_tools(names: Sequence[str]) -> List[str]:
    """The names in ``names`` that are not on PATH."""
    return [name for name in names if shutil.which(name) is None]


def missing_reason(names: Sequence[str]) -> Optional[str]:
    """A skip reason naming the missing tools, or None when all are on PATH."""
    missing = missing_tools(names)
    return f"needs {', '.join(missing)} on PATH" if missing else None


def make_test_video(path: Path) -> Path:
    """Write a 2 s, 64x48, 10 fps test-pattern video (20 frames) with the real ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FileNotFoundError("ffmpeg is not on PATH (apt-get install ffmpeg)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", *TEST_VIDEO_ARGS, str(path)], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    return path


# -- building the repos ----------------------------------------------------------------------------

def build_source_upstreams(paths: Dict[str, Path]) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, str]]:
    """Build nvidia-apex, dlpack, dmlc-core, apex and decord at ``paths`` (short name -> bare repo path).

    Returns (pins, tips, nested pins): pins and tips of ``apex`` and ``decord``; the pinned commits of
    the repos their own code fetches (nvidia-apex, dlpack, dmlc-core), which npuenv's spec never pins.
    """
    nv = build_repo(paths["nvidia-apex"], nvidia_apex_history())
    dl = build_repo(paths["dlpack"], dlpack_history(), head="main")
    dc = build_repo(paths["dmlc-core"], dmlc_core_history(), head="main")
    apex = build_repo(paths["apex"], ascend_apex_history(nv[0]))
    decord = build_repo(paths["decord"], decord_history(dl[0], dc[0]), {"refs/tags/v0.6.0": 0})
    pins = {"apex": apex[0], "decord": decord[0]}
    tips = {"apex": apex[-1], "decord": decord[-1], "nvidia-apex": nv[-1], "dlpack": dl[-1], "dmlc-core": dc[-1]}
    nested = {"nvidia-apex": nv[0], "dlpack": dl[0], "dmlc-core": dc[0]}
    return pins, tips, nested
