"""Known failures in training and inference logs: what each means and how to fix it.

`triage(text)` is pure: it reads the text line by line, matches each line against the table of known
failures, and returns one Finding per kind (its first line, and how many lines matched), in the order
they first appear. The table holds the errors the team met (UPSTREAM.md) and a few more with a named
source; each pattern is the error's own text, so it matches whatever prefix a launcher adds. Terminal
colours and other ANSI escape sequences are removed first (from what is matched and what is shown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Optional, Pattern

SET_ENV = "source /usr/local/Ascend/ascend-toolkit/set_env.sh"
# ANSI escape sequences: CSI (colours, cursor moves: ESC [ ... m), OSC (titles, links: ESC ] ... BEL or ESC \\),
# and the two-character ones (ESC c, ESC =, ...)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]")


@dataclass(frozen=True)
class Known:
    kind: str
    title: str
    pattern: Pattern[str]
    cause: str
    fix: str


@dataclass(frozen=True)
class Finding:
    line_no: int  # 1-based, of the first matching line
    line: str
    cause: str
    fix: str
    kind: str = ""
    title: str = ""
    count: int = 1  # lines of this kind in the log


def _re(text: str) -> Pattern[str]:
    return re.compile(text, re.IGNORECASE)


KNOWN: tuple[Known, ...] = (
    Known("hccl-device-busy", "HCCL: a previous process still holds the NPU (EJ0001)",
          _re(r"\bEJ0001\b|Maybe the last training process is running"),
          "a previous training process (dead, orphaned, or a teammate's) still holds the device, so HCCL "
          "cannot start its HCCP process on it",
          "invoke kill-npu --dry-run (see who holds the NPUs), then invoke kill-npu; wait ~10 s before starting again"),
    Known("hccl-port-bound", "HCCL: the port is already bound (EJ0003, error code 11)",
          _re(r"\bEJ0003\b|port have been bound already|hccl.*error code is 11\b"),
          "a stale process still holds HCCL's or the rendezvous port",
          "invoke kill-npu; or pick another MASTER_PORT (and HCCL_HOST_SOCKET_PORT_RANGE=auto)"),
    Known("hccl-unavailable", "HCCL error code 7 (HCCL_E_UNAVAIL)",
          _re(r"hccl.*error code is 7\b"),
          "HCCL_E_UNAVAIL: either a previous process still holds a device (look for EJ0001 in the log), or "
          "more ranks were started than NPUs exist (the finetune scripts default to NPUS_PER_NODE=8)",
          "invoke kill-npu; set NPUS_PER_NODE to the number of NPUs (`npu-smi info`, or invoke doctor --check npu)"),
    Known("invalid-device", "a rank asked for an NPU that does not exist (EE1001)",
          _re(r"valid device range is|Set device failed, invalid device"),
          "a rank was given a device id beyond the visible NPUs: NPUS_PER_NODE (default 8) or "
          "ASCEND_RT_VISIBLE_DEVICES names more devices than this box has",
          "set NPUS_PER_NODE to the number of NPUs (`npu-smi info`) and check ASCEND_RT_VISIBLE_DEVICES"),
    Known("npu-oom", "NPU out of memory",
          _re(r"NPU out of memory|\bEL0004\b|Failed to allocate memory|driver error:\s*out of memory"),
          "the model, activations and optimizer state do not fit in the NPU's memory (HBM); CANN says "
          "EL0004 \"Failed to allocate memory\"",
          "reduce the micro batch size or sequence length, enable recomputation, use more NPUs "
          "(tensor/pipeline parallel); PYTORCH_NPU_ALLOC_CONF=expandable_segments:True reduces fragmentation"),
    Known("inner-error-above", "\"The Inner error is reported as above\"",
          _re(r"The Inner error is reported as above"),
          "a generic line: the operator runs asynchronously, so the real error is printed ABOVE this line "
          "(in the team's case out-of-memory)",
          "read the error above it; ASCEND_LAUNCH_BLOCKING=1 makes the stack trace accurate but slows training"),
    Known("cann-not-sourced", "a CANN library is not found (set_env.sh not sourced)",
          _re(r"lib(?:hccl|ascendcl|ascend_hal|ge_runner|graph|runtime|acl_op_compiler|register|platform)\.so"
              r": cannot open shared object file"),
          "the CANN environment is not set up in this shell: its libraries are not on LD_LIBRARY_PATH",
          f"{SET_ENV} before starting (the init.sh of `invoke user.add` does it); invoke doctor --check cann"),
    Known("cann-init-env", "CANN could not initialise (EH9999 init env failed)",
          _re(r"(?:EH9999|\[Init\]\[Env\]).*init env failed"),
          "CANN's own Python dependencies are missing from the target env (decorator, sympy, cffi, protobuf, "
          "attrs, pyyaml, psutil, scipy, ...)",
          "install them in the target env, e.g. uv pip install --python MindSpeed-MM/.venv/bin/python decorator "
          "sympy cffi protobuf attrs pyyaml psutil scipy (the default spec's env has them)"),
    Known("cann-python-deps", "a Python module CANN needs is missing",
          _re(r"No module named '(?:decorator|sympy|cffi|attrs?|psutil|scipy|tbe|te)(?:\.[\w.]+)?'"),
          "CANN's Python side (TBE) imports these from the target env; tbe/te themselves come from CANN's "
          "PYTHONPATH, which set_env.sh sets",
          f"install the missing module in the target env; for tbe/te: {SET_ENV}"),
    Known("torch-npu-abi", "torch_npu does not fit the CANN (or torch) installed (undefined symbol)",
          _re(r"(?:libtorch_npu|torch_npu/lib/\S+|libop_plugin\S*)\.so: undefined symbol"),
          "torch_npu was built for another CANN or torch than the one installed",
          "invoke doctor --check target,cann compares them with Ascend's torch_npu/CANN table; install the "
          "torch_npu built for this CANN"),
    Known("pip-missing", "No module named pip (MindSpeed's setup.py)",
          _re(r"No module named '?pip'?(?![\w.])"),
          "MindSpeed's setup.py runs `python -m pip install -r requirements.txt`, and uv's isolated build "
          "env has no pip",
          "the patch patches/mindspeed-setup-no-pip.patch (invoke bootstrap --only patch:mindspeed-setup-no-pip); "
          "CI_BUILD=1 skips it once"),
    Known("certificate", "TLS: certificate verify failed",
          _re(r"certificate verify failed|CERTIFICATE_VERIFY_FAILED|SSL certificate problem|"
              r"server certificate verification failed|invalid peer certificate: UnknownIssuer"),
          "the client cannot verify the server: the system CA roots are readable by root only on ModelArts, "
          "or a proxy re-signs TLS with its own CA (uv says `invalid peer certificate: UnknownIssuer`; its "
          "SSL_CERT_FILE replaces its built-in roots)",
          "use npuenv's CA bundle: enter through init.sh, or export SSL_CERT_FILE/REQUESTS_CA_BUNDLE/"
          "CURL_CA_BUNDLE/GIT_SSL_CAINFO/PIP_CERT=ROOT/.npuenv/ca-bundle.pem; add a proxy's CA with "
          "invoke bootstrap --ca-bundle FILE"),
    Known("target-env-inactive", "torch, torch_npu or MindSpeed not found: the target env is not active",
          _re(r"No module named '?(?:torch|torch_npu|mindspeed|mindspeed_mm)'?(?![\w.])"),
          "the Python that ran is not MindSpeed-MM's target env (it was not activated, or another python came "
          "first on PATH), or the target env was never filled",
          "activate it: enter through your init.sh (invoke user.add), or source MindSpeed-MM/.venv/bin/activate; "
          "if it is active, fill it: invoke bootstrap --only env (invoke doctor --check target says which)"),
    Known("decord-missing", "decord is not installed",
          _re(r"Failed to import decord module|No module named '?decord'?(?![\w.])"),
          "decord is not installed in the target env (MindSpeed-MM only prints \"Failed to import decord "
          "module.\" and goes on: video loading fails later)",
          "invoke bootstrap --only build:decord (the prebuilt decord2 where glibc >= 2.28, else from source)"),
)


def _best(line: str) -> Optional[Known]:
    for known in KNOWN:
        if known.pattern.search(line):
            return known
    return None


def triage_lines(lines: Iterable[str]) -> list[Finding]:
    """Like triage(), over an iterable of lines (a file object works: big logs are streamed)."""
    first: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        if len(line) > 4000:  # a megabyte of progress bar on one line: look at its ends only
            line = line[:2000] + " … " + line[-2000:]
        known = _best(line)
        if known is None:
            continue
        counts[known.kind] = counts.get(known.kind, 0) + 1
        if known.kind not in first:
            first[known.kind] = Finding(number, line.strip(), known.cause, known.fix, known.kind, known.title)
    findings = sorted((replace(f, count=counts[f.kind]) for f in first.values()), key=lambda f: f.line_no)
    return [_point_above(f, findings) for f in findings]


def _point_above(finding: Finding, findings: list[Finding]) -> Finding:
    """The inner-error line names the error above it when one is known."""
    if finding.kind != "inner-error-above":
        return finding
    above = [f for f in findings if f.line_no < finding.line_no and f.kind != finding.kind]
    if not above:
        return finding
    culprit = above[-1]
    return replace(finding, cause=f"{finding.cause}; here probably line {culprit.line_no}: {culprit.title}")


def triage(text: str) -> list[Finding]:
    """The known failures in a log's text, one Finding per kind, in order of first appearance."""
    return triage_lines(text.splitlines())
