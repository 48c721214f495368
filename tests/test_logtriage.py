"""Log triage: every known error text, line numbers, one finding per kind with a count, clean logs.

The error lines are real ones (UPSTREAM.md's table; Ascend docs and public issue reports for the rest),
with the prefixes launchers add.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Dict

import pytest

from npuenv.npu.logtriage import (_ANSI, _CODES, BLOCK, CARRY, KNOWN, SCAN_NEEDLES, UNRECOGNISED, Finding, LogReport,
                              report_file, report_lines, report_text, triage, triage_lines)
from tests.world.fixtures import clean_env

REPO = Path(__file__).resolve().parents[1]

TEXTS = {
    "hccl-device-busy": "EJ0001: 2024-05-21-11:57:54.167.645 Failed to initialize the HCCP process. Reason: Maybe "
                        "the last training process is running.",
    "hccl-unavailable": "RuntimeError: createHCCLComm:torch_npu/csrc/distributed/ProcessGroupHCCL.cpp:1925 HCCL "
                        "function error: HcclCommInitRootInfo(numRanks, &hcclID, rank, &(comm->hcclComm_)), "
                        "error code is 7",
    "hccl-port-bound": "[PID: 3354790] 2026-04-28-16:56:52.897.463 Communication_Error_Bind_IP_Port(EJ0003): Failed "
                       "to bind the IP port. Reason: The IP address and port have been bound already.",
    "invalid-device": "EE1001: The argument is invalid.Reason: Set device failed, invalid device, set device=8, valid "
                      "device range is [0, 8)",
    "npu-oom": "RuntimeError: NPU out of memory. Tried to allocate 260.00 MiB (NPU 0; 28.50 GiB total capacity; "
               "10.24 GiB already allocated; 149.57 MiB free)",
    "inner-error-above": "RuntimeError: The Inner error is reported as above. The process exits for this inner "
                         "error, and the current working operator name is HcclAllreduce.",
    "cann-not-sourced": "ImportError: libhccl.so: cannot open shared object file: No such file or directory. Please "
                        "check that the cann package is installed. Please run 'source set_env.sh' in the CANN "
                        "installation path.",
    "cann-init-env": "EH9999  [Init][Env]init env failed![FUNC:ReportInnerError][FILE:log_inner.cpp][LINE:145]",
    "cann-python-deps": "ModuleNotFoundError: No module named 'decorator'",
    "torch-npu-abi": "ImportError: /usr/local/python3.10.14/lib/python3.10/site-packages/torch_npu/lib/"
                     "libtorch_npu.so: undefined symbol: _ZN3atb15CreateOperationINS_5infer14GroupTopkParamEEEiRKT_",
    "pip-missing": "      ModuleNotFoundError: No module named pip",
    "certificate": "fatal: unable to access 'https://gitee.com/ascend/MindSpeed.git/': SSL certificate problem: "
                   "unable to get local issuer certificate",
    "decord-missing": "Failed to import decord module.",
    "target-env-inactive": "ModuleNotFoundError: No module named 'torch_npu'",
    # a vLLM-Ascend report on GitHub (torch_npu's NPU function error, then its ERR00100 line)
    "device-task-failed": "RuntimeError: operator():build/CMakeFiles/torch_npu.dir/compiler_depend.ts:47 NPU "
                          "function error: c10_npu::acl::AclrtSynchronizeStreamWithTimeout(copy_stream), error "
                          "code is 507011",
    "acl-call-failed": "[ERROR] 2025-11-18-10:35:31 (PID:833, Device:0, RankID:-1) ERR00100 PTA call acl api failed",
}


def test_every_known_kind_has_a_real_text() -> None:
    assert set(TEXTS) == {k.kind for k in KNOWN}


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_each_known_text_is_explained_at_its_line(kind: str) -> None:
    log = "INFO starting\nINFO rank 0 ready\n" + TEXTS[kind] + "\nINFO exiting\n"
    findings = triage(log)
    assert [f.kind for f in findings] == [kind]
    found = findings[0]
    assert found.line_no == 3 and found.line == TEXTS[kind].strip() and found.count == 1
    assert found.cause and found.fix and found.title


def test_the_fixes_say_what_to_do() -> None:
    by_kind = {k.kind: k for k in KNOWN}
    assert "invoke kill-npu" in by_kind["hccl-device-busy"].fix
    assert "NPUS_PER_NODE" in by_kind["hccl-unavailable"].fix and "invoke kill-npu" in by_kind["hccl-unavailable"].fix
    assert "MASTER_PORT" in by_kind["hccl-port-bound"].fix
    assert "set_env.sh" in by_kind["cann-not-sourced"].fix
    assert "decorator" in by_kind["cann-init-env"].fix
    assert "patch:mindspeed-setup-no-pip" in by_kind["pip-missing"].fix
    assert "ca-bundle.pem" in by_kind["certificate"].fix
    assert "build:decord" in by_kind["decord-missing"].fix
    assert "ASCEND_LAUNCH_BLOCKING=1" in by_kind["inner-error-above"].fix
    assert "invoke bootstrap --only env" in by_kind["target-env-inactive"].fix
    assert "MindSpeed-MM/.venv/bin/activate" in by_kind["target-env-inactive"].fix


def test_one_finding_per_kind_with_the_first_line_and_a_count() -> None:
    lines = ["[rank3] " + TEXTS["hccl-device-busy"], "noise",
             "[rank0]: " + TEXTS["hccl-unavailable"], "[rank5] " + TEXTS["hccl-device-busy"],
             "[rank1]: " + TEXTS["hccl-unavailable"], "[rank2]: " + TEXTS["hccl-unavailable"]]
    findings = triage("\n".join(lines))
    assert [(f.kind, f.line_no, f.count) for f in findings] == [("hccl-device-busy", 1, 2),
                                                                ("hccl-unavailable", 3, 3)]
    assert findings[0].line.startswith("[rank3] EJ0001")


def test_the_inner_error_line_points_at_the_real_error_above() -> None:
    log = "\n".join(["step 10 loss 1.2", TEXTS["npu-oom"], "Traceback ...", TEXTS["inner-error-above"]])
    oom, inner = triage(log)
    assert (oom.kind, oom.line_no, inner.kind, inner.line_no) == ("npu-oom", 2, "inner-error-above", 4)
    assert inner.cause.endswith("here probably line 2: NPU out of memory")
    alone = triage(TEXTS["inner-error-above"])[0]
    assert "here probably" not in alone.cause and "ABOVE" in alone.cause


def test_decord_missing_either_way() -> None:
    found = triage("Failed to import decord module.\nModuleNotFoundError: No module named 'decord'\n")
    assert [(f.kind, f.line_no, f.count) for f in found] == [("decord-missing", 1, 2)]


def test_port_bound_wins_over_code_7_on_the_same_line() -> None:
    line = ("HCCL function error: HcclGetRootInfo(&hcclID), error code is 7 ... Failed to bind the IP port. "
            "Reason: The IP address and port have been bound already.")
    assert [f.kind for f in triage(line)] == ["hccl-port-bound"]
    assert [f.kind for f in triage("HCCL function error: HcclGetRootInfo(&hcclID), error code is 11")] == [
        "hccl-port-bound"]


def test_near_misses_are_not_findings() -> None:
    clean = "\n".join([
        "INFO 06-03 14:54:22 model_runner.py:907] Loading model weights took 2.8866 GB",
        "HCCL function error: HcclCommInitRootInfo(...), error code is 70",  # not 7
        "No module named 'pipx'",
        "ModuleNotFoundError: No module named 'decord_tools'",
        "certificate verification succeeded",
        "init env done",
        "iteration 100/1000 | loss 0.53 | grad norm 1.2",
    ])
    assert triage(clean) == []
    assert triage("") == []


def test_streaming_a_file_object_and_crlf_lines() -> None:
    stream = io.StringIO("a\r\nb\r\n" + TEXTS["certificate"] + "\r\n")
    assert triage_lines(stream) == [Finding(3, TEXTS["certificate"], *_cause_fix("certificate"),
                                            kind="certificate", title=_title("certificate"))]


def test_a_huge_line_is_looked_at_by_its_ends() -> None:
    line = "progress " + "#" * 100_000 + " " + TEXTS["npu-oom"]
    found = triage(line)
    assert [f.kind for f in found] == ["npu-oom"] and len(found[0].line) < 5000


def _cause_fix(kind: str):
    known = next(k for k in KNOWN if k.kind == kind)
    return known.cause, known.fix


def _title(kind: str) -> str:
    return next(k for k in KNOWN if k.kind == kind).title


# --- what the first version missed: colours, uv's TLS error, CANN's own out-of-memory, an inactive env ----

# CANN and launchers colour their error codes; `\b` after the colour's `m` never matched.
COLOURED = [
    ("hccl-device-busy", "\x1b[1m\x1b[31mEJ0001\x1b[0m: [PID: 3354790] 2024-05-21-11:57:54.167.645 Failed to "
                         "initialize the HCCP process.",
     "EJ0001: [PID: 3354790] 2024-05-21-11:57:54.167.645 Failed to initialize the HCCP process."),
    ("hccl-port-bound", "[rank1]: \x1b[1mEJ0003\x1b[0m: Failed to bind the IP port.",
     "[rank1]: EJ0003: Failed to bind the IP port."),
    ("hccl-unavailable", "\x1b[31mRuntimeError\x1b[0m: HCCL function error: HcclCommInitRootInfo(numRanks, &hcclID, "
                         "rank, &(comm->hcclComm_)), error code is \x1b[1m7\x1b[0m",
     "RuntimeError: HCCL function error: HcclCommInitRootInfo(numRanks, &hcclID, rank, &(comm->hcclComm_)), "
     "error code is 7"),
    ("certificate", "\x1b[1m\x1b[91merror\x1b[0m: \x1b[1mFailed to fetch:\x1b[0m "
                    "`https://pypi.org/simple/torch/`\x1b]8;;https://docs.astral.sh\x1b\\ \x1b]8;;\x1b\\"
                    "  \x1b[1m\x1b[91mCaused by:\x1b[0m invalid peer certificate: UnknownIssuer",
     "error: Failed to fetch: `https://pypi.org/simple/torch/`   Caused by: invalid peer certificate: UnknownIssuer"),
]


@pytest.mark.parametrize("kind, coloured, plain", COLOURED, ids=[c[0] for c in COLOURED])
def test_ansi_colours_are_stripped_before_matching_and_showing(kind: str, coloured: str, plain: str) -> None:
    found = triage("INFO \x1b[32mstarting\x1b[0m\n" + coloured + "\n")
    assert [(f.kind, f.line_no, f.line) for f in found] == [(kind, 2, plain)]


# uv 0.5+ (rustls) when the CA that signed the server is not in SSL_CERT_FILE / its built-in roots
UV_TLS = """\
Resolved 265 packages in 2.31s
error: Failed to fetch: `https://pypi.org/simple/torch/`
  Caused by: Request failed after 3 retries
  Caused by: error sending request for url (https://pypi.org/simple/torch/)
  Caused by: client error (Connect)
  Caused by: invalid peer certificate: UnknownIssuer
"""


def test_uv_unknown_issuer_is_the_ca_bundle_problem() -> None:
    [found] = triage(UV_TLS)
    assert (found.kind, found.line_no, found.line) == ("certificate", 6, "Caused by: invalid peer certificate: "
                                                                       "UnknownIssuer")
    assert "ca-bundle.pem" in found.fix and "--ca-bundle FILE" in found.fix


# CANN's own out-of-memory report (rtMalloc through the ACL), then torch_npu's generic line below it
CANN_OOM = """\
[rank0]: iteration       12/    5000 | consumed samples:           96 | lm loss: 2.313E+00
EL0004: 2025-01-15-10:21:33.125.716 Failed to allocate memory.
        Possible Cause: Available memory is insufficient.
        Solution: Close applications not in use.
        TraceBack (most recent call last):
        rtMalloc execute failed, reason=[driver error:out of memory][FUNC:FuncErrorReason]\
[FILE:error_message_manage.cc][LINE:53]
        alloc device memory failed, runtime result = 207001[FUNC:ReportCallError][FILE:log_inner.cpp][LINE:161]
[rank0]: Traceback (most recent call last):
[rank0]:   File "/home/ma-user/work/alice/MindSpeed-MM/pretrain_internvl.py", line 102, in <module>
[rank0]: RuntimeError: The Inner error is reported as above. The process exits for this inner error, and the current \
working operator name is HcclAllreduce.
"""


def test_cann_el0004_is_out_of_memory_and_the_inner_error_names_it() -> None:
    oom, inner = triage(CANN_OOM)
    assert (oom.kind, oom.line_no, oom.count) == ("npu-oom", 2, 2)  # EL0004 and rtMalloc's driver error
    assert oom.line.startswith("EL0004: ") and "micro batch size" in oom.fix
    assert (inner.kind, inner.line_no) == ("inner-error-above", 10)
    assert inner.cause.endswith("here probably line 2: NPU out of memory")


@pytest.mark.parametrize("line", [
    "ModuleNotFoundError: No module named 'torch_npu'",
    "ModuleNotFoundError: No module named 'mindspeed'",
    "[rank3]: ModuleNotFoundError: No module named 'mindspeed_mm'",
    "ImportError: No module named torch",
])
def test_missing_torch_npu_or_mindspeed_means_the_target_env_is_not_active(line: str) -> None:
    found = triage("Traceback (most recent call last):\n  File \"pretrain_internvl.py\", line 3, in <module>\n" + line)
    assert [(f.kind, f.line_no) for f in found] == [("target-env-inactive", 3)]
    assert "invoke bootstrap --only env" in found[0].fix and "MindSpeed-MM/.venv" in found[0].fix


def test_missing_submodules_of_the_stack_are_not_an_inactive_env() -> None:
    assert triage("ModuleNotFoundError: No module named 'torch_npu.contrib.module'") == []
    assert triage("ModuleNotFoundError: No module named 'mindspeed.core.fusions'") == []
    assert triage("ModuleNotFoundError: No module named 'torchvision'") == []


# --- the two generic CANN/torch_npu lines, and error lines no rule knows -----------------------------------

# CANN's report of a failed AI CPU task as torch_npu prints it (a vLLM-Ascend issue's log, its prefixes removed)
CANN_DEVICE_ERROR = """\
INFO 11-18 10:35:30 model_runner.py:907] Loading model weights took 2.8866 GB
Traceback (most recent call last):
  File "/vllm-workspace/vllm/vllm/v1/executor/multiproc_executor.py", line 248, in get_response
    raise RuntimeError(
RuntimeError: Worker failed with error 'operator():build/CMakeFiles/torch_npu.dir/compiler_depend.ts:47 NPU \
function error: c10_npu::acl::AclrtSynchronizeStreamWithTimeout(copy_stream), error code is 507011
[ERROR] 2025-11-18-10:35:31 (PID:833, Device:0, RankID:-1) ERR00100 PTA call acl api failed
[Error]: Model execution failed.
        Rectify the fault based on the error information in the ascend log.
E39999: Inner Error!
E39999[PID: 833] 2025-11-18-10:35:31.222.032 (E39999):  The error from device(chipId:0, dieId:0), serial number \
is 3, an exception occurred during AICPU execution, stream_id:45, task_id:1, errcode:135175, msg:aicpu execute failed.
        TraceBack (most recent call last):
       Op execute failed. origin_op_name [MoeDistributeDispatchV2], op_name [MoeDistributeDispatchV2]
       synchronize stream with timeout failed, runtime result = 507011[FUNC:ReportCallError][FILE:log_inner.cpp]
', please check the stack trace above for the root cause
"""

# torch_npu failing to initialise (Ascend's troubleshooting page "Initialization Error")
ACL_INIT_ERROR = """\
  File "/home/HwHiAiUser/anaconda3/envs/PyTorch-2.1.0/lib/python3.9/site-packages/torch_npu/npu/__init__.py", line 214
    torch_npu._C._npu_init()
RuntimeError: Initialize:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:217 NPU function error: \
at_npu::native::AclSetCompileopt(aclCompileOpt::ACL_PRECISION_MODE, precision_mode), error code is 500001
[ERROR] 2025-01-15-20:59:48 (PID:6038, Device:0, RankID:-1) ERR00100 PTA call acl api failed
[Error]: The internal ACL of the system is incorrect.
Rectify the fault based on the error information in the ascend log.
"""


def test_error_code_507011_is_a_device_task_and_names_cann_s_error_next_to_it() -> None:
    report = report_text(CANN_DEVICE_ERROR)
    task, acl = report.findings
    assert (task.kind, task.line_no, acl.kind, acl.line_no) == ("device-task-failed", 5, "acl-call-failed", 6)
    assert "ACL_ERROR_RT_MODEL_EXECUTE" in task.cause and "ASCEND_LAUNCH_BLOCKING=1" in task.fix
    assert "$HOME/ascend/log" in task.fix and "$HOME/ascend/log" in acl.fix
    # neither generic line is the culprit of the other: both name CANN's first error, printed below them
    assert task.cause.endswith('here probably line 9: "E39999: Inner Error!"')
    assert acl.cause.endswith('here probably line 9: "E39999: Inner Error!"')
    assert (report.unrecognised.line_no, report.unrecognised.count) == (9, 2)  # CANN's two E39999 lines


def test_err00100_names_the_failed_call_and_its_code_above_it() -> None:
    report = report_text(ACL_INIT_ERROR)
    [acl] = report.findings
    assert (acl.kind, acl.line_no, acl.count) == ("acl-call-failed", 4, 1)
    assert "error code is N" in acl.cause and "ERR01100" in acl.cause
    culprit = acl.cause[acl.cause.index("; here probably"):]
    assert culprit.startswith('; here probably line 3: "RuntimeError: Initialize:build/CMakeFiles/torch_npu')
    assert culprit.endswith(' … ACL_PRECISION_MODE, precision_mode), error code is 500001"')  # both ends
    assert report.unrecognised.line == ("RuntimeError: Initialize:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:"
                                        "217 NPU function error: at_npu::native::AclSetCompileopt(aclCompileOpt::"
                                        "ACL_PRECISION_MODE, precision_mode), error code is 500001")


def test_err01100_from_torch_npu_s_operators_is_the_same_kind() -> None:
    found = triage("[ERROR] 2025-04-27-02:22:35 (PID:50116, Device:0, RankID:-1) ERR01100 OPS call acl api failed")
    assert [f.kind for f in found] == ["acl-call-failed"]


def test_a_generic_line_alone_names_nothing_and_a_far_error_above_is_the_fallback() -> None:
    [acl] = triage(TEXTS["acl-call-failed"])
    assert "here probably" not in acl.cause
    far = ["EZ9999: Inner Error!"] + ["step"] * 50 + [TEXTS["acl-call-failed"]] + ["step"] * 30
    [acl] = report_text("\n".join(far)).findings
    assert acl.cause.endswith('here probably line 1: "EZ9999: Inner Error!"')


@pytest.mark.parametrize("line", [
    "[ERROR] 2025-01-01-12:00:00 (PID:123, Device:0, RankID:0) ERR00100 PTA call acl api failed",  # known
    TEXTS["device-task-failed"],  # known
])
def test_the_issue_s_repro_lines_are_known_now(line: str) -> None:
    report = report_text(f"step 1\n{line}\n")
    assert report.findings and report.unrecognised is None and report.failed


@pytest.mark.parametrize("line", [
    "RuntimeError: fn:file.cpp:12 NPU error, error code is 100000",
    "[ERROR] 2025-01-01-12:00:00 (PID:123, Device:0, RankID:0) ERR01002 OPS invalid type",
    "[ERROR] RUNTIME(1234,python):2025-01-01-12:00:00.000.000 [stream.cc:123] Stream sync failed",
    "EZ9999: Inner Error!",
    "[rank3]: EE9999: [PID: 101] 2025-01-01-12:00:00.000.000 Not allow to synchronize captured-stream",
    "E39999[PID: 833] The error from device(chipId:0, dieId:0), serial number is 3",
    "[ERROR] 2025-11-18-10:35:37 (PID:145, Device:-1, RankID:-1) ERR99999 UNKNOWN applicaiton exception",
])
def test_error_looking_lines_no_rule_knows_are_unrecognised(line: str) -> None:
    report = report_text(f"iteration 1/10 | lm loss: 1.234E+00\n{line}\niteration 2/10\n")
    assert report.findings == ()
    assert report.unrecognised == Finding(2, line, report.unrecognised.cause, report.unrecognised.fix,
                                          kind=UNRECOGNISED, title=report.unrecognised.title, count=1)
    assert report.failed and "no rule" in report.unrecognised.title


def test_a_python_traceback_counts_once_at_its_exception_line() -> None:
    log = ("step 1\n[rank0]: Traceback (most recent call last):\n[rank0]:   File \"train.py\", line 3, in <module>\n"
           "[rank0]:     raise ValueError(\"bad shape\")\n[rank0]:     except KeyError:\n"
           "[rank0]: ValueError: bad shape\n"
           "\nDuring handling of the above exception, another exception occurred:\n\n"
           "Traceback (most recent call last):\n  File \"x.py\", line 9\nmegatron.core.MyCustomException: again\n")
    unknown = report_text(log).unrecognised
    assert (unknown.line_no, unknown.line, unknown.count) == (6, "[rank0]: ValueError: bad shape", 2)


def test_a_traceback_ending_in_a_known_error_is_that_error_only() -> None:
    assert report_text(CANN_OOM).unrecognised is None
    log = "Traceback (most recent call last):\n  File \"a.py\", line 1\n" + TEXTS["target-env-inactive"]
    assert [f.kind for f in report_text(log).findings] == ["target-env-inactive"]
    assert report_text(log).unrecognised is None


def test_a_traceback_without_its_exception_line_is_reported_at_its_start() -> None:
    log = "step\nTraceback (most recent call last):\n  File \"train.py\", line 3, in <module>\nKeyboardInterrupt\n"
    unknown = report_text(log).unrecognised
    assert (unknown.line_no, unknown.line, unknown.count) == (2, "Traceback (most recent call last):", 1)


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_known_lines_are_not_also_unrecognised(kind: str) -> None:
    assert report_text("INFO starting\n" + TEXTS[kind] + "\n").unrecognised is None


CLEAN = """\
 [2025-01-15 10:21:33] iteration      100/   10000 | consumed samples:          800 | elapsed time per iteration \
(ms): 1234.5 | learning rate: 1.000000E-05 | global batch size:     8 | lm loss: 2.313456E+00 | loss scale: 1.0 | \
grad norm: 1.234 | number of skipped iterations:   0 | number of nan iterations:   0 |
 [Rank 0] (after 100 iterations) memory (MB) | allocated: 10240.5 | max allocated: 20480.1 | reserved: 22000.0
 validation loss at iteration 100 | lm loss value: 2.1E+00 | lm loss PPL: 8.1E+00 | errors: 0 | failed batches: 0
    raise RuntimeError("only shown in a traceback")
    except ValueError:
[W compiler_depend.ts:51] Warning: Exception handling in the data loader is enabled (function operator())
        TraceBack (most recent call last):
saving checkpoint at iteration     100 to ./ckpt (commit 5f3e1a2, EX12AB3 build)
"""


def test_a_clean_log_with_near_misses_has_nothing_to_report() -> None:
    report = report_text(CLEAN)
    assert report == LogReport((), None, 8) and not report.failed


# --- streaming: a file in blocks of any size gives what the text gives, in bounded memory -----------------

CAPTURED = {"cann-oom": CANN_OOM, "uv-tls": UV_TLS, "cann-device-error": CANN_DEVICE_ERROR,
            "acl-init-error": ACL_INIT_ERROR, "clean": CLEAN,
            "all-known": "\n".join(f"[rank{i}]: {t}" for i, t in enumerate(TEXTS.values())) + "\nok\n",
            "coloured": "\n".join(c for _k, c, _p in COLOURED) + "\n\x1b[32mINFO\x1b[0m done"}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_a_file_read_in_blocks_gives_what_the_text_gives(name: str, tmp_path: Path) -> None:
    text = CAPTURED[name]
    path = tmp_path / f"{name}.log"
    path.write_text(text, encoding="utf-8")
    expected = report_text(text)
    assert expected.findings or expected.unrecognised or name == "clean"
    for block in (1, 7, 64, 1000, BLOCK):
        assert report_file(str(path), block=block) == expected, block
    with open(path, encoding="utf-8") as handle:
        assert report_lines(handle) == expected
    assert triage_lines(text.splitlines()) == triage(text) == list(expected.findings)


def test_the_prefilter_drops_no_line_a_rule_would_match() -> None:
    """Every rule's needles hold a scan needle; on every captured line the table alone finds the same."""
    for known in KNOWN:
        assert known.needles, known.kind
        for needle in known.needles:
            covered = any(s in needle for s in SCAN_NEEDLES) or _CODES.fullmatch(needle.upper())
            assert needle == needle.lower() and covered, (known.kind, needle)
    lines = [line for text in CAPTURED.values() for line in text.splitlines()]
    lines += [t for t in TEXTS.values()] + [c for _k, c, _p in COLOURED]
    counts: Dict[str, int] = {}
    for line in lines:
        plain = _ANSI.sub("", line)
        kind = next((k.kind for k in KNOWN if k.pattern.search(plain)), None)
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    found = report_text("\n".join(lines)).findings
    assert {f.kind: f.count for f in found} == counts


def test_a_block_whose_lower_case_is_longer_is_read_line_by_line() -> None:
    text = "İstanbul datacenter, rack 3\n" + TEXTS["hccl-device-busy"] + "\nİ\n" + TEXTS["npu-oom"] + "\n"
    assert len(text.lower()) != len(text)
    report = report_text(text)
    assert [(f.kind, f.line_no) for f in report.findings] == [("hccl-device-busy", 2), ("npu-oom", 4)]


def test_line_ends_cr_lf_and_lone_cr_count_alike_in_file_and_text(tmp_path: Path) -> None:
    text = "a\r\nb\rprogress 10%\rprogress 20%\r\n" + TEXTS["npu-oom"] + "\r\nlast"
    path = tmp_path / "crlf.log"
    path.write_bytes(text.encode())
    report = report_file(str(path), block=5)
    assert report == report_text(text) and report.lines == 6
    assert [(f.kind, f.line_no, f.line) for f in report.findings] == [("npu-oom", 5, TEXTS["npu-oom"])]


def test_a_line_longer_than_the_carry_is_looked_at_by_its_ends(tmp_path: Path) -> None:
    middle = "#" * (3 * CARRY) + " " + TEXTS["certificate"] + " " + "#" * (3 * CARRY)  # error in the middle only
    end = "progress " + "#" * (3 * CARRY) + " " + TEXTS["npu-oom"]
    text = f"start\n{middle}\n{end}\nafter\n{TEXTS['decord-missing']}"
    path = tmp_path / "long.log"
    path.write_text(text)
    report = report_file(str(path), block=4096)
    assert [(f.kind, f.line_no) for f in report.findings] == [("npu-oom", 3), ("decord-missing", 5)]
    assert report == report_text(text) and report.lines == 5 and len(report.findings[0].line) < 5000


def _ordinary_block(first: int, size: int) -> str:
    """About `size` characters of ordinary Megatron training lines, every 50th coloured."""
    lines, total, i = [], 0, first
    while total < size:
        line = (f" [2025-01-15 10:21:33] iteration {i:8d}/ 1000000 | consumed samples: {i * 8:12d} | elapsed time "
                f"per iteration (ms): 1234.5 | learning rate: 1.000000E-05 | lm loss: 2.313456E+00 | grad norm: 1.2 |")
        if i % 50 == 0:
            line = f"\x1b[32mINFO\x1b[0m saving checkpoint at iteration {i}"
        lines.append(line)
        total += len(line) + 1
        i += 1
    return "\n".join(lines) + "\n"


def test_a_50_mb_log_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    lines = 0
    with open(path, "w", encoding="utf-8") as handle:
        for n in range(50):
            block = _ordinary_block(n * 10_000, 1 << 20)
            handle.write(block + TEXTS["npu-oom"] + "\n")
            lines += block.count("\n") + 1
    size = path.stat().st_size
    assert size > 50 * (1 << 20)
    tracemalloc.start()
    try:
        report = report_file(str(path))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with open(path, encoding="utf-8") as handle:
            streamed = report_lines(handle)
        peak_lines = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(f.kind, f.count) for f in report.findings] == [("npu-oom", 50)]
    assert report.lines == lines and report.unrecognised is None and streamed == report
    assert peak < 4 * (1 << 20) and peak_lines < 4 * (1 << 20), (peak, peak_lines, size)


