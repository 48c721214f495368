"""The test world's HTTPS server on 127.0.0.1: git smart HTTP, static files, a PEP 503 index.

Routes, under a docroot directory:
  /git/...     git smart HTTP, by running ``git http-backend`` as a CGI subprocess on <docroot>/git
  /files/...   static files from <docroot>/files, with single-range Range support
  /simple/     a PEP 503 index generated from the wheels in <docroot>/files/wheels
  /whl/cpu/    a second PEP 503 index, shaped like the PyTorch CPU index (https://download.pytorch.org/whl/cpu):
               the wheels in <docroot>/whl/cpu, listed at /whl/cpu/<project>/ and served at /whl/cpu/<file>
  /pythonhosted/packages/<..>/<file>   PyPI's file host's shape (https://files.pythonhosted.org/packages/...),
               as the usual PyPI mirrors keep it: the index's wheel <file>, whatever the folders before it
Tests inject faults (``fail_next``, ``cut_after``) and read the ``requests`` log.
Every response carries Content-Length or is chunked, and ``Connection: close``.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from contextlib import contextmanager
from typing import IO, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote, unquote, urlsplit

RequestRecord = Tuple[str, str, Optional[str]]
CHUNK = 64 * 1024
CPU_INDEX = "/whl/cpu"  # the PyTorch CPU index's path (https://download.pytorch.org/whl/cpu)
PYTHONHOSTED = "/pythonhosted"  # where https://files.pythonhosted.org/ is mirrored


class _Cut(Exception):
    """Raised inside a handler when a ``cut_after`` fault has used up its byte budget."""


@dataclass
class _Rule:
    """One pending fault: ``kind`` is "fail" (value = status) or "cut" (value = bytes)."""

    kind: str
    prefix: str
    remaining: int
    value: int


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_range(header: str, size: int) -> Optional[Tuple[int, int]]:
    """Parse a single ``bytes=`` range against ``size``: (first, last) inclusive.

    Returns None when the range is unsatisfiable (answer 416); raises ValueError when the header
    is malformed or asks for several ranges (answer 200 with the whole file, as RFC 9110 allows).
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or match.group(1) == match.group(2) == "":
        raise ValueError(f"unsupported Range header: {header!r}")
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        return (max(size - suffix, 0), size - 1) if suffix and size else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        raise ValueError(f"invalid Range header: {header!r}")
    return (start, end) if start < size else None


def parse_cgi_headers(stream: IO[bytes]) -> Tuple[int, str, List[Tuple[str, str]]]:
    """Read CGI response headers up to the blank line: (status, reason, other headers)."""
    status, reason, headers = 200, "OK", []
    for raw in iter(stream.readline, b""):
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            code, _, reason = value.strip().partition(" ")
            status = int(code)
        else:
            headers.append((name.strip(), value.strip()))
    return status, reason, headers


