"""npuenv's smoke test of the target env, run BY the target interpreter (with CANN's set_env.sh sourced).

    <target python> smoke_script.py [--video PATH] [--devices N] [--skip-distributed] [--project DIR]

Standalone on purpose: the standard library plus torch/torch_npu only, Python 3.8 syntax, imported by
nothing in npuenv (npuenv runs it as a file). Each probe runs on its own, timed; one failing never stops
the others. stdout carries ONE JSON object, printed at the end:

    {"smoke": 1, "python": "3.10.13", "executable": ..., "torch": ..., "torch_npu": ..., "devices": N,
     "cann": $ASCEND_TOOLKIT_HOME or null, "seconds": ...,
     "probes": [{"name", "ok": true|false|null (null = skipped), "seconds", "detail", "error", "log"}]}

`error` is one line (the exception's type and first line); `log` holds the rest of a failure's text.
Whatever the libraries print goes to stderr, so stdout stays parseable.
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback

SMOKE_VERSION = 1
MATMUL_TOLERANCE = 1e-2  # relative error of a bf16 result (8 bits of mantissa: ~4e-3 at worst per element)
LOG_CHARS = 4000

# Run by torchrun, one process per device: all-reduce a tensor of ones over hccl, check the sum, and write
# the result to rank-N.json in the folder argv[2] (the ranks share one stdout: their lines would mix).
WORKER = r'''
import datetime, json, os, sys, traceback

result = {"rank": int(os.environ.get("RANK", "-1")), "ok": False}
try:
    local, world = int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    import torch
    import torch_npu
    import torch.distributed as dist

    torch_npu.npu.set_device(local)
    dist.init_process_group(backend="hccl", timeout=datetime.timedelta(seconds=float(sys.argv[1])))
    tensor = torch.ones(4).npu(local)
    dist.all_reduce(tensor)
    values = tensor.cpu().tolist()
    dist.destroy_process_group()
    result["ok"] = all(v == world for v in values)
    result["sum"] = values[0]
    if not result["ok"]:
        result["error"] = "all-reduce of ones over %d ranks gave %r" % (world, values)
except Exception as exc:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    result["error"] = text.splitlines()[0] if text else type(exc).__name__
    result["log"] = traceback.format_exc()[-4000:]
with open(os.path.join(sys.argv[2], "rank-%d.json" % result["rank"]), "w") as handle:
    json.dump(result, handle)
sys.exit(0 if result["ok"] else 1)
'''


class Skip(Exception):
    """The probe did not run; the message says why."""


class ProbeFailed(Exception):
    """The probe ran and found a problem; the message is the finding (shown without a type name)."""

    log = ""  # more text about it (a worker's traceback, torchrun's last lines)


def one_line(exc):
    if isinstance(exc, ProbeFailed):
        text = str(exc)
    else:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class Smoke:
    def __init__(self, args):
        self.args = args
        self.probes = []
        self.torch = None
        self.torch_npu = None
        self.available = False
        self.devices = []  # the device numbers to test
        self.count = None

    def probe(self, name, body, *args):
        entry = {"name": name, "ok": False, "seconds": 0.0, "detail": "", "error": None}
        began = time.perf_counter()
        try:
            entry["detail"] = body(*args) or ""
            entry["ok"] = True
        except Skip as why:
            entry["ok"] = None
            entry["detail"] = str(why)
        except (Exception, SystemExit) as exc:  # a probe's failure is data; KeyboardInterrupt is not
            entry["error"] = one_line(exc)
            log = exc.log if isinstance(exc, ProbeFailed) else traceback.format_exc()[-LOG_CHARS:]
            if log:
                entry["log"] = log
        entry["seconds"] = round(time.perf_counter() - began, 3)
        self.probes.append(entry)
        sys.stderr.flush()
        return entry

    # --- the probes -------------------------------------------------------------------------------------

    def import_torch_npu(self):
        import torch

        self.torch = torch
        import torch_npu

        self.torch_npu = torch_npu
        return "torch %s, torch_npu %s" % (torch.__version__, getattr(torch_npu, "__version__", "?"))

    def is_available(self):
        if self.torch_npu is None:
            raise Skip("torch_npu did not import")
        self.available = bool(self.torch_npu.npu.is_available())
        if not self.available:
            raise ProbeFailed("torch_npu.npu.is_available() is False: torch_npu sees no NPU (driver not loaded, "
                              "no /dev/davinci* in this container, or ASCEND_RT_VISIBLE_DEVICES hides them)")
        return "True"

    def device_count(self):
        if self.torch_npu is None:
            raise Skip("torch_npu did not import")
        self.count = int(self.torch_npu.npu.device_count())
        wanted = self.args.devices if self.args.devices is not None else self.count
        self.devices = list(range(min(wanted, self.count))) if self.available else []
        if self.count == 0:
            raise ProbeFailed("torch_npu.npu.device_count() is 0")
        if wanted > self.count:
            raise ProbeFailed("%d devices were asked for, torch_npu sees %d (HCCL fails with error code 7 when "
                              "more ranks than NPUs are started)" % (wanted, self.count))
        if wanted < self.count:
            return "%d devices, testing %d" % (self.count, wanted)
        return "%d device%s" % (self.count, "" if self.count == 1 else "s")

    def tensor(self, index):
        torch = self.torch
        host = torch.randn(3, 4)
        moved = host.npu(index)
        back = (moved + 1).cpu()
        if not torch.equal(back, host + 1):
            raise ProbeFailed("randn(3, 4) + 1 on device %d differs from the CPU result" % index)
        return "randn(3, 4) + 1 on %s, round trip exact" % moved.device

    def matmul_bf16(self, index):
        torch = self.torch
        generator = torch.Generator().manual_seed(index)
        left = torch.randn(128, 64, generator=generator).bfloat16()
        right = torch.randn(64, 32, generator=generator).bfloat16()
        expected = left.float() @ right.float()
        result = left.npu(index) @ right.npu(index)
        if result.dtype != torch.bfloat16:
            raise ProbeFailed("bf16 matmul on device %d returned %s" % (index, result.dtype))
        got = result.cpu().float()
        error = ((got - expected).norm() / expected.norm()).item()
        if not error <= MATMUL_TOLERANCE:  # also catches NaN
            raise ProbeFailed("bf16 matmul on device %d differs from the CPU result: relative error %.2e > %.0e"
                              % (index, error, MATMUL_TOLERANCE))
        return "(128x64 @ 64x32) bf16, relative error %.1e vs CPU" % error

    def allreduce(self):
        if self.args.skip_distributed:
            raise Skip("--skip-distributed")
        if self.torch_npu is None:
            raise Skip("torch_npu did not import")
        if not self.available or not self.devices:
            raise Skip("no NPU available")
        ranks = len(self.devices)
        if ranks < 2:
            raise Skip("1 device: nothing to all-reduce")
        with tempfile.TemporaryDirectory(prefix="npuenv-smoke-") as folder:
            worker = os.path.join(folder, "allreduce_worker.py")
            with open(worker, "w") as handle:
                handle.write(WORKER)
            argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
                    "--nproc_per_node=%d" % ranks, worker, str(self.args.timeout), folder]
            output, returncode = run_bounded(argv, self.args.timeout + 30)
            results = {}
            for name in os.listdir(folder):
                if name.startswith("rank-") and name.endswith(".json"):
                    with open(os.path.join(folder, name)) as handle:
                        found = json.load(handle)
                    results[found["rank"]] = found
        failed = [r for r in sorted(results) if not results[r]["ok"]]
        if failed:
            first = results[failed[0]]
            error = ProbeFailed("rank %d of %d: %s" % (failed[0], ranks, first.get("error") or "failed"))
            error.log = (first.get("log") or "") + tail(output)
            raise error
        if returncode != 0 or len(results) != ranks:
            error = ProbeFailed(last_line(output) or "torchrun exited %s" % returncode)
            error.log = tail(output)
            raise error
        return "%d ranks over hccl (torchrun), sum %g on every rank" % (ranks, results[0]["sum"])

    def mindspeed(self):
        import mindspeed.megatron_adaptor  # noqa: F401  (how MindSpeed is used: the adaptor patches megatron)
        import mindspeed

        return "mindspeed %s (%s)" % (dist_version("mindspeed", mindspeed), folder_of(mindspeed))

    def megatron(self):
        import megatron  # Megatron-LM core_r0.8.0 has no megatron/__init__.py: a namespace package

        return folder_of(megatron)

    def decord(self):
        import decord

        if not self.args.video:
            raise Skip("decord %s imports; no --video to decode" % getattr(decord, "__version__", "?"))
        reader = decord.VideoReader(self.args.video)
        frame = reader[0].asnumpy()
        return "decord %s: frame 0 of %d decoded, %s" % (
            getattr(decord, "__version__", "?"), len(reader), "x".join(str(n) for n in frame.shape))

    # --- the run -----------------------------------------------------------------------------------------

    def run(self):
        self.probe("torch_npu", self.import_torch_npu)
        self.probe("is_available", self.is_available)
        self.probe("device_count", self.device_count)
        if self.devices:
            for index in self.devices:
                self.probe("tensor:%d" % index, self.tensor, index)
                self.probe("matmul_bf16:%d" % index, self.matmul_bf16, index)
        else:
            why = "no NPU available" if self.torch_npu is not None else "torch_npu did not import"
            for name in ("tensor", "matmul_bf16"):
                self.probe(name, skip, why)
        self.probe("allreduce", self.allreduce)
        self.probe("mindspeed.megatron_adaptor", self.mindspeed)
        self.probe("megatron", self.megatron)
        self.probe("decord", self.decord)


def skip(why):
    raise Skip(why)


def dist_version(name, module):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return getattr(module, "__version__", "?")


def folder_of(module):
    """Where a package lives: its __init__'s folder, or for a namespace package (no __init__.py, so
    __file__ is None) the first folder of its __path__."""
    if getattr(module, "__file__", None):
        return os.path.dirname(module.__file__)
    return list(getattr(module, "__path__", None) or ["?"])[0]


def run_bounded(argv, timeout):
    """Run argv in its own process group; on timeout kill that group (only what this script started)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, errors="replace", start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        error = ProbeFailed("torchrun did not finish within %g s (a rank that cannot reach the others, or a "
                            "device another process holds, makes an all-reduce hang)" % timeout)
        error.log = tail(output)
        raise error
    return output, proc.returncode


