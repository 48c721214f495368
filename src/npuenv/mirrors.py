"""URL-prefix mirrors: `https://github.com/=https://my-mirror/` rewrites the spec's URLs and git's own.

Layers come from the spec, the config and NPUENV_MIRRORS (later wins for the same prefix). git learns
them as `url.<replacement>.insteadOf=<prefix>` through GIT_CONFIG_COUNT/KEY/VALUE, so clones that
upstream build scripts make by themselves, and submodules, follow the mirrors too.

A replacement may be local: a `file://` URL or an absolute path (kept as a `file://` URL), a folder of
mirrors on disk or NFS. git refuses the file transport for submodules unless `protocol.file.allow` is
`always`; that is set for npuenv's own runs only, and only when a local mirror exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from .errors import UsageError

ENV_MIRRORS = "NPUENV_MIRRORS"

_EXAMPLE = f"{ENV_MIRRORS}='https://github.com/=https://your-mirror/github/'"


@dataclass(frozen=True)
class Mirrors:
    """Ordered (prefix, replacement) rules; the longest matching prefix wins."""

    rules: tuple[tuple[str, str], ...] = ()

    def rewrite(self, url: str) -> str:
        """`url` with its longest matching prefix replaced; unchanged when no rule matches."""
        matching = [(prefix, new) for prefix, new in self.rules if url.startswith(prefix)]
        if not matching:
            return url
        prefix, new = max(matching, key=lambda rule: len(rule[0]))
        return new + url[len(prefix):]

    @property
    def local(self) -> bool:
        """Does any rule lead to a folder on this machine (file://)?"""
        return any(is_local(new) for _prefix, new in self.rules)

    def git_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The GIT_CONFIG_* variables to set, appended after the entries `environ` already carries."""
        entries = [(f"url.{new}.insteadOf", prefix) for prefix, new in self.rules]
        if self.local:  # submodules (decord's) reach a local mirror only with this
            entries.append(("protocol.file.allow", "always"))
        if not entries:
            return {}
        start = _git_config_count(environ)
        env = {"GIT_CONFIG_COUNT": str(start + len(entries))}
        for i, (key, value) in enumerate(entries, start):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env


def is_local(url: str) -> bool:
    return url.lower().startswith("file://")


def local_path(url: str) -> str:
    """The path of a file:// URL (percent-escapes decoded)."""
    return unquote(urlsplit(url).path)


def replacement_url(text: str) -> str:
    """An absolute path becomes the file:// URL of that folder (a trailing '/' is kept)."""
    if not text.startswith("/"):
        return text
    return "file://" + quote(str(PurePosixPath(text))) + ("/" if text.endswith("/") and text != "/" else "")


def url_problem(url: str, *, local_ok: bool) -> str:
    """Why `url` cannot be a mirror prefix (local_ok=False) or replacement (local_ok=True), or ''."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "http":
        return f"{url!r}: http:// is refused: without TLS nothing proves who sent the bytes"
    if local_ok and scheme == "file":
        path = local_path(url)
        return "" if path.startswith("/") and urlsplit(url).netloc in ("", "localhost") else \
            f"{url!r} is not a file:// URL of an absolute path (file:///srv/git/)"
    if not re.match(r"https://[^/\s]+", url):
        what = "an https:// URL, a file:// URL or an absolute path" if local_ok else "an https:// URL"
        return f"{url!r} is not {what}"
    return ""


def _git_config_count(environ: Mapping[str, str]) -> int:
    value = environ.get("GIT_CONFIG_COUNT", "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise UsageError(f"GIT_CONFIG_COUNT={value!r} is not a number, so git would refuse to run",
                         "unset GIT_CONFIG_COUNT or fix it")
    return int(value)


def _parse_entry(entry: str, source: str) -> tuple[str, str]:
    hint = (f"write each mirror as PREFIX=REPLACEMENT: PREFIX an https:// URL, REPLACEMENT an https:// URL, "
            f"a file:// URL or an absolute path, e.g. {_EXAMPLE}")
    if "=" not in entry:
        raise UsageError(f"{source}: mirror entry {entry!r} has no '=' (PREFIX=REPLACEMENT)", hint)
    prefix, new = (part.strip() for part in entry.split("=", 1))
    new = replacement_url(new)
    problem = url_problem(prefix, local_ok=False) or url_problem(new, local_ok=True)
    if problem:
        raise UsageError(f"{source}: mirror entry {entry!r}: {problem}", hint)
    if prefix.endswith("/") != new.endswith("/"):
        raise UsageError(f"{source}: mirror entry {entry!r}: end both URLs with '/' or neither, "
                         "or the rewritten paths run together", hint)
    return prefix, new


def parse_mirrors(text: str, source: str) -> list[tuple[str, str]]:
    """Rules from 'PREFIX=REPLACEMENT' entries separated by newlines or ';' ('#' lines are comments)."""
    lines = (line.strip() for line in text.splitlines())
    entries = (entry.strip() for line in lines if not line.startswith("#") for entry in line.split(";"))
    return [_parse_entry(entry, source) for entry in entries if entry and not entry.startswith("#")]


def combine(*layers: Iterable[tuple[str, str]]) -> Mirrors:
    """Merge layers (spec, config, environment): a later layer overrides an earlier one's prefix."""
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer)
    return Mirrors(rules=tuple(merged.items()))
