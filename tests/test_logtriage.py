"""Log triage: every known error text, line numbers, one finding per kind with a count, clean logs.

The error lines are real ones (UPSTREAM.md's table; Ascend docs and public issue reports for the rest),
with the prefixes launchers add.
"""

from __future__ import annotations

import io

import pytest

from npuenv.logtriage import KNOWN, Finding, triage, triage_lines

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
