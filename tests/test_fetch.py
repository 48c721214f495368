"""Downloads against the world's real HTTPS server: resume, retries, hashes, TLS and reachability errors."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
from pathlib import Path
from urllib.parse import quote

import certifi
import pytest

from npuenv.errors import FetchError
from npuenv.fetch import download, find_in_index, sha256_file
from npuenv.trust import build_bundle
from tests.world.ca import make_ca
from tests.world.server import serve_https

# Until tests/conftest.py loads the world for the whole suite.

SIZE = 300_000  # several 64 KiB chunks


@pytest.fixture(scope="module")
def bundle(world, tmp_path_factory) -> Path:
    """The bundle npuenv would build on a box: certifi's roots plus the world's CA."""
    dest = tmp_path_factory.mktemp("fetch-trust") / "ca-bundle.pem"
    return build_bundle(dest, [Path(world.ca_pem)], {}, system_bundles=()).path


@pytest.fixture
def served(world, request):
    """A fresh random file under the world's /files/: (url, path on the server, content, sha256)."""
    name = f"fetch-{request.node.name}".replace("[", "-").replace("]", "")
    path = Path(world.docroot) / "files" / "fetch-tests" / f"{name}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    content = os.urandom(SIZE)
    path.write_bytes(content)
    url_path = f"/files/fetch-tests/{path.name}"
    return world.url.rstrip("/") + url_path, url_path, content, hashlib.sha256(content).hexdigest()


def requests_for(world, url_path: str) -> list:
    return [r for r in world.server.requests if r[1] == url_path]


def test_fresh_download_reports_progress(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    calls = []
    dest = download(url, tmp_path / "out" / "a.bin", digest, ca_bundle=bundle,
                    progress=lambda done, total: calls.append((done, total)), backoff=0.01)
    assert dest == tmp_path / "out" / "a.bin"
    assert dest.read_bytes() == content
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]
    assert calls[0] == (0, SIZE) and calls[-1] == (SIZE, SIZE)
    assert len(calls) > 2
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert [r[2] for r in requests_for(world, url_path)] == [None]


