"""`invoke bundle --verify`: what a checked bundle holds, as lines or one JSON object."""

from __future__ import annotations

from typing import Any

from .console import Console, human_bytes


def verified_lines(verified: Any) -> list[str]:
    manifest = verified.manifest
    members = manifest["members"]
    git = sum(1 for name in members if "/git/" in name)
    lines = [f"{verified.path}: a bundle of the spec {manifest['spec']['name']} for {manifest['arch']}, "
             f"Python {manifest.get('python')}",
             f"  {len(members)} members, every one matches its sha256 ({human_bytes(verified.size)}; "
             f"{git} git bundles, {len(members) - git - 2} wheels and sdists, the lock)"]
    if manifest.get("sdist_only"):
        lines.append(f"  only as sdists (built on the box): {', '.join(manifest['sdist_only'])}")
    return lines


def render_verified(console: Console, verified: Any, as_json: bool) -> None:
    if as_json:
        from . import to_json

        console.line(to_json({"file": str(verified.path), "ok": True, "size": verified.size, **verified.manifest}))
    else:
        console.lines(verified_lines(verified))
