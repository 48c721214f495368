"""models: the spec's models on disk (complete? converted from the revision there is?), and the MindSpeed-MM
config files and launch scripts people run them with (paths that exist, pipeline splits that add up,
no more NPUs asked for than the box has)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .base import CheckResult, check, fail, ok, skip, warn

EXAMPLES = "examples/internvl2.5"


def _places(ctx) -> Optional[Any]:
    from ..models.places import Places

    return Places(ctx.persistent) if ctx.persistent.is_dir() else None


def _models(ctx) -> dict:
    from ..models.catalog import models_of

    return models_of(ctx.spec)


@check("models.fetched", "every model folder of the spec's models is complete (as models.fetch verified it)")
def fetched(ctx) -> CheckResult:
    from ..models.verify import changed_since, read_marker

    places = _places(ctx)
    if places is None:
        return skip(f"{ctx.persistent} does not exist here")
    present = [name for name in _models(ctx) if places.model(name).is_dir()]
    if not present:
        return skip(f"no model of the spec in {places.models}")
    bad = []
    for name in present:
        marker = read_marker(places.model(name))
        why = "not verified complete" if marker is None else changed_since(places.model(name), marker)
        if why:
            bad.append((name, why))
    if bad:
        return fail(f"{len(bad)} of {len(present)} model folders incomplete: "
                    + "; ".join(f"{name} ({why})" for name, why in bad),
                    " && ".join(f"invoke models.fetch {name}" for name, _why in bad))
    return ok(f"{len(present)} complete in {places.models}: {', '.join(present)}")


@check("models.converted", "converted checkpoints were made from the revision of the model there is now")
def converted(ctx) -> CheckResult:
    from ..models.convert import read_provenance
    from ..models.verify import read_marker

    places = _places(ctx)
    if places is None:
        return skip(f"{ctx.persistent} does not exist here")
    present = [name for name in _models(ctx) if places.converted(name).is_dir()]
    if not present:
        return skip(f"no converted model in {places.converted_root}")
    stale = []
    for name in present:
        record, marker = read_provenance(places.converted(name)), read_marker(places.model(name))
        made_from = ((record or {}).get("source") or {}).get("revision")
        if record is None:
            stale.append(f"{name}: no provenance (not made by models.convert, or half made)")
        elif marker is not None and made_from != marker.revision:
            stale.append(f"{name}: converted from {str(made_from)[:12]}, the model is now at {marker.revision[:12]}")
    if stale:
        names = [s.split(":", 1)[0] for s in stale]
        return warn(f"{len(stale)} converted checkpoints are older than their source: " + "; ".join(stale),
                    " && ".join(f"invoke models.convert {n}" for n in names))
    return ok(f"{len(present)} converted from the revision there is: {', '.join(present)}")


CHECKS = [fetched, converted]
