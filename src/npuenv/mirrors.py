"""URL-prefix mirrors: `https://github.com/=https://my-mirror/` rewrites the spec's URLs and git's own.

Layers come from the spec, the config and NPUENV_MIRRORS (later wins for the same prefix). git learns
them as `url.<replacement>.insteadOf=<prefix>` through GIT_CONFIG_COUNT/KEY/VALUE, so clones that
upstream build scripts make by themselves, and submodules, follow the mirrors too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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

    def git_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The GIT_CONFIG_* variables to set, appended after the entries `environ` already carries."""
        if not self.rules:
            return {}
        start = _git_config_count(environ)
        env = {"GIT_CONFIG_COUNT": str(start + len(self.rules))}
        for i, (prefix, new) in enumerate(self.rules, start):
            env[f"GIT_CONFIG_KEY_{i}"] = f"url.{new}.insteadOf"
            env[f"GIT_CONFIG_VALUE_{i}"] = prefix
        return env


def _git_config_count(environ: Mapping[str, str]) -> int:
    value = environ.get("GIT_CONFIG_COUNT", "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise UsageError(f"GIT_CONFIG_COUNT={value!r} is not a number, so git would refuse to run",
                         "unset GIT_CONFIG_COUNT or fix it")
    return int(value)


def _parse_entry(entry: str, source: str) -> tuple[str, str]:
    hint = f"write each mirror as PREFIX=REPLACEMENT, both https:// URLs, e.g. {_EXAMPLE}"
    if "=" not in entry:
        raise UsageError(f"{source}: mirror entry {entry!r} has no '=' (PREFIX=REPLACEMENT)", hint)
    prefix, new = (part.strip() for part in entry.split("=", 1))
    for url in (prefix, new):
        if not re.match(r"https://[^/\s]+", url):
            raise UsageError(f"{source}: mirror entry {entry!r}: {url!r} is not an https:// URL", hint)
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
