"""`invoke bundle`: one file with what an air-gapped box needs to bootstrap a locked spec for one platform.

A bundle is an uncompressed tar (wheels and git packs are compressed already) under `npuenv-bundle/`:

    manifest.json                 format, spec (name, lock content sha256), arch, Python, and every member's
                                  sha256 and size; the sdist-only packages, named
    lock/<spec>.lock, .uv.lock    the spec's lock, as it was followed
    git/<repo>.bundle             `git bundle` of each pinned repo at its commit (depth 1: the tree is
                                  what bootstrap checks out); git/<repo>/<submodule>.bundle likewise
    wheels/<file>                 every file the lock installs on this platform and Python (a package with
                                  no wheel for it: its sdist), the spec's wheels for the arch
    built/<build>/<key>/<file>    the wheelhouse's built wheels for the platform

The bundle step runs after the source steps, as the lock step does, so the repos are checked out at their
pins in the workspace it is made in.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Optional

from . import lockfile
from .commands import run
from .digest import sha256_file
from .errors import BundleError, LockFileError, NpuenvError, UsageError
from .steps.base import OK, Checked, Context, Step, drifted, missing

FORMAT = 1
TOP = "npuenv-bundle"
MANIFEST = f"{TOP}/manifest.json"


@dataclass(frozen=True)
class BundleRequest:
    out: Path
    arch: str


def bundle_step(spec: Any, steps: list, request: BundleRequest) -> "BundleStep":
    from .locking import SOURCE_KINDS

    found = lockfile.read(spec.file)
    relock = f"run `invoke lock --spec {spec.file}` first"
    if found is None:
        raise LockFileError(f"the spec {spec.name} has no lock: a bundle carries a locked stack", relock)
    changes = found.changes(spec)
    if changes:
        raise LockFileError(f"the spec changed since {found.path.name} was written: {changes[0]}", relock)
    if request.arch not in found.arches:
        raise LockFileError(f"{found.path.name} covers {', '.join(found.arches)}, not {request.arch}",
                            f"run `invoke lock --spec {spec.file} --arch {request.arch}` (with the other arches)")
    return BundleStep(spec, found, request, tuple(s.id for s in steps if s.kind in SOURCE_KINDS))


class BundleStep(Step):
    kind = "bundle"
    version = 1

    def __init__(self, spec: Any, lock: Any, request: BundleRequest, deps: tuple[str, ...]) -> None:
        super().__init__("", deps)
        self.spec, self.lock, self.request = spec, lock, request

    def describe(self, ctx: Context) -> str:
        return f"{self.request.out} for {self.request.arch}"

    def fingerprint(self, ctx: Context) -> Any:
        return {"lock": self.lock.data["checksum"], "arch": self.request.arch, "out": str(self.request.out)}

    def check(self, ctx: Context) -> Checked:
        """Up to date: the file this step wrote for the same lock and platform is still there, unchanged."""
        written = ctx.state.resolved(self.id)
        out = self.request.out
        if written.get("out") != str(out) or not out.is_file():
            return missing()
        return OK if sha256_file(out) == written.get("sha256") else drifted(f"{out} changed since it was written")

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        from .confine import remove

        staging = ctx.home / "bundle-staging"
        remove(staging, ctx.root)
        (staging / TOP).mkdir(parents=True)
        members: dict[str, Path] = {}
        self._lock_files(staging, members)
        repos = self._git(ctx, staging, members, log)
        sdists = self._index_files(ctx, staging, members, log)
        self._spec_wheels(ctx, staging, members, log)
        self._built(ctx, staging, members)
        self._tool(ctx, staging, members, log)
        manifest = {
            "format": FORMAT, "spec": {"name": self.spec.name, "sha256": self.lock.data["spec"]["sha256"]},
            "arch": self.request.arch, "python": self.lock.data.get("python"), "repos": repos, "sdist_only": sdists,
            "members": {name: {"sha256": sha256_file(path), "size": path.stat().st_size}
                        for name, path in sorted(members.items())},
        }
        _write_tar(self.request.out, manifest, members, lambda done: ctx.progress(self.id, done, None))
        remove(staging, ctx.root)
        size = self.request.out.stat().st_size
        note = f"{len(members)} files, {size / 1e6:.1f} MB in {self.request.out.name}"
        if sdists:
            note += f"; only as sdists (built on the box): {', '.join(sdists)}"
        return {"out": str(self.request.out), "size": size, "sha256": sha256_file(self.request.out),
                "members": len(members), "sdist_only": sdists, "note": note}

    def _lock_files(self, staging: Path, members: dict[str, Path]) -> None:
        json_path, uv_path = lockfile.paths(self.spec.file)
        for path in (json_path, uv_path):
            name = f"{TOP}/lock/{path.name}"
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(path.read_bytes())
            members[name] = staging / name

    def _git(self, ctx: Context, staging: Path, members: dict[str, Path], log: IO[str]) -> dict[str, Any]:
        """A bundle per checked-out repo and submodule, at the locked commit (what the checkout's HEAD is)."""
        repos: dict[str, Any] = {}
        for name, locked in sorted(self.lock.data["repos"].items()):
            path = ctx.path(locked["path"])
            if not (path / ".git").exists():
                log.write(f"{name}: not checked out on this machine, not bundled\n")
                continue
            entry = {"url": locked["url"], "commit": locked["commit"],
                     **_git_bundle(ctx, path, locked["commit"], staging, f"git/{name}.bundle", members, log),
                     "submodules": {}}
            urls = _submodule_urls(ctx, path)
            for sub, commit in sorted((locked.get("submodules") or {}).items()):
                entry["submodules"][sub] = {"url": urls.get(sub), "commit": commit, **_git_bundle(
                    ctx, path / sub, commit, staging, f"git/{name}/{sub}.bundle", members, log)}
            repos[name] = entry
        for build in sorted(self.spec.builds.values(), key=lambda b: b.name):
            for index, (url, commit) in enumerate(build.fetches):
                bare = _fetched(ctx, url, commit, log)
                repos[f"{build.name}.fetches.{index}"] = {
                    "url": url, "commit": commit, "submodules": {},
                    **_git_bundle(ctx, bare, commit, staging, f"git/{build.name}-fetch-{index}.bundle", members, log)}
        return repos

    def _index_files(self, ctx: Context, staging: Path, members: dict[str, Path], log: IO[str]) -> list[str]:
        """Every file the lock installs here, fetched and checked against the lock's sha256."""
        python = self.lock.data.get("python") or self.spec.python
        packages = installed_here(ctx, self.spec, self.lock, self.request.arch, log)
        return self._fetch(ctx, packages, python, "wheels", staging, members, log)

    def _fetch(self, ctx: Context, packages: list, python: str, folder: str, staging: Path,
               members: dict[str, Path], log: IO[str]) -> list[str]:
        """Each package's files for the platform (else its sdist, named in what this returns), downloaded
        once into the workspace's cache and checked against the lock's sha256, staged under `folder`."""
        from .fetch import download

        sdists = []
        for package in packages:
            files = compatible_wheels(package, self.request.arch, python)
            if not files and package.get("sdist"):
                files = [package["sdist"]]
                sdists.append(f"{package['name']}=={package['version']}")
            if not files:
                raise NpuenvError(f"{package['name']}=={package['version']} has neither a wheel for "
                                  f"{self.request.arch} and Python {python} nor an sdist in the lock",
                                  hint="pin a version that publishes one, then run `invoke lock`")
            for url, sha in files:
                filename = file_name(url)
                cached = ctx.home / "bundle-cache" / filename
                if not (cached.is_file() and sha256_file(cached) == sha):
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    log.write(f"downloading {ctx.mirrors.rewrite(url)}\n")
                    download(ctx.mirrors.rewrite(url), cached, sha, ca_bundle=ctx.ca_bundle,
                             progress=lambda done, total: ctx.progress(self.id, done, total))
                _add(staging, f"{folder}/{filename}", cached, members)
        return sdists

    def _tool(self, ctx: Context, staging: Path, members: dict[str, Path], log: IO[str]) -> None:
        """npuenv's own wheel, and its dependencies' (uv among them) as its uv.lock pins them, for the arch
        and the spec's Python: `pip install --no-index --find-links tool/ npuenv` on a box with a Python."""
        checkout = Path(__file__).resolve().parents[2]
        if not (checkout / "pyproject.toml").is_file() or not (checkout / "uv.lock").is_file():
            raise NpuenvError("invoke bundle builds npuenv's own wheel from its checkout, and this npuenv is not "
                              f"running from one ({checkout})", hint="run `uv run invoke bundle` in a checkout")
        out = staging / TOP / "tool"
        out.mkdir(parents=True, exist_ok=True)
        python = ctx.state.resolved("python").get("interpreter") or f"python{self.spec.python}"
        ctx.status(self.id, "building npuenv's own wheel")
        run([ctx.uv, "build", "--wheel", "--out-dir", str(out), "--python", python, "--default-index",
             ctx.mirrors.rewrite("https://pypi.org/simple"), str(checkout)], env=_uv_env(ctx), log=log)
        for wheel in out.glob("npuenv-*.whl"):
            members[f"{TOP}/tool/{wheel.name}"] = wheel
        uv_text = (checkout / "uv.lock").read_text(encoding="utf-8")
        version = self.lock.data.get("python") or f"{self.spec.python}.0"
        packages = exported(ctx, checkout, uv_text, _uv_env(ctx), self.request.arch, version)
        self._fetch(ctx, packages, version, "tool", staging, members, log)

    def _spec_wheels(self, ctx: Context, staging: Path, members: dict[str, Path], log: IO[str]) -> None:
        """The spec's pinned wheels (torch_npu) and the builds' prebuilt ones (decord2) for the arch."""
        from .steps.wheel import fetch_pinned

        wheels = [*self.spec.wheels.values(), *(b.prebuilt for b in self.spec.builds.values() if b.prebuilt)]
        for wheel in wheels:
            entry = wheel.files.get(self.request.arch)
            if entry is not None:
                fetch_pinned(ctx, self.id, wheel, entry, log)
                _add(staging, f"wheels/{entry.filename}", ctx.wheels_dir / entry.filename, members)

    def _built(self, ctx: Context, staging: Path, members: dict[str, Path]) -> None:
        from .wheelcache import WheelCache

        for entry in WheelCache(ctx.wheels_dir).entries():
            if entry.build in self.spec.builds and entry.inputs.get("platform") == f"linux_{self.request.arch}":
                folder = f"built/{entry.build}/{entry.key}"
                _add(staging, f"{folder}/{entry.wheel.name}", entry.wheel, members)
                _add(staging, f"{folder}/key.json", entry.wheel.parent / "key.json", members)


def _uv_env(ctx: Context) -> dict[str, str]:
    from .steps.env import FOREIGN_VARS

    return {k: v for k, v in ctx.env.items() if k not in FOREIGN_VARS}


def _add(staging: Path, name: str, source: Path, members: dict[str, Path]) -> None:
    """Stage `source` as member `name` (a hard link where it can be: nothing is copied twice)."""
    import shutil

    target = staging / TOP / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    members[f"{TOP}/{name}"] = target


def _git_bundle(ctx: Context, path: Path, commit: str, staging: Path, name: str, members: dict[str, Path],
                log: IO[str]) -> dict[str, Any]:
    """`git bundle create` of `commit` from the checkout at `path`, under the ref refs/heads/npuenv-pin; with
    the checkout's shallow boundary, without which a bundle of a depth-1 fetch cannot be unbundled."""
    target = staging / TOP / name
    target.parent.mkdir(parents=True, exist_ok=True)
    run(["git", "-C", str(path), "update-ref", "refs/heads/npuenv-pin", commit], env=ctx.env, log=log)
    run(["git", "-C", str(path), "bundle", "create", str(target), "refs/heads/npuenv-pin"], env=ctx.env, log=log)
    shallow = path / run(["git", "-C", str(path), "rev-parse", "--git-path", "shallow"], env=ctx.env).stdout.strip()
    members[f"{TOP}/{name}"] = target
    return {"bundle": name, "shallow": shallow.read_text().split() if shallow.is_file() else []}


def _fetched(ctx: Context, url: str, commit: str, log: IO[str]) -> Path:
    """A bare repo in the workspace holding `commit` of `url` (fetched once, through the mirrors)."""
    import hashlib

    from .git import fetch_commit, has_commit

    bare = ctx.home / "fetches" / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".git")
    if not bare.is_dir():
        run(["git", "init", "--quiet", "--bare", str(bare)], env=ctx.env, log=log)
        run(["git", "-C", str(bare), "remote", "add", "origin", url], env=ctx.env, log=log)
    if not has_commit(bare, commit, ctx.env):
        fetch_commit(bare, commit, ctx.env, log)
    return bare


