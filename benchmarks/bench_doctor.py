"""`invoke doctor` speed on a stand-in box, printed as numbers (not a test):
`uv run python benchmarks/bench_doctor.py`. Target: under 2 s without --online.

The box: the stand-in CANN toolkit and driver (tests/world/cann.py), 8 stand-in NPUs with 2 processes
holding devices (tests/world/npu.py), a workspace under a stand-in persistent folder with npuenv's CA
bundle and a target env made by `uv venv` (CPython 3.10 when found; empty, so the import probe runs and
reports what is missing). Measured: every check in-process (the slowest ones listed), and
`invoke doctor --root ROOT` end to end, start-up included; `invoke --list` for comparison.
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
from npuenv.killnpu import DEVICE_GLOB_VARIABLE, NPU_SMI_VARIABLE  # noqa: E402
from npuenv.trust import CLIENT_VARS, build_bundle  # noqa: E402
from npuenv.workspace import uv_binary  # noqa: E402
from tests.world.cann import make_cann  # noqa: E402
from tests.world.fixtures import clean_env  # noqa: E402
from tests.world.npu import NpuLab  # noqa: E402
from tests.world.wheels import find_python  # noqa: E402

REPEAT = 5
TARGET = 2.0


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
    python = find_python("3.10") or Path(sys.executable)
    subprocess.run([uv_binary(), "venv", "--quiet", "--python", str(python), str(root / "MindSpeed-MM" / ".venv")],
                   check=True, env=env, capture_output=True)
    lab.start_many([{"tag": "bench", "devices": [0, 1]}, {"tag": "other", "devices": [5]}])
    return root, env, lab


def timed(argv: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - began, proc


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="npuenv-bench-doctor-"))
    root, env, lab = make_box(base)
    try:
        runs = []
        for _ in range(REPEAT):
            ctx = doctor.build_context(root=str(root), spec="mindspeed-mm-internvl2.5", environ=env)
            began = time.perf_counter()
            outcomes = doctor.run_checks(doctor.select(), ctx)
            runs.append(time.perf_counter() - began)
        counts = doctor.count(outcomes)
        row(f"{len(outcomes)} checks in-process (median of {REPEAT})", statistics.median(runs),
            f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail, {counts['skip']} skip, "
            f"{counts['crash']} crash")
        for o in sorted(outcomes, key=lambda o: -o.seconds)[:5]:
            row(f"  {o.check.name}", o.seconds, o.result.status.value)
        argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "doctor", "--root", str(root)]
        times = []
        for _ in range(REPEAT):
            seconds, proc = timed(argv, env)
            if proc.returncode not in (0, 1):
                sys.exit(f"invoke doctor failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
            times.append(seconds)
        verdict = "OK" if statistics.median(times) < TARGET else "SLOWER THAN TARGET"
        row(f"invoke doctor, end to end (median of {REPEAT})", statistics.median(times),
            f"min {min(times):.3f} s, max {max(times):.3f} s; target < {TARGET:g} s: {verdict}")
        print("  last line: " + proc.stdout.strip().splitlines()[-1])
        listing = [timed([sys.executable, "-m", "invoke", "--search-root", str(REPO), "--list"], env)[0]
                   for _ in range(REPEAT)]
        row(f"invoke --list (median of {REPEAT})", statistics.median(listing))
    finally:
        lab.cleanup()


if __name__ == "__main__":
    main()
