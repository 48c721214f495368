"""`models.convert`: MindSpeed-MM's own conversion script, run in the target env on a fetched model, into
PERSISTENT/models_ms/NAME — RAM checked first, a temp folder renamed into place, provenance recorded.

The script (examples/internvl2.5/internvl2.5_convert_to_mm_ckpt.py at the pinned MindSpeed-MM) loads the
whole model on the CPU in fp32, takes `--model-size` from a table of its own, takes `--trust-remote-code`
as a *string* (so "False" is true: only an empty string is false), and fails when the save folder exists."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..atomic import write_atomic
from ..digest import sha256_file
from ..errors import CommandFailed, ModelError
from .places import PROVENANCE
from .session import Session
from .verify import changed_since, read_marker

SCRIPT = "examples/internvl2.5/internvl2.5_convert_to_mm_ckpt.py"
MEMINFO_VARIABLE = "NPUENV_MEMINFO"  # another /proc/meminfo (tests give a box with little RAM)
FP32_BYTES = 4  # the script loads the model in fp32 whatever the checkpoint's dtype
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
Say = Callable[[str], None]


@dataclass(frozen=True)
class Converted:
    name: str
    folder: Path
    model_size: str
    source_revision: str
    script_commit: str
    outputs: int
    converted: bool  # False: it was up to date
    log: Optional[Path] = None


# --- what the script needs ---------------------------------------------------------------------------------


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror})", hint="fetch the model first: invoke models.fetch NAME") from None
    except ValueError as exc:
        raise ModelError(f"{path}: not JSON ({exc})", hint="fetch the model again: invoke models.fetch NAME") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not a JSON object", hint="fetch the model again: invoke models.fetch NAME")
    return data


def parameter_count(folder: Path, config: dict) -> int:
    """From model.safetensors.index.json's total_size (bytes) and config.json's torch_dtype."""
    path = folder / "model.safetensors.index.json"
    try:
        total = int(json.loads(path.read_text(encoding="utf-8"))["metadata"]["total_size"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"{path}: no metadata.total_size to count the parameters by",
                         hint="fetch the model again: invoke models.fetch NAME") from None
    return total // DTYPE_BYTES.get(str(config.get("torch_dtype", "bfloat16")), 2)


def available_ram(environ: Mapping[str, str]) -> int:
    """MemAvailable from /proc/meminfo (or NPUENV_MEMINFO), in bytes."""
    path = Path(environ.get(MEMINFO_VARIABLE) or "/proc/meminfo")
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "MemAvailable":
            return int(value.split()[0]) * 1024
    raise ModelError(f"{path} has no MemAvailable line", hint="a Linux kernel >= 3.14 reports it")


def check_ram(name: str, params: int, environ: Mapping[str, str]) -> int:
    need, free = params * FP32_BYTES, available_ram(environ)
    if need > free:
        from ..render.console import human_bytes

        raise ModelError(f"converting {name} needs about {human_bytes(need)} of RAM ({params / 1e9:.1f} billion "
                         f"parameters × {FP32_BYTES} bytes in fp32); {human_bytes(free)} is available",
                         hint="convert on a box with more RAM (the checkpoint is plain files: copy "
                              "PERSISTENT/models_ms/NAME back), or stop what uses the memory")
    return need


def script_argv(python: Path, script: Path, size: str, load: Path, save: Path, trust_remote_code: bool) -> list[str]:
    # argparse `type=str`: bool("False") is True, so only the empty string says no
    return [os.fspath(python), os.fspath(script), "--model-size", size, "--load-dir", os.fspath(load),
            "--save-dir", os.fspath(save), "--trust-remote-code", "True" if trust_remote_code else ""]


# --- provenance ----------------------------------------------------------------------------------------------


def outputs_of(folder: Path) -> dict[str, dict]:
    """Each output file (not the provenance) with its size, mtime and sha256."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != PROVENANCE):
        found = path.stat()
        out[path.relative_to(folder).as_posix()] = {"size": found.st_size, "mtime_ns": found.st_mtime_ns,
                                                     "sha256": sha256_file(path)}
    return out


def read_provenance(folder: Path) -> Optional[dict]:
    try:
        data = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stale(provenance: Optional[dict], wanted: dict, folder: Path) -> Optional[str]:
    """Why the converted folder does not match what would be made now, or None."""
    if provenance is None:
        return "not converted yet" if not folder.exists() else "no provenance record"
    for key in ("source", "script", "model_size", "trust_remote_code"):
        if provenance.get(key) != wanted[key]:
            return f"its {key.replace('_', ' ')} changed"
    for path, recorded in sorted((provenance.get("outputs") or {}).items()):
        try:
            found = (folder / path).stat()
        except OSError:
            return f"{path} is missing"
        if found.st_size != recorded.get("size") or found.st_mtime_ns != recorded.get("mtime_ns"):
            return f"{path} changed since it was converted"
    return None if provenance.get("outputs") else "it holds no outputs"


