"""The world's Hugging Face Hub: the part of the hub's HTTP API that huggingface_hub 0.36 uses to download a
snapshot, on 127.0.0.1 over TLS with the world's CA.

Routes (as the real hub answers them, checked against huggingface_hub 0.36's client code: hf_api.model_info,
_snapshot_download, file_download.get_hf_file_metadata / http_get, utils/_http.hf_raise_for_status):
  GET /api/models/{owner}/{repo}/revision/{revision}[?blobs=true]
        {"id", "sha", "siblings": [{"rfilename"} + with blobs: "size", "blobId", "lfs": {"sha256", "size",
        "pointerSize"}]}; an unknown repo or revision: 404 with X-Error-Code RepoNotFound / RevisionNotFound
  HEAD|GET /{owner}/{repo}/resolve/{revision}/{path}
        regular files: X-Repo-Commit, ETag (the git blob id), Content-Length, Accept-Ranges, one `bytes=`
        Range (206 + Content-Range); LFS files: a 302 to /cdn-lfs/{sha256}/{path} (an absolute URL: the
        client's HEAD does not follow it) with X-Repo-Commit, X-Linked-Etag (the sha256) and X-Linked-Size;
        a missing file: 404 with X-Error-Code EntryNotFound; an unknown repo: 401 to an anonymous request
  GET /cdn-lfs/{sha256}/{path}   the LFS content, with Range
A revision is a commit sha or a branch ("main": the newest commit). Files ending in .safetensors are LFS
files, as on the hub. Not served: auth, xet (no X-Xet-* headers), a separate CDN host with signed URLs,
pagination of trees, anything but models.

Faults for tests: ``cut_after`` (send N bytes of a file, then hang up), ``hold_after`` (send N bytes, then
wait until released: a downloader can be killed mid-file without sleeping), ``fail_next``, ``corrupt``
(serve other bytes under the listed hash), and a request log.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from tests.world.server import TLSServer, parse_range

CHUNK = 64 * 1024


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path: str) -> bool:
    return path.endswith(".safetensors")


@dataclass
class Commit:
    sha: str
    files: Dict[str, bytes]


@dataclass
class Hold:
    """A download held after ``nbytes``: ``reached`` is set when they are sent; ``release()`` lets it go on."""

    suffix: str
    nbytes: int
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._dispatch(body=True)

    def do_HEAD(self) -> None:
        self._dispatch(body=False)

    def _dispatch(self, body: bool) -> None:
        hub = self.server.hub
        path = urlsplit(self.path).path
        hub._record((self.command, self.path, self.headers.get("Range")))
        status = hub._take("fail", path)
        if status is not None:
            return self._json(status, {"error": "injected failure"})
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path)
        if api:
            return self._revision(unquote(api.group(1)), unquote(api.group(2)), "blobs=true" in (urlsplit(self.path).query or ""))
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if resolve:
            return self._resolve(resolve.group(1), unquote(resolve.group(2)), unquote(resolve.group(3)), body)
        cdn = re.fullmatch(r"/cdn-lfs/([0-9a-f]{64})/(.+)", path)
        if cdn:
            return self._cdn(cdn.group(1), unquote(cdn.group(2)), body)
        self._json(404, {"error": "not a hub route"})

    def _json(self, status: int, data: object, headers: Tuple[Tuple[str, str], ...] = ()) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        for name, value in (("Content-Type", "application/json"), ("Content-Length", str(len(raw))), *headers):
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _commit(self, repo: str, revision: str) -> Optional[Commit]:
        hub = self.server.hub
        if repo not in hub.repos:  # the hub answers 401 to an anonymous request for a repo it does not show
            status = 404 if self.headers.get("Authorization") else 401
            self._json(status, {"error": "Repository not found"}, (("X-Error-Code", "RepoNotFound"),
                                                                   ("X-Error-Message", "Repository not found")))
            return None
        found = hub.commit(repo, revision)
        if found is None:
            self._json(404, {"error": f"Invalid rev id: {revision}"}, (("X-Error-Code", "RevisionNotFound"),
                                                                      ("X-Error-Message", f"Invalid rev id: {revision}")))
        return found

    def _revision(self, repo: str, revision: str, blobs: bool) -> None:
        commit = self._commit(repo, revision)
        if commit is None:
            return
        siblings = []
        for name, data in sorted(commit.files.items()):
            entry: Dict[str, object] = {"rfilename": name}
            if blobs:
                entry.update(size=len(data), blobId=git_blob_id(data))
                if is_lfs(name):
                    entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        self._json(200, {"_id": commit.sha[:24], "id": repo, "modelId": repo, "sha": commit.sha, "private": False,
                         "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                         "library_name": "transformers", "siblings": siblings})

    def _resolve(self, repo: str, revision: str, name: str, body: bool) -> None:
        commit = self._commit(repo, revision)
        if commit is None:
            return
        if name not in commit.files:
            return self._json(404, {"error": "Entry not found"}, (("X-Error-Code", "EntryNotFound"),
                                                                  ("X-Error-Message", "Entry not found")))
        listed = commit.files[name]
        if is_lfs(name):  # as the hub: LFS content comes from its CDN, by an absolute redirect
            sha256 = hashlib.sha256(listed).hexdigest()
            self.send_response(302)
            for key, value in (("Location", f"{self.server.hub.url}/cdn-lfs/{sha256}/{name}"),
                               ("X-Repo-Commit", commit.sha), ("ETag", f'"{sha256}"'), ("X-Linked-Etag", f'"{sha256}"'),
                               ("X-Linked-Size", str(len(listed))), ("Content-Length", "0")):
                self.send_header(key, value)
            self.end_headers()
            return
        self._content(name, listed, self.server.hub.corrupted.get(git_blob_id(listed), listed), git_blob_id(listed),
                      body, (("X-Repo-Commit", commit.sha),))

    def _cdn(self, sha256: str, name: str, body: bool) -> None:
        listed = self.server.hub.blob(sha256)
        if listed is None:
            return self._json(404, {"error": "no such object"})
        self._content(name, listed, self.server.hub.corrupted.get(sha256, listed), sha256, body, ())

    def _content(self, name: str, listed: bytes, served: bytes, etag: str, body: bool,
                 extra: Tuple[Tuple[str, str], ...]) -> None:
        first, last, status = 0, len(served) - 1, 200
        if self.headers.get("Range") and served:
            span = parse_range(self.headers["Range"], len(served))
            if span is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(served)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            (first, last), status = span, 206
        self.send_response(status)
        headers = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes"),
                   ("Content-Length", str(last - first + 1)), ("ETag", f'"{etag}"'), *extra]
        if status == 206:
            headers.append(("Content-Range", f"bytes {first}-{last}/{len(served)}"))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if body:
            self._send(name, served[first:last + 1])

    def _send(self, name: str, data: bytes) -> None:
        hub = self.server.hub
        cut = hub._take("cut", name)
        hold = hub._hold(name)
        limit = cut if cut is not None else (hold.nbytes if hold is not None else len(data))
        for start in range(0, min(limit, len(data)), CHUNK):
            self.wfile.write(data[start:min(start + CHUNK, limit)])
        self.wfile.flush()
        if hold is not None:
            hold.reached.set()
            while not hold.released.wait(0.05) and not hub.stopping.is_set():
                pass
        if cut is not None or hold is not None:
            self.close_connection = True
            raise ConnectionAbortedError("fault: hung up mid-file")


class _Server(TLSServer):
    def __init__(self, hub: "HubServer", context: ssl.SSLContext) -> None:
        super().__init__(_Handler, context)
        self.hub = hub


class HubServer:
    """Model repos served like the hub. ``add(repo, files)`` makes a commit and moves `main` to it."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.repos: Dict[str, List[Commit]] = {}
        self.corrupted: Dict[str, bytes] = {}  # by the listed file's etag: other bytes served
        self.stopping = threading.Event()
        self._context = context
        self._lock = threading.Lock()
        self._log: List[Tuple[str, str, Optional[str]]] = []
        self._faults: List[List[object]] = []  # [kind, suffix, remaining, value]
        self._holds: List[Hold] = []
        self._httpd: Optional[_Server] = None

    # -- content --------------------------------------------------------------------------------------------

    def add(self, repo: str, files: Dict[str, bytes]) -> str:
        """A new commit of ``repo`` with exactly ``files``; its sha (from the content and the history)."""
        with self._lock:
            history = self.repos.setdefault(repo, [])
            digest = hashlib.sha1(repo.encode() + (history[-1].sha.encode() if history else b""))
            for name, data in sorted(files.items()):
                digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
            history.append(Commit(digest.hexdigest(), dict(files)))
            return history[-1].sha

    def commit(self, repo: str, revision: str) -> Optional[Commit]:
        history = self.repos.get(repo, [])
        if revision == "main":
            return history[-1] if history else None
        return next((c for c in history if c.sha == revision), None)

    def corrupt(self, repo: str, revision: str, name: str, data: bytes) -> None:
        """Serve ``data`` for ``name`` while listing the real file's size and hash."""
        commit = self.commit(repo, revision)
        assert commit is not None
        listed = commit.files[name]
        self.corrupted[hashlib.sha256(listed).hexdigest() if is_lfs(name) else git_blob_id(listed)] = data

    def blob(self, sha256: str) -> Optional[bytes]:
        """An LFS file's content by its sha256, from any commit."""
        for history in self.repos.values():
            for commit in history:
                for name, data in commit.files.items():
                    if is_lfs(name) and hashlib.sha256(data).hexdigest() == sha256:
                        return data
        return None

    # -- faults and the log ---------------------------------------------------------------------------------

    def cut_after(self, suffix: str, nbytes: int, times: int = 1) -> None:
        with self._lock:
            self._faults.append(["cut", suffix, times, nbytes])

    def fail_next(self, suffix: str, status: int = 503, times: int = 1) -> None:
        with self._lock:
            self._faults.append(["fail", suffix, times, status])

    def hold_after(self, suffix: str, nbytes: int) -> Hold:
        hold = Hold(suffix, nbytes)
        with self._lock:
            self._holds.append(hold)
        return hold

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            for hold in self._holds:
                hold.release()
            self._holds.clear()

    @property
    def requests(self) -> List[Tuple[str, str, Optional[str]]]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, entry: Tuple[str, str, Optional[str]]) -> None:
        with self._lock:
            self._log.append(entry)

    def _take(self, kind: str, path: str) -> Optional[int]:
        with self._lock:
            for fault in self._faults:
                if fault[0] == kind and fault[2] > 0 and path.endswith(str(fault[1])):  # type: ignore[operator]
                    fault[2] -= 1  # type: ignore[operator]
                    return int(fault[3])  # type: ignore[arg-type]
        return None

    def _hold(self, name: str) -> Optional[Hold]:
        with self._lock:
            for hold in self._holds:
                if not hold.reached.is_set() and name.endswith(hold.suffix):
                    return hold
        return None

    # -- serving --------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "HubServer":
        self._httpd = _Server(self, self._context)
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="hub", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.clear_faults()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