def test_cached_file_with_the_right_hash_makes_no_request(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    dest = tmp_path / "a.bin"
    dest.write_bytes(content)
    assert download(url, dest, digest.upper(), ca_bundle=bundle, backoff=0.01) == dest
    assert requests_for(world, url_path) == []


def test_a_wrong_cached_file_is_replaced(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"stale")
    download(url, dest, digest, ca_bundle=bundle, backoff=0.01)
    assert dest.read_bytes() == content


def test_a_cut_off_body_is_resumed_with_range(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    world.server.cut_after(url_path, 100_000)
    calls = []
    dest = download(url, tmp_path / "a.bin", digest, ca_bundle=bundle,
                    progress=lambda done, total: calls.append((done, total)), backoff=0.01)
    assert sha256_file(dest) == digest
    assert [r[2] for r in requests_for(world, url_path)] == [None, "bytes=100000-"]
    assert (100_000, SIZE) in calls and calls[-1] == (SIZE, SIZE)


def test_a_part_left_by_an_earlier_run_is_resumed(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    (tmp_path / "a.bin.part").write_bytes(content[:123_456])
    download(url, tmp_path / "a.bin", digest, ca_bundle=bundle, backoff=0.01)
    assert (tmp_path / "a.bin").read_bytes() == content
    assert [r[2] for r in requests_for(world, url_path)] == ["bytes=123456-"]
    assert not (tmp_path / "a.bin.part").exists()


def test_a_corrupt_part_is_thrown_away_and_fetched_afresh(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    (tmp_path / "a.bin.part").write_bytes(b"x" * 1000)
    download(url, tmp_path / "a.bin", digest, ca_bundle=bundle, backoff=0.01)
    assert (tmp_path / "a.bin").read_bytes() == content
    assert [r[2] for r in requests_for(world, url_path)] == ["bytes=1000-", None]


def test_a_part_longer_than_the_file_restarts_after_416(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    (tmp_path / "a.bin.part").write_bytes(content + b"more")
    download(url, tmp_path / "a.bin", digest, ca_bundle=bundle, backoff=0.01)
    assert (tmp_path / "a.bin").read_bytes() == content
    assert [r[2] for r in requests_for(world, url_path)] == [f"bytes={SIZE + 4}-", None]


def test_503_twice_then_success(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    world.server.fail_next(url_path, 2, 503)
    download(url, tmp_path / "a.bin", digest, ca_bundle=bundle, backoff=0.01)
    assert (tmp_path / "a.bin").read_bytes() == content
    assert len(requests_for(world, url_path)) == 3


def test_transient_errors_give_up_after_the_retries(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    world.server.fail_next(url_path, 3, 429)
    with pytest.raises(FetchError, match="failed after 3 attempts: HTTP 429"):
        download(url, tmp_path / "a.bin", digest, ca_bundle=bundle, retries=2, backoff=0.01)
    assert len(requests_for(world, url_path)) == 3


def test_a_connection_cut_every_time_says_how_far_it_got_in_one_count(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    world.server.cut_after(url_path, 50_000, times=3)  # each attempt resumes, and gets 50 000 bytes further
    with pytest.raises(FetchError) as caught:
        download(url, tmp_path / "a.bin", digest, ca_bundle=bundle, retries=2, backoff=0.01)
    message = caught.value.message
    assert f"the connection was cut after 150000 of {SIZE} bytes" in message and "IncompleteRead" not in message


def test_404_is_not_retried(world, bundle, tmp_path):
    url_path = "/files/fetch-tests/does-not-exist.bin"
    with pytest.raises(FetchError, match="HTTP 404") as caught:
        download(world.url.rstrip("/") + url_path, tmp_path / "a.bin", "0" * 64, ca_bundle=bundle, backoff=0.01)
    assert url_path in str(caught.value)
    assert len(requests_for(world, url_path)) == 1
    assert list(tmp_path.iterdir()) == []


def test_sha256_mismatch_leaves_nothing_behind(world, bundle, served, tmp_path):
    url, url_path, content, digest = served
    wrong = "f" * 64
    with pytest.raises(FetchError) as caught:
        download(url, tmp_path / "dl" / "a.bin", wrong, ca_bundle=bundle, backoff=0.01)
    message = str(caught.value)
    assert url in message and wrong in message and digest in message
    assert list((tmp_path / "dl").iterdir()) == []


def test_certificate_failure_says_so_and_how_to_fix_it(world, served, tmp_path):
    url, url_path, content, digest = served
    with pytest.raises(FetchError) as caught:
        download(url, tmp_path / "a.bin", digest, ca_bundle=Path(certifi.where()), backoff=0.01)
    host = url.split("/")[2]
    assert f"certificate verify failed for {host}" in str(caught.value)
    assert "--ca-bundle" in caught.value.hint and "NPUENV_CA_BUNDLE" in caught.value.hint


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_host_suggests_a_mirror(bundle, tmp_path):
    port = closed_port()
    url = f"https://127.0.0.1:{port}/files/x.bin"
    with pytest.raises(FetchError) as caught:
        download(url, tmp_path / "a.bin", "0" * 64, ca_bundle=bundle, retries=1, backoff=0.01)
    assert f"cannot reach 127.0.0.1:{port}" in str(caught.value)
    assert f"NPUENV_MIRRORS='https://127.0.0.1:{port}/=https://your-mirror/'" in caught.value.hint
    assert list(tmp_path.iterdir()) == []


# --- the package index --------------------------------------------------------------------------

def a_wheel_on_the_index(world) -> tuple[str, Path]:
    projects = world.server.wheels_by_project()
    if not projects:
        pytest.skip("the world serves no wheels")
    project, wheels = sorted(projects.items())[0]
    return project, wheels[0]


def test_find_in_index_returns_the_absolute_url(world, bundle):
    project, wheel = a_wheel_on_the_index(world)
    asked_as = project.replace("-", "_").upper()  # PEP 503 normalisation on our side
    found = find_in_index(world.url.rstrip("/") + "/simple/", asked_as, wheel.name, ca_bundle=bundle)
    assert found == f"{world.url.rstrip('/')}/files/wheels/{quote(wheel.name)}"


def test_find_in_index_lists_what_is_there(world, bundle):
    project, wheel = a_wheel_on_the_index(world)
    near_miss = wheel.name[: -len(".whl")] + "0.whl"  # a typo in a spec: the file it meant is named closest
    files = len(world.server.wheels_by_project()[project])
    with pytest.raises(FetchError) as caught:
        find_in_index(world.url + "/simple", project, near_miss, ca_bundle=bundle)
    assert f"{near_miss} is not on" in str(caught.value) and f"({files} files there; closest: " in str(caught.value)
    assert wheel.name in str(caught.value)


def test_find_in_index_unknown_package(world, bundle):
    with pytest.raises(FetchError, match="No.Such_Project is not on the index") as caught:
        find_in_index(world.url + "/simple/", "No.Such_Project", "x.whl", ca_bundle=bundle)
    assert "/simple/no-such-project/" in str(caught.value)


# --- a server that ignores Range (the world's honours it) --------------------------------------

class _IgnoresRange(http.server.BaseHTTPRequestHandler):
    body = bytes(range(256)) * 1000
    ranges: list = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.ranges.append(self.headers.get("Range"))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def ignores_range(tmp_path):
    ca = make_ca(tmp_path / "ca")
    _IgnoresRange.ranges = []
    with serve_https(_IgnoresRange, ca, "/f.bin") as url:
        yield url, ca.ca_pem


def test_a_server_ignoring_range_gets_the_file_written_afresh(ignores_range, tmp_path):
    url, ca_pem = ignores_range
    body = _IgnoresRange.body
    (tmp_path / "f.bin.part").write_bytes(body[:5000])
    download(url, tmp_path / "f.bin", hashlib.sha256(body).hexdigest(), ca_bundle=ca_pem, backoff=0.01)
    assert (tmp_path / "f.bin").read_bytes() == body
    assert _IgnoresRange.ranges == ["bytes=5000-"]


# --- a local mirror: file:// URLs and a folder laid out as an index ------------------------------------


def test_a_file_url_is_copied_and_verified(tmp_path):
    source = tmp_path / "mirror dir" / "torch_npu.whl"
    source.parent.mkdir()
    content = os.urandom(SIZE)
    source.write_bytes(content)
    url = "file://" + quote(str(source))
    seen = []
    dest = download(url, tmp_path / "out" / "torch_npu.whl", hashlib.sha256(content).hexdigest(),
                    ca_bundle=tmp_path / "unused.pem", progress=lambda done, total: seen.append((done, total)))
    assert dest.read_bytes() == content and seen[-1] == (SIZE, SIZE)
    with pytest.raises(FetchError, match="sha256 mismatch"):
        download(url, tmp_path / "out" / "other.whl", "0" * 64, ca_bundle=tmp_path / "unused.pem")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["torch_npu.whl"]  # no .part left
    with pytest.raises(FetchError, match="cannot read") as caught:
        download(url + ".gone", tmp_path / "out" / "gone.whl", "0" * 64, ca_bundle=tmp_path / "unused.pem")
    assert "local mirror" in caught.value.hint


@pytest.mark.parametrize("layout", ["index.html", "files"])
def test_find_in_a_local_index(tmp_path, layout):
    """A folder laid out as a PEP 503 simple index (what `uv` reads as file://), or one folder per project."""
    project = tmp_path / "simple" / "torch-npu"
    project.mkdir(parents=True)
    name = "torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    if layout == "index.html":
        (project / "index.html").write_text(f'<html><body><a href="../../files/{name}#sha256=ab">{name}</a></body>')
    else:
        (project / name).write_bytes(b"wheel")
    found = find_in_index("file://" + str(tmp_path / "simple"), "torch_npu", name, ca_bundle=tmp_path / "x.pem")
    where = tmp_path / "files" / name if layout == "index.html" else project / name
    assert found == "file://" + quote(str(where))
    with pytest.raises(FetchError, match="is not on the index"):
        find_in_index("file://" + str(tmp_path / "simple"), "no-such", name, ca_bundle=tmp_path / "x.pem")


@pytest.mark.parametrize("name", ["torch_npu", "Torch-NPU", "a.b_c--d", "PyYAML", "zope.interface", "x"])
def test_pep503_normalize_agrees_with_packaging(name):
    from packaging.utils import canonicalize_name

    from npuenv.pep503 import normalize

    assert normalize(name) == canonicalize_name(name)
