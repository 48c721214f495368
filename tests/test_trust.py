"""Trust: the CA bundle (public roots + the box's CAs + extras) and the refusal to turn verification off.

This machine presets SSL_CERT_FILE & co. to its own re-signing CA: every test here unsets them, so what
passes is the bundle itself.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
import requests
import trustme

from npuenv.errors import TrustError
from npuenv.trust import (CLIENT_VARS, build_bundle, client_env, extra_bundles, pem_certificates,
                          refuse_insecure)
from tests.world.ca import make_ca
from tests.world.server import serve_https

MACHINE_VARS = (*CLIENT_VARS, "SSL_CERT_DIR", "NPUENV_CA_BUNDLE")
CERTIFI_COUNT = len(pem_certificates(Path(certifi.where()).read_text(encoding="utf-8")))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MACHINE_VARS:
        monkeypatch.delenv(name, raising=False)


def write_ca(path: Path) -> Path:
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def build(tmp_path: Path, extras=(), environ=None, system_bundles=()):
    return build_bundle(tmp_path / "out" / "ca-bundle.pem", list(extras), environ or {},
                        system_bundles=system_bundles)


# --- the bundle ---------------------------------------------------------------------------------

def test_bundle_holds_certifi_and_the_extra(tmp_path):
    extra = write_ca(tmp_path / "corp.pem")
    info = build(tmp_path, [extra])
    assert info.path == tmp_path / "out" / "ca-bundle.pem"
    assert info.sources == [(certifi.where(), CERTIFI_COUNT), (str(extra), 1)]
    assert info.total == CERTIFI_COUNT + 1
    written = pem_certificates(info.path.read_text())
    assert len(written) == info.total
    assert written[-1] == pem_certificates(extra.read_text())[0]


def test_same_certificate_is_taken_once(tmp_path):
    extra = write_ca(tmp_path / "corp.pem")
    copy = tmp_path / "copy.pem"
    copy.write_text("# a comment\r\n" + extra.read_text().replace("\n", "\r\n"))  # same cert, CRLF
    info = build(tmp_path, [extra, extra, copy])
    assert info.total == CERTIFI_COUNT + 1
    assert [count for _, count in info.sources] == [CERTIFI_COUNT, 1, 0, 0]


def test_bundle_adds_what_the_box_already_trusts(tmp_path):
    system = write_ca(tmp_path / "system.pem")
    named = write_ca(tmp_path / "named.pem")
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    in_dir = write_ca(cert_dir / "abcd1234.0")
    (cert_dir / "README").write_text("not a certificate\n")
    environ = {"REQUESTS_CA_BUNDLE": str(named), "SSL_CERT_DIR": str(cert_dir),
               "GIT_SSL_CAINFO": str(tmp_path / "gone.pem")}  # a missing box file is skipped
    info = build(tmp_path, [], environ, system_bundles=(str(system), str(tmp_path / "absent.crt")))
    assert info.sources[1:] == [(str(system), 1), (str(named), 1), (str(cert_dir), 1)]
    assert info.total == CERTIFI_COUNT + 3
    text = info.path.read_text()
    for ca in (system, named, in_dir):
        assert pem_certificates(ca.read_text())[0] in text


def test_bundle_never_reads_itself(tmp_path):
    old_extra = write_ca(tmp_path / "old.pem")
    first = build(tmp_path, [old_extra])
    # An init.sh exported SSL_CERT_FILE=<the bundle>; rebuilding without the extra must drop it.
    second = build(tmp_path, [], {"SSL_CERT_FILE": str(first.path)})
    assert second.total == CERTIFI_COUNT
    assert pem_certificates(old_extra.read_text())[0] not in second.path.read_text()


def test_extra_without_a_certificate_is_refused(tmp_path):
    der = tmp_path / "corp.cer"
    der.write_bytes(trustme.CA().cert_pem.bytes().replace(b"CERTIFICATE", b"X509 CRL"))
    with pytest.raises(TrustError, match="corp.cer holds no PEM certificate") as caught:
        build(tmp_path, [der])
    assert "openssl x509" in caught.value.hint
    assert not (tmp_path / "out" / "ca-bundle.pem").exists()


def test_unchanged_content_keeps_the_file_and_its_mtime(tmp_path):
    extra = write_ca(tmp_path / "corp.pem")
    path = build(tmp_path, [extra]).path
    os.utime(path, (1_000_000_000, 1_000_000_000))
    build(tmp_path, [extra])
    assert path.stat().st_mtime == 1_000_000_000
    build(tmp_path, [extra, write_ca(tmp_path / "second.pem")])
    assert path.stat().st_mtime != 1_000_000_000
    # no temp files left; what the bundle was made from (sizes, mtimes) is kept beside it
    assert sorted(p.name for p in path.parent.iterdir()) == ["ca-bundle.pem", "ca-bundle.pem.sources"]


def test_the_bundle_is_rebuilt_only_when_a_source_changes(tmp_path):
    """Reading and parsing the box's bundles costs more than the rest of an up-to-date bootstrap."""
    extra = write_ca(tmp_path / "corp.pem")
    first = build(tmp_path, [extra])
    before = first.path.read_text()
    stat = extra.stat()
    original = extra.read_bytes()
    middle = len(original) // 2  # one base64 letter changed: a different block of the same size
    other = original[:middle] + (b"B" if original[middle:middle + 1] == b"A" else b"A") + original[middle + 1:]
    extra.write_bytes(other)  # same size, and the mtime put back: no source looks changed
    os.utime(extra, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = build(tmp_path, [extra])
    assert first.path.read_text() == before and (again.total, again.sources) == (first.total, first.sources)
    os.utime(extra, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # now it changed
    rebuilt = build(tmp_path, [extra])
    assert rebuilt.path.read_text() != before
    first.path.write_text("edited by hand\n")  # the bundle itself changed: rebuilt too
    assert build(tmp_path, [extra]).path.read_text() == rebuilt.path.read_text()


def test_client_env_points_every_client_at_the_bundle(tmp_path):
    bundle = tmp_path / "b.pem"
    assert client_env(bundle) == {name: str(bundle) for name in CLIENT_VARS}
    assert set(CLIENT_VARS) >= {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
                                "PIP_CERT"}


# --- extras -------------------------------------------------------------------------------------

def test_extras_from_the_command_line_then_the_environment(tmp_path):
    a, b, c = (write_ca(tmp_path / name) for name in ("a.pem", "b.pem", "c.pem"))
    environ = {"NPUENV_CA_BUNDLE": os.pathsep.join([str(b), "", str(c)])}
    assert extra_bundles([str(a)], environ) == [a, b, c]
    assert extra_bundles([], {}) == []


@pytest.mark.parametrize("cli, env_value, origin", [
    (["{missing}"], "", "--ca-bundle"),
    ([], "{missing}", "NPUENV_CA_BUNDLE"),
])
def test_missing_extra_is_named_with_its_origin(tmp_path, cli, env_value, origin):
    missing = str(tmp_path / "nowhere.pem")
    cli = [v.format(missing=missing) for v in cli]
    with pytest.raises(TrustError) as caught:
        extra_bundles(cli, {"NPUENV_CA_BUNDLE": env_value.format(missing=missing)})
    assert missing in str(caught.value)
    assert f"from {origin}" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_a_directory_is_not_an_extra_bundle(tmp_path):
    with pytest.raises(TrustError, match="is not a file"):
        extra_bundles([str(tmp_path)], {})


# --- refusing to turn verification off --------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("GIT_SSL_NO_VERIFY", "1"),
    ("GIT_SSL_NO_VERIFY", ""),
    ("GIT_SSL_NO_VERIFY", "false"),  # git ignores the value
    ("PYTHONHTTPSVERIFY", "0"),
    ("UV_INSECURE_HOST", "pypi.org"),
    ("PIP_TRUSTED_HOST", "mirror.example"),
    ("CURL_INSECURE", "1"),
    ("NODE_TLS_REJECT_UNAUTHORIZED", "0"),
])
def test_refuse_insecure_names_the_variable(name, value):
    with pytest.raises(TrustError) as caught:
        refuse_insecure({"PATH": "/usr/bin", name: value})
    assert name in str(caught.value)
    assert "never turns verification off" in str(caught.value)
    assert f"unset {name}" in caught.value.hint
    assert "--ca-bundle" in caught.value.hint and "NPUENV_CA_BUNDLE" in caught.value.hint


