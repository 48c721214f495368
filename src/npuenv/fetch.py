"""Downloads: streamed, resumable (Range), retried with backoff, sha256-verified before an atomic rename.

Every request verifies TLS against the bundle built by npuenv.trust; verification is never turned off.
A `file://` URL (a local mirror) is copied, and verified the same way; a `file://` index is a folder
laid out as a PEP 503 simple index (`<project>/index.html`, or just the project's files).
"""

from __future__ import annotations

import difflib
import os
import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit

import requests
import urllib3

from .digest import sha256_file
from .errors import FetchError, FetchUnreachable
from .pep503 import normalize

_CHUNK = 1 << 16
_CA_HINT = ("if a proxy or private mirror re-signs TLS traffic, pass its CA with --ca-bundle PATH or "
            "NPUENV_CA_BUNDLE=PATH (npuenv adds it to the public roots; it never turns verification off)")

ProgressFn = Callable[[int, Optional[int]], None]


class _Transient(Exception):
    """A failure worth retrying: connection trouble, timeout, cut-off body, 5xx or 429."""

    def __init__(self, reason: str, *, unreachable: bool = False, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.retry_after = retry_after


class _Restart(Exception):
    """The partial file cannot be resumed and was removed: start again at once."""


@dataclass(frozen=True)
class _Options:
    verify: str
    timeout: float
    retries: int
    backoff: float
    progress: Optional[ProgressFn] = None


def _host(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def _causes(exc: Optional[BaseException]) -> list[BaseException]:
    """`exc` and what it wraps (requests -> urllib3 MaxRetryError -> reason -> socket error)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        wrapped = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        exc = wrapped or getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
    return chain


def _brief(exc: BaseException) -> str:
    """The innermost cause's text ('[Errno 111] Connection refused'), not urllib3's pool dump."""
    return next((str(cause) for cause in reversed(_causes(exc)) if str(cause)), repr(exc))


def _is_unreachable(exc: BaseException) -> bool:
    kinds = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
             ConnectionRefusedError)
    return any(isinstance(cause, kinds) for cause in _causes(exc))


def _failed_url(exc: requests.exceptions.RequestException, url: str) -> str:
    """The URL of the hop that failed (after redirects), else the one asked for."""
    request = getattr(exc, "request", None)
    return getattr(request, "url", None) or url


def _tls_error(exc: requests.exceptions.SSLError, url: str) -> Exception:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" not in text and "certificate verify failed" not in text:
        return _Transient(f"TLS error: {_brief(exc)}")
    where = _failed_url(exc, url)
    detail = re.search(r"certificate verify failed: ([^(\"')]+)", text)
    reason = f": {detail.group(1).strip()}" if detail else ""
    return FetchError(f"certificate verify failed for {_host(where)} ({where}){reason}", _CA_HINT)


def _get(session: requests.Session, url: str, headers: dict[str, str], opts: _Options) -> requests.Response:
    """session.get with requests' exceptions turned into _Transient or FetchError."""
    try:
        # verify per request: requests lets REQUESTS_CA_BUNDLE override a Session-level verify.
        return session.get(url, headers=headers, stream=True, timeout=opts.timeout, verify=opts.verify)
    except requests.exceptions.SSLError as exc:
        raise _tls_error(exc, url) from exc
    except requests.exceptions.ConnectionError as exc:
        raise _Transient(_brief(exc), unreachable=_is_unreachable(exc)) from exc
    except requests.exceptions.Timeout as exc:
        raise _Transient(f"timed out: {_brief(exc)}") from exc
    except requests.exceptions.RequestException as exc:
        raise FetchError(f"cannot fetch {url}: {exc}") from exc


def _retry_after(resp: requests.Response) -> float:
    value = resp.headers.get("Retry-After", "").strip()
    return min(float(value), 60.0) if value.isdigit() else 0.0


def _check_status(resp: requests.Response, url: str) -> None:
    code = resp.status_code
    if code == 429 or code >= 500:
        raise _Transient(f"HTTP {code} {resp.reason} from {_host(resp.url or url)}", retry_after=_retry_after(resp))
    if code >= 400:
        raise FetchError(f"HTTP {code} {resp.reason} for {resp.url or url}",
                         "check the URL (and any mirror rewriting it) in the spec")
    if code not in (200, 206):
        raise FetchError(f"unexpected HTTP {code} {resp.reason} for {resp.url or url}")


def _content_length(resp: requests.Response) -> Optional[int]:
    value = resp.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _range_start_and_total(resp: requests.Response) -> tuple[Optional[int], Optional[int]]:
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
    if not match:
        return None, None
    total = None if match.group(2) == "*" else int(match.group(2))
    return int(match.group(1)), total


def _stream(resp: requests.Response, part: Path, done: int, total: Optional[int], opts: _Options) -> None:
    """Write the body to `part` (appending when done > 0), reporting progress as bytes arrive."""
    expected, got = _content_length(resp), 0
    with part.open("ab" if done else "wb") as out:
        if opts.progress:
            opts.progress(done, total)
        try:
            # Raw bytes as served: a Content-Encoding must not change what is hashed or resumed.
            for chunk in resp.raw.stream(_CHUNK, decode_content=False):
                out.write(chunk)
                got, done = got + len(chunk), done + len(chunk)
                if opts.progress:
                    opts.progress(done, total)
        except urllib3.exceptions.HTTPError as exc:
            of = f" of {total}" if total else ""  # one count: the file's bytes (urllib3's is this response's)
            raise _Transient(f"the connection was cut after {done}{of} bytes") from exc
        out.flush()
        os.fsync(out.fileno())
    if expected is not None and got < expected:
        raise _Transient(f"body cut off after {got} of {expected} bytes")


def _fetch_once(session: requests.Session, url: str, part: Path, opts: _Options) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    with _get(session, url, headers, opts) as resp:
        if resp.status_code == 416 and have:
            part.unlink()
            raise _Restart()
        _check_status(resp, url)
        if resp.status_code == 206:
            start, total = _range_start_and_total(resp)
            if start != have:
                part.unlink()
                raise _Transient(f"server answered range {resp.headers.get('Content-Range')!r}, asked from {have}")
            total = total if total is not None else _plus(have, _content_length(resp))
        else:  # 200: a fresh body (a server that ignores Range sends the whole file again)
            have, total = 0, _content_length(resp)
        _stream(resp, part, have, total, opts)


def _plus(have: int, length: Optional[int]) -> Optional[int]:
    return None if length is None else have + length


def _with_retries(attempt_once: Callable[[], object], url: str, opts: _Options) -> object:
    attempt = 0
    while True:
        try:
            return attempt_once()
        except _Restart:
            continue
        except _Transient as exc:
            if attempt >= opts.retries:
                raise _give_up(url, exc, attempt + 1) from exc
            time.sleep(max(opts.backoff * 2 ** attempt, exc.retry_after))
            attempt += 1


def _give_up(url: str, exc: _Transient, attempts: int) -> FetchError:
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if exc.unreachable:
        origin = f"{urlsplit(url).scheme}://{_host(url)}/"
        return FetchUnreachable(f"cannot reach {_host(url)} ({url}) after {tries}: {exc.reason}",
                          f"check the network, or set a mirror: NPUENV_MIRRORS='{origin}=https://your-mirror/'")
    return FetchError(f"download of {url} failed after {tries}: {exc.reason}",
                      "run again to resume, or set a mirror with NPUENV_MIRRORS")


def _verify_and_place(part: Path, dest: Path, url: str, expected: str) -> Path:
    actual = sha256_file(part)
    if actual != expected:
        part.unlink()
        raise FetchError(f"sha256 mismatch for {url}: expected {expected}, got {actual}",
                         "the file changed upstream or was corrupted; check the sha256 in the spec")
    os.replace(part, dest)
    return dest


def _local_path(url: str) -> Optional[Path]:
    """The path of a file:// URL, None for any other."""
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme.lower() == "file" else None


def _copy_local(source: Path, part: Path, url: str, progress: Optional[ProgressFn]) -> None:
    try:
        total = source.stat().st_size
        with open(source, "rb") as reader, open(part, "wb") as writer:
            done = 0
            while chunk := reader.read(_CHUNK):
                writer.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise FetchError(f"cannot read {url}: {exc.strerror or exc}",
                         "check the local mirror (NPUENV_MIRRORS, spec mirrors:) holds that file") from exc


def download(url: str, dest: Path, sha256: str, *, ca_bundle: Path,
             progress: Optional[ProgressFn] = None, retries: int = 4, backoff: float = 0.5,
             timeout: float = 60.0) -> Path:
    """Fetch `url` into `dest` unless it is there with the right sha256; resume a `<dest>.part`."""
    dest, expected = Path(dest), sha256.strip().lower()
    if dest.is_file() and sha256_file(dest) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    local = _local_path(url)
    if local is not None:
        _copy_local(local, part, url, progress)
        return _verify_and_place(part, dest, url, expected)
    stale = part.exists()  # left by an earlier run: if it does not lead to the right file, start afresh
    opts = _Options(str(ca_bundle), timeout, retries, backoff, progress)
    with requests.Session() as session:
        _with_retries(lambda: _fetch_once(session, url, part, opts), url, opts)
        if stale and sha256_file(part) != expected:
            part.unlink()
            _with_retries(lambda: _fetch_once(session, url, part, opts), url, opts)
    return _verify_and_place(part, dest, url, expected)


class _Anchors(HTMLParser):
    """Collects <a href> targets with their text, and the page's <base href>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: Optional[str] = None
        self.anchors: list[tuple[str, str]] = []
        self._href: Optional[str] = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        href = dict(attrs).get("href")
        if tag == "base" and href and self.base is None:
            self.base = href
        elif tag == "a" and href is not None:
            self._href, self._text = href, []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.anchors.append((self._href, "".join(self._text).strip()))
            self._href = None


def _basename(href: str) -> str:
    return posixpath.basename(unquote(urlsplit(href).path))


def _get_page(session: requests.Session, url: str, package: str, opts: _Options) -> tuple[str, str]:
    with _get(session, url, {}, opts) as resp:
        if resp.status_code == 404:
            raise FetchError(f"{package} is not on the index: HTTP 404 for {url}",
                             "check the package name and the index URL (and any mirror rewriting it)")
        _check_status(resp, url)
        try:
            return resp.url, resp.text
        except requests.exceptions.RequestException as exc:
            raise _Transient(f"index page cut off: {exc}") from exc


def _local_page(folder: Path, url: str, package: str) -> str:
    """A local index's project page: its index.html, else links to the files in the project's folder."""
    if (folder / "index.html").is_file():
        return (folder / "index.html").read_text(encoding="utf-8", errors="replace")
    if not folder.is_dir():
        raise FetchError(f"{package} is not on the index: no folder {folder} ({url})",
                         "check the package name and the local index folder (and any mirror rewriting it)")
    return "".join(f'<a href="{quote(p.name)}">{p.name}</a>\n' for p in sorted(folder.iterdir()) if p.is_file())


def find_in_index(index_url: str, package: str, filename: str, *, ca_bundle: Path,
                  timeout: float = 60.0) -> str:
    """The absolute URL of `filename` on the PEP 503 page of `package` at `index_url`."""
    url = index_url.rstrip("/") + "/" + normalize(package) + "/"
    local = _local_path(url)
    if local is not None:
        page_url, html = url, _local_page(local, url, package)
    else:
        opts = _Options(str(ca_bundle), timeout, retries=2, backoff=0.5)
        with requests.Session() as session:
            page_url, html = _with_retries(lambda: _get_page(session, url, package, opts), url, opts)
    parser = _Anchors()
    parser.feed(html)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    for href, text in parser.anchors:
        if filename in (text, _basename(href)):
            return urldefrag(urljoin(base, href)).url
    names = [text or _basename(href) for href, text in parser.anchors]
    closest = difflib.get_close_matches(filename, names, n=5, cutoff=0.0)
    listing = ", ".join(closest) if closest else "no files at all"
    raise FetchError(f"{filename} is not on {url} ({len(names)} files there; closest: {listing})",
                     "check the file name (version, Python tag, platform) in the spec")
