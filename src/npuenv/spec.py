"""The spec: a YAML file saying what to fetch (pinned), patch, install and create. Loaded, merged along
`extends:` and validated here; every problem is reported at once with file, line and key path."""

from __future__ import annotations

import copy
import datetime
import difflib
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import unquote, urlsplit

import yaml

from .errors import SpecError
from .yamlpos import Document, KeyPath, Loc, TooLarge, describe_error, load

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_PYTHON_RE = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")
_PACKAGE_RE = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$", re.IGNORECASE)
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
ARCHES = ("aarch64", "x86_64")
_TLS_KEYS = {"verify", "sslverify", "verifyssl", "tlsverify", "verifytls", "noverify", "sslnoverify",
             "insecure", "allowinsecure", "skipverify", "skiptlsverify"}

TLS_REFUSED = ("npuenv never turns off TLS verification: a spec cannot ask for it. If a proxy re-signs "
               "TLS or a mirror uses a private CA, trust that CA with --ca-bundle instead")
HTTP_REFUSED = ("http:// is refused: without TLS nothing proves who sent the bytes. Use https:// (for a "
                "server with a private or corporate CA, pass that CA with --ca-bundle)")
TLS_HINT = ("To trust an extra CA (corporate proxy, private mirror), pass it with --ca-bundle FILE: npuenv "
            "adds it to the public roots and hands the bundle to git, uv and curl.")
SPEC_HINT = ("Each line above names the file, line and key. The default spec, "
             "env_specs/mindspeed-mm-internvl2.5.yaml, shows every section.")


@dataclass(frozen=True)
class Repo:
    name: str
    url: str
    commit: str
    path: str
    ref: Optional[str] = None
    submodules: bool = False


@dataclass(frozen=True)
class Copy:
    name: str
    repo: str
    path: str
    to: str


@dataclass(frozen=True)
class Condition:
    """`when: {pkgconfig: libavcodec, version: ">=59"}`: true when the installed module's version matches."""

    pkgconfig: str
    version: str


@dataclass(frozen=True)
class Patch:
    name: str
    repo: str
    file: Path
    when: Optional[Condition] = None


@dataclass(frozen=True)
class Overlay:
    name: str
    from_repo: str
    from_path: str
    to_repo: str
    to_path: str


@dataclass(frozen=True)
class WheelFile:
    filename: str
    sha256: str
    url: Optional[str] = None


@dataclass(frozen=True)
class Wheel:
    name: str
    package: str
    version: str
    source: str
    files: Dict[str, WheelFile]


@dataclass(frozen=True)
class Build:
    """A wheel built from a repo by the spec's commands (or taken prebuilt), cached and installed."""

    name: str
    package: str
    strategy: str  # source | wheel | auto
    repo: Optional[str]
    commands: Tuple[Tuple[str, ...], ...]
    wheels: Optional[str]  # glob, relative to the repo, of what the commands produce
    clean: Tuple[str, ...]  # folders in the repo the build makes and cannot make twice
    key: Tuple[str, ...]  # versions that enter the cache key: target-env packages or pkgconfig:<module>
    tools: Tuple[str, ...]
    pkgconfig: Tuple[str, ...]
    packages: Tuple[str, ...]  # requirements the target env must meet before building
    check: str  # Python run by the target interpreter after installing, everywhere
    prebuilt: Optional[Wheel] = None
    glibc: Optional[str] = None  # the prebuilt wheel's minimum glibc
    cann_check: str = ""  # Python that needs CANN (e.g. `import apex` imports torch_npu): run where CANN is
    version: Optional[str] = None  # the version a built wheel with an invalid one is given ("0.1+ascend")


@dataclass(frozen=True)
class Source:
    """`env.sources.torch: {index: pytorch-cpu, arch: [x86_64]}`: take a package from a named index only."""

    package: str
    index: str
    arch: Tuple[str, ...] = ()  # empty: every architecture


@dataclass(frozen=True)
class EnvSpec:
    venv: str
    project: Optional[str]
    editable: Tuple[str, ...]
    requirements: Tuple[Tuple[str, str], ...]
    packages: Tuple[str, ...]
    wheels: Tuple[str, ...]
    sources: Tuple[Source, ...] = ()


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    file: Path
    python: str
    index: str
    mirrors: Tuple[Tuple[str, str], ...]
    repos: Dict[str, Repo]
    copies: Dict[str, Copy]
    patches: Dict[str, Patch]
    overlays: Dict[str, Overlay]
    wheels: Dict[str, Wheel]
    env: Optional[EnvSpec]
    dirs: Tuple[str, ...]
    raw: dict
    builds: Dict[str, Build] = field(default_factory=dict)
    indexes: Dict[str, str] = field(default_factory=dict)  # name -> URL: more indexes, for env.sources
    digest: str = ""  # of the merged content (content_digest): a spec that passed every check once

    def fragment(self, section: str, name: Optional[str] = None) -> dict:
        """A deep copy of the raw data of one entry (`fragment("repos", "mindspeed")`) or section.

        A section that is absent gives {}; a scalar or list section gives {section: value}.
        Raises KeyError for a named entry that does not exist."""
        value = self.raw.get(section)
        key = section
        if name is not None:
            value = (value or {})[name]
            key = name
        if value is None:
            return {}
        return copy.deepcopy(value if isinstance(value, dict) else {key: value})


