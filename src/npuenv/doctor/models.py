"""models: the spec's models on disk (complete? converted from the revision there is?), and the MindSpeed-MM
config files and launch scripts people run them with (paths that exist, pipeline splits that add up,
no more NPUs asked for than the box has)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .base import CheckResult, check, fail, ok, skip, warn

EXAMPLES = "examples/internvl2.5"


def _present(ctx, converted: bool) -> tuple[Any, list[str], Optional[CheckResult]]:
    """(places, the spec's models with a folder there, or the skip result when there is none)."""
    from ..models.catalog import models_of
    from ..models.places import Places

    if not ctx.persistent.is_dir():
        return None, [], skip(f"{ctx.persistent} does not exist here")
    places = Places(ctx.persistent)
    folder = places.converted if converted else places.model
    present = [name for name in models_of(ctx.spec) if folder(name).is_dir()]
    if not present:
        where = places.converted_root if converted else places.models
        return places, [], skip(f"no {'converted model' if converted else 'model of the spec'} in {where}")
    return places, present, None


@check("models.fetched", "every model folder of the spec's models is complete (as models.fetch verified it)")
def fetched(ctx) -> CheckResult:
    from ..models.verify import changed_since, read_marker

    places, present, skipped = _present(ctx, converted=False)
    if skipped:
        return skipped
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

    places, present, skipped = _present(ctx, converted=True)
    if skipped:
        return skipped
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


def _own_files(ctx, suffix: str) -> tuple[Optional[Path], list[Path]]:
    """The checkout's examples/internvl2.5 files people made or changed (generated or hand-written): the
    pinned upstream's own, unchanged, are its placeholders and not judged."""
    from ..git import git
    from ..npu.smoke import project_dir

    project = project_dir(ctx.spec, ctx.root) if ctx.root is not None and ctx.spec.env else None
    folder = project / EXAMPLES if project is not None else None
    if folder is None or not folder.is_dir():
        return None, []
    listed = git(["ls-files", "-z", "--", EXAMPLES], cwd=project, env=ctx.environ, check=False).stdout
    changed = git(["diff", "--name-only", "-z", "HEAD", "--", EXAMPLES], cwd=project, env=ctx.environ, check=False).stdout
    pristine = set(filter(None, listed.split("\0"))) - set(filter(None, changed.split("\0")))
    return project, sorted(p for p in folder.glob(f"*{suffix}")
                           if f"{EXAMPLES}/{p.name}" not in pristine and not p.name.endswith(".npuenv.json"))


@check("models.configs", "MindSpeed-MM config files made here: paths exist, pipeline splits add up to the layers")
def configs(ctx) -> CheckResult:
    import json

    from ..models.configs import missing_paths, split_problems

    if ctx.root is None:
        return skip(ctx.no_root)
    project, files = _own_files(ctx, ".json")
    if not files:
        return skip(f"no config file of your own in {EXAMPLES}" if project else "no MindSpeed-MM checkout")
    problems = []
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: not JSON ({exc})")
            continue
        problems += [f"{path.name}: {p}" for p in split_problems(data)]
        problems += [f"{path.name}: {p} does not exist" for p in missing_paths(data, project)]
    if problems:
        return fail(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {len(files)} config files: "
                    + "; ".join(problems[:4]), "regenerate them: invoke models.config NAME --kind model|data|inference "
                    "(fetch and convert the model first), or fix the paths", details=problems)
    return ok(f"{len(files)} config files of your own: paths exist, splits add up ({', '.join(p.name for p in files)})")


@check("models.launch", "launch scripts made here ask for no more NPUs than the box has")
def launch(ctx) -> CheckResult:
    from ..models.launch import device_count
    from ..models.launchscript import launch_devices

    if ctx.root is None:
        return skip(ctx.no_root)
    _project, files = _own_files(ctx, ".sh")
    if not files:
        return skip(f"no launch script of your own in {EXAMPLES}")
    have = device_count(ctx.environ)
    if have == 0:
        return skip("no NPUs here to compare NPUS_PER_NODE with")
    asked = {p.name: launch_devices(p.read_text(encoding="utf-8", errors="replace")) for p in files}
    over = {name: n for name, n in asked.items() if n is not None and n > have}
    if over:
        return fail(f"{', '.join(f'{name} sets NPUS_PER_NODE={n}' for name, n in over.items())}, this box has {have} "
                    "NPUs: torchrun dies with HCCL error code 7",
                    f"set NPUS_PER_NODE={have}, or regenerate: invoke models.config NAME --kind finetune")
    return ok(f"{len(files)} launch scripts, NPUS_PER_NODE ≤ {have}")


CHECKS = [fetched, converted, configs, launch]
