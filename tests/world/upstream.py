"""Synthetic upstream repositories for the test world, built as bare repos with ``git fast-import``.

This module holds the machinery and the MindSpeed-MM, MindSpeed and Megatron-LM repos; ``builds``
holds the repos npuenv builds from source (apex, decord) and those they fetch themselves.

Each repo lives at ``<git_root>/<host>/<owner>/<name>.git``, so a mirror rule such as
``https://gitee.com/`` -> ``<url>/git/gitee.com/`` maps the real URL onto it. Identities and dates
are fixed, so every build yields the same commit shas. The files are our own writing, shaped like
the real projects only where npuenv touches them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

from tests.world.mm_convert import CONVERT_SCRIPT
from tests.world.mm_examples import EXAMPLE_FILES

IDENTITY = "npuenv test world <world@npuenv.invalid>"

# Repos that npuenv's spec pins: their commits are ``World.commits``.
REPOS: Dict[str, str] = {
    "mindspeed-mm": "gitee.com/ascend/MindSpeed-MM.git",
    "mindspeed": "gitee.com/ascend/MindSpeed.git",
    "megatron": "github.com/NVIDIA/Megatron-LM.git",
    "apex": "gitee.com/ascend/apex.git",
    "decord": "github.com/dmlc/decord.git",
}

# Repos that upstream code fetches by itself (apex's build.sh clones NVIDIA apex; decord's submodules):
# served by the world, never pinned by npuenv's spec. Their commits are ``Upstreams.nested_pins``.
NESTED_REPOS: Dict[str, str] = {
    "nvidia-apex": "github.com/NVIDIA/apex.git",
    "dlpack": "github.com/dmlc/dlpack.git",
    "dmlc-core": "github.com/dmlc/dmlc-core.git",
}
ALL_REPOS: Dict[str, str] = {**REPOS, **NESTED_REPOS}


@dataclass(frozen=True)
class Gitlink:
    """A submodule entry (mode 160000) pointing at ``sha``; pair it with a .gitmodules file."""

    sha: str


Content = Union[str, bytes, Gitlink, None]  # None deletes the path


@dataclass(frozen=True)
class Commit:
    """One commit: its message, ISO date (UTC) and the files it adds, changes or (None) deletes."""

    message: str
    when: str
    files: Mapping[str, Content]


@dataclass(frozen=True)
class Upstreams:
    """The built repos by short name: bare repo paths and branch tips (all repos), the commits npuenv's
    spec pins (``pins``: REPOS only) and those upstream code fetches itself (``nested_pins``)."""

    git_root: Path
    paths: Dict[str, Path]
    pins: Dict[str, str]
    tips: Dict[str, str]
    real_urls: Dict[str, str] = field(default_factory=lambda: {n: f"https://{p}" for n, p in ALL_REPOS.items()})
    nested_pins: Dict[str, str] = field(default_factory=dict)


def git_env() -> Dict[str, str]:
    """os.environ without GIT_* variables, ignoring the user's and system git config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    name, email = IDENTITY[: IDENTITY.index(" <")], IDENTITY[IDENTITY.index("<") + 1 : -1]
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_AUTHOR_NAME=name,
               GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)
    return env


def _git(repo: Path, *args: str, stdin: Optional[bytes] = None) -> str:
    result = subprocess.run(["git", "--git-dir", str(repo), *args], input=stdin, capture_output=True,
                            env=git_env(), check=True)
    return result.stdout.decode().strip()


def _epoch(when: str) -> int:
    return int(datetime.fromisoformat(when).replace(tzinfo=timezone.utc).timestamp())


def _data(payload: Union[str, bytes]) -> bytes:
    raw = payload.encode() if isinstance(payload, str) else payload
    return b"data %d\n%s\n" % (len(raw), raw)


