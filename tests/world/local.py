"""A small world on local disk for one-step-kind tests: bare git repos and a PEP 503 folder, no server.

npuenv reaches it the way an offline team reaches its mirrors: the spec's `https://git.example/` and
`https://pypi.example/` URLs are rewritten by `mirrors:` to `file://` URLs of these folders (README,
"Mirrors"). Everything here is built in a second or so, with the machine's git and Python only.

- four upstream repos, each with two commits (`c1`, then `c2`), shaped like the real ones only where a
  step kind touches them: `lib` (MindSpeed: a setup.py that a patch changes, a requirements.txt, a file an
  overlay replaces), `host` (MindSpeed-MM: the overlay's source), `core` (Megatron-LM: a folder a copy
  takes), `tool` (apex or decord: a script that "builds" a wheel with the target interpreter, in
  milliseconds); and `fork/lib.git`, the same history under another URL (a fork or another mirror);
- patch files made by `git diff` against `lib` and `core`;
- a PEP 503 folder with `tiny` 1.0 and 1.1 (pure-Python wheels written here) and `toolpkg-bin` 0.1, the
  prebuilt stand-in for `tool`'s wheel (it installs the same module, as decord2 installs `decord`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

GIT_HOST = "https://git.example/"
PYPI_HOST = "https://pypi.example/"

# identities and dates fixed: the same repos give the same commits on every run
GIT_ENV = {"GIT_AUTHOR_NAME": "upstream", "GIT_AUTHOR_EMAIL": "upstream@example.org",
           "GIT_COMMITTER_NAME": "upstream", "GIT_COMMITTER_EMAIL": "upstream@example.org",
           "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+00:00", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+00:00",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}

SETUP = """\
import setuptools


def requirements():
    return open("requirements.txt").read().split()


# MindSpeed's setup.py runs pip, which uv's build environment does not have
subprocess.check_call([sys.executable, "-m", "pip", "install", "-r", "requirements.txt"])
setuptools.setup(name="lib", install_requires=requirements())
"""
# what the patch makes of it (the line that runs pip, commented out)
SETUP_PATCHED = SETUP.replace("subprocess.check_call", "# subprocess.check_call")
# a refreshed patch: the same line, commented out with another word
SETUP_PATCHED_V2 = SETUP.replace("subprocess.check_call", "# npuenv: subprocess.check_call")

# tool's "build": a wheel of `toolpkg` written by the target interpreter into dist/ (standard library only)
MAKE_WHEEL = '''\
import base64, hashlib, pathlib, sys, zipfile

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
files = {"toolpkg/__init__.py": b"BUILT_FROM = 'source'\\n",
         "toolpkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: toolpkg\\nVersion: 0.1\\n",
         "toolpkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: tool\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
record = [f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},{len(b)}"
          for n, b in files.items()] + ["toolpkg-0.1.dist-info/RECORD,,"]
files["toolpkg-0.1.dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
with zipfile.ZipFile(out / "toolpkg-0.1-py3-none-any.whl", "w") as whl:
    for name, data in files.items():
        whl.writestr(zipfile.ZipInfo(name, (2025, 1, 1, 0, 0, 0)), data)
print("built", out / "toolpkg-0.1-py3-none-any.whl")
'''


@dataclass(frozen=True)
class Commits:
    """A repo's two commits, in order."""

    c1: str
    c2: str


@dataclass
class LocalUpstream:
    """What the tests need to name: folders, file:// URLs, commits, patch files, wheels and their sha256."""

    root: Path
    commits: Dict[str, Commits] = field(default_factory=dict)
    patches: Dict[str, Path] = field(default_factory=dict)  # name -> patch file
    wheels: Dict[str, Tuple[Path, str]] = field(default_factory=dict)  # file name -> (path, sha256)

    @property
    def git_root(self) -> Path:
        return self.root / "git"

    @property
    def pypi_root(self) -> Path:
        return self.root / "pypi"

    @property
    def mirrors(self) -> Dict[str, str]:
        return {GIT_HOST: self.git_root.as_uri() + "/", PYPI_HOST: self.pypi_root.as_uri() + "/"}

    def sha256(self, filename: str) -> str:
        return self.wheels[filename][1]

    def names(self) -> Dict[str, str]:
        """`lib.c1` -> the commit, and so on: what tables write as <lib.c1>."""
        found = {f"{repo}.{n}": getattr(c, n) for repo, c in self.commits.items() for n in ("c1", "c2")}
        found.update({f"sha.{name}": sha for name, (_path, sha) in self.wheels.items()})
        return found


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _write(folder: Path, files: Dict[str, str]) -> None:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _repo(work: Path, bare: Path, first: Dict[str, str], second: Dict[str, str]) -> Commits:
    """A repo with two commits, published as a bare repo at `bare`."""
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    shas = []
    for number, files in enumerate((first, second), 1):
        _write(work, files)
        git(work, "add", "-A")
        git(work, "commit", "-qm", f"c{number}")
        shas.append(git(work, "rev-parse", "HEAD").strip())
    bare.parent.mkdir(parents=True, exist_ok=True)
    git(work.parent, "clone", "-q", "--bare", str(work), str(bare))
    return Commits(*shas)