def wheel_project(filename: str) -> str:
    """The normalized project name of a wheel file name."""
    return normalize_name(filename.split("-", 1)[0])


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _links_page(title: str, links: List[Tuple[str, str]]) -> bytes:
    """A PEP 503 HTML page of (href, text) links."""
    rows = "".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a><br/>\n' for href, text in links)
    page = (
        "<!DOCTYPE html>\n<html><head>"
        '<meta name="pypi:repository-version" content="1.0">'
        f"<title>{html.escape(title)}</title></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n{rows}</body></html>\n"
    )
    return page.encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    """Routes one request; faults first, then /git, /files or /simple."""

    protocol_version = "HTTP/1.1"
    timeout = 60
    server: "_TLSServer"
    _budget: Optional[int] = None

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the world records requests in ``WorldServer.requests`` instead."""

    def _dispatch(self) -> None:
        world = self.server.world
        path = unquote(urlsplit(self.path).path)
        world._record((self.command, self.path, self.headers.get("Range")))
        status = world._take_fault("fail", path)
        if status is not None:
            self._read_body()
            self._send_bytes(status, b"fault injected by the test world\n")
            return
        self._budget = world._take_fault("cut", path)
        try:
            self._route(path)
        except _Cut:
            self.close_connection = True

    def _route(self, path: str) -> None:
        if path.startswith("/git/"):
            self._git(path[len("/git") :])
        elif path.startswith("/files/"):
            self._file(path[len("/files/") :])
        elif path == "/simple" or path.startswith("/simple/"):
            self._simple(path)
        elif path == CPU_INDEX or path.startswith(CPU_INDEX + "/"):
            self._cpu_index(path)
        elif path.startswith(PYTHONHOSTED + "/packages/") and "/" in path[len(PYTHONHOSTED) + 10:]:
            self._file_in(self.server.world.wheels_dir, path.rsplit("/", 1)[-1])
        else:
            self._send_bytes(404, b"not found\n")

    # -- output -------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write body bytes, honouring a ``cut_after`` budget."""
        if self._budget is not None:
            if len(data) >= self._budget:
                self.wfile.write(data[: self._budget])
                self.wfile.flush()
                raise _Cut()
            self._budget -= len(data)
        self.wfile.write(data)

    def _start(self, status: int, headers: List[Tuple[str, str]], reason: Optional[str] = None) -> None:
        self.send_response(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()

    def _send_bytes(self, status: int, body: bytes, content_type: str = "text/plain",
                    extra: Tuple[Tuple[str, str], ...] = ()) -> None:
        self._start(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
        if self.command != "HEAD":
            self._write(body)

    def _redirect(self, location: str) -> None:
        self._send_bytes(301, b"moved\n", extra=(("Location", location),))

    # -- request body ---------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    # -- /files ---------------------------------------------------------------------------------

    def _file(self, relative: str) -> None:
        self._file_in(self.server.world.files_root, relative)

    def _file_in(self, folder: Path, relative: str) -> None:
        """Serve ``folder/relative`` (never outside ``folder``), with single-range support."""
        root = folder.resolve()
        target = (root / relative).resolve()
        if root not in target.parents or not target.is_file():
            self._send_bytes(404, b"no such file\n")
            return
        size = target.stat().st_size
        span, status = (0, size - 1), 200
        if self.headers.get("Range"):
            try:
                parsed = parse_range(self.headers["Range"], size)
            except ValueError:
                parsed = span
            else:
                status = 206
            if parsed is None:
                unsatisfiable = (("Content-Range", f"bytes */{size}"),)
                self._send_bytes(416, b"range not satisfiable\n", extra=unsatisfiable)
                return
            span = parsed
        self._send_file(target, span, status, size)

    def _send_file(self, target: Path, span: Tuple[int, int], status: int, size: int) -> None:
        first, last = span
        headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(last - first + 1)),
                   ("Accept-Ranges", "bytes")]
        if target.suffix == ".whl":  # as PyPI's file host: a wheel never changes, clients may keep it
            headers.append(("Cache-Control", "max-age=365000000, immutable, public"))
        if status == 206:
            headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        self._start(status, headers)
        if self.command == "HEAD":
            return
        with open(target, "rb") as handle:
            handle.seek(first)
            left = last - first + 1
            while left > 0:
                block = handle.read(min(CHUNK, left))
                if not block:
                    break
                self._write(block)
                left -= len(block)

    # -- /simple and /whl/cpu -------------------------------------------------------------------

    def _simple(self, path: str) -> None:
        world = self.server.world
        self._index(path, "/simple", world.wheels_by_project(), "/files/wheels/")

    def _cpu_index(self, path: str) -> None:
        """The PyTorch-CPU-shaped index: project pages under /whl/cpu/, and the wheels themselves there too."""
        world = self.server.world
        name = path[len(CPU_INDEX) + 1:]
        if name.endswith(".whl") and "/" not in name:
            self._file_in(world.cpu_index_dir, name)
            return
        self._index(path, CPU_INDEX, world.wheels_by_project(world.cpu_index_dir), CPU_INDEX + "/")

    def _index(self, path: str, root: str, projects: Dict[str, List[Path]], files_at: str) -> None:
        """A PEP 503 page at ``root`` (the project list) or ``root/<project>/`` (its wheels, linked at
        ``files_at<file>#sha256=...``); a path without its trailing slash is redirected."""
        if not path.endswith("/"):
            self._redirect(path + "/")
            return
        parts = [part for part in path[len(root):].split("/") if part]
        if not parts:
            links = [(f"{root}/{name}/", name) for name in sorted(projects)]
            self._send_bytes(200, _links_page("Simple index", links), "text/html; charset=utf-8")
            return
        name = normalize_name(parts[0]) if len(parts) == 1 else ""
        if name not in projects:
            self._send_bytes(404, b"no such project\n")
            return
        links = [(f"{files_at}{quote(f.name)}#sha256={sha256_file(f)}", f.name) for f in projects[name]]
        self._send_bytes(200, _links_page(f"Links for {name}", links), "text/html; charset=utf-8")

    # -- /git -----------------------------------------------------------------------------------

    def _cgi_env(self, path_info: str, body: bytes) -> Dict[str, str]:
        world = self.server.world
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(world.docroot),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": str(world.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path_info,
            "QUERY_STRING": urlsplit(self.path).query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            # Protocol v2: http-backend turns HTTP_GIT_PROTOCOL into GIT_PROTOCOL; set both, as CGI setups do.
            env["HTTP_GIT_PROTOCOL"] = env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        return env

    def _git(self, path_info: str) -> None:
        body = self._read_body()
        with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stderr:
            stdin.write(body)
            stdin.seek(0)
            process = subprocess.Popen(
                [self.server.world.git, "http-backend"], stdin=stdin, stdout=subprocess.PIPE, stderr=stderr,
                env=self._cgi_env(path_info, body),
            )
            try:
                self._relay_cgi(process.stdout)  # type: ignore[arg-type]
            finally:
                process.stdout.close()  # type: ignore[union-attr]
                if process.poll() is None and self._budget is not None:
                    process.kill()
                process.wait()
                stderr.seek(0)
                self.server.world._log_backend(path_info, process.returncode, stderr.read())

    def _relay_cgi(self, stdout: IO[bytes]) -> None:
        status, reason, headers = parse_cgi_headers(stdout)
        chunked = not any(name.lower() == "content-length" for name, _ in headers)
        self._start(status, headers + ([("Transfer-Encoding", "chunked")] if chunked else []), reason or None)
        for block in iter(lambda: stdout.read1(CHUNK), b""):  # type: ignore[attr-defined]
            self._write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
        if chunked:
            self._write(b"0\r\n\r\n")


class TLSServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1 at a free port that does the TLS handshake in the worker thread, not
    in accept(); connection trouble from clients (hang-ups, timeouts, untrusted CA) is not an error."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.ssl_context = context

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        request.settimeout(self.RequestHandlerClass.timeout)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except OSError:  # includes ssl.SSLError: a client that does not trust our CA hangs up
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


class _TLSServer(TLSServer):
    def __init__(self, world: "WorldServer", context: ssl.SSLContext) -> None:
        super().__init__(_Handler, context)
        self.world = world


class WorldServer:
    """An HTTPS server for ``docroot`` on 127.0.0.1 at a free port, in a daemon thread."""

    def __init__(self, docroot: Path, context: ssl.SSLContext) -> None:
        self.docroot = Path(docroot)
        self.git = shutil.which("git") or "git"
        self.backend_log: List[Tuple[str, int, str]] = []
        self._context = context
        self._httpd: Optional[_TLSServer] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._requests: List[RequestRecord] = []
        self._rules: List[_Rule] = []

    @property
    def git_root(self) -> Path:
        return self.docroot / "git"

    @property
    def files_root(self) -> Path:
        return self.docroot / "files"

    @property
    def wheels_dir(self) -> Path:
        return self.files_root / "wheels"

    @property
    def cpu_index_dir(self) -> Path:
        """The wheels of the second index, /whl/cpu/ (the PyTorch CPU index's stand-in)."""
        return self.docroot / CPU_INDEX.strip("/")

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> "WorldServer":
        """Bind a free port and serve in a daemon thread."""
        if self._httpd is None:
            self._httpd = _TLSServer(self, self._context)
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="world", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd, self._thread = None, None

    def __enter__(self) -> "WorldServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- faults and the request log -------------------------------------------------------------

    def fail_next(self, path_prefix: str, count: int = 1, status: int = 503) -> None:
        """Answer the next ``count`` requests whose path starts with ``path_prefix`` with ``status``."""
        with self._lock:
            self._rules.append(_Rule("fail", path_prefix, count, status))

    def cut_after(self, path_prefix: str, nbytes: int, times: int = 1) -> None:
        """For the next ``times`` matching requests, send headers and ``nbytes`` of body, then hang up."""
        with self._lock:
            self._rules.append(_Rule("cut", path_prefix, times, nbytes))

    def clear_faults(self) -> None:
        """Forget pending faults."""
        with self._lock:
            self._rules.clear()

    @property
    def requests(self) -> List[RequestRecord]:
        """A snapshot of (method, path with query, Range header or None) for every request so far."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._requests.clear()

    def wheels_by_project(self, folder: Optional[Path] = None) -> Dict[str, List[Path]]:
        """Wheels in ``folder`` (default ``wheels_dir``), keyed by normalized project name."""
        projects: Dict[str, List[Path]] = {}
        for wheel in sorted((folder or self.wheels_dir).glob("*.whl")):
            projects.setdefault(wheel_project(wheel.name), []).append(wheel)
        return projects

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _take_fault(self, kind: str, path: str) -> Optional[int]:
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and rule.remaining > 0 and path.startswith(rule.prefix):
                    rule.remaining -= 1
                    return rule.value
        return None

    def _log_backend(self, path_info: str, returncode: int, stderr: bytes) -> None:
        if returncode or stderr:
            with self._lock:
                self.backend_log.append((path_info, returncode, stderr.decode("utf-8", "replace")))


@contextmanager
def serve_https(handler: type, ca: "object", path: str = "/") -> Iterator[str]:
    """A bare HTTPS server on 127.0.0.1 with one request handler class, for tests that need a server
    behaving unlike the world's (e.g. ignoring Range). Yields the URL of `path`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = ca.server_context().wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()