def _commit_block(ref: str, mark: int, commit: Commit, parent: Optional[str]) -> bytes:
    """A fast-import ``commit`` command; ``parent`` is ":<mark>", a sha, or None for a root."""
    stamp = f"{IDENTITY} {_epoch(commit.when)} +0000"
    header = f"commit {ref}\nmark :{mark}\nauthor {stamp}\ncommitter {stamp}\n"
    lines = [header.encode(), _data(commit.message)]
    if parent:
        lines.append(f"from {parent}\n".encode())
    for path, content in sorted(commit.files.items()):
        if content is None:
            lines.append(f"D {path}\n".encode())
        elif isinstance(content, Gitlink):
            lines.append(f"M 160000 {content.sha} {path}\n".encode())
        else:
            mode = "100755" if path.endswith(".sh") else "100644"
            lines += [f"M {mode} inline {path}\n".encode(), _data(content)]
    return b"".join(lines) + b"\n"


def _fast_import(repo: Path, stream: bytes) -> Dict[int, str]:
    """Run git fast-import on ``repo``; returns mark -> commit sha."""
    with tempfile.TemporaryDirectory() as tmp:
        marks = Path(tmp) / "marks"
        _git(repo, "fast-import", "--quiet", f"--export-marks={marks}", stdin=stream)
        pairs = (line.split() for line in marks.read_text().splitlines())
        return {int(mark[1:]): sha for mark, sha in pairs}


def init_bare(path: Path, head: str = "master") -> Path:
    """Create an empty bare repo that serves any sha and whose HEAD is ``refs/heads/<head>``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "-c", "init.defaultBranch=master", "init", "--quiet", "--bare", str(path)],
                   check=True, env=git_env())
    _git(path, "config", "uploadpack.allowAnySHA1InWant", "true")
    if head != "master":
        _git(path, "symbolic-ref", "HEAD", f"refs/heads/{head}")
    return path


def build_repo(path: Path, commits: Sequence[Commit], refs: Mapping[str, int] = {},  # noqa: B006 - read-only
               head: str = "master") -> List[str]:
    """Build a fresh bare repo: ``commits`` in a line on ``head``, plus ``refs`` (full ref -> index).

    Refs under refs/tags/ are lightweight tags. Returns the commit shas in order.
    """
    if path.exists():
        shutil.rmtree(path)
    init_bare(path, head)
    branch = f"refs/heads/{head}"
    blocks = [_commit_block(branch, i + 1, c, f":{i}" if i else None) for i, c in enumerate(commits)]
    blocks += [f"reset {ref}\nfrom :{index + 1}\n\n".encode() for ref, index in refs.items()]
    marks = _fast_import(path, b"".join(blocks))
    return [marks[i + 1] for i in range(len(commits))]


def add_commit(repo: Path, files: Mapping[str, Content], message: str = "Upstream moved on",
               branch: str = "master", when: Optional[str] = None) -> str:
    """Add a commit on ``branch`` of a bare repo (simulates "upstream moved"); returns its sha.

    Without ``when`` the date is one day after the branch tip's, so results stay deterministic.
    """
    parent = _git(repo, "rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}")
    if when is None:
        tip_time = int(_git(repo, "log", "-1", "--format=%ct", parent))
        when = datetime.fromtimestamp(tip_time + 86400, timezone.utc).replace(tzinfo=None).isoformat()
    marks = _fast_import(repo, _commit_block(f"refs/heads/{branch}", 1, Commit(message, when, files), parent))
    return marks[1]


def build_upstreams(git_root: Path) -> Upstreams:
    """(Re)build every world repo under ``git_root``: MindSpeed-MM, MindSpeed, Megatron-LM, Ascend apex,
    decord, and the repos those two fetch themselves (NVIDIA apex, dlpack, dmlc-core)."""
    from tests.world.builds import build_source_upstreams  # builds.py imports this module

    git_root = Path(git_root)
    paths = {name: git_root / relpath for name, relpath in ALL_REPOS.items()}
    mm = build_repo(paths["mindspeed-mm"], _mindspeed_mm_history())
    ms = build_repo(paths["mindspeed"], _mindspeed_history(), {"refs/heads/core_r0.8.0": 2})[1:]
    mg = build_repo(paths["megatron"], _megatron_history(),
                    {"refs/heads/core_r0.8.0": 0, "refs/tags/core_r0.8.0": 0}, head="main")
    pins = {"mindspeed-mm": mm[0], "mindspeed": ms[0], "megatron": mg[0]}
    tips = {"mindspeed-mm": mm[-1], "mindspeed": ms[-1], "megatron": mg[-1]}
    source_pins, source_tips, nested = build_source_upstreams(paths)
    pins.update(source_pins)
    tips.update(source_tips)
    return Upstreams(git_root=git_root, paths=paths, pins=pins, tips=tips, nested_pins=nested)


# -- MindSpeed-MM -----------------------------------------------------------------------------

MM_PYPROJECT = """\
[build-system]
requires = ["setuptools >= 65.0"]
build-backend = "setuptools.build_meta"

