"""`invoke doctor` speed on a stand-in box, printed as numbers (not a test):
`uv run python benchmarks/bench_doctor.py`. Target: under 2 s without --online.

The box: the stand-in CANN toolkit and driver (tests/world/cann.py), 8 stand-in NPUs with 2 processes
holding devices (tests/world/npu.py), a workspace under a stand-in persistent folder with npuenv's CA
bundle and a target env made by `uv venv` (CPython 3.10 when found) holding the hermetic world's stand-in
torch 2.1.0 and torch_npu 2.1.0.post8 wheels (tests/world/wheels.py, installed offline with uv), stand-in
apex, decord and mindspeed packages and a megatron/ folder in the project, as tests/test_doctor.py's
target box has. Measured, in-process and as `invoke doctor --root ROOT` end to end (start-up included):
the default mode (target.imports finds the modules, imports none) and, separately, --deep (imports them).
`invoke --list` for comparison.

The stand-ins import in milliseconds: on a real box --deep costs what importing the real stack costs
(`import torch` alone ~5 s, torch_npu more), while the default mode does not depend on it.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from npuenv import doctor  # noqa: E402
from npuenv.npu.kill import DEVICE_GLOB_VARIABLE, NPU_SMI_VARIABLE  # noqa: E402
from npuenv.trust import CLIENT_VARS, build_bundle  # noqa: E402
from npuenv.workspace import uv_binary  # noqa: E402
from tests.world.cann import make_cann  # noqa: E402
from tests.world.fixtures import clean_env  # noqa: E402
from tests.world.npu import NpuLab  # noqa: E402
from tests.world.wheels import (TORCH_INIT, TORCH_NPU_INIT, build_stand_in_wheels, find_python,  # noqa: E402
                                write_wheel)

REPEAT = 5
TARGET = 2.0
STAND_IN = '"""Stand-in for {name}, made by the npuenv doctor benchmark. NOT the real {name}."""\nSTAND_IN = True\n'


def row(name: str, seconds: float, note: str = "") -> None:
    print(f"{name:<52} {seconds:8.3f} s  {note}")


def make_box(base: Path) -> tuple[Path, dict, NpuLab]:
    persistent = base / "work"
    root = persistent / "bench"
    root.mkdir(parents=True)
    cann = make_cann(base / "Ascend")
    lab = NpuLab(base / "npu", npus=8)
    env = cann.sourced({k: v for k, v in clean_env().items() if not k.startswith(("NPUENV_", "ASCEND_"))})
    env.update(cann.env())
    bundle = build_bundle(root / ".npuenv" / "ca-bundle.pem", [], env).path
    env.update({name: str(bundle) for name in CLIENT_VARS})
    env.update({NPU_SMI_VARIABLE: str(lab.npu_smi), DEVICE_GLOB_VARIABLE: lab.glob, "NPUENV_USER": "bench",
                "NPUENV_PERSISTENT_ROOT": str(persistent), "HOME": str(root)})
    fill_target_env(base, root / "MindSpeed-MM", env)
    lab.start_many([{"tag": "bench", "devices": [0, 1]}, {"tag": "other", "devices": [5]}])
    return root, env, lab


def fill_target_env(base: Path, project: Path, env: dict) -> None:
    """MindSpeed-MM/.venv with the world's stand-in torch and torch_npu wheels (installed offline by uv), stand-in
    apex, decord and mindspeed packages, and a megatron/ folder in the project."""
    python = find_python("3.10")
    wheels = base / "wheels"
    if python is not None:
        build_stand_in_wheels(wheels)  # cp310 wheels, as the world's index serves them
    else:  # the same stand-ins for whatever Python runs this (the spec's 3.10 check then fails, as it should)
        python = Path(sys.executable)
        write_wheel(wheels, "torch", "2.1.0", "py3-none-any", {"torch/__init__.py": TORCH_INIT})
        write_wheel(wheels, "torch_npu", "2.1.0.post8", "py3-none-any", {"torch_npu/__init__.py": TORCH_NPU_INIT})
    venv = project / ".venv"
    uv_env = {k: v for k, v in env.items() if not k.startswith("UV_") and k != "VIRTUAL_ENV"}
    uv_env.update(UV_CACHE_DIR=str(base / "uv-cache"), UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    for argv in ([uv_binary(), "venv", "--quiet", "--python", str(python), str(venv)],
                 [uv_binary(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "--no-index",
                  "--find-links", str(wheels), "torch==2.1.0", "torch-npu==2.1.0.post8"]):
        proc = subprocess.run(argv, env=uv_env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    site = next((venv / "lib").glob("python3*/site-packages"))
    for name in ("apex", "decord", "mindspeed"):
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(STAND_IN.format(name=name))
    (project / "megatron").mkdir()
    (project / "megatron" / "__init__.py").write_text(STAND_IN.format(name="megatron"))


def timed(argv: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - began, proc


def in_process(root: Path, env: dict, deep: bool) -> list:
    runs, outcomes = [], []
    for _ in range(REPEAT):
        ctx = doctor.build_context(root=str(root), spec="mindspeed-mm-internvl2.5", environ=env, deep=deep)
        began = time.perf_counter()
        outcomes = doctor.run_checks(doctor.select(), ctx)
        runs.append(time.perf_counter() - began)
    mode = "--deep" if deep else "default"
    counts = doctor.count(outcomes)
    row(f"{len(outcomes)} checks in-process, {mode} (median of {REPEAT})", statistics.median(runs),
        f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail, {counts['skip']} skip, "
        f"{counts['crash']} crash")
    for o in sorted(outcomes, key=lambda o: -o.seconds)[:5]:
        row(f"  {o.check.name}", o.seconds, o.result.status.value)
    imports = next(o for o in outcomes if o.check.name == "target.imports")
    print(f"  target.imports: {imports.result.status.value}: {imports.result.finding}")
    return outcomes


def end_to_end(root: Path, env: dict, deep: bool) -> float:
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "doctor", "--root", str(root)]
    argv += ["--deep"] if deep else []
    times = []
    for _ in range(REPEAT):
        seconds, proc = timed(argv, env)
        if proc.returncode not in (0, 1):
            sys.exit(f"invoke doctor failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        times.append(seconds)
    median = statistics.median(times)
    verdict = "OK" if median < TARGET else "SLOWER THAN TARGET"
    row(f"invoke doctor{' --deep' if deep else ''}, end to end (median of {REPEAT})", median,
        f"min {min(times):.3f} s, max {max(times):.3f} s; target < {TARGET:g} s: {verdict}")
    print("  last line: " + proc.stdout.strip().splitlines()[-1])
    return median


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="npuenv-bench-doctor-"))
    root, env, lab = make_box(base)
    try:
        in_process(root, env, deep=False)
        in_process(root, env, deep=True)
        end_to_end(root, env, deep=False)
        end_to_end(root, env, deep=True)
        listing = [timed([sys.executable, "-m", "invoke", "--search-root", str(REPO), "--list"], env)[0]
                   for _ in range(REPEAT)]
        row(f"invoke --list (median of {REPEAT})", statistics.median(listing))
        print("note: the target env holds stand-ins that import in milliseconds; on a real box --deep adds the "
              "real import time (`import torch` alone ~5 s), the default mode does not")
    finally:
        lab.cleanup()


if __name__ == "__main__":
    main()
