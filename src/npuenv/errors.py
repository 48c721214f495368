"""Exception types. Every error a user can cause or fix carries a hint; the CLI boundary renders them."""

from __future__ import annotations

from collections.abc import Sequence


class NpuenvError(Exception):
    """An expected failure: rendered as one message plus a hint, exit code `exit_code`."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(NpuenvError):
    """Bad command-line arguments or options."""

    exit_code = 2


class SpecError(NpuenvError):
    """One or more problems in a spec file; `problems` lists each as 'file:line key.path: message'."""

    exit_code = 2

    def __init__(self, problems: list[str], hint: str = "") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the spec:"
        super().__init__("\n".join([head, *("  " + p for p in self.problems)]), hint)


class TrustError(NpuenvError):
    """A CA file is missing/unreadable, or something asks to turn TLS verification off."""


class Unreachable(NpuenvError):
    """A host could not be reached at all (DNS, refused, timed out): a mirror may help, the content is not
    at fault. Raised as GitUnreachable or FetchUnreachable; callers test the type, never the message."""


class FetchError(NpuenvError):
    """A download failed: unreachable host, HTTP error, or a sha256 mismatch."""


class FetchUnreachable(FetchError, Unreachable):
    """A download's host could not be reached."""


class GitError(NpuenvError):
    """A git operation failed, or a checkout is not in a state npuenv may touch."""


class GitUnreachable(GitError, Unreachable):
    """git could not reach the repository's host."""


class PatchError(NpuenvError):
    """A patch neither applies nor is already applied."""


class LockError(NpuenvError):
    """Another npuenv run holds the workspace lock."""

    exit_code = 3


class LockFileError(NpuenvError):
    """A spec's lock (`<spec>.lock`, `<spec>.uv.lock`) cannot be followed: unreadable, edited by hand,
    made from another spec, or for another architecture."""

    exit_code = 2


class BundleError(NpuenvError):
    """A bundle file that cannot be used: not a bundle, truncated, tampered with, for another platform or
    spec."""

    exit_code = 2


class ModelError(NpuenvError):
    """A model that cannot be fetched, converted or configured: unknown name, unreadable config.json,
    incomplete or corrupt files, too little disk or RAM."""

    exit_code = 2


class StepFailed(NpuenvError):
    """A step of the plan failed; the engine has stopped scheduling."""


JSONC_HINT = "fix the file (VS Code shows the problem too) or move it aside, then run the command again"


class SmokeError(NpuenvError):
    """The smoke script could not run, crashed, timed out, or printed no result."""


class SmokeFailed(NpuenvError):
    """The smoke script ran and some probes failed."""


class KillNpuError(NpuenvError):
    """npu-smi is misconfigured, or processes survived SIGKILL."""


class JsoncError(NpuenvError):
    """A document that is not JSON with comments; carries the 1-based line and column of the problem."""

    def __init__(self, problem: str, line: int, column: int, source: str = "") -> None:
        where = f"{source}:{line}:{column}" if source else f"line {line}, column {column}"
        super().__init__(f"{where}: {problem}", JSONC_HINT)
        self.problem, self.line, self.column = problem, line, column


class CommandFailed(NpuenvError):
    """A command exited non-zero. `output` holds what it printed (when captured)."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str = "", hint: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        shown = " ".join(self.argv)
        super().__init__(f"command failed with exit code {returncode}: {shown}", hint)


class UserNameError(UsageError):
    """A user name that is not a plain folder name."""


class RootError(UsageError):
    """A --root that cannot hold people's folders."""


class IsolationError(NpuenvError):
    """A person's folder or files are not in a state npuenv may touch."""


class BuildFailed(NpuenvError):
    """A build command failed; the message carries the compiler's error lines."""


class WheelNameError(NpuenvError):
    """A wheel whose name or contents cannot be read as a wheel."""