[project]
name = "mindspeed-mm"
version = "0.1"
description = "Synthetic stand-in for MindSpeed-MM (npuenv test world)"
readme = "README.md"
requires-python = ">=3.8"
dependencies = ["torch==2.1.0"]

# as upstream's: an exclude list, so namespace folders (the copied megatron/) are packages too
[tool.setuptools]
include-package-data = true

[tool.setuptools.packages.find]
exclude = ["ci*", "docs", "sources", "tests*"]
"""

MM_ATTENTION = '''\
"""Attention core used by the InternVL2.5 examples (npuenv test world).

The fine-tune procedure copies this file over mindspeed/core/transformer/dot_product_attention.py;
``VARIANT`` tells a test which of the two files is in place.
"""
import math

VARIANT = "mindspeed-mm/examples/internvl2.5"


def scaled_scores(query, keys):
    """Dot products of one query vector with each key vector, scaled by 1/sqrt(dim)."""
    scale = 1.0 / math.sqrt(len(query))
    return [scale * sum(q * k for q, k in zip(query, key)) for key in keys]


def attend(query, keys, values):
    """Softmax-weighted sum of ``values`` for one ``query``."""
    scores = scaled_scores(query, keys)
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    width = len(values[0])
    return [sum(w * v[i] for w, v in zip(weights, values)) / total for i in range(width)]
'''



CONVERT_PATH = "examples/internvl2.5/internvl2.5_convert_to_mm_ckpt.py"
MM_INIT = '"""Synthetic MindSpeed-MM package (npuenv test world)."""\n\n__version__ = "0.1"\n'
MM_EXAMPLE_README = "# InternVL2.5\n\nCopy dot_product_attention.py into MindSpeed, then run the script.\n"


def _mindspeed_mm_history() -> List[Commit]:
    pin = Commit("Add InternVL2.5 examples", "2025-04-02T10:00:00", {
        "README.md": "# MindSpeed-MM (test world)\n\nSynthetic multi-modal suite for npuenv's tests.\n",
        "pyproject.toml": MM_PYPROJECT,
        "mindspeed_mm/__init__.py": MM_INIT,
        "examples/internvl2.5/README.md": MM_EXAMPLE_README,
        "examples/internvl2.5/dot_product_attention.py": MM_ATTENTION,
        CONVERT_PATH: CONVERT_SCRIPT,
        **EXAMPLE_FILES,  # the config templates and launch scripts (mm_examples.py)
        "examples/internvl2.5/view.jpg": b"\xff\xd8\xff\xe0npuenv test world: a stand-in, not an image\xff\xd9",
    })
    later = Commit("Retire InternVL2.5 attention override", "2025-07-15T10:00:00", {
        "examples/internvl2.5/dot_product_attention.py": None,
        CONVERT_PATH: None,  # upstream deleted the converter with the attention override (July 2025)
        "README.md": "# MindSpeed-MM (test world)\n\nThe InternVL2.5 attention override has moved on.\n",
    })
    return [pin, later]


# -- MindSpeed --------------------------------------------------------------------------------

# Lines 47 and 48 must be the two pip lines (npuenv's patch targets them, as upstream's).
MS_SETUP = '''\
# Copyright (c) npuenv test world authors.
# Synthetic setup.py shaped like MindSpeed's: no pyproject.toml, and it runs pip on import.
#
# The layout matters to npuenv's tests: the pip call sits on lines 47 and 48.
# Everything else is filler of our own that keeps it there.
import os
import sys
import subprocess

import setuptools

PACKAGE_NAME = "mindspeed"
VERSION = "0.8.0"
HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(path):
    """Return the non-empty, non-comment lines of a requirements file."""
    with open(path) as handle:
        lines = (line.strip() for line in handle)
        return [line for line in lines if line and not line.startswith("#")]


def describe():
    """One-line description used by setuptools."""
    return "Synthetic MindSpeed for the npuenv test world"


def check_python():
    """Refuse interpreters the project never supported."""
    if sys.version_info < (3, 7):
        raise RuntimeError("mindspeed needs Python 3.7 or newer")


def show_requirements(requirements):
    """List what the pip call below installs, for build logs."""
    for requirement in requirements:
        sys.stderr.write("mindspeed requirement: %s\\n" % requirement)


check_python()
os.chdir(HERE)
show_requirements(read_requirements("requirements.txt"))
# Upstream installs its requirements by running pip from setup.py; inside an isolated
# build environment that has no pip, this fails with "No module named pip".
# Setting CI_BUILD=1 skips it.
if os.getenv('CI_BUILD', '0') != '1':
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-r', 'requirements.txt'])

setuptools.setup(name='mindspeed', version='0.8.0', packages=setuptools.find_packages(include=['mindspeed*']))
'''

MS_ATTENTION = '''\
"""Default attention core of MindSpeed (npuenv test world): MindSpeed-MM replaces this file."""

VARIANT = "mindspeed/core"


def dot_product_attention(*args, **kwargs):
    """Placeholder that the InternVL2.5 procedure swaps out."""
    raise NotImplementedError("replace me with examples/internvl2.5/dot_product_attention.py")
'''


def _mindspeed_history() -> List[Commit]:
    """An earlier commit, the pin, and one after it: the real pin has hundreds of ancestors, so a depth-1
    fetch of it makes a shallow checkout (and a git bundle of it needs its shallow boundary recorded)."""
    earlier = Commit("Start MindSpeed", "2024-09-02T10:00:00", {
        "README.md": "# MindSpeed (test world)\n\nEarly history.\n",
    })
    pin = Commit("MindSpeed 0.8.0", "2025-01-13T10:00:00", {
        "README.md": "# MindSpeed (test world)\n\nSynthetic acceleration library for npuenv's tests.\n",
        "setup.py": MS_SETUP,
        "requirements.txt": "decorator\npyyaml\nnumpy\n",  # the real one names numpy too (and 18 more)
        "mindspeed/__init__.py": '"""Synthetic MindSpeed package (npuenv test world)."""\n',
        "mindspeed/core/__init__.py": "",
        "mindspeed/core/transformer/__init__.py": "",
        "mindspeed/core/transformer/dot_product_attention.py": MS_ATTENTION,
    })
    later = Commit("Move on after 0.8.0", "2025-03-01T10:00:00", {
        "requirements.txt": "decorator\npyyaml\nnumpy\nwheel\n",
    })
    return [earlier, pin, later]


# -- Megatron-LM ------------------------------------------------------------------------------

def _megatron_history() -> List[Commit]:
    """core_r0.8.0 has megatron/core/__init__.py but no megatron/__init__.py (checked at baf94af3), so
    `import megatron` from the copied folder yields a namespace package whose __file__ is None."""
    pin = Commit("Megatron core 0.8.0", "2024-07-25T10:00:00", {
        "README.md": "# Megatron-LM (test world)\n\nSynthetic stand-in; only megatron/ is used.\n",
        "megatron/core/__init__.py": '"""Synthetic megatron.core (npuenv test world)."""\n',
        "megatron/core/package_info.py": "MAJOR = 0\nMINOR = 8\nPATCH = 0\n__version__ = '0.8.0'\n",
        "megatron/core/transformer/__init__.py": "",
        "megatron/core/transformer/transformer_config.py":
            '"""Config of the synthetic transformer."""\n\nNUM_LAYERS_DEFAULT = 2\n',
    })
    later = Commit("Main moves past core_r0.8.0", "2024-09-01T10:00:00", {
        "megatron/core/package_info.py": "MAJOR = 0\nMINOR = 9\nPATCH = 0\n__version__ = '0.9.0rc0'\n",
    })
    return [pin, later]
