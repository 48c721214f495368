"""The spec's schema checks: a Checker that collects every problem with its file, line and key path, and
the checks of single values (a URL, a commit, a relative path, a requirement ...) that each step kind's
section is built from. The kinds declare their sections with these (npuenv.steps.<kind>.parse)."""

from __future__ import annotations

import datetime
import difflib
import os
import posixpath
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

from .yamlpos import KeyPath, Loc


NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


PYTHON_RE = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")


PACKAGE_RE = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$", re.IGNORECASE)


PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


ARCHES = ("aarch64", "x86_64")


TLS_KEYS = {"verify", "sslverify", "verifyssl", "tlsverify", "verifytls", "noverify", "sslnoverify",
             "insecure", "allowinsecure", "skipverify", "skiptlsverify"}


TLS_REFUSED = ("npuenv never turns off TLS verification: a spec cannot ask for it. If a proxy re-signs "
               "TLS or a mirror uses a private CA, trust that CA with --ca-bundle instead")


HTTP_REFUSED = ("http:// is refused: without TLS nothing proves who sent the bytes. Use https:// (for a "
                "server with a private or corporate CA, pass that CA with --ca-bundle)")


Check = Callable[["Checker", KeyPath, Any], Any]


Schema = Dict[str, Tuple[Check, bool]]


