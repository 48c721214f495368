"""`smoke`: the smoke test of a workspace's target env, as a table (or JSON)."""

from __future__ import annotations

import os

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
    from ..npu import smoke as lib
    from ..render import smoke as render, to_json
    from ..render.console import Console

    console = Console()
    count = None if devices is None else positive_int(devices, "--devices", 2)
    target = lib.workspace_target(root, spec, os.environ)
    if not json_:
        console.lines(render.device_note(lib.npu_devices(os.environ), lib.npu_device_glob(os.environ)))
    report = lib.run_target(target, os.environ, devices=count)
    console.lines([to_json(report)] if json_ else render.table(report, hints=False))
    if not report.passed:
        raise lib.failure(report)
