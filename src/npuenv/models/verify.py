"""Is a model folder complete and intact? Per file (size, then sha256 for LFS files or the git blob id for
the others), per shard against model.safetensors.index.json, and cheaply through the marker npuenv
writes once everything was verified (each file's size and mtime: a no-op re-run reads no content)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..atomic import write_atomic
from ..digest import sha256_file
from .hubapi import HubFile, RepoFiles
from .places import MARKER

INDEX = "model.safetensors.index.json"
HEADER_LIMIT = 100 << 20  # a safetensors header is JSON of names and offsets; more than this is not one
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def git_blob_id(path: Path) -> str:
    """The git blob id of a file: what the hub lists for files that are not in LFS."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)  # noqa: S324 - git's id, not a security hash
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_problem(folder: Path, item: HubFile) -> Optional[str]:
    """Why `item` is not intact in `folder` (missing, wrong size, wrong hash), or None."""
    path = folder / item.path
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != item.size:
        return f"{size} bytes, the hub says {item.size}"
    if item.lfs:
        found = sha256_file(path)
        return None if found == item.sha256 else f"sha256 {found[:12]}…, the hub says {item.sha256[:12]}…"
    found = git_blob_id(path)
    return None if found == item.blob_id else f"git blob {found[:12]}…, the hub says {item.blob_id[:12]}…"


def safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON); ValueError if not one."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise ValueError("shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > HEADER_LIMIT or length + 8 > path.stat().st_size:
            raise ValueError(f"header length {length} does not fit the file")
        data = json.loads(handle.read(length))
    if not isinstance(data, dict):
        raise ValueError("the header is not a JSON object")
    return data


def tensor_bytes(entry: Any) -> int:
    """A tensor's byte size by its data offsets."""
    begin, end = entry["data_offsets"]
    return int(end) - int(begin)


def index_problems(folder: Path) -> list[str]:
    """model.safetensors.index.json against the shards: each named shard exists, holds exactly the tensors
    the index maps to it, and the tensors' bytes add up to metadata.total_size. [] when there is no index."""
    index_path = folder / INDEX
    if not index_path.is_file():
        return []
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
        total = int(index.get("metadata", {}).get("total_size", -1))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"{INDEX}: not a safetensors index ({type(exc).__name__}: {exc})"]
    by_shard: dict[str, set] = {}
    for tensor, shard in weight_map.items():
        by_shard.setdefault(shard, set()).add(tensor)
    problems, seen = [], 0
    for shard, tensors in sorted(by_shard.items()):
        problem, size = _shard_problem(folder, shard, tensors)
        seen += size
        if problem:
            problems.append(f"{shard}: {problem}")
    if not problems and total >= 0 and seen != total:
        problems.append(f"{INDEX}: the shards hold {seen} bytes of tensors, metadata.total_size says {total}")
    return problems


def _shard_problem(folder: Path, shard: str, tensors: set) -> tuple[Optional[str], int]:
    path = folder / shard
    if "/" in shard or shard in ("", ".", "..") or not path.is_file():
        return f"named in {INDEX} but missing", 0
    try:
        header = safetensors_header(path)
        header.pop("__metadata__", None)
        size = sum(tensor_bytes(v) for v in header.values())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"not a safetensors file ({exc})", 0
    missing, extra = sorted(tensors - header.keys()), sorted(header.keys() - tensors)
    if missing or extra:
        return (f"{len(missing)} tensors of the index missing (e.g. {missing[0]})" if missing
                else f"{len(extra)} tensors not in the index (e.g. {extra[0]})"), size
    return None, size


# --- the marker: verified once, then trusted while no file changed -----------------------------------------


@dataclass(frozen=True)
class Marker:
    hub: str
    revision: str
    files: dict  # path -> {size, mtime_ns, sha256 | blob_id}

    @property
    def total(self) -> int:
        return sum(int(f["size"]) for f in self.files.values())


def write_marker(folder: Path, repo: RepoFiles) -> Marker:
    files = {}
    for item in repo.files:
        found = (folder / item.path).stat()
        files[item.path] = {"size": found.st_size, "mtime_ns": found.st_mtime_ns,
                            **({"sha256": item.sha256} if item.lfs else {"blob_id": item.blob_id})}
    marker = Marker(repo.hub, repo.revision, files)
    write_atomic(folder / MARKER, json.dumps({"version": 1, "hub": repo.hub, "revision": repo.revision,
                                              "files": files}, indent=1, sort_keys=True) + "\n")
    return marker


def read_marker(folder: Path) -> Optional[Marker]:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return Marker(str(data["hub"]), str(data["revision"]), dict(data["files"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def changed_since(folder: Path, marker: Marker) -> Optional[str]:
    """The first file that is gone or changed since the marker was written (by size and mtime), or None."""
    for path, recorded in sorted(marker.files.items()):
        try:
            found = os.stat(folder / path)
        except OSError:
            return f"{path} is missing"
        if found.st_size != recorded.get("size") or found.st_mtime_ns != recorded.get("mtime_ns"):
            return f"{path} changed since it was verified"
    return None


def verify_files(folder: Path, repo: RepoFiles, on_file: Callable[[HubFile], None] = lambda f: None) -> dict[str, str]:
    """Every file of `repo` checked in `folder`: path -> problem, for those that are not intact."""
    problems = {}
    for item in repo.files:
        on_file(item)
        problem = file_problem(folder, item)
        if problem:
            problems[item.path] = problem
    return problems