# --- finding and loading files ------------------------------------------------------------------------


def builtin_spec_dir() -> Path:
    """env_specs/ of the checkout when running from one, else the copy packaged inside npuenv."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "env_specs").is_dir():
        return checkout / "env_specs"
    return Path(__file__).resolve().parent / "env_specs"


def load_spec(path_or_name: Union[str, Path], *, spec_dir: Optional[Path] = None,
              checked: Iterable[str] = ()) -> Spec:
    """Load, merge (`extends:`) and validate a spec. A bare name resolves in `spec_dir`.

    `checked`: digests (`Spec.digest`) of merged specs that passed every check before; a spec with one of
    them skips the PEP 440/508/427 parsing (see `_Checker`), everything else is checked as always."""
    spec_dir = Path(spec_dir) if spec_dir is not None else builtin_spec_dir()
    if is_bare_name(path_or_name):
        path = spec_dir / f"{path_or_name}.yaml"
        shown = _shown(path)
        if not path.is_file():
            raise SpecError([f"no spec named {str(path_or_name)!r} in {_shown(spec_dir)}"],
                            _available_hint(spec_dir))
    else:
        path, shown = Path(path_or_name), str(path_or_name)
    doc = _load_chain(path.resolve(), shown, spec_dir, ())
    digest = content_digest(doc.data)
    return _validate(doc, path.resolve(), digest, pep=digest not in set(checked))


def content_digest(data: Any) -> str:
    """The merged spec's content, with the versions of what checks it, hashed."""
    import hashlib
    import json

    import packaging

    from . import __version__

    blob = json.dumps([data, __version__, packaging.__version__], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def is_bare_name(ref: Union[str, Path]) -> bool:
    text = str(ref)
    return (not isinstance(ref, Path) and "/" not in text and os.sep not in text
            and not text.endswith((".yaml", ".yml")))


def _shown(path: Path) -> str:
    """The path relative to the current directory when it lies below it, else the absolute path."""
    absolute = str(path.resolve()) if path.exists() else str(path.absolute())
    try:
        relative = os.path.relpath(absolute)
    except ValueError:
        return absolute
    return absolute if relative.startswith("..") else relative


def available_specs(spec_dir: Path) -> List[str]:
    """Names of the specs in `spec_dir` (file names without .yaml)."""
    return sorted(p.stem for p in Path(spec_dir).glob("*.yaml")) if Path(spec_dir).is_dir() else []


def _available_hint(spec_dir: Path) -> str:
    names = available_specs(spec_dir)
    listed = ", ".join(names) if names else "(none)"
    return f"Specs in {_shown(Path(spec_dir))}: {listed}. Give one of these names or a path to a .yaml file."


def _load_file(path: Path, shown: str, spec_dir: Path) -> Document:
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise SpecError([f"{shown}: spec file {what}"], _available_hint(spec_dir))
    try:
        doc = load(path, shown)
    except yaml.YAMLError as exc:
        raise SpecError([describe_error(exc, shown)], "Fix the YAML syntax at that line and column.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{shown}: cannot read the spec: {exc}"], "") from exc
    except TooLarge as exc:
        raise SpecError([str(exc)], "Write the spec out plainly; npuenv refuses what no spec needs.") from exc
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise SpecError([f"{shown}:{doc.locs[()].line}: expected a mapping of keys at the top level, "
                         f"got {_kind(doc.data)}"], SPEC_HINT)
    return doc


def _load_chain(path: Path, shown: str, spec_dir: Path, stack: Tuple[Path, ...]) -> Document:
    """Load `path` and everything it extends, merged; the result has no `extends` key."""
    doc = _load_file(path, shown, spec_dir)
    if "extends" not in doc.data:
        return _merge(Document({}, {(): doc.locs[()]}, []), doc)
    ref = doc.data.pop("extends")
    loc = doc.locs[("extends",)]
    if not isinstance(ref, str) or not ref:
        raise SpecError([f"{loc.shown}:{loc.line} extends: expected a spec name or path, got {_kind(ref)}"],
                        _available_hint(spec_dir))
    base = _resolve_extends(ref, path, loc, spec_dir)
    chain = stack + (path,)
    if base in chain:
        shown_chain = " -> ".join(_shown(p) for p in chain + (base,))
        raise SpecError([f"{loc.shown}:{loc.line} extends: cycle: {shown_chain}"],
                        "Specs may extend each other in a chain, never in a circle.")
    return _merge(_load_chain(base, _shown(base), spec_dir, chain), doc)


