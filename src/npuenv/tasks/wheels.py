"""`wheels`: what the wheelhouse holds, and pruning what no spec references."""

from __future__ import annotations

from invoke import task

from .boundary import boundary


@task(
    help={
        "wheels": "the wheelhouse folder (default: this checkout's wheels/)",
        "spec": "NAME|FILE: also count this spec (name or file) as referencing wheels (repeatable); built-in specs always count",
        "prune": "delete cached wheels that no spec references",
        "json": "print the listing (and what --prune removed) as one JSON object",
    },
    iterable=["spec"],
)
@boundary
def wheels(c, wheels=None, spec=None, prune=False, json_=False):
    """List the wheelhouse (downloaded and built wheels, their key inputs, size, age); --prune the unused."""
    from ..render import to_json, wheels as render
    from ..render.console import Console
    from ..wheelhouse import listing

    found = listing(wheels, list(spec or []), prune)
    Console().lines([to_json(found)] if json_ else render.listing(found))
