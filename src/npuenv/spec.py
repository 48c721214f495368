"""The spec: a YAML file saying what to fetch (pinned), patch, install and create. Loaded, merged along
`extends:` and validated here; every problem is reported at once with file, line and key path."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import yaml

from . import schema as s
from .errors import SpecError
from .yamlpos import Document, KeyPath, Loc, TooLarge, describe_error, load

if TYPE_CHECKING:
    from .steps.build import Build
    from .steps.copy import Copy
    from .steps.env import EnvSpec
    from .steps.overlay import Overlay
    from .steps.patch import Patch
    from .steps.repo import Repo
    from .steps.wheel import Wheel


TLS_HINT = ("To trust an extra CA (corporate proxy, private mirror), pass it with --ca-bundle FILE: npuenv "
            "adds it to the public roots and hands the bundle to git, uv and curl.")
SPEC_HINT = ("Each line above names the file, line and key. The default spec, "
             "env_specs/mindspeed-mm-internvl2.5.yaml, shows every section.")


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
    sections: Dict[str, Any] = field(default_factory=dict)  # of step kinds that have no field above

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
              checked: Iterable[str] = (), kinds: Optional[Sequence[Any]] = None) -> Spec:
    """Load, merge (`extends:`) and validate a spec. A bare name resolves in `spec_dir`.

    `checked`: digests (`Spec.digest`) of merged specs that passed every check before; a spec with one of
    them skips the PEP 440/508/427 parsing (see `schema.Checker`), everything else is checked as always.
    `kinds`: the step kinds whose sections the spec may have (default: npuenv.steps.KINDS)."""
    if kinds is None:
        from .steps import KINDS as kinds
    spec_dir = Path(spec_dir) if spec_dir is not None else builtin_spec_dir()
    if is_bare_name(path_or_name):
        path = spec_dir / f"{path_or_name}.yaml"
        shown = s.shown(path)
        if not path.is_file():
            raise SpecError([f"no spec named {str(path_or_name)!r} in {s.shown(spec_dir)}"],
                            _available_hint(spec_dir))
    else:
        path, shown = Path(path_or_name), str(path_or_name)
    doc = _load_chain(path.resolve(), shown, spec_dir, ())
    digest = content_digest(doc.data)
    return _validate(doc, path.resolve(), digest, digest not in set(checked), kinds)


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


def available_specs(spec_dir: Path) -> List[str]:
    """Names of the specs in `spec_dir` (file names without .yaml)."""
    return sorted(p.stem for p in Path(spec_dir).glob("*.yaml")) if Path(spec_dir).is_dir() else []


def _available_hint(spec_dir: Path) -> str:
    names = available_specs(spec_dir)
    listed = ", ".join(names) if names else "(none)"
    return f"Specs in {s.shown(Path(spec_dir))}: {listed}. Give one of these names or a path to a .yaml file."


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
                         f"got {s.kind_of(doc.data)}"], SPEC_HINT)
    return doc


def _load_chain(path: Path, shown: str, spec_dir: Path, stack: Tuple[Path, ...]) -> Document:
    """Load `path` and everything it extends, merged; the result has no `extends` key."""
    doc = _load_file(path, shown, spec_dir)
    if "extends" not in doc.data:
        return _merge(Document({}, {(): doc.locs[()]}, []), doc)
    ref = doc.data.pop("extends")
    loc = doc.locs[("extends",)]
    if not isinstance(ref, str) or not ref:
        raise SpecError([f"{loc.shown}:{loc.line} extends: expected a spec name or path, got {s.kind_of(ref)}"],
                        _available_hint(spec_dir))
    base = _resolve_extends(ref, path, loc, spec_dir)
    chain = stack + (path,)
    if base in chain:
        shown_chain = " -> ".join(s.shown(p) for p in chain + (base,))
        raise SpecError([f"{loc.shown}:{loc.line} extends: cycle: {shown_chain}"],
                        "Specs may extend each other in a chain, never in a circle.")
    return _merge(_load_chain(base, s.shown(base), spec_dir, chain), doc)


def _resolve_extends(ref: str, path: Path, loc: Loc, spec_dir: Path) -> Path:
    if is_bare_name(ref):
        candidates = [path.parent / f"{ref}.yaml", spec_dir / f"{ref}.yaml"]
    else:
        candidates = [path.parent / ref]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = " and ".join(s.shown(c) for c in candidates)
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


# --- the sections every spec has (each step kind declares its own: npuenv.steps.<kind>.parse) ------


def _indexes(ck: s.Checker, data: dict) -> Dict[str, str]:
    out = {}
    for name, url in s.entries(ck, ("indexes",), data.get("indexes")):
        checked = s.https(ck, ("indexes", name), url)
        if checked is not None:
            out[name] = checked
    return out


def _mirrors(ck: s.Checker, data: dict) -> Tuple[Tuple[str, str], ...]:
    value = data.get("mirrors")
    if value is None or not s.mapping(ck, ("mirrors",), value):
        return ()
    from .mirrors import replacement_url, url_problem

    out = []
    for prefix, replacement in value.items():
        if s.is_tls_key(prefix):
            continue
        kp = ("mirrors", prefix)
        new = s.string(ck, kp, replacement)
        if new is None:
            continue
        new = replacement_url(new)
        problem = url_problem(prefix, local_ok=False) or url_problem(new, local_ok=True)
        if problem:
            ck.add(kp, s.HTTP_REFUSED if "http:// is refused" in problem else problem)
            continue
        out.append((prefix, new))
    return tuple(out)


SPEC_KEYS = ("name", "description", "index", "indexes", "mirrors", "extends")  # the rest: one per step kind


def top_keys(kinds: Sequence[Any]) -> tuple[str, ...]:
    """Every top-level key a spec may have: its own, and the section of each step kind."""
    return (*SPEC_KEYS, *(kind.section for kind in kinds if kind.section))


def _validate(doc: Document, file: Path, digest: str, pep: bool, kinds: Sequence[Any]) -> Spec:
    ck = s.Checker(doc.locs, pep)
    for kp, loc, message in doc.problems:
        ck.problems.append((loc.shown, loc.line, f"{loc.shown}:{loc.line} {s.show_path(kp) or '(top)'}: "
                                                 f"{message}"))
    data = doc.data
    s.check_tls_keys(ck, (), data)
    top = top_keys(kinds)
    for key in data:
        if key not in top and not s.is_tls_key(key):
            ck.add((key,), s.unknown_key(key, [k for k in top if k != "extends"]))
    spec = _build(ck, data, file, digest, kinds)
    if ck.problems:
        problems = [text for _f, _l, text in sorted(ck.problems, key=lambda p: (p[0], p[1]))]
        tls = any(s.TLS_REFUSED in p or s.HTTP_REFUSED in p for p in problems)
        raise SpecError(problems, f"{SPEC_HINT} {TLS_HINT}" if tls else SPEC_HINT)
    return spec


def _build(ck: s.Checker, data: dict, file: Path, digest: str, kinds: Sequence[Any]) -> Spec:
    """The spec's own keys, then each kind's section in registry order (a kind sees the sections before it:
    copies see repos, env sees repos and wheels). Sections without a Spec field go to Spec.sections."""
    needs_index = any(data.get(k.section) is not None for k in kinds if k.needs_index)
    parsed: Dict[str, Any] = {"name": s.scalar(ck, data, "name", s.name, True),
                              "description": s.scalar(ck, data, "description", s.string, False) or "",
                              "index": s.scalar(ck, data, "index", s.https, needs_index) or "",
                              "mirrors": _mirrors(ck, data), "indexes": _indexes(ck, data)}
    for kind in kinds:
        if kind.section is not None:
            parsed[kind.section] = kind.parse(ck, data, parsed)
    own = {f.name for f in fields(Spec)}
    return Spec(file=file, raw=copy.deepcopy(data), digest=digest, **{k: v for k, v in parsed.items() if k in own},
                sections={k: v for k, v in parsed.items() if k not in own})