def test_huge_lines_and_no_line_end_at_all_are_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "one-line.log"
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(20):
            handle.write("#" * (1 << 20) + "\r")  # a progress bar that only ever returns the carriage...
        handle.write("=" * (1 << 20) + " " + TEXTS["npu-oom"])  # ...is lines; this last one has no line end
    tracemalloc.start()
    try:
        report = report_file(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(f.kind, f.line_no) for f in report.findings] == [("npu-oom", 21)] and report.lines == 21
    assert peak < 4 * (1 << 20), peak


# --- the real CLI: `invoke doctor --log FILE` ------------------------------------------------------------


def doctor_log(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in clean_env().items() if not k.startswith(("NPUENV_", "VIRTUAL_ENV"))}
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "doctor", "--log", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_cli_an_unknown_error_is_not_a_clean_log(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("iteration 1/10 | lm loss: 1.234E+00\n"
                   "[ERROR] 2025-01-01-12:00:00 (PID:123, Device:0, RankID:0) ERR01002 OPS invalid type\n"
                   "EZ9999: Inner Error!\niteration 2/10\n")
    found = doctor_log(str(log))
    assert found.returncode == 1, found.stdout + found.stderr
    lines = found.stdout.splitlines()
    assert lines[0] == f"{log}: no known failure, 2 unrecognised error line(s)"
    assert f"✗ {log}:2: unrecognised error (no rule knows it) (×2)" in lines
    assert "    | [ERROR] 2025-01-01-12:00:00 (PID:123, Device:0, RankID:0) ERR01002 OPS invalid type" in lines
    as_json = doctor_log(str(log), "--json")
    assert as_json.returncode == 1
    [entry] = json.loads(as_json.stdout)
    assert (entry["file"], entry["kind"], entry["line_no"], entry["count"]) == (str(log), UNRECOGNISED, 2, 2)
    assert set(entry) == {"file", "line_no", "line", "cause", "fix", "kind", "title", "count"}


def test_cli_the_issue_s_repro_is_explained_and_a_clean_log_exits_0(tmp_path: Path) -> None:
    repro = tmp_path / "repro.log"
    repro.write_text("step 1\nRuntimeError: fn:file.cpp:12 NPU error, error code is 507011\n"
                     "[ERROR] 2025-01-01-12:00:00 (PID:123, Device:0, RankID:0) ERR00100 PTA call acl api failed\n")
    found = doctor_log(str(repro))
    assert found.returncode == 1, found.stdout + found.stderr
    assert found.stdout.splitlines()[0] == f"{repro}: 2 known failure(s)"
    assert f"✗ {repro}:2: a task failed on the NPU (error code 507011, model execute failed)" in found.stdout
    assert f"✗ {repro}:3: torch_npu: a CANN call failed (ERR00100 PTA call acl api failed)" in found.stdout
    clean = tmp_path / "clean.log"
    clean.write_text(CLEAN)
    quiet = doctor_log(str(clean))
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert quiet.stdout.strip() == f"{clean}: no known failure and no error line found (8 lines)"
    assert json.loads(doctor_log(str(clean), "--json").stdout) == []
