"""The stack's lock beside its spec: `<spec>.lock` (JSON) and `<spec>.uv.lock` (uv's lock, verbatim).

JSON because npuenv writes and compares it key by key and people read it with jq; the target env's
resolution stays in uv's own format so that uv reads it unchanged. The JSON holds a checksum of itself
and the uv lock's sha256: a lock edited by hand is refused, never half-followed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .atomic import write_atomic
from .digest import sha256_file
from .errors import LockFileError

FORMAT = 1
# what may change without changing what gets installed: where things are fetched from, and prose
NOT_LOCKED = ("mirrors", "description")
FIX = "run `invoke lock` to write it again (or restore both files from version control)"


def paths(spec_file: Path) -> tuple[Path, Path]:
    """x.yaml -> (x.lock, x.uv.lock), beside it."""
    stem = Path(spec_file).with_suffix("").name
    return spec_file.with_name(stem + ".lock"), spec_file.with_name(stem + ".uv.lock")


def locked_content(spec: Any) -> dict:
    """What of the spec the lock stands for: its merged content (after `extends:`), without NOT_LOCKED, and
    the content of every patch file it applies."""
    content = {k: v for k, v in spec.raw.items() if k not in NOT_LOCKED}
    return {"spec": content, "patch_files": {name: sha256_file(p.file) for name, p in sorted(spec.patches.items())}}


def content_sha256(content: dict) -> str:
    return _digest(content)


def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class StackLock:
    """A lock read from disk and found intact."""

    path: Path
    data: dict
    uv_lock: str  # canonical URLs: a box's mirrors are applied when it installs

    @property
    def arches(self) -> tuple[str, ...]:
        return tuple(self.data["uv"]["arches"])

    @property
    def uv_sha256(self) -> str:
        return self.data["uv"]["sha256"]

    def changes(self, spec: Any) -> list[str]:
        """What changed in the spec since this lock was made, one line per key (empty: nothing)."""
        return differences(self.data["content"], locked_content(spec))


def read(spec_file: Path) -> Optional[StackLock]:
    """The lock beside `spec_file`, checked intact; None when the spec has none."""
    json_path, uv_path = paths(spec_file)
    return read_files(json_path, uv_path) if json_path.exists() else None


def read_files(json_path: Path, uv_path: Path) -> StackLock:
    """A lock's two files, checked intact."""
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LockFileError(f"{json_path}: cannot read the lock: {exc}", FIX) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise LockFileError(f"{json_path}: lock format {found!r}, this npuenv reads format {FORMAT}", FIX)
    if data.get("checksum") != _digest(_without_checksum(data)):
        raise LockFileError(f"{json_path} was changed by hand: its checksum does not match its content", FIX)
    try:
        uv_text = uv_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LockFileError(f"{uv_path}: cannot read the uv lock that {json_path.name} names: {exc}", FIX) from exc
    if hashlib.sha256(uv_text.encode()).hexdigest() != data["uv"]["sha256"]:
        raise LockFileError(f"{uv_path} was changed by hand: its sha256 is not the one {json_path.name} records",
                            FIX)
    return StackLock(json_path, data, uv_text)


def write(spec_file: Path, data: dict, uv_text: str) -> StackLock:
    """Both files, each atomically: the uv lock first, so the JSON never names a uv lock that is not there."""
    json_path, uv_path = paths(spec_file)
    data = {**data, "format": FORMAT}
    data["uv"] = {**data["uv"], "lock": uv_path.name, "sha256": hashlib.sha256(uv_text.encode()).hexdigest()}
    data["checksum"] = _digest(_without_checksum(data))
    write_atomic(uv_path, uv_text)
    write_atomic(json_path, json.dumps(data, indent=2) + "\n")
    return StackLock(json_path, data, uv_text)


def _without_checksum(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "checksum"}


# --- naming what changed --------------------------------------------------------------------------


def differences(old: dict, new: dict) -> list[str]:
    """`repos.mindspeed.commit: 3f09d67… -> 1a2b3c4…` for every leaf that differs."""
    before, after = flatten(old.get("spec", {})), flatten(new.get("spec", {}))
    lines = []
    for key in sorted(set(before) | set(after)):
        old_value, new_value = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if old_value == new_value:
            continue
        if isinstance(old_value, list) and isinstance(new_value, list):
            added = [_shown(v) for v in new_value if v not in old_value]
            removed = [_shown(v) for v in old_value if v not in new_value]
            change = ", ".join([*(f"+ {v}" for v in added), *(f"- {v}" for v in removed)]) or "reordered"
            lines.append(f"{key}: {change}")
        else:
            lines.append(f"{key}: {_shown(old_value)} -> {_shown(new_value)}")
    old_patches, new_patches = old.get("patch_files", {}), new.get("patch_files", {})
    for name in sorted(set(old_patches) & set(new_patches)):
        if old_patches[name] != new_patches[name]:
            lines.append(f"patches.{name}: its file changed")
    return lines


_ABSENT = object()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: every leaf by its dotted path (lists, scalars and {} are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value} if prefix else {}


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = value if isinstance(value, str) else json.dumps(value)
    if re.fullmatch(r"[0-9a-f]{40,64}", text):
        return text[:7] + "…"
    return text if len(text) <= 60 else text[:57] + "…"


# --- URLs: canonical in the lock, a box's mirrors applied when it installs -------------------------


_URL = re.compile(r'"((?:https|file)://[^"]+)"')


def rewrite_urls(text: str, rewrite: Callable[[str], str]) -> str:
    """Every quoted URL of a uv lock through `rewrite` (registry, sdist and wheel URLs)."""
    return _URL.sub(lambda m: json.dumps(rewrite(m.group(1))), text)


def unmirror(rules: tuple[tuple[str, str], ...]) -> Callable[[str], str]:
    """The inverse of mirror rules: a URL that starts with a replacement gets its prefix back."""
    def rewrite(url: str) -> str:
        matching = [(prefix, new) for prefix, new in rules if url.startswith(new)]
        if not matching:
            return url
        prefix, new = max(matching, key=lambda rule: len(rule[1]))
        return prefix + url[len(new):]
    return rewrite