def _resolve_extends(ref: str, path: Path, loc: Loc, spec_dir: Path) -> Path:
    if is_bare_name(ref):
        candidates = [path.parent / f"{ref}.yaml", spec_dir / f"{ref}.yaml"]
    else:
        candidates = [path.parent / ref]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = " and ".join(_shown(c) for c in candidates)
    raise SpecError([f"{loc.shown}:{loc.line} extends: no spec {ref!r} (looked for {looked})"],
                    _available_hint(spec_dir))


# --- merging ------------------------------------------------------------------------------------------


def _merge(base: Document, over: Document) -> Document:
    """`over` on top of `base`: mappings merge, lists and scalars replace, null removes the key."""
    data = copy.deepcopy(base.data)
    locs = dict(base.locs)
    _merge_into(data, locs, over.data, over.locs, ())
    locs[()] = over.locs[()]
    return Document(data, locs, base.problems + over.problems)


def _merge_into(data: dict, locs: Dict[KeyPath, Loc], over: dict, over_locs: Dict[KeyPath, Loc],
                kp: KeyPath) -> None:
    for key, value in over.items():
        sub = kp + (key,)
        if value is None:
            data.pop(key, None)
            _drop_locs(locs, sub)
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            locs[sub] = over_locs[sub]
            _merge_into(data[key], locs, value, over_locs, sub)
        else:
            data[key] = _without_nulls(value)
            _drop_locs(locs, sub)
            locs.update((k, v) for k, v in over_locs.items() if k[:len(sub)] == sub)


def _drop_locs(locs: Dict[KeyPath, Loc], prefix: KeyPath) -> None:
    for key in [k for k in locs if k[:len(prefix)] == prefix]:
        del locs[key]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# --- the checker --------------------------------------------------------------------------------------


Check = Callable[["_Checker", KeyPath, Any], Any]
Schema = Dict[str, Tuple[Check, bool]]


class _Checker:
    """Collects problems, each placed at the file and line that gave the value.

    `pep`: also parse versions, requirements, conditions and wheel file names with `packaging` (PEP 440,
    508, 427). A spec whose content passed those checks before needs no second parse: importing
    `packaging` and compiling its grammars costs more than the rest of an up-to-date bootstrap."""

    def __init__(self, locs: Dict[KeyPath, Loc], pep: bool = True) -> None:
        self.locs = locs
        self.pep = pep
        self.problems: List[Tuple[str, int, str]] = []

    def loc(self, kp: KeyPath) -> Loc:
        while kp not in self.locs:
            kp = kp[:-1]
        return self.locs[kp]

    def add(self, kp: KeyPath, message: str, at: Optional[KeyPath] = None) -> None:
        loc = self.loc(kp if at is None else at)
        where = f"{loc.shown}:{loc.line}"
        self.problems.append((loc.shown, loc.line, f"{where} {show_path(kp)}: {message}" if kp
                              else f"{where}: {message}"))

    def count(self) -> int:
        return len(self.problems)


