"""trust & network: the CA bundle is there and every client uses it, nothing turns verification off, and
(with --online) a real TLS handshake with every host the spec uses, after mirrors.

Verification is never turned off here either: the handshakes use ssl.create_default_context(cafile=...).
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

from ..errors import NpuenvError
from ..trust import CLIENT_VARS, _insecure_settings, pem_certificates
from .base import CheckResult, check, fail, ok, skip, warn

CLIENTS = {"SSL_CERT_FILE": "uv, Python", "REQUESTS_CA_BUNDLE": "requests", "CURL_CA_BUNDLE": "curl",
           "GIT_SSL_CAINFO": "git", "PIP_CERT": "pip"}


def workspace_bundle(ctx) -> Optional[Path]:
    layout = ctx.layout
    return layout.ca_bundle if layout is not None and layout.ca_bundle.is_file() else None


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


@check("trust.bundle", "npuenv's CA bundle (public roots + the box's CAs + extras) is in the workspace")
def bundle(ctx) -> CheckResult:
    layout = ctx.layout
    if layout is None:
        return skip(ctx.no_root)
    path = layout.ca_bundle
    if not path.is_file():
        return fail(f"no CA bundle at {path}: git and curl fail with `certificate verify failed` on ModelArts",
                    f"{ctx.bootstrap_fix('--only', 'python')} (bootstrap builds the bundle before any step)")
    count = len(pem_certificates(path.read_text(encoding="utf-8", errors="replace")))
    if count == 0:
        return fail(f"{path} holds no certificate", f"delete it and run {ctx.bootstrap_fix('--only', 'python')}")
    return ok(f"{path}: {count} certificates")


def _exports(target: str) -> str:
    return "export " + " ".join(f"{name}={target}" for name in CLIENT_VARS)


@check("trust.clients", "uv, requests, curl, git and pip are handed a CA file that exists (their variables)")
def clients(ctx) -> CheckResult:
    ours = workspace_bundle(ctx)
    target = str(ours) if ours else "ROOT/.npuenv/ca-bundle.pem"
    fix = f"enter through init.sh (`invoke user.add NAME` writes it), or: {_exports(target)}"
    unset, broken, details, used = [], [], [], set()
    for name in CLIENT_VARS:
        value = ctx.environ.get(name, "")
        source = name
        if not value and name == "GIT_SSL_CAINFO":
            value, source = _git_config(ctx.environ, "http.sslCAInfo"), "git config http.sslCAInfo"
        details.append(f"{source}={value or '(unset)'}  [{CLIENTS[name]}]")
        if not value:
            unset.append(name)
        elif not _readable(value):
            broken.append(f"{source}={value}")
        used.add(value)
    if broken:
        return fail(f"{', '.join(broken)}: no such readable file, so that client fails on every https URL",
                    fix, details)
    if unset:
        return warn(f"{', '.join(unset)} unset: those clients use the system roots, which only root may read "
                    "on ModelArts", fix, details)
    if ours is not None and any(os.path.realpath(v) != os.path.realpath(ours) for v in used):
        return ok(f"every client has a CA file (not all npuenv's bundle {ours})", details)
    return ok(f"every client uses {used.pop() if len(used) == 1 else 'a CA file that exists'}", details)


def _git_config(environ, key: str) -> str:
    try:
        proc = subprocess.run(["git", "config", "--get", key], env=dict(environ), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _git_insecure(environ) -> list[tuple[str, str]]:
    try:
        proc = subprocess.run(["git", "config", "--type=bool", "--get-regexp", r"^http\..*sslverify$"],
                              env=dict(environ), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if value.strip() == "false":
            found.append((f"git config {key}=false", f"git config --global --unset {key}"))
    return found


def _config_files(environ) -> dict[str, list[Path]]:
    home = Path(environ.get("HOME") or "~").expanduser()
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return {"curl": [home / ".curlrc", config / ".curlrc"],
            "pip": [config / "pip" / "pip.conf", home / ".pip" / "pip.conf", home / ".config" / "pip" / "pip.conf"],
            "uv": [config / "uv" / "uv.toml", home / ".config" / "uv" / "uv.toml"]}


_INSECURE_KEYS = {"curl": ("insecure", "-k", "--insecure"), "pip": ("trusted-host",), "uv": ("allow-insecure-host",)}


def _file_insecure(environ) -> list[tuple[str, str]]:
    found = []
    for tool, paths in _config_files(environ).items():
        for path in dict.fromkeys(paths):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for number, line in enumerate(lines, 1):
                word = line.strip().split("=")[0].split(":")[0].strip().lower()
                if word in _INSECURE_KEYS[tool]:
                    found.append((f"{path}:{number} `{line.strip()}`", f"remove line {number} of {path}"))
    return found


@check("trust.verify", "nothing turns TLS verification off (environment, git config, .curlrc, pip.conf, uv.toml)")
def verify(ctx) -> CheckResult:
    settings = _insecure_settings(ctx.environ)  # exactly what bootstrap refuses
    problems = [(f"{s} in the environment", f"unset {s.split('=', 1)[0]}") for s in settings]
    problems += _git_insecure(ctx.environ) + _file_insecure(ctx.environ)
    if not problems:
        return ok("verification is on for every client")
    fix = "; ".join(f for _w, f in problems) + " (to trust a proxy's or mirror's CA, pass it with --ca-bundle FILE)"
    return fail(f"TLS verification is turned off: {'; '.join(w for w, _f in problems)}", fix,
                [f"{w}: {f}" for w, f in problems])


# --- online: real TLS handshakes ----------------------------------------------------------------------


def spec_urls(spec) -> list[str]:
    urls = [r.url for r in spec.repos.values()] + ([spec.index] if spec.index else [])
    for wheel in spec.wheels.values():
        urls += [f.url for f in wheel.files.values() if f.url]
    for build in spec.builds.values():
        if build.prebuilt is not None:
            urls += [f.url for f in build.prebuilt.files.values() if f.url]
    return urls


def hosts(urls: list[str], mirrors) -> list[tuple[str, int]]:
    """(host, port) of every https URL after mirrors, each once, in order."""
    found: dict[tuple[str, int], None] = {}
    for url in urls:
        parts = urlsplit(mirrors.rewrite(url))
        if parts.scheme == "https" and parts.hostname:
            found[(parts.hostname, parts.port or 443)] = None
    return list(found)


def _proxy(host: str, environ) -> Optional[str]:
    proxy = environ.get("https_proxy") or environ.get("HTTPS_PROXY")
    if not proxy:
        return None
    for entry in (environ.get("no_proxy") or environ.get("NO_PROXY") or "").split(","):
        entry = entry.strip().lstrip(".").split(":")[0]
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _connect(host: str, port: int, timeout: float, environ) -> socket.socket:
    """A TCP connection to host:port, through the https proxy's CONNECT when one is configured."""
    proxy = _proxy(host, environ)
    if proxy is None:
        return socket.create_connection((host, port), timeout=timeout)
    parts = urlsplit(proxy)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    request = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if parts.username:
        token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
        request += f"Proxy-Authorization: Basic {token}\r\n"
    sock.sendall((request + "\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply and len(reply) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    status = reply.split(b"\r\n", 1)[0].decode("latin-1")
    if " 200" not in status:
        sock.close()
        raise OSError(f"proxy {parts.hostname} refused CONNECT: {status or 'no answer'}")
    return sock


def handshake(host: str, port: int, cafile: str, timeout: float, environ) -> tuple[str, str]:
    """("ok" | "cert" | "net", what happened): a TLS handshake that verifies the certificate and name."""
    context = ssl.create_default_context(cafile=cafile)
    try:
        with _connect(host, port, timeout, environ) as sock:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                return "ok", f"{host}:{port} {tls.version()}"
    except ssl.SSLCertVerificationError as exc:
        return "cert", f"{host}:{port}: certificate verify failed ({exc.verify_message})"
    except ssl.SSLError as exc:
        return "net", f"{host}:{port}: TLS failed ({exc.reason or exc})"
    except socket.timeout:
        return "net", f"{host}:{port}: timed out after {timeout:g} s"
    except OSError as exc:
        return "net", f"{host}:{port}: cannot connect ({exc.strerror or exc})"


def cafile(ctx) -> str:
    ours = workspace_bundle(ctx)
    if ours is not None:
        return str(ours)
    given = ctx.environ.get("SSL_CERT_FILE", "")
    if given and _readable(given):
        return given
    import certifi

    return certifi.where()


@check("trust.online", "a real TLS handshake with every host the spec uses, after mirrors (--online)",
       online=True)
def online(ctx) -> CheckResult:
    from ..workspace import mirror_layers

    try:
        mirrors = mirror_layers(ctx.spec, ctx.mirrors_config, ctx.environ)
    except NpuenvError as exc:
        return fail(exc.message, exc.hint)
    targets = hosts(spec_urls(ctx.spec), mirrors)
    if not targets:
        return skip("the spec names no https host")
    ca = cafile(ctx)
    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        answers = list(pool.map(lambda t: handshake(t[0], t[1], ca, ctx.tls_timeout, ctx.environ), targets))
    details = [text for _kind, text in answers]
    bad_cert = [text for trouble, text in answers if trouble == "cert"]
    bad_net = [text for trouble, text in answers if trouble == "net"]
    if bad_cert:
        return fail(f"{len(bad_cert)} of {len(targets)} host(s) not trusted with {ca}: {bad_cert[0]}",
                    "pass the CA that signs them (a proxy's or mirror's) with --ca-bundle FILE or "
                    f"NPUENV_CA_BUNDLE, then {ctx.bootstrap_fix('--only', 'python')} to rebuild the bundle", details)
    if bad_net:
        return fail(f"{len(bad_net)} of {len(targets)} host(s) unreachable: {bad_net[0]}",
                    "set a mirror, e.g. NPUENV_MIRRORS='https://github.com/=https://your-mirror/github/' "
                    "(or https_proxy)", details)
    return ok(f"{len(targets)} host(s): TLS verified with {ca}", details)


CHECKS = [bundle, clients, verify, online]