def test_refuse_insecure_sees_git_config_from_the_environment():
    environ = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "x",
               "GIT_CONFIG_KEY_1": "http.https://github.com/.sslVerify", "GIT_CONFIG_VALUE_1": "false"}
    with pytest.raises(TrustError, match="GIT_CONFIG_KEY_1"):
        refuse_insecure(environ)


def test_refuse_insecure_lists_every_offender():
    with pytest.raises(TrustError) as caught:
        refuse_insecure({"GIT_SSL_NO_VERIFY": "1", "PIP_TRUSTED_HOST": "x"})
    assert "GIT_SSL_NO_VERIFY" in str(caught.value) and "PIP_TRUSTED_HOST" in str(caught.value)


@pytest.mark.parametrize("environ", [
    {},
    {"PYTHONHTTPSVERIFY": "1", "NODE_TLS_REJECT_UNAUTHORIZED": "1", "CURL_INSECURE": "0",
     "UV_INSECURE_HOST": "", "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.sslVerify",
     "GIT_CONFIG_VALUE_0": "true"},
])
def test_safe_environments_pass(environ):
    refuse_insecure(environ)


# --- the proof: a real HTTPS server signed by a CA nobody trusts by default ------------------------

class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"hello over TLS\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    ca = make_ca(tmp_path_factory.mktemp("trust-ca"))
    with serve_https(_Hello, ca) as url:
        yield url, ca.ca_pem


def test_requests_reaches_the_server_with_the_bundle_only(tmp_path, https_server):
    url, ca_pem = https_server
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        requests.get(url, verify=certifi.where(), timeout=10)
    bundle = build(tmp_path, extra_bundles([str(ca_pem)], {})).path
    assert requests.get(url, verify=str(bundle), timeout=10).text == "hello over TLS\n"


def test_python_ssl_follows_client_env(tmp_path, https_server):
    """The variables client_env sets are what other clients (here Python's ssl, as uv does) read."""
    url, ca_pem = https_server
    bundle = build(tmp_path, [ca_pem]).path
    script = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode(), end='')"
    clean = {k: v for k, v in os.environ.items() if k not in MACHINE_VARS}
    without = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True, text=True)
    assert without.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in without.stderr
    with_bundle = subprocess.run([sys.executable, "-c", script], env={**clean, **client_env(bundle)},
                                 capture_output=True, text=True)
    assert with_bundle.returncode == 0, with_bundle.stderr
    assert with_bundle.stdout == "hello over TLS\n"