def show_path(kp: KeyPath) -> str:
    """('repos', 'x', 'url') -> 'repos.x.url'; list items as [i]; odd keys (URLs) as ["..."]."""
    out = ""
    for part in kp:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY_RE.match(part):
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace('"', '\\"') + '"]'
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    names = {str: "a string", list: "a list", dict: "a mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _is_tls_key(key: str) -> bool:
    return isinstance(key, str) and re.sub(r"[-_ ]", "", key.lower()) in _TLS_KEYS


def _check_tls_keys(ck: _Checker, kp: KeyPath, value: Any) -> None:
    """`verify: false`, `insecure: true` and the like, anywhere: refused, with the reason."""
    items: Iterable = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        if _is_tls_key(key):
            ck.add(kp + (key,), TLS_REFUSED)
        else:
            _check_tls_keys(ck, kp + (key,), item)


def _mapping(ck: _Checker, kp: KeyPath, value: Any) -> bool:
    if isinstance(value, dict):
        return True
    ck.add(kp, f"expected a mapping, got {_kind(value)}")
    return False


def _fields(ck: _Checker, kp: KeyPath, value: Any, schema: Schema) -> Dict[str, Any]:
    """Check a mapping against `schema` (key -> (check, required)); return the checked values."""
    if not _mapping(ck, kp, value):
        return {}
    for key in value:
        if key not in schema and not _is_tls_key(key):
            ck.add(kp + (key,), _unknown_key(key, list(schema)))
    out: Dict[str, Any] = {}
    for key, (check, required) in schema.items():
        if key in value:
            out[key] = check(ck, kp + (key,), value[key])
        elif required:
            ck.add(kp + (key,), "missing (required)", at=kp)
    return out


def _unknown_key(key: str, valid: List[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        return f"unknown key {key!r}: did you mean {close[0]!r}?"
    return f"unknown key {key!r}; valid keys here: {', '.join(valid)}"


def _entries(ck: _Checker, kp: KeyPath, value: Any) -> List[Tuple[str, Any]]:
    """The named entries of a section (repos, wheels, ...), with their names checked."""
    if value is None or not _mapping(ck, kp, value):
        return []
    out = []
    for name, item in value.items():
        if _is_tls_key(name):
            continue
        if not NAME_RE.match(name):
            ck.add(kp + (name,), f"the name {name!r} must match {NAME_RE.pattern} "
                                 "(lowercase letters, digits, '.', '_', '-')")
        out.append((name, item))
    return out


def _list(ck: _Checker, kp: KeyPath, value: Any, item: Check) -> Tuple[Any, ...]:
    if not isinstance(value, list):
        ck.add(kp, f"expected a list, got {_kind(value)}")
        return ()
    return tuple(item(ck, kp + (i,), v) for i, v in enumerate(value))


def _list_of(item: Check) -> Check:
    return lambda ck, kp, value: _list(ck, kp, value, item)


# --- value checks -------------------------------------------------------------------------------------


def _string(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    if isinstance(value, str):
        return value
    quote = " (write it in quotes)" if isinstance(value, (int, float, datetime.date)) \
        and not isinstance(value, bool) else ""
    ck.add(kp, f"expected a string, got {_kind(value)}{quote}")
    return None


def _nonempty(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _string(ck, kp, value)
    if text is not None and not text.strip():
        ck.add(kp, "must not be empty")
        return None
    return text


def _bool(ck: _Checker, kp: KeyPath, value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    ck.add(kp, f"expected true or false, got {_kind(value)}")
    return None


def _version_text(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    """A version must be a string: YAML reads 3.10 as the float 3.1."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = ck.loc(kp).text or str(value)
        ck.add(kp, f'YAML reads {text} as the number {value!r}: write "{text}" in quotes')
        return None
    return _nonempty(ck, kp, value)


def _python(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _version_text(ck, kp, value)
    if text is not None and not _PYTHON_RE.match(text):
        ck.add(kp, f'expected a Python version like "3.10", got {text!r}')
        return None
    return text


def _version(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _version_text(ck, kp, value)
    if text is None or not ck.pep:
        return text
    from packaging.version import InvalidVersion, Version

    try:
        Version(text)
    except InvalidVersion:
        ck.add(kp, f"{text!r} is not a valid version (PEP 440)")
        return None
    return text


def _name(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _string(ck, kp, value)
    if text is not None and not NAME_RE.match(text):
        ck.add(kp, f"{text!r} must match {NAME_RE.pattern} (lowercase letters, digits, '.', '_', '-')")
        return None
    return text


def _https(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _string(ck, kp, value)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() == "http":
        ck.add(kp, HTTP_REFUSED)
        return None
    if parts.scheme.lower() != "https" or not parts.netloc:
        ck.add(kp, f"expected an https:// URL, got {text!r}")
        return None
    return text


def _commit(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _string(ck, kp, value)
    if text is not None and not _COMMIT_RE.match(text):
        ck.add(kp, f"expected a full commit id, 40 lowercase hex digits, got {text!r} "
                   "(a branch or tag name goes in `ref`)")
        return None
    return text


def _sha256(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _string(ck, kp, value)
    if text is not None and not _SHA256_RE.match(text):
        ck.add(kp, f"expected a sha256: 64 hex digits, got {text!r}")
        return None
    return text.lower() if text is not None else None


def _relpath(where: str) -> Check:
    """A relative, normalized path without '..': npuenv never writes outside `where`."""

    def check(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
        text = _nonempty(ck, kp, value)
        if text is None:
            return None
        problem = _relpath_problem(text, where)
        if problem:
            ck.add(kp, problem)
            return None
        return text

    return check


def _relpath_problem(text: str, where: str) -> str:
    if text.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", text):
        return f"{text!r} is absolute: give a path relative to {where} (npuenv never writes outside it)"
    if ".." in text.split("/"):
        return f"{text!r} contains '..': paths stay inside {where} (npuenv never writes outside it)"
    normal = posixpath.normpath(text)
    if normal == ".":
        return f"{text!r} names {where} itself: give a path inside it"
    if normal != text:
        return f"{text!r} is not normalized: write {normal!r}"
    return ""


def _choice(*choices: str) -> Check:
    def check(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
        text = _string(ck, kp, value)
        if text is not None and text not in choices:
            ck.add(kp, f"expected one of {', '.join(repr(c) for c in choices)}, got {text!r}")
            return None
        return text

    return check


def _ref(names: Iterable[str], kind: str, section: str) -> Check:
    """A reference to an entry of another section: `no repo named 'foo'; repos are: a, b`."""
    known = list(names)

    def check(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
        text = _string(ck, kp, value)
        if text is not None and text not in known:
            listed = ", ".join(known) if known else f"(no {section} are defined)"
            ck.add(kp, f"no {kind} named {text!r}; {section} are: {listed}")
            return None
        return text

    return check


def _requirement(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _nonempty(ck, kp, value)
    if text is None or not ck.pep:
        return text
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        ck.add(kp, f"not a valid requirement (PEP 508): {str(exc).splitlines()[0]}")
        return None
    if req.url and urlsplit(req.url).scheme.lower() == "http":
        ck.add(kp, HTTP_REFUSED)
        return None
    return text


def _package(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _string(ck, kp, value)
    if text is not None and not _PACKAGE_RE.match(text):
        ck.add(kp, f"{text!r} is not a valid package name")
        return None
    return text


def _patch_file(ck: _Checker, kp: KeyPath, value: Any) -> Optional[Path]:
    """Relative to the directory of the spec file that gave it; must exist."""
    text = _nonempty(ck, kp, value)
    if text is None:
        return None
    path = (ck.loc(kp).path.parent / text).resolve()
    if not path.is_file():
        ck.add(kp, f"no such patch file: {_shown(path)} (paths are relative to the spec file's folder)")
        return None
    return path


# --- sections -----------------------------------------------------------------------------------------


REPO = {"url": (_https, True), "ref": (_nonempty, False), "commit": (_commit, True),
        "path": (_relpath("the workspace root"), True), "submodules": (_bool, False)}


def _repos(ck: _Checker, data: dict) -> Dict[str, Repo]:
    repos = {}
    for name, item in _entries(ck, ("repos",), data.get("repos")):
        f = _fields(ck, ("repos", name), item, REPO)
        repos[name] = Repo(name, f.get("url"), f.get("commit"), f.get("path"), f.get("ref"),
                           bool(f.get("submodules") or False))
    _check_repo_paths(ck, repos)
    return repos


def _check_repo_paths(ck: _Checker, repos: Dict[str, Repo]) -> None:
    seen: Dict[str, str] = {}
    for name, repo in repos.items():
        if repo.path is None:
            continue
        if repo.path in seen:
            other = ("repos", seen[repo.path], "path")
            loc = ck.loc(other)
            ck.add(("repos", name, "path"), f"{repo.path!r} is also the path of repo {seen[repo.path]!r} "
                                            f"({loc.shown}:{loc.line}): each repo needs its own folder")
        else:
            seen[repo.path] = name


def _copies(ck: _Checker, data: dict, repos: Dict[str, Repo]) -> Dict[str, Copy]:
    schema = {"repo": (_ref(repos, "repo", "repos"), True), "path": (_relpath("the repo"), True),
              "to": (_relpath("the workspace root"), True)}
    out = {}
    for name, item in _entries(ck, ("copies",), data.get("copies")):
        f = _fields(ck, ("copies", name), item, schema)
        out[name] = Copy(name, f.get("repo"), f.get("path"), f.get("to"))
    return out


def _specifier(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _nonempty(ck, kp, value)
    if text is None or not ck.pep:
        return text
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        ck.add(kp, f"{text!r} is not a version condition such as '>=59' or '>=5,<7'")
        return None
    return text


CONDITION = {"pkgconfig": (_package, True), "version": (_specifier, True)}


def _condition(ck: _Checker, kp: KeyPath, value: Any) -> Optional[Condition]:
    f = _fields(ck, kp, value, CONDITION)
    return Condition(f["pkgconfig"], f["version"]) if f.get("pkgconfig") and f.get("version") else None


def _patches(ck: _Checker, data: dict, repos: Dict[str, Repo]) -> Dict[str, Patch]:
    schema = {"repo": (_ref(repos, "repo", "repos"), True), "file": (_patch_file, True),
              "when": (_condition, False)}
    out = {}
    for name, item in _entries(ck, ("patches",), data.get("patches")):
        f = _fields(ck, ("patches", name), item, schema)
        out[name] = Patch(name, f.get("repo"), f.get("file"), f.get("when"))
    return out


def _overlays(ck: _Checker, data: dict, repos: Dict[str, Repo]) -> Dict[str, Overlay]:
    end = {"repo": (_ref(repos, "repo", "repos"), True), "path": (_relpath("the repo"), True)}
    side: Check = lambda c, kp, value: _fields(c, kp, value, end)  # noqa: E731
    schema = {"from": (side, True), "to": (side, True)}
    out = {}
    for name, item in _entries(ck, ("overlays",), data.get("overlays")):
        f = _fields(ck, ("overlays", name), item, schema)
        src, dst = f.get("from") or {}, f.get("to") or {}
        out[name] = Overlay(name, src.get("repo"), src.get("path"), dst.get("repo"), dst.get("path"))
    return out


WHEEL = {"package": (_package, True), "version": (_version, True), "source": (_choice("index", "url"), True),
         "files": (lambda ck, kp, value: _wheel_files(ck, kp, value), True)}
WHEEL_FILE = {"filename": (_nonempty, False), "url": (_https, False), "sha256": (_sha256, True)}


def _wheels(ck: _Checker, data: dict) -> Dict[str, Wheel]:
    out = {}
    for name, item in _entries(ck, ("wheels",), data.get("wheels")):
        kp = ("wheels", name)
        f = _fields(ck, kp, item, WHEEL)
        wheel = Wheel(name, f.get("package"), f.get("version"), f.get("source"), f.get("files") or {})
        _check_wheel_files(ck, kp, wheel)
        out[name] = wheel
    return out


def _wheel_files(ck: _Checker, kp: KeyPath, value: Any) -> Dict[str, WheelFile]:
    if not _mapping(ck, kp, value):
        return {}
    if not value:
        ck.add(kp, f"give at least one file, keyed by architecture ({', '.join(ARCHES)})")
    out = {}
    for arch, item in value.items():
        if _is_tls_key(arch):
            continue
        if arch not in ARCHES:
            ck.add(kp + (arch,), f"unknown architecture {arch!r}: use the name `uname -m` prints on "
                                 f"Linux ({', '.join(ARCHES)})")
        out[arch] = _wheel_file(ck, kp + (arch,), item)
    return out


def _wheel_file(ck: _Checker, kp: KeyPath, item: Any) -> WheelFile:
    f = _fields(ck, kp, item, WHEEL_FILE)
    filename, url = f.get("filename"), f.get("url")
    if filename is None and url is not None:
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    elif filename is None and isinstance(item, dict) and "filename" not in item and "url" not in item:
        ck.add(kp + ("filename",), "missing (required when the file has no url)", at=kp)
    return WheelFile(filename, f.get("sha256"), url)


def _check_wheel_files(ck: _Checker, kp: KeyPath, wheel: Wheel) -> None:
    """Each file: a wheel of this package and version for its architecture; a url when source is url."""
    for arch, wf in wheel.files.items():
        fkp = kp + ("files", arch)
        if wheel.source == "url" and wf.url is None and (fkp + ("url",)) not in ck.locs:
            ck.add(fkp, "source is 'url' but this file has no url (give one, or use source: index)")
        if wf.filename is None or wheel.package is None or wheel.version is None or not ck.pep:
            continue
        problem = _wheel_filename_problem(wf, wheel, arch)
        if problem:
            ck.add(fkp + ("filename",), problem)
        elif wf.url is not None and unquote(urlsplit(wf.url).path).rsplit("/", 1)[-1] != wf.filename:
            ck.add(fkp + ("url",), f"the url does not end in the file name {wf.filename!r}")


def _wheel_filename_problem(wf: WheelFile, wheel: Wheel, arch: str) -> str:
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        name, version, _build, tags = parse_wheel_filename(wf.filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        return f"not a wheel file name: {exc}"
    if canonicalize_name(name) != canonicalize_name(wheel.package):
        return f"{wf.filename!r} is a wheel of {name!r}, not of {wheel.package!r}"
    if version != Version(wheel.version):
        return f"{wf.filename!r} is version {version}, not {wheel.version}"
    if arch in ARCHES and not any(t.platform == "any" or t.platform.endswith(arch) for t in tags):
        return f"{wf.filename!r} is not a wheel for {arch}"
    return ""


def _env(ck: _Checker, data: dict, repos: Dict[str, Repo], wheels: Dict[str, Wheel],
         indexes: Dict[str, str]) -> Optional[EnvSpec]:
    if data.get("env") is None:
        return None
    repo = _ref(repos, "repo", "repos")
    requirement = {"repo": (repo, True), "file": (_relpath("the repo"), True)}
    schema = {"venv": (_relpath("the workspace root"), True), "project": (repo, False),
              "editable": (_list_of(repo), False),
              "requirements": (_list_of(lambda c, kp, v: _fields(c, kp, v, requirement)), False),
              "packages": (_list_of(_requirement), False),
              "wheels": (_list_of(_ref(wheels, "wheel", "wheels")), False),
              "sources": (lambda c, kp, v: _sources(c, kp, v, indexes), False)}
    f = _fields(ck, ("env",), data["env"], schema)
    reqs = tuple((r.get("repo"), r.get("file")) for r in f.get("requirements", ()))
    return EnvSpec(f.get("venv"), f.get("project"), f.get("editable", ()), reqs, f.get("packages", ()),
                   f.get("wheels", ()), f.get("sources", ()))


def _arches(ck: _Checker, kp: KeyPath, value: Any) -> Tuple[str, ...]:
    """One architecture or a list of them, each a name `uname -m` prints."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        ck.add(kp, f"expected an architecture or a list of them ({', '.join(ARCHES)})")
        return ()
    out = []
    for i, item in enumerate(items):
        at = kp if isinstance(value, str) else kp + (i,)
        if item not in ARCHES:
            ck.add(at, f"unknown architecture {item!r}: use the name `uname -m` prints on Linux "
                       f"({', '.join(ARCHES)})")
        else:
            out.append(item)
    return tuple(out)


def _sources(ck: _Checker, kp: KeyPath, value: Any, indexes: Dict[str, str]) -> Tuple[Source, ...]:
    """`sources: {torch: {index: pytorch-cpu, arch: [x86_64]}}`: a package taken from a named index."""
    if not _mapping(ck, kp, value):
        return ()
    schema = {"index": (_ref(indexes, "index", "indexes"), True), "arch": (_arches, False)}
    out = []
    for package, item in value.items():
        if _is_tls_key(package):
            continue
        if _package(ck, kp + (package,), package) is None:
            continue
        f = _fields(ck, kp + (package,), item, schema)
        if f.get("index"):
            out.append(Source(package, f["index"], f.get("arch") or ()))
    return tuple(out)


def _indexes(ck: _Checker, data: dict) -> Dict[str, str]:
    out = {}
    for name, url in _entries(ck, ("indexes",), data.get("indexes")):
        checked = _https(ck, ("indexes", name), url)
        if checked is not None:
            out[name] = checked
    return out


def _command(ck: _Checker, kp: KeyPath, value: Any) -> Tuple[str, ...]:
    """An argument list (never a shell string: npuenv does not run commands through a shell)."""
    if isinstance(value, str):
        ck.add(kp, "give the command as a list of arguments, e.g. [cmake, --build, build]")
        return ()
    items = _list(ck, kp, value, _nonempty)
    if isinstance(value, list) and not value:
        ck.add(kp, "must not be empty")
    return tuple(i for i in items if i is not None)


def _key_item(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _nonempty(ck, kp, value)
    if text is None:
        return None
    name = text.split(":", 1)[1] if text.startswith("pkgconfig:") else text
    if not _PACKAGE_RE.match(name):
        ck.add(kp, f"{text!r}: name a target-env package (torch) or a pkg-config module (pkgconfig:libavcodec)")
        return None
    return text


PREBUILT = {"package": (_package, True), "version": (_version, True), "glibc": (_version, False),
            "files": (lambda ck, kp, value: _wheel_files(ck, kp, value), True)}


def _prebuilt(ck: _Checker, kp: KeyPath, value: Any) -> Tuple[Optional[Wheel], Optional[str]]:
    f = _fields(ck, kp, value, PREBUILT)
    wheel = Wheel(kp[-2], f.get("package"), f.get("version"), "index", f.get("files") or {})
    _check_wheel_files(ck, kp, wheel)
    return wheel, f.get("glibc")


def _pkgconfig_module(ck: _Checker, kp: KeyPath, value: Any) -> Optional[str]:
    """A pkg-config module, optionally with a version condition: libavcodec>=58,<61."""
    text = _nonempty(ck, kp, value)
    if text is None:
        return None
    match = re.match(r"^([A-Za-z0-9_.+-]+?)\s*((?:[<>=!~].*)?)$", text)
    if not match:
        ck.add(kp, f"{text!r}: write a pkg-config module, optionally with a condition (libavcodec>=58,<61)")
        return None
    if match.group(2) and ck.pep:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(match.group(2))
        except InvalidSpecifier:
            ck.add(kp, f"{text!r}: {match.group(2)!r} is not a version condition such as '>=58,<61'")
            return None
    return text


def _requires(ck: _Checker, kp: KeyPath, value: Any) -> Dict[str, Any]:
    schema = {"tools": (_list_of(_nonempty), False), "pkgconfig": (_list_of(_pkgconfig_module), False),
              "packages": (_list_of(_requirement), False)}
    return _fields(ck, kp, value, schema)


def _builds(ck: _Checker, data: dict, repos: Dict[str, Repo]) -> Dict[str, Build]:
    schema = {"package": (_package, True), "strategy": (_choice("source", "wheel", "auto"), False),
              "repo": (_ref(repos, "repo", "repos"), False), "commands": (_list_of(_command), False),
              "wheels": (_relpath("the repo"), False), "clean": (_list_of(_relpath("the repo")), False),
              "key": (_list_of(_key_item), False), "requires": (_requires, False), "check": (_string, False),
              "cann_check": (_string, False), "version": (_version, False), "prebuilt": (_prebuilt, False)}
    out = {}
    for name, item in _entries(ck, ("builds",), data.get("builds")):
        kp = ("builds", name)
        f = _fields(ck, kp, item, schema)
        strategy = f.get("strategy") or "source"
        prebuilt, glibc = f.get("prebuilt") or (None, None)
        needs = {"source": ("repo", "commands", "wheels"), "wheel": ("prebuilt",),
                 "auto": ("repo", "commands", "wheels", "prebuilt")}.get(strategy, ())
        for key in needs:
            if isinstance(item, dict) and key not in item:
                ck.add(kp + (key,), f"missing (required with strategy {strategy!r})", at=kp)
        req = f.get("requires") or {}
        out[name] = Build(name, f.get("package"), strategy, f.get("repo"), tuple(f.get("commands") or ()),
                          f.get("wheels"), tuple(f.get("clean") or ()), tuple(f.get("key") or ()),
                          tuple(req.get("tools") or ()), tuple(req.get("pkgconfig") or ()),
                          tuple(req.get("packages") or ()), f.get("check") or "", prebuilt, glibc,
                          f.get("cann_check") or "", f.get("version"))
    return out


def _mirrors(ck: _Checker, data: dict) -> Tuple[Tuple[str, str], ...]:
    value = data.get("mirrors")
    if value is None or not _mapping(ck, ("mirrors",), value):
        return ()
    from .mirrors import replacement_url, url_problem

    out = []
    for prefix, replacement in value.items():
        if _is_tls_key(prefix):
            continue
        kp = ("mirrors", prefix)
        new = _string(ck, kp, replacement)
        if new is None:
            continue
        new = replacement_url(new)
        problem = url_problem(prefix, local_ok=False) or url_problem(new, local_ok=True)
        if problem:
            ck.add(kp, HTTP_REFUSED if "http:// is refused" in problem else problem)
            continue
        out.append((prefix, new))
    return tuple(out)


TOP = ("name", "description", "python", "index", "indexes", "mirrors", "repos", "copies", "patches", "overlays",
       "wheels", "env", "builds", "dirs", "extends")


def _validate(doc: Document, file: Path, digest: str = "", pep: bool = True) -> Spec:
    ck = _Checker(doc.locs, pep)
    for kp, loc, message in doc.problems:
        ck.problems.append((loc.shown, loc.line, f"{loc.shown}:{loc.line} {show_path(kp) or '(top)'}: "
                                                 f"{message}"))
    data = doc.data
    _check_tls_keys(ck, (), data)
    for key in data:
        if key not in TOP and not _is_tls_key(key):
            ck.add((key,), _unknown_key(key, [k for k in TOP if k != "extends"]))
    spec = _build(ck, data, file, digest)
    if ck.problems:
        problems = [text for _f, _l, text in sorted(ck.problems, key=lambda p: (p[0], p[1]))]
        tls = any(TLS_REFUSED in p or HTTP_REFUSED in p for p in problems)
        raise SpecError(problems, f"{SPEC_HINT} {TLS_HINT}" if tls else SPEC_HINT)
    return spec


def _scalar(ck: _Checker, data: dict, key: str, check: Check, required: bool) -> Any:
    if key in data:
        return check(ck, (key,), data[key])
    if required:
        ck.add((key,), "missing (required)", at=())
    return None


def _build(ck: _Checker, data: dict, file: Path, digest: str = "") -> Spec:
    needs_index = any(data.get(k) is not None for k in ("wheels", "env", "builds"))
    name = _scalar(ck, data, "name", _name, True)
    description = _scalar(ck, data, "description", _string, False) or ""
    python = _scalar(ck, data, "python", _python, True)
    index = _scalar(ck, data, "index", _https, needs_index)
    mirrors = _mirrors(ck, data)
    repos = _repos(ck, data)
    wheels = _wheels(ck, data)
    dirs = _scalar(ck, data, "dirs", _list_of(_relpath("the workspace root")), False) or ()
    indexes = _indexes(ck, data)
    return Spec(name=name, description=description, file=file, python=python, index=index or "",
                mirrors=mirrors, repos=repos, copies=_copies(ck, data, repos),
                patches=_patches(ck, data, repos), overlays=_overlays(ck, data, repos), wheels=wheels,
                env=_env(ck, data, repos, wheels, indexes), dirs=tuple(dirs), raw=copy.deepcopy(data),
                builds=_builds(ck, data, repos), indexes=indexes, digest=digest)