# --- the run -------------------------------------------------------------------------------------------------


def convert_model(session: Session, name: str, target_of: Callable[[], Any], say: Say,
                  trust_remote_code: bool = True) -> Converted:
    """`target_of()`: the workspace's target env (npuenv.npu.smoke.TargetEnv: root, python, project), asked
    for once the model is known to be there."""
    from ..git import head

    model = session.model(name)
    source = session.places.model(model.name)
    marker = read_marker(source)
    if marker is None or changed_since(source, marker) is not None:
        raise ModelError(f"{model.name} is not fetched completely in {source}",
                         hint=f"fetch it first: invoke models.fetch {model.name}")
    target = target_of()
    if target.project is None or not (target.project / SCRIPT).is_file():
        raise ModelError(f"no conversion script {SCRIPT} in {target.project}",
                         hint="MindSpeed-MM deleted it in July 2025: the workspace must follow a spec that pins "
                              "MindSpeed-MM at or before 0b9ca0a6 (invoke bootstrap)")
    script = target.project / SCRIPT
    config = read_config(source)
    from .sizes import model_size

    wanted = {"source": {"hub": marker.hub, "revision": marker.revision},
              "script": {"commit": head(target.project, session.environ), "sha256": sha256_file(script)},
              "model_size": model_size(config, str(source / "config.json")),
              "trust_remote_code": trust_remote_code}
    folder = session.places.converted(model.name)
    why = stale(read_provenance(folder), wanted, folder)
    if why is None:
        return _converted(model.name, folder, wanted, converted=False)
    say(f"{model.name}: {why}")
    need = check_ram(model.name, parameter_count(source, config), session.environ)
    from ..render.console import human_bytes

    say(f"converting {model.name} ({wanted['model_size']}, about {human_bytes(need)} of RAM) with {SCRIPT} "
        f"@{(wanted['script']['commit'] or '?')[:12]}")
    log = session.places.home / "logs" / f"convert-{model.name}.log"
    argv_for = lambda save: script_argv(target.python, script, wanted["model_size"], source, save, trust_remote_code)  # noqa: E731
    _run_into(folder, argv_for, wanted, target, session.environ, log)
    return _converted(model.name, folder, wanted, converted=True, log=log)


def _run_into(folder: Path, argv_for: Callable[[Path], list], wanted: dict, target: Any,
              environ: Mapping[str, str], log_path: Path) -> None:
    """The script writes into a fresh temp folder beside `folder`; verified and recorded, it replaces it."""
    from ..cann import set_env_candidate, sourced
    from ..commands import run

    folder.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        save = work / folder.name  # absent: the script makes it, and fails when it exists
        set_env = set_env_candidate(environ)
        argv = sourced(argv_for(save), set_env if set_env.is_file() else None)
        with open(log_path, "w", encoding="utf-8") as log:
            try:
                run(argv, cwd=target.project, env=dict(environ), log=log)
            except CommandFailed as exc:
                raise ModelError(f"the conversion script failed with exit code {exc.returncode}: "
                                 f"{_last_line(log_path)}", hint=f"its whole output: {log_path}") from None
        _check_output(save, log_path)
        record = dict(wanted, outputs=outputs_of(save))
        write_atomic(save / PROVENANCE, json.dumps(record, indent=1, sort_keys=True) + "\n")
        _replace(save, folder, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_output(save: Path, log_path: Path) -> None:
    """The script returns 0 after printing 'save dir ... exists' without saving: a success needs files."""
    if not (save / "latest_checkpointed_iteration.txt").is_file():
        raise ModelError(f"the conversion script wrote no checkpoint (no latest_checkpointed_iteration.txt): "
                         f"{_last_line(log_path)}", hint=f"its whole output: {log_path}")


def _replace(new: Path, folder: Path, work: Path) -> None:
    """`new` takes `folder`'s place; an older conversion moves into `work` (removed after) first."""
    if folder.exists():
        os.replace(folder, work / "previous")
    os.replace(new, folder)


def _last_line(log_path: Path) -> str:
    try:
        lines = [line for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else "(no output)"


def _converted(name: str, folder: Path, wanted: dict, converted: bool, log: Optional[Path] = None) -> Converted:
    outputs = (read_provenance(folder) or {}).get("outputs") or {}
    return Converted(name, folder, wanted["model_size"], wanted["source"]["revision"],
                     wanted["script"]["commit"] or "", len(outputs), converted, log)
