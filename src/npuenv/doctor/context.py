"""The DoctorContext: everything the checks look at, built once per run and passed down.

Paths tests override through the environment (all documented in the README):
NPUENV_CANN_ROOT (the CANN toolkit, default /usr/local/Ascend/ascend-toolkit), NPUENV_DRIVER_ROOT (the
driver folder holding version.info, default /usr/local/Ascend/driver), NPUENV_NPU_SMI and
NPUENV_DEVICE_GLOB (as kill-npu), NPUENV_PERSISTENT_ROOT (the folder that survives a restart, default
/home/ma-user/work).
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, TypeVar

from ..machine import Machine
from ..workspace import Layout

DRIVER_VARIABLE = "NPUENV_DRIVER_ROOT"
DEFAULT_DRIVER_ROOT = Path("/usr/local/Ascend/driver")
GIB = 1024 ** 3

T = TypeVar("T")


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.value: Any = None
        self.error: Optional[BaseException] = None


class Memo:
    """Probes several checks share (npu-smi, the target interpreter), each made once, thread-safely.
    A probe that raised raises the same error again for every check that asks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: Dict[str, _Entry] = {}

    def get(self, key: str, make: Callable[[], T]) -> T:
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
        with entry.lock:
            if not entry.done:
                try:
                    entry.value = make()
                except Exception as exc:  # noqa: BLE001 - handed to every caller
                    entry.error = exc
                entry.done = True
        if entry.error is not None:
            raise entry.error
        return entry.value


@dataclass(frozen=True)
class DoctorContext:
    environ: Mapping[str, str]
    spec: Any  # npuenv.spec.Spec
    root: Optional[Path]  # None: no workspace; `root_note` says why (storage.workspace shows it)
    driver_root: Path
    persistent: Path
    machine: Machine  # arch, glibc, distribution, CANN's set_env.sh: read once
    spec_arg: Optional[str] = None  # --spec as given (None: the workspace's own, which bootstrap knows too)
    root_note: str = ""
    online: bool = False
    deep: bool = False  # import the target env's modules for real (slow), not only find them
    mirrors_config: Any = None
    free_fail_bytes: int = 5 * GIB
    free_warn_bytes: int = 20 * GIB
    tls_timeout: float = 5.0
    npu: Any = None  # killnpu.Config (npu-smi, device glob), or the error NPUENV_NPU_SMI caused; None: from environ
    probe_timeout: float = 180.0  # the first `import torch_npu` on a cold box can take a while
    wheels_dir: Optional[Path] = None  # the wheelhouse: --wheels, else the one bootstrap used for this root
    memo: Memo = field(default_factory=Memo, compare=False, repr=False)

    @property
    def arch(self) -> str:
        return self.machine.arch

    @property
    def cann_root(self) -> Path:
        return self.machine.cann_root

    @property
    def layout(self) -> Optional[Layout]:
        return Layout(self.root) if self.root is not None else None

    @property
    def no_root(self) -> str:
        """The skip reason of root-dependent checks (storage.workspace says why in full)."""
        return "no workspace (see storage.workspace)"

    def bootstrap_fix(self, *args: str) -> str:
        """The bootstrap command for this workspace and spec, with `args` appended."""
        words = ["invoke", "bootstrap", "--root", str(self.root) if self.root else "DIR"]
        if self.spec_arg:
            words += ["--spec", self.spec_arg]
        return " ".join(shlex.quote(w) if w != "DIR" else w for w in [*words, *args])


def find_root(given: Optional[str], environ: Mapping[str, str], persistent: Path) -> tuple[Optional[Path], str]:
    """bootstrap's resolution of the root (workspace.resolve_root), creating nothing: a root that is not
    there is (None, why), for storage.workspace to report."""
    from ..errors import UsageError
    from ..workspace import resolve_root

    try:
        root = resolve_root(given, environ, persistent, create=False)
    except UsageError as exc:
        return None, f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return (root, "") if root.is_dir() else (None, f"--root {given} does not exist")


def build_context(*, root: Optional[str], spec: Optional[str], environ: Mapping[str, str], online: bool = False,
                  deep: bool = False, mirrors_config: Any = None, wheels: Optional[str] = None) -> DoctorContext:
    from ..npu.kill import Config
    from ..errors import KillNpuError
    from ..spec import load_spec
    from ..workspace import persistent_root, recorded_spec, spec_argument, wheels_dir

    environ = dict(environ)
    try:
        npu: Any = Config.from_env(environ)
    except KillNpuError as exc:  # reported by npu.smi, not fatal
        npu = exc
    persistent = persistent_root(environ)
    found, note = find_root(root, environ, persistent)
    return DoctorContext(
        environ=environ, spec=load_spec(spec_argument(spec, recorded_spec(found))), spec_arg=spec, root=found, root_note=note,
        driver_root=Path(environ.get(DRIVER_VARIABLE) or DEFAULT_DRIVER_ROOT),
        persistent=persistent, machine=Machine.read(environ), online=online, deep=deep,
        mirrors_config=mirrors_config, npu=npu, wheels_dir=wheels_dir(wheels, found) if found else None,
    )


def is_under(path: Path, base: Path) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(base))
    except (OSError, ValueError):
        return False
