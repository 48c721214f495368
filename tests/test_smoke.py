"""The smoke test: smoke_script.py run for real by a Python 3.11 venv with the real (CPU) torch and the
STAND-IN torch_npu of tests/world/stand_in_npu (not Ascend's: Tensor.npu() is a CPU copy, "hccl" is gloo),
then parsed, given hints, rendered; as the `smoke` step and as `invoke smoke`.

The venv is made once (torch from the wheel in /opt/wheels, decord2 from the index) and cached under
pytest's cache folder, keyed by the torch wheel's name. No test here signals any process: the only
signals are run_smoke's own, to the process group it started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import pytest

from npuenv import cann, workspace
from npuenv.npu import logtriage, smoke
from npuenv.errors import NpuenvError
from npuenv.machine import Machine
from npuenv.render import smoke as render_smoke, to_json
from npuenv.results import Status
from npuenv.plan import compile_steps
from npuenv.spec import load_spec
from npuenv.state import State
from npuenv.steps.base import Context
from npuenv.steps.smoke import NO_NPUS
from tests.world.cann import make_cann
from tests.world.wheels import find_python

REPO = Path(__file__).resolve().parents[1]
STAND_IN = REPO / "tests" / "world" / "stand_in_npu"
PROJECT = STAND_IN / "mindspeed_mm"  # holds megatron/, as MindSpeed-MM does after the copy step
DEFAULT_SPEC = REPO / "env_specs" / "mindspeed-mm-internvl2.5.yaml"
TORCH_WHEELS = sorted(Path("/opt/wheels").glob("torch-*-cp311-cp311-*.whl"))
DECORD = "decord2==3.4.0"  # the real prebuilt decord (same `import decord`), for Python 3.11 from the index
LIBHCCL = "libhccl.so: cannot open shared object file: No such file or directory."

# Captured from the real script with the stand-in: two NPUs, everything passed.
CAPTURED_PASS = r'''{"smoke": 1, "python": "3.11.7", "executable": "/tmp/smokevenv/bin/python", "machine": "x86_64", "torch": "2.13.0+cpu", "torch_npu": "2.1.0.post8", "devices": 2, "cann": null, "seconds": 14.311, "probes": [{"name": "torch_npu", "ok": true, "seconds": 4.289, "detail": "torch 2.13.0+cpu, torch_npu 2.1.0.post8", "error": null}, {"name": "is_available", "ok": true, "seconds": 0.0, "detail": "True", "error": null}, {"name": "device_count", "ok": true, "seconds": 0.0, "detail": "2 devices", "error": null}, {"name": "tensor:0", "ok": true, "seconds": 0.001, "detail": "randn(3, 4) + 1 on cpu, round trip exact", "error": null}, {"name": "matmul_bf16:0", "ok": true, "seconds": 0.001, "detail": "(128x64 @ 64x32) bf16, relative error 1.7e-03 vs CPU", "error": null}, {"name": "tensor:1", "ok": true, "seconds": 0.0, "detail": "randn(3, 4) + 1 on cpu, round trip exact", "error": null}, {"name": "matmul_bf16:1", "ok": true, "seconds": 0.0, "detail": "(128x64 @ 64x32) bf16, relative error 1.7e-03 vs CPU", "error": null}, {"name": "allreduce", "ok": true, "seconds": 9.973, "detail": "2 ranks over hccl (torchrun), sum 2 on every rank", "error": null}, {"name": "mindspeed.megatron_adaptor", "ok": true, "seconds": 0.002, "detail": "mindspeed 0.8.0 (/work/main/tests/world/stand_in_npu/mindspeed)", "error": null}, {"name": "megatron", "ok": true, "seconds": 0.0, "detail": "/work/main/tests/world/stand_in_npu/mindspeed_mm/megatron", "error": null}, {"name": "decord", "ok": true, "seconds": 0.044, "detail": "decord 3.4.0: frame 0 of 20 decoded, 48x64x3", "error": null}]}
'''

# Captured likewise with CANN not sourced (torch_npu's import fails), behind a line a library printed.
CAPTURED_FAIL = r'''[W compat] a warning some library printed on stdout
{"smoke": 1, "python": "3.11.7", "executable": "/tmp/smokevenv/bin/python", "machine": "x86_64", "torch": "2.13.0+cpu", "torch_npu": null, "devices": null, "cann": null, "seconds": 4.227, "probes": [{"name": "torch_npu", "ok": false, "seconds": 4.184, "detail": "", "error": "ImportError: libhccl.so: cannot open shared object file: No such file or directory. Please check that the cann package is installed. Please run 'source set_env.sh' in the CANN installation path.", "log": "Traceback (most recent call last):\n  File \"/work/main/src/npuenv/smoke_script.py\", line 118, in import_torch_npu\n    import torch_npu\n  File \"/work/main/tests/world/stand_in_npu/torch_npu/__init__.py\", line 24, in <module>\n    raise ImportError(\"libhccl.so: cannot open shared object file: No such file or directory. Please check that \"\nImportError: libhccl.so: cannot open shared object file: No such file or directory. Please check that the cann package is installed. Please run 'source set_env.sh' in the CANN installation path.\n"}, {"name": "is_available", "ok": null, "seconds": 0.0, "detail": "torch_npu did not import", "error": null}, {"name": "device_count", "ok": null, "seconds": 0.0, "detail": "torch_npu did not import", "error": null}, {"name": "tensor", "ok": null, "seconds": 0.0, "detail": "torch_npu did not import", "error": null}, {"name": "matmul_bf16", "ok": null, "seconds": 0.0, "detail": "torch_npu did not import", "error": null}, {"name": "allreduce", "ok": null, "seconds": 0.0, "detail": "torch_npu did not import", "error": null}, {"name": "mindspeed.megatron_adaptor", "ok": false, "seconds": 0.001, "detail": "", "error": "ImportError: libhccl.so: cannot open shared object file: No such file or directory. Please check that the cann package is installed. Please run 'source set_env.sh' in the CANN installation path.", "log": ""}, {"name": "megatron", "ok": true, "seconds": 0.0, "detail": "/work/main/tests/world/stand_in_npu/mindspeed_mm/megatron", "error": null}, {"name": "decord", "ok": null, "seconds": 0.042, "detail": "decord 3.4.0 imports; no --video to decode", "error": null}]}
'''

TWO_NPU_PROBES = ["torch_npu", "is_available", "device_count", "tensor:0", "matmul_bf16:0", "tensor:1",
                  "matmul_bf16:1", "allreduce", "mindspeed.megatron_adaptor", "megatron", "decord"]


# --- the target interpreter: Python 3.11, real CPU torch, the stand-in on PYTHONPATH ------------------------

@dataclass(frozen=True)
class Target:
    python: Path
    venv: Path
    decord: bool  # the real decord2 could be installed


def _install(argv: list, what: str) -> None:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        last = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        pytest.skip(f"could not install {what} into the smoke test's venv: {' | '.join(last)}")


@pytest.fixture(scope="session")
def target(request) -> Target:
    if not TORCH_WHEELS:
        pytest.skip("no CPU torch wheel for CPython 3.11 in /opt/wheels (torch-*-cp311-cp311-*.whl)")
    python311 = find_python("3.11")
    if python311 is None:
        pytest.skip("no CPython 3.11 here (pyenv versions or PATH without shims)")
    wheel = TORCH_WHEELS[-1]
    venv = Path(request.config.cache.mkdir("npuenv-smoke-venv")) / wheel.name[: -len(".whl")]
    done = venv / ".npuenv-smoke-ready"
    if not done.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        uv = workspace.uv_binary()
        _install([uv, "venv", "--quiet", "--python", python311, venv], "a Python 3.11 venv")
        _install([uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", wheel], wheel.name)
        with_decord = subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                                      DECORD], capture_output=True, stdin=subprocess.DEVNULL).returncode == 0
        done.write_text(json.dumps({"decord": with_decord}))
    return Target(venv / "bin" / "python", venv, json.loads(done.read_text())["decord"])


def standin_env(npus: int = 1, needs_cann: bool = False, **extra: str) -> Dict[str, str]:
    """This machine's environment without NPUENV_* settings, with the stand-in first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPUENV_")}
    env.update(PYTHONPATH=str(STAND_IN), NPUENV_STANDIN_NPUS=str(npus))
    if needs_cann:
        env["NPUENV_STANDIN_NEEDS_CANN"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def two_npus(target, tmp_path_factory):
    """One real run: two stand-in NPUs, the stand-in CANN's set_env.sh sourced (torch_npu needs it)."""
    cann = make_cann(tmp_path_factory.mktemp("ascend") / "Ascend")
    report = smoke.run_smoke(str(target.python), cann_set_env=cann.set_env, timeout=300,
                             env=standin_env(2, needs_cann=True), project=PROJECT)
    return cann, report


# --- pure: reading the result, hints, the table ------------------------------------------------------------

def test_parse_report_reads_a_captured_passing_run():
    report = smoke.parse_report(CAPTURED_PASS)
    assert [p.name for p in report.probes] == TWO_NPU_PROBES
    assert report.passed and report.failed == []
    assert (report.python, report.torch, report.torch_npu, report.devices) == ("3.11.7", "2.13.0+cpu",
                                                                              "2.1.0.post8", 2)
    allreduce = next(p for p in report.probes if p.name == "allreduce")
    assert allreduce.status is Status.OK and allreduce.ok is True and allreduce.seconds == pytest.approx(9.973)
    assert report.facts == {"smoke": 1, "machine": "x86_64"}


def test_parse_report_reads_a_captured_failure_behind_library_chatter():
    report = smoke.parse_report(CAPTURED_FAIL)
    assert [p.name for p in report.failed] == ["torch_npu", "mindspeed.megatron_adaptor"]
    assert report.counts[Status.SKIP] == 6 and report.counts[Status.OK] == 1 and report.counts[Status.FAIL] == 2
    assert [p.ok for p in report.probes[:2]] == [False, None] and report.probes[1].status is Status.SKIP
    assert LIBHCCL in report.failed[0].error and "Traceback" in report.failed[0].log
    assert not report.passed and report.torch_npu is None


@pytest.mark.parametrize("text", [
    "", "Segmentation fault (core dumped)\n", "{not json\n", '{"python": "3.10"}\n',
    '{"probes": [{"name": "x", "ok": "yes"}]}\n',
])
def test_parse_report_refuses_output_without_a_result(text):
    with pytest.raises(smoke.SmokeError):
        smoke.parse_report(text)


@pytest.mark.parametrize("text, words", [
    (f"ImportError: {LIBHCCL} Please check that the cann package is installed. Please run 'source set_env.sh' "
     "in the CANN installation path.", ["set_env.sh"]),
    ("RuntimeError: EH9999: Inner Error!\nEH9999  [Init][Env]init env failed!", ["decorator"]),
    ("RuntimeError: HCCL function error: HcclCommInitRootInfo(numRanks, &rootInfo, rank, &(comm->hcclComm_)), "
     "error code is 7", ["kill-npu", "NPUS_PER_NODE"]),
])
def test_known_failures_get_the_hint_from_the_doctors_table(text, words):
    """One source of causes and fixes: logtriage's table (what `invoke doctor --log` says), nothing of smoke's own."""
    found = logtriage.triage(text)
    known = {k.kind: k for k in logtriage.KNOWN}[found[0].kind]
    hint = smoke.hint_for(text)
    assert hint == f"{known.cause}; fix: {known.fix}"
    assert all(word in hint for word in words), hint
    assert smoke.hint_for("RuntimeError: something nobody has seen") == ""
    assert not hasattr(smoke, "FALLBACK_HINTS") and not hasattr(smoke, "fallback_hint")


def test_the_table_shows_each_probe_with_result_seconds_and_hint():
    report = smoke.attach_hints(smoke.parse_report(CAPTURED_FAIL))
    lines = render_smoke.table(report)
    text = "\n".join(lines)
    row = next(line for line in lines if line.startswith("torch_npu "))
    assert "✗" in row and "4.2" in row and LIBHCCL in row
    assert "hint:" in lines[lines.index(row) + 1] and "set_env.sh" in lines[lines.index(row) + 1]
    assert any(line.startswith("megatron ") and "✓" in line for line in lines)
    assert any(line.startswith("tensor ") and " - " in line and "torch_npu did not import" in line for line in lines)
    assert lines[-1] == "smoke test FAILED: 1 ok, 2 failed, 6 skipped in 4.2s"
    assert "hint:" not in "\n".join(render_smoke.table(report, hints=False))
    error = smoke.failure(report)
    assert error.message.splitlines()[0] == "smoke test failed: torch_npu, mindspeed.megatron_adaptor"
    assert "set_env.sh" in error.hint and "CANN: not sourced" in text
    assert not hasattr(smoke, "SYMBOLS") and not hasattr(smoke, "render_lines")  # the library lays out nothing


def test_json_keeps_the_keys_of_invoke_smoke_json():
    """`invoke smoke --json` is a user contract: passed, the script's facts, how it ran, and per probe name, ok
    (true, false, null for skipped), seconds, detail, error, and log and hint when there are any."""
    report = smoke.attach_hints(smoke.parse_report(CAPTURED_FAIL))
    data = json.loads(to_json(report))
    assert list(data) == ["passed", "python", "executable", "torch", "torch_npu", "devices", "cann", "seconds",
                          "facts", "wall", "set_env", "set_env_missing", "probes"]
    assert data["passed"] is False and data["facts"] == {"smoke": 1, "machine": "x86_64"}
    first, skipped = data["probes"][0], data["probes"][1]
    assert list(first) == ["name", "ok", "seconds", "detail", "error", "log", "hint"]
    assert (first["name"], first["ok"], first["detail"]) == ("torch_npu", False, "") and "set_env.sh" in first["hint"]
    assert skipped == {"name": "is_available", "ok": None, "seconds": 0.0, "detail": "torch_npu did not import",
                       "error": None}
    assert [p.to_json() for p in report.probes] == data["probes"]


def test_the_command_sources_set_env_with_arguments_never_a_string(tmp_path):
    odd = tmp_path / "odd dir $(touch pwned)"
    odd.mkdir()
    set_env = odd / "set_env.sh"
    set_env.write_text('echo "chatter on stdout"\nexport SMOKE_SOURCED="yes: $#"\n')
    argv = smoke.smoke_argv(sys.executable, set_env=set_env, project=odd, devices=2, skip_distributed=True)
    assert argv[:2] == ["bash", "-c"] and str(set_env) in argv and str(odd) in argv
    assert argv[argv.index("--devices") + 1] == "2" and "--skip-distributed" in argv
    # the same bash prologue, with a probe of its own in place of the script
    probe = cann.sourced([sys.executable, "-c", "import os, sys; print(os.environ['SMOKE_SOURCED'], sys.argv[1:])",
                          "a b", "$(x)"], set_env)
    out = subprocess.run(probe, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout == "yes: 0 ['a b', '$(x)']\n", out  # set_env.sh saw no arguments; its chatter went to stderr
    assert "chatter on stdout" in out.stderr and not (tmp_path / "pwned").exists()
    assert smoke.smoke_argv("/py", video=Path("/v.mp4"))[:2] == ["/py", str(smoke.SCRIPT)]


def test_the_step_is_last_and_needs_the_whole_env():
    steps = compile_steps(load_spec(DEFAULT_SPEC), Machine("x86_64", "2.36"))
    assert steps[-1].id == "smoke"
    assert set(steps[-1].deps) == {"env", "build:apex", "build:decord", "dirs"}


def step_context(root: Path, env: Dict[str, str]) -> Context:
    return Context(root=root, spec=load_spec(DEFAULT_SPEC), wheels_dir=root / "wheels", env=env, mirrors=None,
                   ca_bundle=root / "ca.pem", uv="uv", machine=Machine.read(env), state=State.load(root / "state.json"))


def test_the_step_without_npu_devices_records_a_skip(tmp_path):
    ctx = step_context(tmp_path, {"NPUENV_DEVICE_GLOB": str(tmp_path / "dev" / "davinci[0-9]*")})
    step = next(s for s in compile_steps(ctx.spec, Machine("x86_64", "2.36")) if s.id == "smoke")
    assert not step.check(ctx).ok
    assert NO_NPUS in step.describe(ctx)
    fingerprint = step.fingerprint(ctx)
    assert fingerprint["npus"] == [] and json.dumps(fingerprint)
    resolved = step.apply(ctx, open(os.devnull, "w"))
    assert resolved["skipped"] == NO_NPUS
    ctx.state.stage(step.id, resolved)
    assert step.check(ctx).ok
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "davinci3").write_text("")
    assert step.fingerprint(ctx)["npus"] == [3]  # the same workspace on a box with NPUs runs the test


def test_a_rebuilt_wheel_at_the_same_path_runs_the_smoke_test_again(tmp_path):
    """A forced rebuild keeps the build's cache key and wheel path: the smoke test sees the wheel's hash."""
    ctx = step_context(tmp_path, {})
    step = next(s for s in compile_steps(ctx.spec, Machine("x86_64", "2.36")) if s.id == "smoke")
    wheel = str(tmp_path / "wheels" / "built" / "apex" / "k" / "apex-0.1+ascend-cp310-cp310-linux_x86_64.whl")
    ctx.state.save_step("build:apex", "f", {"wheel": wheel}, 1.0)  # recorded before hashes were kept
    by_path = step.fingerprint(ctx)["builds"]["build:apex"]
    assert by_path == wheel  # an old record keeps its fingerprint: nothing re-runs after an update
    ctx.state.save_step("build:apex", "f", {"wheel": wheel, "sha256": "a" * 64}, 1.0)
    first = step.fingerprint(ctx)
    ctx.state.save_step("build:apex", "f", {"wheel": wheel, "sha256": "b" * 64}, 1.0)
    assert step.fingerprint(ctx) != first


# --- for real: the script in the venv ---------------------------------------------------------------------

def test_two_stand_in_npus_pass_every_probe_with_cann_sourced(target, two_npus):
    cann, report = two_npus
    assert [p.name for p in report.probes] == TWO_NPU_PROBES
    failed = [p for p in report.failed if not (p.name == "decord" and not target.decord)]
    assert failed == [], "\n".join(render_smoke.table(report)) + report.stderr[-3000:]
    by_name = {p.name: p for p in report.probes}
    assert by_name["allreduce"].detail == "2 ranks over hccl (torchrun), sum 2 on every rank"
    assert by_name["allreduce"].seconds > 0 and by_name["torch_npu"].seconds > 0
    assert "relative error" in by_name["matmul_bf16:1"].detail
    assert by_name["megatron"].detail == str(PROJECT / "megatron")  # --project, like a training script's folder
    assert report.set_env == str(cann.set_env) and report.cann == str(cann.home)
    assert report.torch_npu == "2.1.0.post8" and report.devices == 2 and report.wall >= report.seconds


def test_decord_decodes_a_frame_of_the_packaged_video(target, two_npus):
    if not target.decord:
        pytest.skip(f"{DECORD} could not be installed for Python 3.11 here; tests/test_builds_e2e.py decodes "
                    "the same video with decord2 in the Python 3.10 target env")
    decord = next(p for p in two_npus[1].probes if p.name == "decord")
    assert decord.ok and decord.detail.endswith("frame 0 of 20 decoded, 48x64x3")


def test_cann_not_sourced_fails_the_import_and_the_hint_says_source_set_env(target, tmp_path):
    missing = tmp_path / "Ascend" / "ascend-toolkit" / "set_env.sh"
    report = smoke.run_smoke(str(target.python), cann_set_env=missing, env=standin_env(1, needs_cann=True),
                             project=PROJECT, timeout=120)
    assert [p.name for p in report.failed] == ["torch_npu", "mindspeed.megatron_adaptor"]
    first = report.failed[0]
    assert LIBHCCL in first.error and "set_env.sh" in first.hint
    assert [p.ok for p in report.probes if p.name in ("is_available", "tensor", "allreduce")] == [None] * 3
    text = "\n".join(render_smoke.table(report))
    assert f"{missing} not found" in text and "hint:" in text
    assert "NPUENV_CANN_SET_ENV" in smoke.failure(report).hint


def test_without_torch_or_decord_every_probe_still_reports(tmp_path):
    python311 = find_python("3.11")
    if python311 is None:
        pytest.skip("no CPython 3.11 here")
    bare = tmp_path / "bare"
    subprocess.run([workspace.uv_binary(), "venv", "--quiet", "--python", str(python311), str(bare)], check=True)
    report = smoke.run_smoke(str(bare / "bin" / "python"), cann_set_env=None, env=standin_env(1), project=PROJECT,
                             timeout=60)
    by_name = {p.name: p for p in report.probes}
    assert by_name["torch_npu"].error == "ModuleNotFoundError: No module named 'torch'"
    assert by_name["decord"].error == "ModuleNotFoundError: No module named 'decord'"
    assert by_name["megatron"].ok and by_name["allreduce"].ok is None
    assert report.torch is None and not report.passed


def fake_python(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_a_crash_before_the_result_reports_the_last_lines(tmp_path):
    python = fake_python(tmp_path, f'echo "Fatal Python error: Segmentation fault" >&2\necho "{LIBHCCL}" >&2\n'
                                   "exit 139\n")
    with pytest.raises(smoke.SmokeError) as info:
        smoke.run_smoke(str(python), cann_set_env=None, env=standin_env(), timeout=30)
    assert "crashed (exit code 139)" in info.value.message and "Segmentation fault" in info.value.message
    assert "set_env.sh" in info.value.hint


def test_a_hanging_script_is_stopped_at_the_timeout(tmp_path):
    pid_file = tmp_path / "pid"
    python = fake_python(tmp_path, f'echo $$ > "{pid_file}"\nexec sleep 60\n')
    with pytest.raises(smoke.SmokeError) as info:
        smoke.run_smoke(str(python), cann_set_env=None, env=standin_env(), timeout=1)
    assert "did not finish within 1 s" in info.value.message
    assert not Path(f"/proc/{pid_file.read_text().strip()}").exists()  # killed and reaped by its supervisor


# --- the step and the task --------------------------------------------------------------------------------

def workspace_with(tmp_path: Path, target: Target, venv: str = "MindSpeed-MM/.venv") -> Path:
    """A workspace whose target env is the cached venv (a symlink) and whose MindSpeed-MM holds megatron/."""
    root = tmp_path / "ws"
    shutil.copytree(PROJECT, root / "MindSpeed-MM")
    (root / venv).parent.mkdir(parents=True, exist_ok=True)
    (root / venv).symlink_to(target.venv, target_is_directory=True)
    return root


def test_the_step_fails_naming_the_probes_with_the_hint_and_passes_once_cann_is_sourced(target, tmp_path):
    root = workspace_with(tmp_path, target)
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "davinci0").write_text("")  # a stand-in device file: this box "has" NPU 0
    cann = make_cann(tmp_path / "Ascend")
    env = standin_env(1, needs_cann=True, NPUENV_DEVICE_GLOB=str(tmp_path / "dev" / "davinci[0-9]*"),
                      NPUENV_CANN_SET_ENV=str(tmp_path / "nowhere" / "set_env.sh"))
    ctx = step_context(root, env)
    step = next(s for s in compile_steps(ctx.spec, Machine("x86_64", "2.36")) if s.id == "smoke")
    with open(tmp_path / "smoke.log", "w") as log, pytest.raises(NpuenvError) as info:
        step.apply(ctx, log)
    assert info.value.message.startswith("smoke test failed: torch_npu, mindspeed.megatron_adaptor")
    assert "set_env.sh" in info.value.hint
    assert "Traceback" in (tmp_path / "smoke.log").read_text()  # the whole error is in the step's log
    ctx.env["NPUENV_CANN_SET_ENV"] = str(cann.set_env)
    ctx.machine = Machine.read(ctx.env)  # CANN is installed now
    with open(tmp_path / "smoke.log", "w") as log:
        resolved = step.apply(ctx, log)
    assert resolved["passed"] and resolved["set_env"] == str(cann.set_env) and resolved["devices"] == 1
    assert resolved["probes"]["allreduce"]["ok"] is None and resolved["probes"]["tensor:0"]["ok"]
    ctx.state.stage(step.id, resolved)
    assert step.check(ctx).ok


def invoke_smoke(root: Path, spec: Path, env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "smoke", "--root", str(root),
            "--spec", str(spec), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def smoke_spec(tmp_path: Path) -> Path:
    """The default spec, with the target env at smoke-venv/ (extends, overriding one key)."""
    path = tmp_path / "smoke.yaml"
    path.write_text(f"extends: {DEFAULT_SPEC}\nenv:\n  venv: smoke-venv\n")
    return path


def test_invoke_smoke_renders_a_table_and_passes(target, tmp_path):
    root = workspace_with(tmp_path, target, venv="smoke-venv")
    cann = make_cann(tmp_path / "Ascend")
    env = standin_env(2, needs_cann=True, NPUENV_CANN_SET_ENV=str(cann.set_env),
                      NPUENV_DEVICE_GLOB=str(tmp_path / "no-devices" / "davinci[0-9]*"))
    proc = invoke_smoke(root, smoke_spec(tmp_path), env, "--devices", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("note: no NPU device files match")
    assert f"CANN: sourced {cann.set_env}" in proc.stdout
    header = next(line for line in lines if line.startswith("probe "))
    assert header.split() == ["probe", "result", "seconds", "detail"]
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 1:] if line.strip()}
    assert "✓" in rows["tensor:0"] and "tensor:1" not in rows  # --devices 1 of 2
    assert "2 devices, testing 1" in rows["device_count"]
    assert "1 device: nothing to all-reduce" in rows["allreduce"] and " - " in rows["allreduce"]
    assert lines[-1].startswith("smoke test passed: ") and "0 failed" in lines[-1]


def test_invoke_smoke_json_without_npus_fails_with_exit_1(target, tmp_path):
    root = workspace_with(tmp_path, target, venv="smoke-venv")
    proc = invoke_smoke(root, smoke_spec(tmp_path), standin_env(0), "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    probes = {p["name"]: p for p in data["probes"]}
    assert data["passed"] is False and probes["torch_npu"]["ok"] is True
    assert probes["is_available"]["ok"] is False and "is_available() is False" in probes["is_available"]["error"]
    assert [probes[n]["ok"] for n in ("tensor", "matmul_bf16", "allreduce")] == [None, None, None]
    assert "error: smoke test failed: is_available, device_count" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invoke_smoke_without_a_target_env_says_to_bootstrap(tmp_path):
    (tmp_path / "ws").mkdir()
    proc = invoke_smoke(tmp_path / "ws", smoke_spec(tmp_path), standin_env())
    assert proc.returncode == 1 and "no target env at" in proc.stderr and "invoke bootstrap" in proc.stderr
    bad = invoke_smoke(tmp_path / "ws", smoke_spec(tmp_path), standin_env(), "--devices", "x")
    assert bad.returncode == 2 and "--devices x" in bad.stderr
