"""smoke — the last step: the smoke test (npuenv.npu.smoke) in the finished target env, with CANN sourced.

On a machine without NPU device files (a build box) there is nothing to test: the step records that it
was skipped and succeeds. The device numbers are part of the fingerprint, so the same workspace on a box
with NPUs runs the test.
"""

from __future__ import annotations

from typing import IO, Any

from ..npu import smoke
from ..digest import sha256_file
from ..render import smoke as render
from .base import OK, Checked, Context, Kind, Step, drifted, missing, step_ids

NO_NPUS = "no NPU devices on this machine"


class SmokeStep(Step):
    kind = "smoke"
    version = 1

    def __init__(self, spec: Any, deps: tuple[str, ...] = ()) -> None:
        super().__init__("", deps)
        self.spec = spec

    def describe(self, ctx: Context) -> str:
        devices = smoke.npu_devices(ctx.env)
        if not devices:
            return f"{NO_NPUS} ({smoke.npu_device_glob(ctx.env)}): recorded as skipped"
        return (f"torch_npu, bf16 matmul on {len(devices)} NPU(s)"
                + (", HCCL all-reduce" if len(devices) > 1 else "") + ", MindSpeed, decord")

    def fingerprint(self, ctx: Context) -> Any:
        python = ctx.state.resolved("python")
        # each build's wheel by its hash (by its path where a build recorded before npuenv kept hashes)
        builds = {d: ctx.state.resolved(d).get("sha256") or ctx.state.resolved(d).get("wheel")
                  for d in self.deps if d.startswith("build:")}
        return {"env": ctx.spec.fragment("env"), "interpreter": [python.get("interpreter"), python.get("version")],
                "lock": ctx.state.resolved("env").get("lock_sha256"), "builds": builds,
                "script": sha256_file(smoke.SCRIPT), "npus": smoke.npu_devices(ctx.env),
                "set_env": str(ctx.machine.cann_set_env)}

    def check(self, ctx: Context) -> Checked:
        recorded = ctx.state.resolved(self.id)
        if recorded.get("skipped"):
            return OK
        if not recorded.get("passed"):
            return missing()
        if not smoke.target_python(self.spec, ctx.root).is_file():
            return drifted("the target interpreter is gone")
        return OK

    def apply(self, ctx: Context, log: IO[str]) -> dict[str, Any]:
        if not smoke.npu_devices(ctx.env):
            glob = smoke.npu_device_glob(ctx.env)
            log.write(f"no device files match {glob}: {NO_NPUS}, nothing to test\n")
            return {"skipped": NO_NPUS, "device_glob": glob}
        report = smoke.run_smoke(str(smoke.target_python(self.spec, ctx.root)),
                                 cann_set_env=ctx.machine.cann_set_env, env=ctx.env,
                                 project=smoke.project_dir(self.spec, ctx.root), tmpdir=ctx.home / "tmp")
        log.write("\n".join(render.table(report)) + "\n")
        for probe in report.failed:
            if probe.log:
                log.write(f"\n--- {probe.name} ---\n{probe.log.rstrip()}\n")
        if report.stderr.strip():
            log.write("\n--- stderr of the smoke script (last lines) ---\n"
                      + "\n".join(report.stderr.rstrip().splitlines()[-40:]) + "\n")
        if not report.passed:
            raise smoke.failure(report)
        return {"passed": True, "python": report.python, "torch": report.torch, "torch_npu": report.torch_npu,
                "devices": report.devices, "set_env": report.set_env, "seconds": round(report.wall, 1),
                "probes": {p.name: {"ok": p.ok, "seconds": p.seconds, "detail": p.detail} for p in report.probes}}


def compile(spec: Any, machine: Any) -> list[Step]:
    """Last: the finished env, with every build installed and the folders made."""
    if spec.env is None:
        return []
    return [SmokeStep(spec, step_ids("env", *(f"build:{b}" for b in spec.builds), "dirs" if spec.dirs else None))]


KIND = Kind("smoke", compile)
