"""`models.fetch`: a model of the spec into PERSISTENT/models/NAME, checked before (disk) and after (every
file, every shard), with a marker that makes the next run a no-op that touches no network."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from ..errors import ModelError
from . import download
from .hubapi import RepoFiles, revision_info
from .places import MARKER
from .session import Session
from .verify import Marker, changed_since, index_problems, read_marker, verify_files, write_marker

Say = Callable[[str], None]


@dataclass(frozen=True)
class FetchRequest:
    name: str
    revision: Optional[str] = None  # overrides the spec's pin
    update: bool = False  # an unpinned model: ask the hub for its newest revision
    ca_bundle: tuple[str, ...] = ()
    progress: bool = True  # the hub client's progress bars (on stderr)


@dataclass(frozen=True)
class Fetched:
    name: str
    hub: str
    revision: str
    folder: Path
    files: int
    size: int
    downloaded: bool  # False: it was complete already


def fetch_model(session: Session, request: FetchRequest, say: Say) -> Fetched:
    model = session.model(request.name)
    folder = session.places.model(model.name)
    locked = locked_model(session.spec, model.name)
    pin = request.revision or model.revision or (locked or {}).get("revision")
    marker = read_marker(folder)
    if marker is not None and marker.hub == model.hub and not request.update and pin in (None, marker.revision):
        changed = changed_since(folder, marker)
        if changed is None:
            return _fetched(model.name, folder, marker, downloaded=False)
        say(f"{changed}: checking the model against the hub")
    with _model_lock(session, model.name):
        bundle = session.ca_bundle(request.ca_bundle)
        endpoint = session.endpoint()
        say(f"asking {endpoint} for {model.hub}@{pin or model.ref}")
        repo = revision_info(endpoint, model.hub, pin or model.ref, bundle, session.environ.get("HF_TOKEN", ""))
        return _download_and_verify(session, request, repo, folder, bundle, endpoint, say,
                                    locked if locked and locked.get("revision") == repo.revision else None)


def _download_and_verify(session: Session, request: FetchRequest, repo: RepoFiles, folder: Path, bundle: Path,
                         endpoint: str, say: Say, locked: Optional[dict]) -> Fetched:
    (folder / MARKER).unlink(missing_ok=True)  # from here until verified, the folder does not claim complete
    missing = [f for f in repo.files if not _same_size(folder / f.path, f.size)]
    need = sum(f.size for f in missing)
    check_disk(folder, need, f"{request.name} ({len(missing)} of {len(repo.files)} files)")
    # the client runs even when every file is there: it checks each against the revision (cheap HEADs)
    say(f"downloading {len(missing)} of {len(repo.files)} files ({_gib(need)}) of {repo.hub}@{repo.revision[:12]}")
    env = download.child_env(session.environ, endpoint, session.places.hf_home, bundle, request.progress)
    folder.mkdir(parents=True, exist_ok=True)
    _download(repo, folder, env, session.places.home / f"{request.name}.error", say)
    say(f"verifying {len(repo.files)} files ({_gib(repo.total)})")
    _verify(folder, repo)
    if locked is not None:
        check_against_lock(folder, repo, locked, session.spec.file)
    return _fetched(request.name, folder, write_marker(folder, repo), downloaded=True)


@contextmanager
def _model_lock(session: Session, name: str) -> Iterator[None]:
    """One download of a model at a time (two would write the same .incomplete files)."""
    from ..errors import LockError
    from ..flock import workspace_lock

    path = session.places.lock(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with workspace_lock(path):
            yield
    except LockError:
        raise ModelError(f"another models.fetch is downloading {name} ({path})",
                         hint="wait for it to finish, then run this again: it will find the model complete") from None


ATTEMPTS = 3  # the hub client does not retry a body cut short (IncompleteRead); a new attempt resumes it


def _download(repo: RepoFiles, folder: Path, env: dict, error_file: Path, say: Say) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            download.run(repo.hub, repo.revision, folder, env, error_file)
            return
        except ModelError as exc:
            if attempt == ATTEMPTS:
                raise
            say(f"{exc.message}; resuming (attempt {attempt + 1} of {ATTEMPTS})")


def _verify(folder: Path, repo: RepoFiles) -> None:
    """Every file against the hub's hashes, then the shards against the index. A corrupt file is removed
    (and the hub client's record of it), so that the next run fetches it anew."""
    bad = verify_files(folder, repo)
    for path in bad:
        (folder / path).unlink(missing_ok=True)
        (folder / ".cache" / "huggingface" / "download" / f"{path}.metadata").unlink(missing_ok=True)
    if bad:
        shown = "; ".join(f"{path}: {problem}" for path, problem in sorted(bad.items())[:5])
        raise ModelError(f"{len(bad)} file{'s' if len(bad) != 1 else ''} of {repo.hub}@{repo.revision[:12]} "
                         f"did not match the hub ({shown}); removed",
                         hint="run the same command again to download them anew; if it repeats, the mirror "
                              "serves other content than the hub lists")
    problems = index_problems(folder)
    if problems:
        raise ModelError(f"{repo.hub}@{repo.revision[:12]}: the shards do not match the index: {'; '.join(problems[:5])}",
                         hint="the hub's files disagree with each other: pin another revision, or report it "
                              "to the model's authors")


def locked_model(spec: object, name: str) -> Optional[dict]:
    """The model's entry in the spec's lock (`invoke lock`), or None; a damaged lock is an error."""
    from ..lockfile import read

    found = read(spec.file)  # type: ignore[attr-defined]
    entry = (found.data.get("models") or {}).get(name) if found is not None else None
    return entry if isinstance(entry, dict) else None


def check_against_lock(folder: Path, repo: RepoFiles, locked: dict, spec_file: Path) -> None:
    """The files of the locked revision are the ones the lock names, with its sha256s."""
    from ..digest import sha256_file

    files = locked.get("files") or {}
    listed = {f.path: f for f in repo.files}
    problems = [f"{path}: not in the lock" for path in sorted(set(listed) - set(files))]
    problems += [f"{path}: locked but not at the hub" for path in sorted(set(files) - set(listed))]
    for path in sorted(set(files) & set(listed)):
        item = listed[path]
        found = item.sha256 if item.lfs else sha256_file(folder / path)
        if found != files[path].get("sha256"):
            problems.append(f"{path}: sha256 {str(found)[:12]}…, the lock says {str(files[path].get('sha256'))[:12]}…")
    if problems:
        raise ModelError(f"{repo.hub}@{repo.revision[:12]} differs from {spec_file.with_suffix('.lock').name}: "
                         + "; ".join(problems[:5]),
                         hint="the hub or mirror serves other files under the same revision; if the lock is "
                              "wrong, run `invoke lock --upgrade` where the hub is reachable")


def check_disk(folder: Path, need: int, what: str) -> None:
    """Refuse, with the numbers, when the file system that will hold `folder` has less than `need` free."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if need > free:
        raise ModelError(f"{what} needs {_gib(need)}; {existing} has {_gib(free)} free",
                         hint="free some space there (invoke doctor --check storage), or keep models on a larger "
                              "disk with --persistent DIR")


def _same_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _fetched(name: str, folder: Path, marker: Marker, downloaded: bool) -> Fetched:
    return Fetched(name, marker.hub, marker.revision, folder, len(marker.files), marker.total, downloaded)


def _gib(count: int) -> str:
    from ..render.console import human_bytes

    return human_bytes(count)
