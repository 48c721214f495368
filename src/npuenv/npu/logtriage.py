"""Known failures in training and inference logs: what each means and how to fix it.

`triage(text)` is pure: it returns one Finding per known kind (its first line, and how many lines matched),
in the order they first appear. The table holds the errors the team met (UPSTREAM.md) and a few more with
a named source; each pattern is the error's own text, so it matches whatever prefix a launcher adds.
Terminal colours and other ANSI escape sequences are removed first (from what is matched and shown).

Error lines that no rule knows (a Python traceback's exception, `[ERROR]`, `error code is N`, a CANN code
such as EZ9999 or ERR00100) are counted too: a log holding only those is not a clean log. `report_file`,
`report_lines` and `report_text` return both, as a LogReport.

Speed: a training log is mostly lines that are no error at all, and running every pattern on every line
made a 200 MB log take over a minute. So each block of text is first searched, case-folded, for a few
literal needles (SCAN_NEEDLES: one of them is in every line any rule or the unrecognised-error detector can
match), for CANN's error codes and for ESC; only the lines holding one run the table. `report_file` reads
the file in blocks and keeps only a bounded tail of an unfinished line, so memory does not grow with the
file. Lines end at \\n, \\r\\n or a lone \\r, as Python's text files read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Optional, Pattern

from .. import cann
from ..results import Status

SET_ENV = f"source {cann.SET_ENV}"
CANN_LOGS = "$HOME/ascend/log (or $ASCEND_PROCESS_LOG_PATH)"
BLOCKING = "ASCEND_LAUNCH_BLOCKING=1 makes the stack trace accurate but slows training"
# ANSI escape sequences: CSI (colours, cursor moves: ESC [ ... m), OSC (titles, links: ESC ] ... BEL or ESC \\),
# and the two-character ones (ESC c, ESC =, ...); never across a line end, so a block of lines is stripped at once
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]")

LONG_LINE = 4000  # a longer line (a megabyte of progress bar) is looked at by its ends only
LINE_END = 2000  # how much of each end
BLOCK = 1 << 16  # characters read at a time: small enough that the needle passes run in the CPU cache
CARRY = 1 << 16  # an unfinished line longer than this keeps only its two ends while it is read
NEAR = 20  # lines: how far below a generic error line its culprit may be


@dataclass(frozen=True)
class Known:
    kind: str
    title: str
    pattern: Pattern[str]
    cause: str
    fix: str
    # lower-case literals, one of which is in every line the pattern matches: the pattern runs only on lines
    # that hold one. Each contains one of SCAN_NEEDLES or is a CANN code (case-sensitive in the pattern, found
    # by _CODES), so the block prefilter keeps every such line.
    needles: tuple[str, ...]
    # a generic line that only says an error happened elsewhere: "above" (it says so), "around" (nearest
    # error line within NEAR lines either side, else the nearest above); its cause then names that line
    points: str = ""


@dataclass(frozen=True)
class Finding:
    line_no: int  # 1-based, of the first matching line
    line: str
    cause: str
    fix: str
    kind: str = ""
    title: str = ""
    count: int = 1  # lines of this kind in the log

    @property
    def status(self) -> Status:
        return Status.FAIL  # a known failure, or an error line no rule knows: either way the log is not clean

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LogReport:
    findings: tuple[Finding, ...]  # the known failures, in the order they first appear
    unrecognised: Optional[Finding]  # error lines no rule knows: the first one, and how many
    lines: int  # lines read

    @property
    def failed(self) -> bool:
        """A log with a known failure or an error line no rule knows is not clean."""
        return bool(self.findings) or self.unrecognised is not None

    def to_json(self, path: str) -> list[dict]:
        """One object per finding; unrecognised error lines are one more, of kind "unrecognised"."""
        shown = [*self.findings, *([self.unrecognised] if self.unrecognised else [])]
        return [{"file": path, **f.to_json()} for f in shown]


def _re(text: str) -> Pattern[str]:
    return re.compile(text, re.IGNORECASE)


KNOWN: tuple[Known, ...] = (
    Known("hccl-device-busy", "HCCL: a previous process still holds the NPU (EJ0001)",
          _re(r"(?-i:\bEJ0001\b)|Maybe the last training process is running"),
          "a previous training process (dead, orphaned, or a teammate's) still holds the device, so HCCL "
          "cannot start its HCCP process on it",
          "invoke kill-npu --dry-run (see who holds the NPUs), then invoke kill-npu; wait ~10 s before starting again",
          needles=("maybe the last training process is running", "ej0001")),
    Known("hccl-port-bound", "HCCL: the port is already bound (EJ0003, error code 11)",
          _re(r"(?-i:\bEJ0003\b)|port have been bound already|hccl.*error code is 11\b"),
          "a stale process still holds HCCL's or the rendezvous port",
          "invoke kill-npu; or pick another MASTER_PORT (and HCCL_HOST_SOCKET_PORT_RANGE=auto)",
          needles=("port have been bound already", "error code is 11", "ej0003")),
    Known("hccl-unavailable", "HCCL error code 7 (HCCL_E_UNAVAIL)",
          _re(r"hccl.*error code is 7\b"),
          "HCCL_E_UNAVAIL: either a previous process still holds a device (look for EJ0001 in the log), or "
          "more ranks were started than NPUs exist (the finetune scripts default to NPUS_PER_NODE=8)",
          "invoke kill-npu; set NPUS_PER_NODE to the number of NPUs (`npu-smi info`, or invoke doctor --check npu)",
          needles=("error code is 7",)),
    Known("invalid-device", "a rank asked for an NPU that does not exist (EE1001)",
          _re(r"valid device range is|Set device failed, invalid device"),
          "a rank was given a device id beyond the visible NPUs: NPUS_PER_NODE (default 8) or "
          "ASCEND_RT_VISIBLE_DEVICES names more devices than this box has",
          "set NPUS_PER_NODE to the number of NPUs (`npu-smi info`) and check ASCEND_RT_VISIBLE_DEVICES",
          needles=("valid device range is", "set device failed, invalid device")),
    Known("npu-oom", "NPU out of memory",
          _re(r"NPU out of memory|(?-i:\bEL0004\b)|Failed to allocate memory|driver error:\s*out of memory"),
          "the model, activations and optimizer state do not fit in the NPU's memory (HBM); CANN says "
          "EL0004 \"Failed to allocate memory\"",
          "reduce the micro batch size or sequence length, enable recomputation, use more NPUs "
          "(tensor/pipeline parallel); PYTORCH_NPU_ALLOC_CONF=expandable_segments:True reduces fragmentation",
          needles=("out of memory", "failed to allocate memory", "el0004")),
    Known("inner-error-above", "\"The Inner error is reported as above\"",
          _re(r"The Inner error is reported as above"),
          "a generic line: the operator runs asynchronously, so the real error is printed ABOVE this line "
          "(in the team's case out-of-memory)",
          f"read the error above it; {BLOCKING}",
          needles=("the inner error is reported as above",), points="above"),
    Known("device-task-failed", "a task failed on the NPU (error code 507011, model execute failed)",
          _re(r"error code is 507011\b"),
          "CANN's ACL_ERROR_RT_MODEL_EXECUTE: an operator or a collective failed on the device. The NPU runs "
          "them asynchronously, so this line is where torch_npu noticed it (often a stream synchronize), not "
          "what failed: CANN's own error is printed next to it (EZ9999, E39999, ... \"The error from device\", "
          "with the operator's name)",
          f"read CANN's error next to it, and CANN's logs in {CANN_LOGS}; {BLOCKING}",
          needles=("error code is 507011",), points="around"),
    Known("acl-call-failed", "torch_npu: a CANN call failed (ERR00100 PTA call acl api failed)",
          _re(r"(?-i:\bERR0[01]100\b)|(?:PTA|OPS) call acl api failed"),
          "a generic line: torch_npu says a CANN (ACL) call returned an error (ERR01100: the same from its "
          "operators). The line before it names the call and CANN's error code (`NPU function error: <call>, "
          "error code is N`); the lines after it say what the code means (`[Error]: ...`) and why (CANN's "
          "EZ9999, ...)",
          f"read those lines, and CANN's logs in {CANN_LOGS}, for the first error; {BLOCKING}",
          needles=("pta call acl api failed", "ops call acl api failed", "err00100", "err01100"), points="around"),
    Known("cann-not-sourced", "a CANN library is not found (set_env.sh not sourced)",
          _re(r"lib(?:hccl|ascendcl|ascend_hal|ge_runner|graph|runtime|acl_op_compiler|register|platform)\.so"
              r": cannot open shared object file"),
          "the CANN environment is not set up in this shell: its libraries are not on LD_LIBRARY_PATH",
          f"{SET_ENV} before starting (the init.sh of `invoke user.add` does it); invoke doctor --check cann",
          needles=(".so: cannot open shared object file",)),
    Known("cann-init-env", "CANN could not initialise (EH9999 init env failed)",
          _re(r"(?:EH9999|\[Init\]\[Env\]).*init env failed"),
          "CANN's own Python dependencies are missing from the target env (decorator, sympy, cffi, protobuf, "
          "attrs, pyyaml, psutil, scipy, ...)",
          "install them in the target env, e.g. uv pip install --python MindSpeed-MM/.venv/bin/python decorator "
          "sympy cffi protobuf attrs pyyaml psutil scipy (the default spec's env has them)",
          needles=("init env failed",)),
    Known("cann-python-deps", "a Python module CANN needs is missing",
          _re(r"No module named '(?:decorator|sympy|cffi|attrs?|psutil|scipy|tbe|te)(?:\.[\w.]+)?'"),
          "CANN's Python side (TBE) imports these from the target env; tbe/te themselves come from CANN's "
          "PYTHONPATH, which set_env.sh sets",
          f"install the missing module in the target env; for tbe/te: {SET_ENV}",
          needles=("no module named '",)),
    Known("torch-npu-abi", "torch_npu does not fit the CANN (or torch) installed (undefined symbol)",
          _re(r"(?:libtorch_npu|torch_npu/lib/\S+|libop_plugin\S*)\.so: undefined symbol"),
          "torch_npu was built for another CANN or torch than the one installed",
          "invoke doctor --check target,cann compares them with Ascend's torch_npu/CANN table; install the "
          "torch_npu built for this CANN",
          needles=(".so: undefined symbol",)),
    Known("pip-missing", "No module named pip (MindSpeed's setup.py)",
          _re(r"No module named '?pip'?(?![\w.])"),
          "MindSpeed's setup.py runs `python -m pip install -r requirements.txt`, and uv's isolated build "
          "env has no pip",
          "the patch patches/mindspeed-setup-no-pip.patch (invoke bootstrap --only patch:mindspeed-setup-no-pip); "
          "CI_BUILD=1 skips it once",
          needles=("no module named",)),
    Known("certificate", "TLS: certificate verify failed",
          _re(r"certificate verify failed|CERTIFICATE_VERIFY_FAILED|SSL certificate problem|"
              r"server certificate verification failed|invalid peer certificate: UnknownIssuer"),
          "the client cannot verify the server: the system CA roots are readable by root only on ModelArts, "
          "or a proxy re-signs TLS with its own CA (uv says `invalid peer certificate: UnknownIssuer`; its "
          "SSL_CERT_FILE replaces its built-in roots)",
          "use npuenv's CA bundle: enter through init.sh, or export SSL_CERT_FILE/REQUESTS_CA_BUNDLE/"
          "CURL_CA_BUNDLE/GIT_SSL_CAINFO/PIP_CERT=ROOT/.npuenv/ca-bundle.pem; add a proxy's CA with "
          "invoke bootstrap --ca-bundle FILE",
          needles=("certificate verify failed", "certificate_verify_failed", "ssl certificate problem",
                   "server certificate verification failed", "invalid peer certificate: unknownissuer")),
    Known("target-env-inactive", "torch, torch_npu or MindSpeed not found: the target env is not active",
          _re(r"No module named '?(?:torch|torch_npu|mindspeed|mindspeed_mm)'?(?![\w.])"),
          "the Python that ran is not MindSpeed-MM's target env (it was not activated, or another python came "
          "first on PATH), or the target env was never filled",
          "activate it: enter through your init.sh (invoke user.add), or source MindSpeed-MM/.venv/bin/activate; "
          "if it is active, fill it: invoke bootstrap --only env (invoke doctor --check target says which)",
          needles=("no module named",)),
    Known("decord-missing", "decord is not installed",
          _re(r"Failed to import decord module|No module named '?decord'?(?![\w.])"),
          "decord is not installed in the target env (MindSpeed-MM only prints \"Failed to import decord "
          "module.\" and goes on: video loading fails later)",
          "invoke bootstrap --only build:decord (the prebuilt decord2 where glibc >= 2.28, else from source)",
          needles=("failed to import decord module", "no module named")),
)

# --- error lines no rule knows ----------------------------------------------------------------------------

UNRECOGNISED = "unrecognised"
UNRECOGNISED_TITLE = "unrecognised error (no rule knows it)"
UNRECOGNISED_CAUSE = ("error lines that no rule of npuenv's table explains (a Python traceback's exception, "
                      "[ERROR], `error code is N`, a CANN code such as EZ9999, or torch_npu's ERRxxxxx)")
UNRECOGNISED_FIX = (f"read the first one and the lines around it; CANN's own logs are in {CANN_LOGS}; "
                    "if it comes back, add a rule for it to src/npuenv/logtriage.py")
# CANN's error codes (EZ9999, EE1001, E39999, ...) and torch_npu's (ERR00100): always in capitals
_CODE = re.compile(r"\bE[0-9A-Z]\d{4}\b|\bERR\d{5}\b")
_ERROR_CODE_IS = re.compile(r"error code is -?\d", re.IGNORECASE)
TRACEBACK = "Traceback (most recent call last)"  # CANN's own "TraceBack" is not Python's
# the exception line that ends a Python traceback: `[rank0]: torch.xyz.SomeError: text`, not the code lines
# above it (`    raise SomeError(...)`, `    except SomeError:`)
_EXCEPTION = re.compile(r"(?<![\w.])(?<!except )(?<!raise )(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)(?::|$)")

# --- the prefilter ----------------------------------------------------------------------------------------

# Searched in the case-folded text. Every needle of every rule, and every error line of the unrecognised kind
# (`[ERROR]`, `error code is`, `...Error:`, `...Exception:`, a traceback's first line), contains one of these,
# so a line holding none of them (and no CANN code, and no ESC) cannot match: it is skipped unseen.
SCAN_NEEDLES: tuple[str, ...] = (
    "error", "fail", "traceback (most recent call last)", "maybe the last training",
    "have been bound", "valid device", "out of memory", "cannot open shared object file", "no module named",
    "undefined symbol", "certificate",
)
# in the raw text: a superset of _CODE, and the "Exception" of _EXCEPTION (one pass: one literal prefix)
_CODES = re.compile(r"E(?:[0-9A-Z]\d{4}|RR\d{5}|xception)")
ESC = "\x1b"


def _has_needle(line: str) -> bool:
    """The prefilter for one line: could any rule, or the unrecognised-error detector, match it?"""
    if ESC in line or _CODES.search(line):
        return True
    low = line.lower()
    return any(needle in low for needle in SCAN_NEEDLES)


def _candidate_starts(text: str, end: int) -> list[int]:
    """Where the lines of text[:end] that hold a needle, a CANN code or ESC start, in order.

    One pass over the block per needle (str.find in C), instead of a pattern per line in Python."""
    low = text.lower()
    if len(low) != len(text):  # a character whose lower case is longer (İ): offsets would not match
        return _candidate_starts_by_line(text, end)
    starts: set[int] = set()
    for needle in SCAN_NEEDLES:
        _add_lines_holding(low, needle, end, starts)
    _add_lines_holding(text, ESC, end, starts)  # what _ANSI leaves: a lone ESC
    found = _CODES.search(text, 0, end)
    while found:
        line_start = text.rfind("\n", 0, found.start()) + 1
        starts.add(line_start)
        found = _CODES.search(text, text.find("\n", found.end(), end) + 1 or end, end)
    return sorted(starts)


def _add_lines_holding(text: str, needle: str, end: int, starts: set[int]) -> None:
    at = text.find(needle, 0, end)
    while at >= 0:
        starts.add(text.rfind("\n", 0, at) + 1)
        line_end = text.find("\n", at, end)
        if line_end < 0:
            return
        at = text.find(needle, line_end + 1, end)


def _candidate_starts_by_line(text: str, end: int) -> list[int]:
    starts, at = [], 0
    while at < end:
        line_end = text.find("\n", at, end)
        line_end = end if line_end < 0 else line_end
        if _has_needle(text[at:line_end]):
            starts.append(at)
        at = line_end + 1
    return starts


# --- one scan's state -------------------------------------------------------------------------------------


def _clean(line: str) -> str:
    """What is matched and shown: no colours, and of a huge line only its two ends."""
    if ESC in line:
        line = _ANSI.sub("", line)
    if len(line) > LONG_LINE:
        line = line[:LINE_END] + " … " + line[-LINE_END:]
    return line


def _short(text: str) -> str:
    """A line quoted in another finding's cause: both ends, as an error code is often at the end."""
    return text if len(text) <= 120 else text[:60] + " … " + text[-57:]


