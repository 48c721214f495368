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
