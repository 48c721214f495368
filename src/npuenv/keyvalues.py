"""KEY=value text files: /etc/os-release, CANN's version files, the driver's version.info. A pure parser."""

from __future__ import annotations


def parse_key_values(text: str) -> dict[str, str]:
    """KEY=value lines (comments and other lines ignored, quotes removed)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out
