"""Exception types. Every error a user can cause or fix carries a hint; the CLI boundary renders them."""

from __future__ import annotations


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


class FetchError(NpuenvError):
    """A download failed: unreachable host, HTTP error, or a sha256 mismatch."""


class GitError(NpuenvError):
    """A git operation failed, or a checkout is not in a state npuenv may touch."""


class PatchError(NpuenvError):
    """A patch neither applies nor is already applied."""


class LockError(NpuenvError):
    """Another npuenv run holds the workspace lock."""

    exit_code = 3


class StepFailed(NpuenvError):
    """A step of the plan failed; the engine has stopped scheduling."""
