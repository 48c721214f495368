"""One CA bundle for every client: the public roots, the CAs the box already trusts, and the user's extras.

npuenv never turns TLS verification off. When a box needs another CA (a re-signing proxy, a private
mirror), that CA is *added* to the roots here and handed to each client through its own variable.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .atomic import write_atomic
from .errors import TrustError

# The variables each client reads its CA file from: Python ssl and uv, requests, curl, git, pip.
CLIENT_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT")

# Where distributions keep their system bundle (Debian/Ubuntu, RHEL/EulerOS, SUSE, Fedora, Alpine/macOS).
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
)

ENV_EXTRAS = "NPUENV_CA_BUNDLE"

_HINT = (
    f"pass the CA file with --ca-bundle PATH or {ENV_EXTRAS}=PATH; npuenv adds it to the public roots "
    "and hands the bundle to uv, pip, git and curl"
)

_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----(?P<body>[A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----"
)


@dataclass
class BundleInfo:
    """The bundle written: `sources` lists (source, certificates it contributed); `total` certificates."""

    path: Path
    sources: list[tuple[str, int]] = field(default_factory=list)
    total: int = 0


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _insecure_git_config(environ: Mapping[str, str]) -> Iterator[str]:
    """GIT_CONFIG_KEY_n=http[.<url>].sslVerify with a false value turns git's verification off too."""
    try:
        count = int(environ.get("GIT_CONFIG_COUNT", "0") or "0")
    except ValueError:
        return
    for i in range(count):
        key = environ.get(f"GIT_CONFIG_KEY_{i}", "").lower()
        value = environ.get(f"GIT_CONFIG_VALUE_{i}", "")
        if key.startswith("http.") and key.endswith(".sslverify") and not _truthy(value):
            yield f"GIT_CONFIG_KEY_{i}={environ[f'GIT_CONFIG_KEY_{i}']} (GIT_CONFIG_VALUE_{i}={value})"


def _insecure_settings(environ: Mapping[str, str]) -> list[str]:
    found = []
    if "GIT_SSL_NO_VERIFY" in environ:  # git honours it whatever its value, even empty
        found.append(f"GIT_SSL_NO_VERIFY={environ['GIT_SSL_NO_VERIFY']}")
    for name in ("PYTHONHTTPSVERIFY", "NODE_TLS_REJECT_UNAUTHORIZED"):
        if environ.get(name, "").strip() == "0":
            found.append(f"{name}=0")
    for name in ("UV_INSECURE_HOST", "PIP_TRUSTED_HOST", "CURL_INSECURE"):
        if _truthy(environ.get(name, "")):
            found.append(f"{name}={environ[name]}")
    found.extend(_insecure_git_config(environ))
    return found


def refuse_insecure(environ: Mapping[str, str]) -> None:
    """Raise TrustError when the environment asks any client to skip certificate verification."""
    found = _insecure_settings(environ)
    if not found:
        return
    names = ", ".join(found)
    raise TrustError(
        f"the environment turns TLS certificate verification off ({names}); npuenv never turns "
        "verification off, because a build fetched over an unverified connection cannot be trusted",
        f"unset {' and '.join(s.split('=', 1)[0] for s in found)}, then {_HINT}",
    )


def _check_readable(path: Path, origin: str) -> Path:
    try:
        with path.open("rb"):
            return path
    except OSError as exc:
        known = {FileNotFoundError: "does not exist", IsADirectoryError: "is not a file"}
        problem = known.get(type(exc), f"cannot be read: {exc.strerror}")
        raise TrustError(f"CA bundle {path} (from {origin}) {problem}", _HINT) from exc


def extra_bundles(cli: Sequence[str], environ: Mapping[str, str]) -> list[Path]:
    """The user's extra CA files: every --ca-bundle value, then NPUENV_CA_BUNDLE (os.pathsep-separated)."""
    named = [(value, "--ca-bundle") for value in cli]
    named += [(value, ENV_EXTRAS) for value in environ.get(ENV_EXTRAS, "").split(os.pathsep)]
    return [_check_readable(Path(value).expanduser(), origin) for value, origin in named if value.strip()]


def pem_certificates(text: str) -> list[str]:
    """The PEM certificate blocks in `text`, normalised (64-column base64, '\\n' endings)."""
    blocks = []
    for match in _PEM_CERT.finditer(text):
        body = "".join(match.group("body").split())
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        blocks.append("\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"]) + "\n")
    return blocks


def _read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def _read_source(path: Path, dest: Path) -> str | None:
    """A bundle file's text, or a certificate directory's files joined; None when it cannot be read."""
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not _same_file(p, dest))
            return "".join(_read_text(p) or "" for p in files)
        return _read_text(path)
    except OSError:  # e.g. a directory only root may enter
        return None


