"""A throw-away certificate authority for the test world, made with trustme."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class CA:
    """A CA whose certificate is in ``ca_pem`` and a server certificate it signed."""

    ca_pem: Path
    server_pem: Path
    _server_cert: trustme.LeafCert

    def server_context(self) -> ssl.SSLContext:
        """An SSLContext for the world's HTTPS server (TLS 1.2+)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSLContext that trusts this CA only."""
        return ssl.create_default_context(cafile=str(self.ca_pem))


def make_ca(dirpath: Path) -> CA:
    """Create a CA and a server certificate for 127.0.0.1 and localhost under ``dirpath``.

    Writes ``ca.pem`` (the certificate to trust) and ``server.pem`` (key and chain, for reference).
    """
    dirpath = Path(dirpath)
    dirpath.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="npuenv test world")
    leaf = authority.issue_cert(*SERVER_NAMES)
    ca_pem = dirpath / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_pem))
    server_pem = dirpath / "server.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    return CA(ca_pem=ca_pem, server_pem=server_pem, _server_cert=leaf)
