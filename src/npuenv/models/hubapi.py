"""The hub's revision info: which commit a revision is, and its files with sizes and hashes.

One GET of `{endpoint}/api/models/{repo}/revision/{revision}?blobs=true` (the call huggingface_hub's
model_info(files_metadata=True) makes). The downloads themselves go through huggingface_hub
(npuenv.models.download); this is what npuenv checks them against, and what the disk check adds up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from ..errors import ModelError

TIMEOUT = 60.0
ENDPOINT_HINT = ("set the hub with HF_ENDPOINT, or a mirror rule for https://huggingface.co/ "
                 "(spec `mirrors:`, NPUENV_MIRRORS or invoke config npuenv.mirrors)")


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: Optional[str]  # LFS files (weights): the hub's sha256 of the content
    blob_id: str  # the git blob id (sha1 of "blob <size>\0" + content): what regular files are checked by

    @property
    def lfs(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class RepoFiles:
    hub: str
    revision: str  # the commit
    files: tuple[HubFile, ...]

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)


def parse_revision_info(hub: str, data: Any) -> RepoFiles:
    """The API's JSON as RepoFiles; ModelError when it is not the hub's shape."""
    where = f"the hub's answer for {hub}"
    if not isinstance(data, dict) or not isinstance(data.get("sha"), str) or not isinstance(data.get("siblings"), list):
        raise ModelError(f"{where} has no commit (`sha`) or file list (`siblings`)",
                         hint=f"is the endpoint a Hugging Face hub or mirror? {ENDPOINT_HINT}")
    files = []
    for item in data["siblings"]:
        lfs = item.get("lfs") if isinstance(item, dict) else None
        try:
            files.append(HubFile(path=str(item["rfilename"]), size=int(item["size"]),
                                 sha256=str(lfs["sha256"]).lower() if isinstance(lfs, dict) else None,
                                 blob_id=str(item["blobId"])))
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"{where}: a file entry without rfilename, size or blobId: {item!r}",
                             hint="the endpoint must answer ?blobs=true with sizes, as the hub does; "
                                  + ENDPOINT_HINT) from None
    unsafe = [f.path for f in files if _unsafe(f.path)]
    if unsafe:
        raise ModelError(f"{where} names a file outside the model's folder: {unsafe[0]}",
                         hint="npuenv never writes outside the model's folder; check the endpoint")
    return RepoFiles(hub, data["sha"], tuple(sorted(files, key=lambda f: f.path)))


def _unsafe(path: str) -> bool:
    parts = path.split("/")
    return path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts)


def revision_url(endpoint: str, hub: str, revision: str) -> str:
    return f"{endpoint.rstrip('/')}/api/models/{hub}/revision/{quote(revision, safe='')}?blobs=true"


def revision_info(endpoint: str, hub: str, revision: str, ca_bundle: Path, token: str = "") -> RepoFiles:
    """Ask the hub; errors name the repo, the revision and what to do."""
    import requests

    url = revision_url(endpoint, hub, revision)
    try:
        resp = requests.get(url, timeout=TIMEOUT, verify=str(ca_bundle), headers={"Authorization": f"Bearer {token}"} if token else {})
    except requests.exceptions.SSLError as exc:
        raise ModelError(f"TLS to {endpoint} failed: {exc}",
                         hint="if a proxy or private mirror re-signs TLS, pass its CA with --ca-bundle FILE") from None
    except requests.exceptions.RequestException as exc:
        raise ModelError(f"cannot reach the hub at {endpoint}: {type(exc).__name__}", hint=ENDPOINT_HINT) from None
    if resp.status_code != 200:
        raise _status_error(resp, hub, revision, endpoint)
    try:
        data = resp.json()
    except ValueError:
        raise ModelError(f"{url} did not answer JSON", hint=ENDPOINT_HINT) from None
    return parse_revision_info(hub, data)


def _status_error(resp: Any, hub: str, revision: str, endpoint: str) -> ModelError:
    code = resp.headers.get("X-Error-Code", "")
    if code == "RevisionNotFound":
        return ModelError(f"{hub} has no revision {revision!r} on {endpoint}",
                          hint="check the model's `revision:` (a commit of the hub repo) or `ref:` in the spec")
    if code in ("RepoNotFound", "GatedRepo") or resp.status_code in (401, 403, 404):
        gated = code == "GatedRepo" or resp.status_code == 403
        what = "gated, needs a token" if gated else "no such model, or a private one" if resp.status_code == 401 \
            else "no such model"
        return ModelError(f"{hub}: {what} on {endpoint} (HTTP {resp.status_code})",
                          hint="set HF_TOKEN to a token that may read it" if gated else
                          "check the model's `hub:` id in the spec (OWNER/REPO, as on the hub's page); "
                          "a private model needs HF_TOKEN")
    return ModelError(f"the hub at {endpoint} answered HTTP {resp.status_code} for {hub}@{revision}",
                      hint="a server error: run the command again later")



def file_url(endpoint: str, hub: str, revision: str, path: str) -> str:
    return f"{endpoint.rstrip('/')}/{hub}/resolve/{revision}/{quote(path)}"


def remote_sha256(endpoint: str, hub: str, revision: str, item: HubFile, ca_bundle: Path, token: str = "") -> str:
    """The sha256 of a file at the hub: the hub's own for LFS files; a regular (small) file is read, and
    checked against its git blob id on the way."""
    import hashlib

    import requests

    if item.lfs:
        return str(item.sha256)
    url = file_url(endpoint, hub, revision, item.path)
    sha256, blob = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % item.size)  # noqa: S324 - git's id
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT, verify=str(ca_bundle),
                          headers={"Authorization": f"Bearer {token}"} if token else {}) as resp:
            resp.raise_for_status()
            for block in resp.iter_content(1 << 16):
                sha256.update(block)
                blob.update(block)
    except requests.exceptions.RequestException as exc:
        raise ModelError(f"cannot read {url}: {type(exc).__name__}", hint=ENDPOINT_HINT) from None
    if blob.hexdigest() != item.blob_id:
        raise ModelError(f"{url} is not the file the hub lists (git blob {blob.hexdigest()[:12]}…, listed "
                         f"{item.blob_id[:12]}…)", hint="the endpoint serves other content than it lists: check the mirror")
    return sha256.hexdigest()


def locked_entry(endpoint: str, hub: str, revision: str, ca_bundle: Path, token: str = "") -> dict:
    """What `invoke lock` records of a model: the resolved commit and every file's size and sha256."""
    repo = revision_info(endpoint, hub, revision, ca_bundle, token)
    return {"hub": hub, "revision": repo.revision,
            "files": {f.path: {"size": f.size, "sha256": remote_sha256(endpoint, hub, repo.revision, f, ca_bundle, token)}
                      for f in repo.files}}
