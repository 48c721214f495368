"""wheel:<name> — a pinned wheel downloaded into the wheelhouse, sha256-verified (torch_npu)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Optional

from ..confine import remove
from ..errors import FetchError, NpuenvError, Unreachable
from ..digest import sha256_file
from .base import OK, Checked, Context, Kind, Step, drifted, missing


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
    from ..lock import entry_lock

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


KIND = Kind("wheel", compile, section="wheels", problems=problems)
