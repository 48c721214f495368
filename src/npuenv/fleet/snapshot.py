"""One node's environment as JSON, the way `fleet.diff` compares nodes (and msprechecker's dump, over the whole
pinned stack): taken on the node by `invoke fleet.snapshot`, in one run, without importing torch.

    workspace  the spec and its sha256, each repo's checked-out commit, each patch's sha256 and whether it
               is applied, each wheel's verified sha256, the built-wheel cache keys
    target     the target env's packages (name -> version) and each one's build: its RECORD's sha256, less
               what depends on the workspace's place, or for what a spec build installed, that build's key
    system     Python, CANN, driver, firmware, OS, glibc, arch, npuenv
    npu        how many NPUs npu-smi lists, and each one's health
    hccl       the variables HCCL reads (HCCL_*, RANK_TABLE_FILE, ASCEND_RT_VISIBLE_DEVICES, ...)
    node       what is meant to differ between nodes (host name, HCCL_IF_IP): shown, never compared

`reference_from_lock` puts a lock in the same shape, so that nodes are compared against what it pins.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any, Mapping, Optional

from .. import __version__

# compared by fleet.diff: everything but NODE
NODE = "node"
HCCL_NAMES = ("RANK_TABLE_FILE", "ASCEND_RT_VISIBLE_DEVICES", "MASTER_PORT", "WORLD_SIZE", "GLOO_SOCKET_IFNAME",
              "ASCEND_GLOBAL_LOG_LEVEL", "ASCEND_LAUNCH_BLOCKING", "MASTER_ADDR")
PER_NODE = ("HCCL_IF_IP",)


def take(ctx: Any) -> dict[str, Any]:
    """The snapshot of this node, from doctor's context (workspace, spec, where CANN and npu-smi are)."""
    return {"workspace": workspace(ctx), "target": target(ctx), "system": system(ctx), "npu": npus(ctx),
            "hccl": hccl_variables(ctx.environ),
            NODE: {"hostname": socket.gethostname(), **{k: ctx.environ[k] for k in PER_NODE if k in ctx.environ}}}


def hccl_variables(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(environ.items())
            if (k.startswith("HCCL_") or k in HCCL_NAMES) and k not in PER_NODE}


def _head(path: Path) -> Optional[str]:
    if not (path / ".git").exists():
        return None
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def workspace(ctx: Any) -> dict[str, Any]:
    from ..digest import sha256_file
    from ..lockfile import content_sha256, locked_content
    from ..state import State
    from ..wheelcache import WheelCache
    from ..workspace import wheels_dir

    spec = ctx.spec
    out: dict[str, Any] = {"spec": {"name": spec.name, "sha256": content_sha256(locked_content(spec))}}
    if ctx.root is None:
        return {**out, "root": None}
    state = State.load(ctx.layout.state)
    out["repos"] = {name: _head(ctx.root / repo.path) for name, repo in sorted(spec.repos.items())}
    out["patches"] = {name: {"sha256": sha256_file(p.file), "applied": state.record(f"patch:{name}") is not None}
                      for name, p in sorted(spec.patches.items())}
    out["wheels"] = {name: state.resolved(f"wheel:{name}").get("sha256") for name in sorted(spec.wheels)}
    cache = WheelCache(ctx.wheels_dir or wheels_dir(None, ctx.root))
    builds: dict[str, list[str]] = {name: [] for name in sorted(spec.builds)}
    for entry in cache.entries():
        if entry.build in builds:
            builds[entry.build].append(entry.key)
    out["builds"] = {name: sorted(keys) for name, keys in builds.items()}
    return out


def _venv(ctx: Any) -> Optional[Path]:
    if ctx.root is None or ctx.spec.env is None:
        return None
    return ctx.root / ctx.spec.env.venv


def target(ctx: Any) -> dict[str, Any]:
    from ..steps.env import build_records, installed_versions

    venv = _venv(ctx)
    if venv is None or not (venv / "bin" / "python").exists():
        return {"venv": None}
    records = build_records(venv)
    records.update(built_here(ctx))
    return {"packages": installed_versions(venv), "records": records}