def _diff(work: Path, rel: str, new_text: str) -> str:
    """The patch that turns `rel` in the checkout `work` into `new_text` (the checkout is left as it was)."""
    path = work / rel
    old = path.read_text()
    path.write_text(new_text)
    try:
        return git(work, "diff", "--", rel)
    finally:
        path.write_text(old)


def wheel_bytes(name: str, version: str, files: Dict[str, str]) -> bytes:
    """A pure-Python wheel: the given files, METADATA, WHEEL and RECORD; the same input, the same bytes."""
    import io

    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    content = {rel: text.encode() for rel, text in files.items()}
    content[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    content[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{rel},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for rel, data in content.items()] + [f"{dist}/RECORD,,"]
    content[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as whl:
        for rel, data in content.items():
            whl.writestr(zipfile.ZipInfo(rel, (2025, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def build_local_upstream(root: Path) -> LocalUpstream:
    up = LocalUpstream(root)
    work = root / "work"
    bare = up.git_root / "team"
    up.commits["lib"] = _repo(
        work / "lib", bare / "lib.git",
        {"setup.py": SETUP, "requirements.txt": "tiny>=1.0\n", "lib/__init__.py": "", "lib/dpa.py": "OLD = 1\n"},
        {"README.md": "lib moved on; setup.py is as it was\n"})
    up.commits["host"] = _repo(work / "host", bare / "host.git", {"examples/dpa.py": "NEW = 1\n"},
                               {"examples/dpa.py": "NEW = 2\n"})
    up.commits["core"] = _repo(work / "core", bare / "core.git", {"core/a.py": "A = 1\n", "core/b.py": "B = 1\n"},
                               {"core/b.py": "B = 2\n"})
    up.commits["tool"] = _repo(work / "tool", bare / "tool.git", {"make_wheel.py": MAKE_WHEEL},
                               {"README.md": "tool moved on\n"})
    git(root, "clone", "-q", "--bare", str(bare / "lib.git"), str(up.git_root / "fork" / "lib.git"))

    patches = root / "patches"
    patches.mkdir()
    for name, (repo, rel, text) in {
        "no-pip": ("lib", "setup.py", SETUP_PATCHED),
        "no-pip-v2": ("lib", "setup.py", SETUP_PATCHED_V2),
        "core-fix": ("core", "core/a.py", "A = 1  # fixed\n"),
        "core-fix-v2": ("core", "core/a.py", "A = 1  # fixed again\n"),
    }.items():
        up.patches[name] = patches / f"{name}.patch"
        up.patches[name].write_text(_diff(work / repo, rel, text))

    simple = up.pypi_root / "simple"
    for project, name, version, files in [
        ("tiny", "tiny", "1.0", {"tiny/__init__.py": "VERSION = '1.0'\n"}),
        ("tiny", "tiny", "1.1", {"tiny/__init__.py": "VERSION = '1.1'\n"}),
        ("toolpkg-bin", "toolpkg_bin", "0.1", {"toolpkg/__init__.py": "BUILT_FROM = 'prebuilt'\n"}),
    ]:
        filename = f"{name}-{version}-py3-none-any.whl"
        path = simple / project / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        data = wheel_bytes(name.replace("_", "-"), version, files)
        path.write_bytes(data)
        up.wheels[filename] = (path, hashlib.sha256(data).hexdigest())
    for folder in [p for p in simple.iterdir() if p.is_dir()]:
        links = "".join(f'<a href="{p.name}">{p.name}</a>\n' for p in sorted(folder.glob("*.whl")))
        (folder / "index.html").write_text(links)
    (simple / "index.html").write_text("".join(f'<a href="{p.name}/">{p.name}</a>\n'
                                               for p in sorted(simple.iterdir()) if p.is_dir()))
    return up