def _match(line: str, low: str) -> Optional[Known]:
    """The first rule matching the line (`low` is its lower case); a rule's pattern runs only when one of its
    needles is there, so a line that merely says "error" costs a few substring tests, not the whole table."""
    for known in KNOWN:
        for needle in known.needles:
            if needle in low:
                if known.pattern.search(line):
                    return known
                break
    return None


def _looks_like_error(line: str, low: str) -> bool:
    """An error line of no known kind: `[ERROR]`, `error code is N`, a CANN or torch_npu error code."""
    return ("[ERROR]" in line or ("error code is" in low and _ERROR_CODE_IS.search(line) is not None)
            or (_CODES.search(line) is not None and _CODE.search(line) is not None))


@dataclass(frozen=True)
class _Culprit:
    """An error line that a generic one ("reported as above", ERR00100, 507011) can name as its cause."""

    line_no: int  # where it is
    cite: str  # how a generic line names it: "line 12: NPU out of memory"


class _Tally:
    """What one scan has seen: the first line and count per kind, the unrecognised error lines, the Python
    traceback still waiting for its exception line, and generic lines still waiting for their culprit.

    Lines must come in order; memory is bounded by the number of kinds, not by the log."""

    def __init__(self) -> None:
        self.first: dict[str, Finding] = {}
        self.counts: dict[str, int] = {}
        self.unknown_first: Optional[tuple[int, str]] = None
        self.unknown_count = 0
        self.open_tracebacks = 0
        self.open_since: Optional[tuple[int, str]] = None
        self.last_real: Optional[_Culprit] = None
        self.waiting: dict[str, tuple[int, Optional[_Culprit]]] = {}  # kind -> (its line, the one above)
        self.culprits: dict[str, _Culprit] = {}

    def see(self, line_no: int, raw: str) -> None:
        """Take one line that passed the prefilter."""
        self._expire(line_no)
        line = _clean(raw)
        if line is not raw and not _has_needle(line):
            return  # the needle was in a colour code or in the middle of a huge line
        closes = self.open_tracebacks > 0 and _EXCEPTION.search(line) is not None
        if closes:
            self.open_tracebacks -= 1
            if not self.open_tracebacks:
                self.open_since = None
        low = line.lower()
        known = _match(line, low)
        if known is not None:
            self._known(line_no, line, known)
        elif closes:
            self._unknown(line_no, line)
        elif TRACEBACK in line:  # counted when its exception line comes (or the log ends without it)
            self.open_tracebacks += 1
            self.open_since = self.open_since or (line_no, line.strip())
        elif _looks_like_error(line, low):
            self._unknown(line_no, line)

    def report(self, lines: int) -> LogReport:
        self._expire(lines + NEAR + 1)
        if self.open_tracebacks and self.open_since:  # a traceback whose exception line never came
            self.unknown_count += self.open_tracebacks
            if self.unknown_first is None or self.open_since[0] < self.unknown_first[0]:
                self.unknown_first = self.open_since
        findings = tuple(self._with_culprit(replace(f, count=self.counts[k])) for k, f in self.first.items())
        unrecognised = None
        if self.unknown_first is not None:
            line_no, line = self.unknown_first
            unrecognised = Finding(line_no, line, UNRECOGNISED_CAUSE, UNRECOGNISED_FIX, UNRECOGNISED,
                                   UNRECOGNISED_TITLE, self.unknown_count)
        return LogReport(findings, unrecognised, lines)

    def _known(self, line_no: int, line: str, known: Known) -> None:
        self.counts[known.kind] = self.counts.get(known.kind, 0) + 1
        first = known.kind not in self.first
        if first:
            self.first[known.kind] = Finding(line_no, line.strip(), known.cause, known.fix, known.kind, known.title)
        if known.points:
            if first:
                self._point(known, line_no)
            return
        cited = self.first[known.kind]
        self._real(_Culprit(line_no, f"line {cited.line_no}: {known.title}"))

    def _unknown(self, line_no: int, line: str) -> None:
        text = line.strip()
        self.unknown_count += 1
        if self.unknown_first is None:
            self.unknown_first = (line_no, text)
        self._real(_Culprit(line_no, f"line {line_no}: \"{_short(text)}\""))

    def _real(self, culprit: _Culprit) -> None:
        """A line that is an error itself (not a generic pointer): generic lines waiting below take it."""
        for kind, (line_no, above) in list(self.waiting.items()):
            if above is None or culprit.line_no - line_no < line_no - above.line_no:
                self.culprits[kind] = culprit
                del self.waiting[kind]
        self.last_real = culprit

    def _point(self, known: Known, line_no: int) -> None:
        above = self.last_real
        if known.points == "above" or (above is not None and line_no - above.line_no <= 1):
            if above is not None:
                self.culprits[known.kind] = above
            return
        self.waiting[known.kind] = (line_no, above)

    def _expire(self, line_no: int) -> None:
        """Generic lines whose window below has passed take the nearest error above them, if any."""
        for kind, (waiting_at, above) in list(self.waiting.items()):
            window = NEAR if above is None else min(NEAR, waiting_at - above.line_no)
            if line_no - waiting_at > window:
                if above is not None:
                    self.culprits[kind] = above
                del self.waiting[kind]

    def _with_culprit(self, finding: Finding) -> Finding:
        culprit = self.culprits.get(finding.kind)
        if culprit is None:
            return finding
        return replace(finding, cause=f"{finding.cause}; here probably {culprit.cite}")