class Checker:
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
        elif PLAIN_KEY_RE.match(part):
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace('"', '\\"') + '"]'
    return out


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    names = {str: "a string", list: "a list", dict: "a mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def is_tls_key(key: str) -> bool:
    return isinstance(key, str) and re.sub(r"[-_ ]", "", key.lower()) in TLS_KEYS


def check_tls_keys(ck: Checker, kp: KeyPath, value: Any) -> None:
    """`verify: false`, `insecure: true` and the like, anywhere: refused, with the reason."""
    items: Iterable = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        if is_tls_key(key):
            ck.add(kp + (key,), TLS_REFUSED)
        else:
            check_tls_keys(ck, kp + (key,), item)


def mapping(ck: Checker, kp: KeyPath, value: Any) -> bool:
    if isinstance(value, dict):
        return True
    ck.add(kp, f"expected a mapping, got {kind_of(value)}")
    return False


def fields(ck: Checker, kp: KeyPath, value: Any, schema: Schema) -> Dict[str, Any]:
    """Check a mapping against `schema` (key -> (check, required)); return the checked values."""
    if not mapping(ck, kp, value):
        return {}
    for key in value:
        if key not in schema and not is_tls_key(key):
            ck.add(kp + (key,), unknown_key(key, list(schema)))
    out: Dict[str, Any] = {}
    for key, (check, required) in schema.items():
        if key in value:
            out[key] = check(ck, kp + (key,), value[key])
        elif required:
            ck.add(kp + (key,), "missing (required)", at=kp)
    return out


def unknown_key(key: str, valid: List[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        return f"unknown key {key!r}: did you mean {close[0]!r}?"
    return f"unknown key {key!r}; valid keys here: {', '.join(valid)}"


def entries(ck: Checker, kp: KeyPath, value: Any) -> List[Tuple[str, Any]]:
    """The named entries of a section (repos, wheels, ...), with their names checked."""
    if value is None or not mapping(ck, kp, value):
        return []
    out = []
    for name, item in value.items():
        if is_tls_key(name):
            continue
        if not NAME_RE.match(name):
            ck.add(kp + (name,), f"the name {name!r} must match {NAME_RE.pattern} "
                                 "(lowercase letters, digits, '.', '_', '-')")
        out.append((name, item))
    return out


def list_at(ck: Checker, kp: KeyPath, value: Any, item: Check) -> Tuple[Any, ...]:
    if not isinstance(value, list):
        ck.add(kp, f"expected a list, got {kind_of(value)}")
        return ()
    return tuple(item(ck, kp + (i,), v) for i, v in enumerate(value))


def list_of(item: Check) -> Check:
    return lambda ck, kp, value: list_at(ck, kp, value, item)


def string(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
    if isinstance(value, str):
        return value
    quote = " (write it in quotes)" if isinstance(value, (int, float, datetime.date)) \
        and not isinstance(value, bool) else ""
    ck.add(kp, f"expected a string, got {kind_of(value)}{quote}")
    return None


def nonempty(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = string(ck, kp, value)
    if text is not None and not text.strip():
        ck.add(kp, "must not be empty")
        return None
    return text


def matching(pattern: Any, problem: str, text_of: Optional[Check] = None) -> Check:
    """A string (or what `text_of` reads) that `pattern` matches; else `problem`, formatted with {text!r}."""
    def check(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
        text = (text_of or string)(ck, kp, value)
        if text is not None and not pattern.match(text):
            ck.add(kp, problem.format(text=text))
            return None
        return text
    return check


def boolean(ck: Checker, kp: KeyPath, value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    ck.add(kp, f"expected true or false, got {kind_of(value)}")
    return None


def version_text(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
    """A version must be a string: YAML reads 3.10 as the float 3.1."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = ck.loc(kp).text or str(value)
        ck.add(kp, f'YAML reads {text} as the number {value!r}: write "{text}" in quotes')
        return None
    return nonempty(ck, kp, value)


python = matching(PYTHON_RE, 'expected a Python version like "3.10", got {text!r}', text_of=version_text)


def parsed_by(parse: Callable[[str], Any], problem: Callable[[str, ValueError], str],
              text_of: Optional[Check] = None) -> Check:
    """A string that `parse` accepts (packaging's parsers raise ValueError subclasses); else `problem`.
    Only when the spec is checked in full (ck.pep): `parse` imports packaging, which a spec that passed
    before does not pay for."""
    def check(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
        text = (text_of or nonempty)(ck, kp, value)
        if text is None or not ck.pep:
            return text
        try:
            parse(text)
        except ValueError as exc:
            ck.add(kp, problem(text, exc))
            return None
        return text
    return check


def _version(text: str) -> None:
    from packaging.version import Version

    Version(text)


def _specifier_set(text: str) -> None:
    from packaging.specifiers import SpecifierSet

    SpecifierSet(text)


class _HttpRefused(ValueError):
    pass


def _requirement(text: str) -> None:
    from packaging.requirements import Requirement

    req = Requirement(text)
    if req.url and urlsplit(req.url).scheme.lower() == "http":
        raise _HttpRefused(HTTP_REFUSED)


version = parsed_by(_version, lambda text, exc: f"{text!r} is not a valid version (PEP 440)", version_text)
specifier = parsed_by(_specifier_set, lambda text, exc: f"{text!r} is not a version condition such as '>=59' or "
                                                        "'>=5,<7'")
requirement = parsed_by(_requirement, lambda text, exc: HTTP_REFUSED if isinstance(exc, _HttpRefused) else
                        f"not a valid requirement (PEP 508): {str(exc).splitlines()[0]}")


name = matching(NAME_RE, "{text!r} must match " + NAME_RE.pattern.replace("{", "{{").replace("}", "}}")
                + " (lowercase letters, digits, '.', '_', '-')")


def https(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = string(ck, kp, value)
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


commit = matching(COMMIT_RE, "expected a full commit id, 40 lowercase hex digits, got {text!r} "
                           "(a branch or tag name goes in `ref`)")
_sha256 = matching(SHA256_RE, "expected a sha256: 64 hex digits, got {text!r}")


def sha256(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
    text = _sha256(ck, kp, value)
    return text.lower() if text is not None else None


def relpath(where: str) -> Check:
    """A relative, normalized path without '..': npuenv never writes outside `where`."""

    def check(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
        text = nonempty(ck, kp, value)
        if text is None:
            return None
        problem = relpath_problem(text, where)
        if problem:
            ck.add(kp, problem)
            return None
        return text

    return check


def relpath_problem(text: str, where: str) -> str:
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


def choice(*choices: str) -> Check:
    def check(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
        text = string(ck, kp, value)
        if text is not None and text not in choices:
            ck.add(kp, f"expected one of {', '.join(repr(c) for c in choices)}, got {text!r}")
            return None
        return text

    return check


def ref(names: Iterable[str], kind: str, section: str) -> Check:
    """A reference to an entry of another section: `no repo named 'foo'; repos are: a, b`."""
    known = list(names)

    def check(ck: Checker, kp: KeyPath, value: Any) -> Optional[str]:
        text = string(ck, kp, value)
        if text is not None and text not in known:
            listed = ", ".join(known) if known else f"(no {section} are defined)"
            ck.add(kp, f"no {kind} named {text!r}; {section} are: {listed}")
            return None
        return text

    return check


package = matching(PACKAGE_RE, "{text!r} is not a valid package name")


def patch_file(ck: Checker, kp: KeyPath, value: Any) -> Optional[Path]:
    """Relative to the directory of the spec file that gave it; must exist."""
    text = nonempty(ck, kp, value)
    if text is None:
        return None
    path = (ck.loc(kp).path.parent / text).resolve()
    if not path.is_file():
        ck.add(kp, f"no such patch file: {shown(path)} (paths are relative to the spec file's folder)")
        return None
    return path


def arches(ck: Checker, kp: KeyPath, value: Any) -> Tuple[str, ...]:
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


def command(ck: Checker, kp: KeyPath, value: Any) -> Tuple[str, ...]:
    """An argument list (never a shell string: npuenv does not run commands through a shell)."""
    if isinstance(value, str):
        ck.add(kp, "give the command as a list of arguments, e.g. [cmake, --build, build]")
        return ()
    found = list_at(ck, kp, value, nonempty)
    if isinstance(value, list) and not value:
        ck.add(kp, "must not be empty")
    return tuple(i for i in found if i is not None)


def scalar(ck: Checker, data: dict, key: str, check: Check, required: bool) -> Any:
    """A top-level key's value, checked; a required key that is missing is a problem."""
    if key in data:
        return check(ck, (key,), data[key])
    if required:
        ck.add((key,), "missing (required)", at=())
    return None


def shown(path: Path) -> str:
    """The path relative to the current directory when it lies below it, else the absolute path."""
    absolute = str(path.resolve()) if path.exists() else str(path.absolute())
    try:
        relative = os.path.relpath(absolute)
    except ValueError:
        return absolute
    return absolute if relative.startswith("..") else relative
