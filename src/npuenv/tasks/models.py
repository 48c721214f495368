"""`models.*`: fetch a model's weights, convert them for MindSpeed-MM, write its per-size configs, list them."""

from __future__ import annotations

from invoke import Collection, task

from ..defaults import DEFAULT_SPEC
from .boundary import boundary, mirrors_config

_SPEC = f"spec name in env_specs/ or a path to a YAML file (default: the workspace's, else {DEFAULT_SPEC})"
_PERSISTENT = ("the folder that survives a restart (default /home/ma-user/work, or NPUENV_PERSISTENT_ROOT): "
               "models go to DIR/models/NAME, converted ones to DIR/models_ms/NAME")
_ROOT = "the workspace whose spec (and MindSpeed-MM checkout, target env) to use (default /home/ma-user/work/$NPUENV_USER)"


@task(
    help={
        "name": "the model, as the spec's `models:` names it (e.g. InternVL2_5-8B)",
        "spec": _SPEC,
        "root": _ROOT,
        "persistent": _PERSISTENT,
        "revision": "COMMIT: fetch this revision of the hub repo instead of the spec's",
        "update": "ask the hub for the newest revision of an unpinned model even when one is complete",
        "ca-bundle": "FILE: an extra CA file (PEM) to trust besides the public roots (repeatable)",
        "json": "print the result as one JSON object (no progress bars)",
    },
    iterable=["ca_bundle"],
)
@boundary
def fetch(c, name, spec=None, root=None, persistent=None, revision=None, update=False, ca_bundle=None, json_=False):
    """Download a model of the spec from the hub into PERSISTENT/models/NAME (resumable, disk checked, verified)."""
    import os

    from ..models.fetching import FetchRequest, fetch_model
    from ..models.session import open_session
    from ..render import models as render
    from ..render.console import Console

    console = Console()
    session = open_session(spec, persistent, root, os.environ, mirrors_config(c))
    request = FetchRequest(name, revision=_commit(revision), update=update, ca_bundle=tuple(ca_bundle or ()),
                           progress=not json_)
    fetched = fetch_model(session, request, (lambda text: None) if json_ else console.line)
    render.render_fetched(console, fetched, json_)


@task(
    help={
        "name": "the model, as the spec's `models:` names it (fetched first with models.fetch)",
        "root": _ROOT,
        "spec": _SPEC,
        "persistent": _PERSISTENT,
        "json": "print the result as one JSON object",
    },
)
@boundary
def convert(c, name, root=None, spec=None, persistent=None, json_=False):
    """Convert a fetched model to MindSpeed-MM's checkpoint with the pinned script, into PERSISTENT/models_ms/NAME."""
    import os

    from ..models.convert import convert_model
    from ..models.session import open_session
    from ..npu.smoke import workspace_target
    from ..render import models as render
    from ..render.console import Console

    console = Console()
    session = open_session(spec, persistent, root, os.environ, mirrors_config(c))
    converted = convert_model(session, name, lambda: workspace_target(root, spec, os.environ),
                              (lambda text: None) if json_ else console.line)
    render.render_converted(console, converted, json_)


@task(
    help={
        "name": "the model, as the spec's `models:` names it (its config.json must be fetched)",
        "kind": "inference, model, data or finetune (the launch script)",
        "out": "PATH: write here (default: MindSpeed-MM/examples/internvl2.5/<kind>_<size>.json in the workspace)",
        "devices": "finetune: NPUS_PER_NODE (default: the NPUs this box has)",
        "port": "finetune: MASTER_PORT (default: the first free port from 6000)",
        "data-path": "data: the training data's JSON (default: MindSpeed-MM/dataset/train.json)",
        "data-folder": "data: the folder its image paths are relative to (default: MindSpeed-MM/dataset)",
        "save": "finetune: where training saves checkpoints (default: MindSpeed-MM/ckpt/NAME-finetuned)",
        "root": _ROOT,
        "spec": _SPEC,
        "persistent": _PERSISTENT,
        "json": "print what was written, derived and kept from the template as one JSON object",
    },
)
@boundary
def config(c, name, kind=None, out=None, devices=None, port=None, data_path=None, data_folder=None, save=None,
           root=None, spec=None, persistent=None, json_=False):
    """Write MindSpeed-MM's inference, model, data or finetune file for the model's size, from its config.json."""
    import os

    from ..models.configs import ConfigRequest, write_config
    from ..models.session import open_session
    from ..npu.smoke import project_dir
    from ..render import models as render
    from ..render.console import Console

    if kind is None:  # an option, not a second positional: `models.config --help` shows the help
        from ..errors import UsageError
        from ..models.configs import KINDS

        raise UsageError("models.config needs --kind", hint=f"give --kind {' | '.join(KINDS)}")
    session = open_session(spec, persistent, root, os.environ, mirrors_config(c))
    project = project_dir(session.spec, session.root) if session.root is not None else None
    if project is None or not project.is_dir():
        from ..errors import UsageError

        raise UsageError("no MindSpeed-MM checkout to take the templates from" + (f" in {session.root}" if session.root else ""),
                         hint="pass --root WORKSPACE (made by invoke bootstrap)")
    request = ConfigRequest(name, kind, out, _count(devices, "--devices"), _count(port, "--port"), data_path,
                            data_folder, save)
    render.render_written(Console(), write_config(session, project, request), json_)


def _count(value, option):
    from .boundary import positive_int

    return None if value is None else positive_int(value, option, 8 if option == "--devices" else 6000)


@task(
    help={"spec": _SPEC, "root": _ROOT, "persistent": _PERSISTENT, "json": "print the listing as one JSON object"},
)
@boundary
def list_(c, spec=None, root=None, persistent=None, json_=False):
    """List the spec's models: fetched and verified, converted, and at which revision (reads no network)."""
    import os

    from ..models.listing import listing
    from ..models.session import open_session
    from ..render import models as render
    from ..render.console import Console

    session = open_session(spec, persistent, root, os.environ, mirrors_config(c))
    render.render_listing(Console(), listing(session), json_)


def _commit(value):
    if value is None:
        return None
    import re

    from ..errors import UsageError

    if not re.fullmatch(r"[0-9a-f]{40}", value):
        raise UsageError(f"--revision {value}: expected a full commit of the hub repo (40 hex digits)",
                         hint="the hub shows it under 'Files and versions' → History; a branch goes in the spec's `ref:`")
    return value


ns = Collection("models")
ns.add_task(fetch)
ns.add_task(convert)
ns.add_task(config)
ns.add_task(list_, name="list")