def tail(text, lines=40):
    return "\n".join(text.rstrip().splitlines()[-lines:])[-LOG_CHARS:]


def last_line(text):
    lines = [line for line in text.splitlines() if line.strip() and not set(line.strip()) <= set("=-*")]
    return lines[-1].strip() if lines else ""


def versions(smoke):
    torch_version = getattr(smoke.torch, "__version__", None)
    npu_version = getattr(smoke.torch_npu, "__version__", None)
    return (str(torch_version) if torch_version is not None else None,
            str(npu_version) if npu_version is not None else None)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="npuenv's smoke test of the target env (prints one JSON object)")
    parser.add_argument("--video", help="a video file decord must decode")
    parser.add_argument("--devices", type=int, help="test this many devices (default: all torch_npu sees)")
    parser.add_argument("--skip-distributed", action="store_true", help="no HCCL all-reduce")
    parser.add_argument("--project", help="a folder put first on sys.path, like a training script's own folder")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the all-reduce may take")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    # `python smoke_script.py` puts npuenv's own folder first on sys.path: its modules must not shadow any
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if args.project:
        sys.path.insert(0, args.project)
    sys.stdout.flush()
    result = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # from here on, whatever the libraries print goes to stderr
    began = time.perf_counter()
    smoke = Smoke(args)
    smoke.run()
    torch_version, npu_version = versions(smoke)
    report = {
        "smoke": SMOKE_VERSION,
        "python": platform.python_version(),
        "executable": sys.executable,
        "machine": platform.machine(),
        "torch": torch_version,
        "torch_npu": npu_version,
        "devices": smoke.count,
        "cann": os.environ.get("ASCEND_TOOLKIT_HOME") or os.environ.get("ASCEND_HOME_PATH"),
        "seconds": round(time.perf_counter() - began, 3),
        "probes": smoke.probes,
    }
    sys.stdout.flush()
    sys.stderr.flush()
    result.write(json.dumps(report) + "\n")
    result.flush()
    return 0 if all(p["ok"] is not False for p in smoke.probes) else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # torch_npu's atexit teardown can hang or crash after a failed init: the result is out
