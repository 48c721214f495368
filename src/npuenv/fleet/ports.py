"""Is MASTER_ADDR:MASTER_PORT reachable from every node? The master listens on the port (which also shows it
is free there) until every node has connected or time is up; each node connects to it. Node side of
`invoke fleet.hccl`, run there as `invoke fleet.port`."""

from __future__ import annotations

import socket
import time
from typing import Any, Callable

LISTENING = "listening on port"


def listen(port: int, expect: int, timeout: float, on_ready: Callable[[str], None]) -> dict[str, Any]:
    """Bind every address on `port`, say so through `on_ready`, then accept until `expect` connections came
    or `timeout` passed; the peers' addresses."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(max(8, expect))
    except OSError as exc:
        server.close()
        return {"listening": False, "port": port, "error": f"cannot listen on port {port}: {exc.strerror}",
                "peers": []}
    on_ready(f"{LISTENING} {port}")
    peers: list[str] = []
    deadline = time.monotonic() + timeout
    with server:
        while len(peers) < expect:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            server.settimeout(left)
            try:
                conn, (address, _port) = server.accept()
            except socket.timeout:
                break
            conn.close()
            peers.append(address)
    return {"listening": True, "port": port, "peers": peers}


def reach(address: str, port: int, timeout: float) -> dict[str, Any]:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return {"address": address, "port": port, "ok": True, "error": ""}
    except OSError as exc:
        return {"address": address, "port": port, "ok": False, "error": exc.strerror or str(exc) or "timed out"}