def _box_sources(environ: Mapping[str, str], system_bundles: Sequence[str], dest: Path) -> list[Path]:
    """What the box trusts already: system bundles, then the files and directories its variables name."""
    paths = [Path(p) for p in system_bundles]
    paths += [Path(environ[v]) for v in CLIENT_VARS if environ.get(v)]
    paths += [Path(d) for d in environ.get("SSL_CERT_DIR", "").split(os.pathsep) if d]
    unique: list[Path] = []
    for path in paths:
        if path not in unique and not _same_file(path, dest):
            unique.append(path)
    return unique


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _collect(dest: Path, extras: Sequence[Path], environ: Mapping[str, str],
             system_bundles: Sequence[str]) -> tuple[list[str], list[tuple[str, int]]]:
    certs: dict[str, None] = {}  # an ordered set
    sources: list[tuple[str, int]] = []

    def take(source: str, blocks: list[str]) -> None:
        before = len(certs)
        certs.update(dict.fromkeys(blocks))
        sources.append((source, len(certs) - before))

    roots = _certifi_file()
    take(str(roots), pem_certificates(roots.read_text(encoding="utf-8")))
    for path in _box_sources(environ, system_bundles, dest):
        blocks = pem_certificates(_read_source(path, dest) or "")
        if blocks:
            take(str(path), blocks)
    for path in extras:
        text = _read_text(path)
        if text is None:
            raise TrustError(f"CA bundle {path} cannot be read", _HINT)
        blocks = pem_certificates(text)
        if not blocks:
            raise TrustError(f"CA bundle {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                             "convert a DER file with: openssl x509 -inform der -in CA.cer -out CA.pem")
        take(str(path), blocks)
    return list(certs), sources


def build_bundle(dest: Path, extras: Sequence[Path], environ: Mapping[str, str], *,
                 system_bundles: Sequence[str] = SYSTEM_BUNDLES) -> BundleInfo:
    """Write certifi's roots + the box's readable CAs + `extras` to `dest`, de-duplicated, order kept.

    `dest` itself is never a source, so rebuilding with an extra removed drops it. The file is only
    rewritten when its content changes, keeping its mtime for anything that keys on it. When no source
    changed since the last build (their sizes and mtimes, kept beside the bundle), nothing is read again.
    """
    dest = Path(dest)
    stamp_path = dest.with_name(dest.name + ".sources")
    stamp = _stamp([_certifi_file(), *_box_sources(environ, system_bundles, dest), *extras])
    known = _known(stamp_path, stamp, dest)
    if known is not None:
        return known
    certs, sources = _collect(dest, extras, environ, system_bundles)
    content = "".join(certs)
    if _read_text(dest) != content:
        write_atomic(dest, content, mode=0o644, encoding="ascii")
    info = BundleInfo(path=dest, sources=sources, total=len(certs))
    record = {"sources": stamp, "bundle": _stat(dest), "made": [list(s) for s in sources], "total": len(certs)}
    write_atomic(stamp_path, json.dumps(record), mode=0o644)
    return info


def _certifi_file() -> Path:
    """certifi's cacert.pem: beside its module in any normal install (certifi.where() gets there through
    importlib.resources, which costs more than the rest of an up-to-date check of the bundle)."""
    import importlib.util

    found = importlib.util.find_spec("certifi")  # where it is, without running it
    beside = Path(found.origin).with_name("cacert.pem") if found and found.origin else None
    if beside is not None and beside.is_file():
        return beside
    import certifi

    return Path(certifi.where())


def _stat(path: Path) -> Optional[list]:
    """(size, mtime_ns) of a file, or of a folder of certificates; None when it is not there."""
    try:
        found = path.stat()
    except OSError:
        return None
    return [found.st_size, found.st_mtime_ns]


def _stamp(paths: Sequence[Path]) -> list:
    return [[str(p), _stat(p)] for p in paths]


def _known(stamp_path: Path, stamp: list, dest: Path) -> Optional[BundleInfo]:
    """The bundle as it was last built, when neither its sources nor the bundle itself changed since."""
    try:
        record = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("sources") != stamp or record.get("bundle") != _stat(dest):
        return None
    return BundleInfo(path=dest, sources=[tuple(s) for s in record.get("made", [])], total=record.get("total", 0))


def client_env(bundle: Path) -> dict[str, str]:
    """Every client's CA variable pointing at `bundle`."""
    return {name: str(bundle) for name in CLIENT_VARS}