# --- blocks of text to lines ------------------------------------------------------------------------------


class _Splitter:
    """Cuts blocks of text (lines ending in \\n, blocks cut anywhere) into numbered lines for a _Tally,
    handing it only the lines that pass the prefilter. An unfinished line is carried to the next block; one
    longer than CARRY keeps only its two ends, so a log without newlines cannot fill the memory."""

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.lines = 0  # lines finished so far
        self.carry = ""
        self.head: Optional[str] = None  # the start of a line longer than CARRY (carry then holds its end)

    def feed(self, block: str) -> None:
        text = self.carry + block if self.carry else block
        end = text.rfind("\n") + 1
        if not end:
            self._keep(text)
            return
        if self.head is not None:  # the long line ends in this block
            first_end = text.index("\n")
            self._line(self.head + text[:first_end])
            self.head, text, end = None, text[first_end + 1:], end - first_end - 1
        self._block(text, end)
        self._keep(text[end:])

    def finish(self) -> int:
        if self.carry or self.head is not None:
            self._line((self.head or "") + self.carry)
            self.carry, self.head = "", None
        return self.lines

    def _keep(self, text: str) -> None:
        if len(text) > CARRY:
            if self.head is None:
                self.head = text[:CARRY // 2]
            text = text[-(CARRY // 2):]
        self.carry = text

    def _line(self, line: str) -> None:
        self.lines += 1
        if _has_needle(line):
            self.tally.see(self.lines, line.rstrip("\r"))

    def _block(self, text: str, end: int) -> None:
        """The complete lines text[:end] (it ends with \\n); colours are stripped from them all at once."""
        if text.find(ESC, 0, end) >= 0:
            text = _ANSI.sub("", text[:end])
            end = len(text)
        finished, counted_to = self.lines, 0
        for start in _candidate_starts(text, end):
            finished += text.count("\n", counted_to, start)
            counted_to = start
            self.tally.see(finished + 1, text[start:text.find("\n", start, end)].rstrip("\r"))
        self.lines = finished + text.count("\n", counted_to, end)


def _scan(blocks: Iterable[str]) -> LogReport:
    tally = _Tally()
    splitter = _Splitter(tally)
    for block in blocks:
        splitter.feed(block)
    return tally.report(splitter.finish())


def _batched(lines: Iterable[str]) -> Iterator[str]:
    """Lines (with or without their line end) joined into blocks of about BLOCK characters."""
    batch: list[str] = []
    size = 0
    for line in lines:
        line = line.rstrip("\r\n") + "\n"
        batch.append(line)
        size += len(line)
        if size >= BLOCK:
            yield "".join(batch)
            batch, size = [], 0
    if batch:
        yield "".join(batch)


# --- entry points -----------------------------------------------------------------------------------------


def report_file(path: str, block: int = BLOCK) -> LogReport:
    """The known failures and unrecognised errors of a log file, read `block` characters at a time.

    Undecodable bytes become U+FFFD; OSError (no such file, a folder, no permission) is the caller's."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return _scan(iter(lambda: handle.read(block), ""))


def report_lines(lines: Iterable[str]) -> LogReport:
    """Like report_file, over an iterable of lines (a file object works), each with or without its line end."""
    return _scan(_batched(lines))


def report_text(text: str) -> LogReport:
    """Like report_file, over a log's whole text."""
    return _scan([text.replace("\r\n", "\n").replace("\r", "\n")])


def triage_lines(lines: Iterable[str]) -> list[Finding]:
    """Like triage(), over an iterable of lines (a file object works: big logs are streamed)."""
    return list(report_lines(lines).findings)


def triage(text: str) -> list[Finding]:
    """The known failures in a log's text, one Finding per kind, in order of first appearance."""
    return list(report_text(text).findings)


def read_report(path: str) -> LogReport:
    """report_file for `doctor --log PATH`: a path that cannot be read is a usage error naming it."""
    from ..errors import UsageError

    try:
        return report_file(path)
    except FileNotFoundError:
        raise UsageError(f"--log {path}: no such file", hint="pass the path of a training or inference log") from None
    except IsADirectoryError:
        raise UsageError(f"--log {path}: is a folder, not a log file", hint="pass one log file") from None
    except OSError as exc:
        raise UsageError(f"--log {path}: cannot be read ({exc.strerror})") from None
