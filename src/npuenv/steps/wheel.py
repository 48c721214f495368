"""wheel:<name> — a pinned wheel downloaded into the wheelhouse, sha256-verified (torch_npu)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict
from urllib.parse import unquote, urlsplit

from pathlib import Path
from typing import IO, Any, Optional

from ..confine import remove
from ..errors import FetchError, NpuenvError, Unreachable
from ..digest import sha256_file
from .base import OK, Checked, Context, Kind, Step, drifted, missing
from .. import schema as s


# --- the spec section -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WheelFile:
    filename: str
    sha256: str
    url: Optional[str] = None


@dataclass(frozen=True)
class Wheel:
    name: str
    package: str
    version: str
    source: str
    files: Dict[str, WheelFile]


WHEEL = {"package": (s.package, True), "version": (s.version, True), "source": (s.choice("index", "url"), True),
         "files": (lambda ck, kp, value: wheel_files(ck, kp, value), True)}


WHEEL_FILE = {"filename": (s.nonempty, False), "url": (s.https, False), "sha256": (s.sha256, True)}


def parse(ck: s.Checker, data: dict, parsed: dict) -> Dict[str, Wheel]:
    """wheels: {NAME: {package, version, source: index|url, files: {ARCH: {filename?, url?, sha256}}}}"""
    out = {}
    for name, item in s.entries(ck, ("wheels",), data.get("wheels")):
        kp = ("wheels", name)
        f = s.fields(ck, kp, item, WHEEL)
        wheel = Wheel(name, f.get("package"), f.get("version"), f.get("source"), f.get("files") or {})
        check_wheel_files(ck, kp, wheel)
        out[name] = wheel
    return out


def wheel_files(ck: s.Checker, kp: s.KeyPath, value: Any) -> Dict[str, WheelFile]:
    if not s.mapping(ck, kp, value):
        return {}
    if not value:
        ck.add(kp, f"give at least one file, keyed by architecture ({', '.join(s.ARCHES)})")
    out = {}
    for arch, item in value.items():
        if s.is_tls_key(arch):
            continue
        if arch not in s.ARCHES:
            ck.add(kp + (arch,), f"unknown architecture {arch!r}: use the name `uname -m` prints on "
                                 f"Linux ({', '.join(s.ARCHES)})")
        out[arch] = _wheel_file(ck, kp + (arch,), item)
    return out


def _wheel_file(ck: s.Checker, kp: s.KeyPath, item: Any) -> WheelFile:
    f = s.fields(ck, kp, item, WHEEL_FILE)
    filename, url = f.get("filename"), f.get("url")
    if filename is None and url is not None:
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    elif filename is None and isinstance(item, dict) and "filename" not in item and "url" not in item:
        ck.add(kp + ("filename",), "missing (required when the file has no url)", at=kp)
    return WheelFile(filename, f.get("sha256"), url)


def check_wheel_files(ck: s.Checker, kp: s.KeyPath, wheel: Wheel) -> None:
    """Each file: a wheel of this package and version for its architecture; a url when source is url."""
    for arch, wf in wheel.files.items():
        fkp = kp + ("files", arch)
        if wheel.source == "url" and wf.url is None and (fkp + ("url",)) not in ck.locs:
            ck.add(fkp, "source is 'url' but this file has no url (give one, or use source: index)")
        if wf.filename is None or wheel.package is None or wheel.version is None or not ck.pep:
            continue
        problem = _wheel_filename_problem(wf, wheel, arch)
        if problem:
            ck.add(fkp + ("filename",), problem)
        elif wf.url is not None and unquote(urlsplit(wf.url).path).rsplit("/", 1)[-1] != wf.filename:
            ck.add(fkp + ("url",), f"the url does not end in the file name {wf.filename!r}")


def _wheel_filename_problem(wf: WheelFile, wheel: Wheel, arch: str) -> str:
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        name, version, _build, tags = parse_wheel_filename(wf.filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        return f"not a wheel file name: {exc}"
    if canonicalize_name(name) != canonicalize_name(wheel.package):
        return f"{wf.filename!r} is a wheel of {name!r}, not of {wheel.package!r}"
    if version != Version(wheel.version):
        return f"{wf.filename!r} is version {version}, not {wheel.version}"
    if arch in s.ARCHES and not any(t.platform == "any" or t.platform.endswith(arch) for t in tags):
        return f"{wf.filename!r} is not a wheel for {arch}"
    return ""


# --- the step -----------------------------------------------------------------------------------------


class WheelStep(Step):
    kind = "wheel"
    version = 1

    def __init__(self, wheel: Any, deps: tuple[str, ...] = ()) -> None:
        super().__init__(wheel.name, deps)
        self.wheel = wheel

    def file(self, ctx: Context) -> Any:
        entry = self.wheel.files.get(ctx.arch)
        if entry is None:
            raise NpuenvError(
                f"the spec has no {self.wheel.name} wheel for {ctx.arch} "
                f"(it has: {', '.join(self.wheel.files) or 'none'})",
                hint=f"add wheels.{self.wheel.name}.files.{ctx.arch} with filename and sha256 to the spec",
            )
        return entry

    def dest(self, ctx: Context) -> Path:
        return ctx.wheels_dir / self.file(ctx).filename

    def describe(self, ctx: Context) -> str:
        entry = self.wheel.files.get(ctx.arch)
        if entry is None:
            return f"{self.wheel.package}=={self.wheel.version}: no file for {ctx.arch}"
        return f"{entry.filename} sha256 {entry.sha256} ({self.wheel.source})"

    def fingerprint(self, ctx: Context) -> Any:
        entry = self.file(ctx)
        return {"package": self.wheel.package, "version": self.wheel.version, "source": self.wheel.source,
                "filename": entry.filename, "sha256": entry.sha256, "url": entry.url}

    def check(self, ctx: Context) -> Checked:
        dest = self.dest(ctx)
        if not dest.is_file():
            return missing()
        stat = dest.stat()
        seen = ctx.state.resolved(self.id)
        # hashing a 100 MB wheel on every run is slow: trust an unchanged file we verified before
        if seen.get("size") == stat.st_size and seen.get("mtime_ns") == stat.st_mtime_ns:
            return OK
        if sha256_file(dest) != self.file(ctx).sha256:
            return drifted(f"{dest.name} does not match its sha256")
        return OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        entry = self.file(ctx)
        url = fetch_pinned(ctx, self.id, self.wheel, entry, log)
        dest = self.dest(ctx)
        stat = dest.stat()
        return {"file": str(dest), "sha256": entry.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "url": url or ctx.state.resolved(self.id).get("url")}


def fetch_pinned(ctx: Context, step_id: str, wheel: Any, entry: Any, log: IO[str]) -> Optional[str]:
    """Put the pinned file `entry` of `wheel` into the wheelhouse, verified; returns the URL fetched, if any.

    Workspaces may share the wheelhouse: one downloads under the file's lock, the others wait, then find
    it there."""
    from ..flock import entry_lock

    def waiting() -> None:
        log.write(f"another npuenv is downloading {entry.filename}: waiting for it\n")
        ctx.status(step_id, f"waiting for another npuenv downloading {entry.filename}")

    with entry_lock(ctx.wheels_dir / ".locks" / f"{entry.filename}.lock", on_wait=waiting):
        return _fetch_locked(ctx, step_id, wheel, entry, log)


def _fetch_locked(ctx: Context, step_id: str, wheel: Any, entry: Any, log: IO[str]) -> Optional[str]:
    dest = ctx.wheels_dir / entry.filename
    if dest.is_file() and sha256_file(dest) != entry.sha256:
        log.write(f"{dest} has the wrong sha256: removing it\n")
        remove(dest, ctx.wheels_dir)
    if dest.is_file():
        log.write(f"{dest} sha256 {entry.sha256} ok (cached)\n")
        return None
    from ..fetch import download, find_in_index  # requests is slow to import: only when downloading

    if wheel.source == "url":
        url = ctx.mirrors.rewrite(entry.url)
    else:
        url = find_in_index(ctx.mirrors.rewrite(ctx.spec.index), wheel.package, entry.filename,
                            ca_bundle=ctx.ca_bundle)
    log.write(f"downloading {url}\n")
    ctx.wheels_dir.mkdir(parents=True, exist_ok=True)
    try:
        download(url, dest, entry.sha256, ca_bundle=ctx.ca_bundle,
                 progress=lambda done, total: ctx.progress(step_id, done, total))
    except FetchError as exc:
        original = entry.url if wheel.source == "url" else ctx.spec.index
        if isinstance(exc, Unreachable) and ctx.mirrors.rewrite(original) != original:
            exc.hint = (f"{original} is fetched through a mirror: check that it is up, or change the mirror "
                        "(spec mirrors:, NPUENV_MIRRORS)")
        raise
    log.write(f"{dest} sha256 {entry.sha256} ok\n")
    return url


def compile(spec: Any, machine: Any) -> list[Step]:
    return [WheelStep(wheel) for wheel in spec.wheels.values()]


def problems(spec: Any, machine: Any, requires: dict) -> list[str]:
    return [f"{w.name} has no wheel for {machine.arch} (it has: {', '.join(sorted(w.files)) or 'none'})"
            for w in spec.wheels.values() if machine.arch not in w.files]


KIND = Kind("wheel", compile, section="wheels", parse=parse, problems=problems, needs_index=True)
