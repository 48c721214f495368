"""Giving a built wheel a valid version: its file name, its .dist-info (and .data) folder, METADATA and RECORD.

Ascend apex's patch sets `version='0.1-ascend'`, which is not a PEP 440 version; setuptools 65.7 with
`wheel` 0.38–0.48 then writes `apex-0.1_ascend-cp310-cp310-linux_<arch>.whl`, which neither uv nor pip
installs. The spec names the version to give such a wheel (`0.1+ascend`, the name Ascend's README
promises). Everything else in the archive is copied byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path
from typing import Optional

from .errors import WheelNameError


def name_problem(filename: str) -> str:
    """Why installers refuse this wheel file name ('' when they accept it)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion

    try:
        parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        return str(exc)
    return ""


def _parts(filename: str) -> tuple[str, str, str]:
    """(escaped name, version as written, the rest: [build-]py-abi-platform) of a wheel file name."""
    stem = filename[:-4] if filename.endswith(".whl") else filename
    pieces = stem.split("-")
    if len(pieces) not in (5, 6):
        raise WheelNameError(f"{filename} is not named like a wheel (name-version[-build]-python-abi-platform.whl)")
    return pieces[0], pieces[1], "-".join(pieces[2:])


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _set_version(metadata: bytes, version: str) -> bytes:
    text = metadata.decode("utf-8")
    new, count = re.subn(r"(?m)^Version:[^\r\n]*", f"Version: {version}", text, count=1)
    if not count:
        raise WheelNameError("its METADATA has no Version: line")
    return new.encode("utf-8")


def reversion(wheel: Path, version: str, out_dir: Path) -> Path:
    """Write a copy of `wheel` into `out_dir` that carries `version`; returns its path."""
    name, old, rest = _parts(wheel.name)
    old_prefix, new_prefix = f"{name}-{old}.", f"{name}-{version}."
    out = out_dir / f"{name}-{version}-{rest}.whl"
    with zipfile.ZipFile(wheel) as source:
        infos = source.infolist()
        if not any(i.filename == f"{old_prefix}dist-info/METADATA" for i in infos):
            raise WheelNameError(f"{wheel.name} has no {old_prefix}dist-info/METADATA")
        contents: dict[str, bytes] = {}
        for info in infos:
            data = source.read(info.filename)
            renamed = _renamed(info.filename, old_prefix, new_prefix)
            if renamed == f"{new_prefix}dist-info/METADATA":
                data = _set_version(data, version)
            contents[info.filename] = data
        record_name = f"{new_prefix}dist-info/RECORD"
        contents[f"{old_prefix}dist-info/RECORD"] = _record(contents, old_prefix, new_prefix, record_name)
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w") as target:
            for info in infos:
                copy = _copy_info(info, _renamed(info.filename, old_prefix, new_prefix))
                target.writestr(copy, contents[info.filename])
    return out


def _renamed(path: str, old_prefix: str, new_prefix: str) -> str:
    for kind in ("dist-info/", "data/"):
        if path.startswith(old_prefix + kind):
            return new_prefix + path[len(old_prefix):]
    return path


def _record(contents: dict[str, bytes], old_prefix: str, new_prefix: str, record_name: str) -> bytes:
    """RECORD for the renamed archive: every path renamed, every hash and size recomputed."""
    lines = []
    for path, data in contents.items():
        renamed = _renamed(path, old_prefix, new_prefix)
        if renamed == record_name:
            continue
        lines.append(f"{_csv(renamed)},{_record_hash(data)},{len(data)}")
    lines.append(f"{_csv(record_name)},,")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _csv(path: str) -> str:
    return f'"{path}"' if "," in path or '"' in path else path


def _copy_info(info: zipfile.ZipInfo, filename: str) -> zipfile.ZipInfo:
    copy = zipfile.ZipInfo(filename, date_time=info.date_time)
    copy.compress_type = info.compress_type
    copy.external_attr = info.external_attr
    copy.create_system = info.create_system
    return copy


def installable(wheel: Path, version: Optional[str], out_dir: Path, origin: str) -> tuple[Path, str]:
    """`wheel` itself when installers accept its name; else a copy re-versioned to `version`.

    Returns the wheel and a note for the log. `origin` names the spec field, for the error."""
    problem = name_problem(wheel.name)
    if not problem:
        return wheel, ""
    if not version:
        raise WheelNameError(
            f"the build wrote {wheel.name}, which no installer accepts ({problem})",
            hint=f"give the wheel a valid version: set {origin}.version in the spec (e.g. \"0.1+ascend\")")
    fixed = reversion(wheel, version, out_dir)
    still = name_problem(fixed.name)
    if still:
        raise WheelNameError(f"{origin}.version {version!r} does not make {wheel.name} installable: {still}",
                             hint="use a PEP 440 version such as 0.1+ascend")
    return fixed, f"re-versioned {wheel.name} -> {fixed.name} ({problem})"
