"""`smoke`: the smoke test of a workspace's target env, as a table (or JSON)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from invoke import task

from ..defaults import DEFAULT_SPEC
from .boundary import boundary, positive_int


@task(
    help={
        "root": "workspace folder (default /home/ma-user/work/$NPUENV_USER)",
        "spec": f"spec name in env_specs/ or a path to a YAML file (default: the spec this workspace was made with, else {DEFAULT_SPEC})",
        "json": "print the result as one JSON object instead of a table",
        "devices": "test this many NPUs (default: all that torch_npu sees)",
    },
)
@boundary
def smoke(c, root=None, spec=None, json_=False, devices=None):
    """Smoke-test the target env: torch_npu, every NPU, an HCCL all-reduce, MindSpeed, decord."""
    from .. import workspace
    from ..npu import smoke as lib
    from ..cann import set_env_candidate
    from ..errors import NpuenvError, UsageError
    from ..render.console import Console
    from ..spec import load_spec

    console = Console()
    count = None if devices is None else positive_int(devices, "--devices", 2)
    if root and not Path(root).expanduser().is_dir():
        raise UsageError(f"--root {root}: no such folder", hint="pass the workspace that bootstrap made")
    folder = workspace.resolve_root(root, os.environ)
    loaded = load_spec(workspace.spec_argument(spec, workspace.recorded_spec(folder)))
    if loaded.env is None:
        raise UsageError(f"the spec {loaded.name} has no env: there is no target env to test")
    python = lib.target_python(loaded, folder)
    if not python.is_file():
        raise NpuenvError(f"no target env at {python.parent.parent}",
                          hint=f"make it first: invoke bootstrap --root {folder}")
    if not json_ and not lib.npu_devices(os.environ):
        console.line(f"note: no NPU device files match {lib.npu_device_glob(os.environ)} on this machine")
    report = lib.run_smoke(str(python), cann_set_env=set_env_candidate(os.environ), env=os.environ,
                           devices=count, project=lib.project_dir(loaded, folder),
                           tmpdir=workspace.Layout(folder).tmp)
    if json_:
        console.line(json.dumps(report.to_json(), indent=2))
    else:
        for line in lib.render_lines(report, hints=False):
            console.line(line)
    if not report.passed:
        raise lib.failure(report)