def _submodule_urls(ctx: Context, path: Path) -> dict[str, str]:
    if not (path / ".gitmodules").is_file():
        return {}
    proc = run(["git", "config", "-f", str(path / ".gitmodules"), "--get-regexp", r"^submodule\..*\.(path|url)$"],
               env=ctx.env, check=False)
    paths, urls = {}, {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        section, _, field = key.rpartition(".")
        (paths if field == "path" else urls)[section] = value
    return {paths[s]: urls[s] for s in paths if s in urls}


# --- which of the lock's files this platform installs -------------------------------------------------


_BLOCK = re.compile(r"(?m)^\[\[package\]\]\s*$")


def lock_packages(uv_text: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(name, version) -> {name, version, wheels: [(url, sha256)], sdist: (url, sha256)|None} of every package
    from an index in a uv lock."""
    from .pep503 import normalize

    found = {}
    for block in _BLOCK.split(uv_text)[1:]:
        body = block.split("\n[package.", 1)[0]  # the package's own keys, not its [package.metadata]
        if not re.search(r"(?m)^source = \{ registry = ", body):
            continue
        name = re.search(r'(?m)^name = "([^"]+)"', body).group(1)
        version = re.search(r'(?m)^version = "([^"]+)"', body).group(1)
        files = re.findall(r'\{ url = "([^"]+)", hash = "sha256:([0-9a-f]{64})"', body)
        sdist = re.search(r'(?m)^sdist = \{ url = "([^"]+)", hash = "sha256:([0-9a-f]{64})"', body)
        wheels = [f for f in files if f[0].endswith(".whl")]
        found[(normalize(name), version)] = {"name": name, "version": version, "wheels": wheels,
                                             "sdist": (sdist.group(1), sdist.group(2)) if sdist else None}
    return found


def installed_here(ctx: Context, spec: Any, lock: Any, arch: str, log: IO[str]) -> list[dict[str, Any]]:
    """The lock's index packages that `uv sync` installs on `arch`."""
    from .atomic import write_atomic
    from .steps.env import EnvStep

    env = EnvStep(spec)
    project = ctx.home / "lock-target"
    env.write_project(ctx, project, lock.arches, log)
    write_atomic(project / "uv.lock", lock.uv_lock)
    python = lock.data.get("python") or f"{spec.python}.0"
    return exported(ctx, project, lock.uv_lock, env.uv_env(ctx), arch, python)


def exported(ctx: Context, project: Path, uv_text: str, env: dict, arch: str, python: str) -> list[dict[str, Any]]:
    """The index packages of a uv project's lock that install on Linux `arch` with CPython `python`: uv
    export's universal requirements, their markers evaluated here."""
    from packaging.markers import Marker

    from .pep503 import normalize

    proc = run([ctx.uv, "export", "--frozen", "--format", "requirements-txt", "--no-emit-project", "--no-header",
                "--no-hashes", "--no-annotate", "--no-dev", "--project", str(project)], env=env)
    environment = {"platform_machine": arch, "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "python_version": ".".join(python.split(".")[:2]), "python_full_version": python,
                   "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    packages = lock_packages(uv_text)
    out = []
    for line in proc.stdout.splitlines():
        requirement, _, marker = line.partition(" ; ")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==", requirement):
            continue  # editables and path wheels: the workspace's own
        if marker and not Marker(marker).evaluate(environment):
            continue
        name, version = requirement.split("==", 1)
        out.append(packages[(normalize(name), version.strip())])
    return out


def file_name(url: str) -> str:
    """The file name a URL ends in, %-escapes decoded (torch-2.1.0%2Bcpu-...whl)."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def compatible_wheels(package: dict[str, Any], arch: str, python: str) -> list[tuple[str, str]]:
    """The package's wheels that install on Linux `arch` with CPython `python`: of those, the ones built
    for this very Python where there are such (as an installer prefers them to abi3 and pure-Python ones),
    each glibc level (the box picks the one its glibc allows)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    minor = int(python.split(".")[1])
    ranked: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for url, sha in package["wheels"]:
        try:
            _name, _version, _build, tags = parse_wheel_filename(file_name(url))
        except InvalidWheelFilename:
            continue
        fits = [tag for tag in tags if _tag_fits(tag, arch, minor)]
        if fits:
            ranked.setdefault(max(_rank(tag, minor) for tag in fits), []).append((url, sha))
    return ranked[max(ranked)] if ranked else []


def _rank(tag: Any, minor: int) -> tuple[int, int]:
    """An installer's preference: built for this Python, then abi3 from the newest CPython at or below it
    (cp39-abi3 before cp38-abi3 on 3.10), then pure Python."""
    if tag.interpreter == f"cp3{minor}" and tag.abi != "abi3":
        return (2, 0)
    if tag.abi == "abi3":
        return (1, int(tag.interpreter[3:]))
    return (0, 0)


def _tag_fits(tag: Any, arch: str, minor: int) -> bool:
    interpreter = tag.interpreter in ("py3", f"py3{minor}", f"cp3{minor}") or (
        tag.abi == "abi3" and re.fullmatch(r"cp3(\d+)", tag.interpreter) is not None
        and int(tag.interpreter[3:]) <= minor)
    abi = tag.abi in ("none", "abi3", f"cp3{minor}")
    platform = tag.platform == "any" or (tag.platform.endswith(f"_{arch}")
                                         and tag.platform.startswith(("manylinux", "linux")))
    return interpreter and abi and platform


# --- writing and reading the file ---------------------------------------------------------------------


def _write_tar(out: Path, manifest: dict, members: dict[str, Path], progress: Any) -> None:
    """The tar, written beside `out` and renamed into place: never half a bundle under its name."""
    import io

    tmp = out.with_name(f".{out.name}.npuenv-tmp")
    done = 0
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        blob = (json.dumps(manifest, indent=2) + "\n").encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(blob), 0, 0o644
        tar.addfile(info, io.BytesIO(blob))
        for name, path in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
            done += info.size
            progress(done)
    os.replace(tmp, out)


@dataclass(frozen=True)
class Verified:
    path: Path
    manifest: dict

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def verify(path: Path, extract_to: Optional[Path] = None) -> Verified:
    """Every member of the bundle at `path` against its manifest (and, with `extract_to`, unpacked there,
    only what the manifest names, checked as it is written)."""
    import hashlib

    if not path.is_file():
        raise UsageError(f"{path}: no such bundle file", "give the file `invoke bundle --out` wrote")
    try:
        with tarfile.open(path, "r:") as tar:
            manifest = _manifest(tar, path)
            seen = set()
            for info in tar:
                if info.name == MANIFEST:
                    continue
                expected = manifest["members"].get(info.name)
                if expected is None or not info.isfile():
                    raise BundleError(f"{path}: {info.name} is not in the bundle's manifest",
                                      "the file was changed after `invoke bundle` wrote it: make it again")
                digest = hashlib.sha256()
                handle = tar.extractfile(info)
                target = _target(extract_to, info.name)
                with (open(target, "wb") if target else _Null()) as out:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                if digest.hexdigest() != expected["sha256"]:
                    raise BundleError(f"{path}: {info.name} does not match its sha256 in the manifest "
                                      f"({digest.hexdigest()[:12]}…, expected {expected['sha256'][:12]}…)",
                                      "the file was damaged or changed after `invoke bundle` wrote it: make it again")
                seen.add(info.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"{path}: not a complete bundle ({exc})",
                          "the file is truncated or not a bundle: copy it again, or make it again with "
                          "`invoke bundle`") from exc
    absent = sorted(set(manifest["members"]) - seen)
    if absent:
        raise BundleError(f"{path}: {len(absent)} member(s) the manifest names are missing, first {absent[0]}",
                          "the file is truncated: copy it again, or make it again with `invoke bundle`")
    return Verified(path, manifest)


def read_manifest(path: Path) -> dict:
    """The bundle's manifest alone (its first member), checked for the format."""
    if not path.is_file():
        raise UsageError(f"{path}: no such bundle file", "give the file `invoke bundle --out` wrote")
    try:
        with tarfile.open(path, "r:") as tar:
            return _manifest(tar, path)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"{path}: not a complete bundle ({exc})",
                          "the file is truncated or not a bundle: copy it again, or make it again with "
                          "`invoke bundle`") from exc


def _manifest(tar: tarfile.TarFile, path: Path) -> dict:
    first = tar.next()
    if first is None or first.name != MANIFEST:
        raise BundleError(f"{path}: not an npuenv bundle (it does not start with {MANIFEST})",
                          "give the file `invoke bundle --out` wrote")
    try:
        manifest = json.loads(tar.extractfile(first).read())
    except ValueError as exc:
        raise BundleError(f"{path}: its manifest is not valid JSON ({exc})", "make the bundle again") from exc
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: bundle format {manifest.get('format')!r}, this npuenv reads format {FORMAT}",
                          "make the bundle with this npuenv")
    return manifest


def _target(root: Optional[Path], name: str) -> Optional[Path]:
    if root is None:
        return None
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts:
        raise BundleError(f"member {name!r} would be written outside the bundle's folder", "make the bundle again")
    target = root.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


class _Null:
    def __enter__(self) -> "_Null":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def write(self, data: bytes) -> None:
        return None


# --- using a bundle on the air-gapped box -------------------------------------------------------------


@dataclass(frozen=True)
class Unpacked:
    """A verified bundle unpacked into the workspace: what bootstrap takes from it instead of the network."""

    folder: Path  # ROOT/.npuenv/bundle/npuenv-bundle
    manifest: dict
    mirrors: tuple[tuple[str, str], ...]  # each bundled repo's URL -> its bare repo here (file://)
    lock: Any  # npuenv.lockfile.StackLock, its files' URLs pointing into the bundle

    def wheel(self, filename: str) -> Path:
        return self.folder / "wheels" / filename


def unpack(path: Path, home: Path, root: Path, spec: Any, arch: str, env: dict) -> Unpacked:
    """Unpack `path` into `home`/bundle, every member checked against the manifest (again only when it is
    another bundle), then make a bare repo of each git bundle. Refuses a bundle for another platform or
    another spec, and a damaged one, by name; nothing of a refused bundle stays."""
    from .confine import remove

    target = home / "bundle"
    folder = target / TOP
    manifest = read_manifest(path)
    unpacked_before = (folder / "manifest.json").is_file() and \
        json.loads((folder / "manifest.json").read_text(encoding="utf-8")) == manifest
    if manifest["arch"] != arch:
        raise BundleError(f"{path} is a bundle for {manifest['arch']}; this box is {arch}",
                          f"make one for this box: invoke bundle --out FILE --arch {arch}")
    want = lockfile.content_sha256(lockfile.locked_content(spec))
    if manifest["spec"]["sha256"] != want:
        raise BundleError(f"{path} was made from another spec ({manifest['spec']['name']}, "
                          f"{manifest['spec']['sha256'][:12]}…), not from {spec.file} ({want[:12]}…)",
                          "bootstrap with the spec the bundle was made from (the same file, unchanged), or make "
                          "a bundle of this one")
    if not unpacked_before:  # each member is checked as it is unpacked; a re-run does not hash it all again
        tmp = home / ".bundle.npuenv-tmp"
        remove(tmp, root)
        try:
            verify(path, extract_to=tmp)
        except BaseException:
            remove(tmp, root)
            raise
        (tmp / TOP / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        remove(target, root)
        os.replace(tmp, target)
    mirrors = _bare_repos(folder, manifest, env)
    return Unpacked(folder, manifest, tuple(mirrors), _bundled_lock(folder, manifest, spec))


def _bare_repos(folder: Path, manifest: dict, env: dict) -> list[tuple[str, str]]:
    rules = []
    for name, repo in sorted(manifest["repos"].items()):
        rules.append((repo["url"], _bare(folder, repo, env)))
        for sub in repo["submodules"].values():
            if sub.get("url"):
                rules.append((sub["url"], _bare(folder, sub, env)))
    return rules


def _bare(folder: Path, entry: dict, env: dict) -> str:
    """A bare repo holding the bundle's commit (made once), served to git's fetch by sha; its file:// URL."""
    bare = folder / (entry["bundle"][: -len(".bundle")] + ".git")
    if not (bare / "refs" / "heads" / "npuenv-pin").is_file():
        run(["git", "init", "--quiet", "--bare", str(bare)], env=env)
        if entry.get("shallow"):  # the commits whose parents the bundle does not hold
            (bare / "shallow").write_text("".join(f"{sha}\n" for sha in entry["shallow"]), encoding="utf-8")
        run(["git", "-C", str(bare), "config", "uploadpack.allowAnySHA1InWant", "true"], env=env)
        run(["git", "-C", str(bare), "fetch", "--quiet", str(folder / entry["bundle"]),
             "refs/heads/npuenv-pin:refs/heads/npuenv-pin"], env=env)
    return bare.as_uri()


def _bundled_lock(folder: Path, manifest: dict, spec: Any) -> Any:
    """The bundle's lock, with every file it carries named by its place in the bundle (file://)."""
    from dataclasses import replace

    json_path, uv_path = lockfile.paths(spec.file)
    found = lockfile.read_files(folder / "lock" / json_path.name, folder / "lock" / uv_path.name)
    wheels = folder / "wheels"

    def local(url: str) -> str:
        here = wheels / file_name(url)
        return here.as_uri() if here.is_file() else url

    return replace(found, uv_lock=lockfile.rewrite_urls(found.uv_lock, local))


def seed_wheelhouse(unpacked: Unpacked, spec: Any, arch: str, wheels_dir: Path) -> None:
    """The spec's pinned and prebuilt wheels and the built wheels of the bundle, into the wheelhouse: the
    wheel and build steps find them there and fetch or compile nothing."""
    import shutil

    from .wheelcache import WheelCache

    for wheel in [*spec.wheels.values(), *(b.prebuilt for b in spec.builds.values() if b.prebuilt)]:
        entry = wheel.files.get(arch)
        source = unpacked.wheel(entry.filename) if entry else None
        if source is not None and source.is_file() and not (wheels_dir / entry.filename).is_file():
            wheels_dir.mkdir(parents=True, exist_ok=True)
            tmp = wheels_dir / f".{entry.filename}.npuenv-tmp"
            shutil.copyfile(source, tmp)
            os.replace(tmp, wheels_dir / entry.filename)
    cache = WheelCache(wheels_dir)
    for meta in sorted((unpacked.folder / "built").glob("*/*/key.json")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        if cache.get(data["build"], data["key"]) is None:
            cache.put(data["build"], data["key"], meta.parent / data["wheel"], data.get("inputs", {}))
