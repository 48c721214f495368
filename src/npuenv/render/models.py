"""`models.*`: what was fetched, converted or written, as lines or one JSON object."""

from __future__ import annotations

from typing import Any

from . import to_json
from .console import Console, human_bytes


def render_fetched(console: Console, fetched: Any, as_json: bool) -> None:
    if as_json:
        console.line(to_json({"model": fetched.name, "hub": fetched.hub, "revision": fetched.revision,
                              "folder": str(fetched.folder), "files": fetched.files, "size": fetched.size,
                              "downloaded": fetched.downloaded}))
        return
    what = "fetched and verified" if fetched.downloaded else "already complete, nothing to do"
    console.line(f"✓ {fetched.name}: {what} — {fetched.hub}@{fetched.revision[:12]}, {fetched.files} files, "
                 f"{human_bytes(fetched.size)} in {fetched.folder}")


def render_listing(console: Console, states: list, as_json: bool) -> None:
    if as_json:
        console.line(to_json({"models": [vars(s) for s in states]}))
        return
    rows = [("model", "hub", "state", "revision", "size", "converted")]
    for s in states:
        converted = "-" if not s.converted else ("yes" if s.converted == s.revision else f"from {s.converted[:12]} (older)")
        rows.append((s.name, s.hub, s.state + (f" ({s.detail})" if s.detail else ""),
                     (s.revision or s.pinned or "-")[:12], human_bytes(s.size) if s.size else "-", converted))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    console.lines(["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows])


def render_converted(console: Console, converted: Any, as_json: bool) -> None:
    if as_json:
        console.line(to_json({"model": converted.name, "folder": str(converted.folder),
                              "model_size": converted.model_size, "source_revision": converted.source_revision,
                              "script_commit": converted.script_commit, "outputs": converted.outputs,
                              "converted": converted.converted, "log": str(converted.log) if converted.log else None}))
        return
    what = "converted" if converted.converted else "up to date, nothing to do"
    console.line(f"✓ {converted.name}: {what} — {converted.model_size} checkpoint in {converted.folder} "
                 f"({converted.outputs} files) from revision {converted.source_revision[:12]}, script "
                 f"@{converted.script_commit[:12]}")


def render_written(console: Console, written: Any, as_json: bool) -> None:
    g = written.generated
    if as_json:
        console.line(to_json({"file": str(written.path), "sidecar": str(written.sidecar) if written.sidecar else None,
                              "kind": g.kind, "template": g.template, "derived": g.derived,
                              "from_template": g.from_template}))
        return
    console.line(f"✓ wrote {written.path} from {g.template}: {len(g.derived)} values derived from the model"
                 + (f", {len(g.from_template)} kept from the template (listed in {written.sidecar.name})"
                    if written.sidecar else " (listed in its header)"))