def built_here(ctx: Any) -> dict[str, str]:
    """name -> "built KEY" for each package a spec build installed that is still the one it installed. A
    library compiled on each node differs in its bytes (compilers write the source's path into it), so nodes
    that built the same inputs agree on the build's content key, not on their files."""
    from ..pep503 import normalize
    from ..state import State

    state = State.load(ctx.layout.state)
    found = {}
    for name in sorted(ctx.spec.builds):
        done = state.resolved(f"build:{name}")
        if done.get("key") and done.get("dist") and _installed_from(done.get("dist_info"), done.get("wheel")):
            found[normalize(done["dist"])] = f"built {done['key']}"
    return found


def _installed_from(dist_info: Optional[str], wheel: Optional[str]) -> bool:
    """Whether the installer's direct_url.json in `dist_info` names `wheel`: a later install from any other
    file (a rebuild elsewhere, the index) rewrites it."""
    import json
    from urllib.parse import unquote, urlsplit

    if not dist_info or not wheel:
        return False
    try:
        url = urlsplit(json.loads((Path(dist_info) / "direct_url.json").read_text(encoding="utf-8"))["url"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return url.scheme == "file" and Path(unquote(url.path)) == Path(wheel)


def _pyvenv_version(venv: Optional[Path]) -> Optional[str]:
    from ..keyvalues import parse_key_values

    cfg = venv / "pyvenv.cfg" if venv else None
    if cfg is None or not cfg.is_file():
        return None
    values = parse_key_values(cfg.read_text(errors="replace"))
    return values.get("version_info") or values.get("version")


def _version_info(path: Path) -> Optional[str]:
    from ..doctor.cann import parse_driver_version

    return parse_driver_version(path.read_text(errors="replace")) if path.is_file() else None


def system(ctx: Any) -> dict[str, Any]:
    from ..doctor.cann import find_cann

    install = find_cann(ctx.cann_root, ctx.arch)
    machine = ctx.machine
    return {"python": _pyvenv_version(_venv(ctx)), "cann": install.version if install else None,
            "driver": _version_info(ctx.driver_root / "version.info"),
            "firmware": _version_info(ctx.driver_root.parent / "firmware" / "version.info"),
            "os": machine.os_release.get("PRETTY_NAME"), "glibc": machine.glibc, "arch": machine.arch,
            "npuenv": __version__}


def npus(ctx: Any) -> dict[str, Any]:
    """How many NPUs `npu-smi info` lists, and each one's health (one call: no process scan, no chip map)."""
    from ..doctor.npu import config
    from ..errors import NpuenvError
    from ..npu.kill import NPU_SMI_TIMEOUT
    from ..npu.smi import parse_npu_smi_devices

    try:
        cfg = config(ctx)
    except NpuenvError as exc:
        return {"count": None, "note": exc.message}
    if cfg.npu_smi is None:
        return {"count": None, "note": "npu-smi not found"}
    try:
        proc = subprocess.run([cfg.npu_smi, "info"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=NPU_SMI_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"count": None, "note": f"npu-smi info: {exc}"}
    if proc.returncode != 0:
        return {"count": None, "note": f"npu-smi info failed (exit {proc.returncode})"}
    devices = parse_npu_smi_devices(proc.stdout)
    return {"count": len(devices), "health": {str(d.npu): d.health for d in devices}}


def reference_from_lock(lock: Any, arch: str) -> dict[str, Any]:
    """What a lock pins, in the snapshot's shape: the spec, the repos' commits, the patches, the wheels for
    `arch`, the target env's packages (what a node has beyond these is compared by majority)."""
    from ..steps.env import locked_versions

    data = lock.data
    wheels = {name: (files.get(arch) or {}).get("sha256") for name, files in (data.get("wheels") or {}).items()}
    return {"workspace": {"spec": {"name": data["spec"]["name"], "sha256": data["spec"]["sha256"]},
                          "repos": {name: repo.get("commit") for name, repo in (data.get("repos") or {}).items()},
                          "patches": {name: {"sha256": p.get("sha256")} for name, p in (data.get("patches") or {}).items()},
                          "wheels": wheels},
            "target": {"packages": locked_versions(lock.uv_lock)}}
