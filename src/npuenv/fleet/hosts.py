"""The nodes of a fleet: a hosts.yaml, or a plain list of SSH config aliases (one per line).

hosts.yaml:
    defaults: {user: ma-user, root: /home/ma-user/work/alice}   # optional, for every node
    nodes:
      node1: {host: 192.168.0.1}                               # host: what ssh connects to (an alias too)
      node2: {host: 192.168.0.2, port: 2222, root: /home/ma-user/work/bob}
    # or nodes: [box1, box2]: SSH config aliases, everything else from ~/.ssh/config
    # npuenv: the command that starts npuenv on the node, a list or a string (default `npuenv`, found on the
    #         PATH init.sh gives: `uv tool install` puts it in ROOT/NAME/.local/bin)
A plain file of aliases (`box1`, `box2`, comments with #) is the same as that list. What a node leaves
unset comes from ssh_config (user, port, keys, ProxyJump) as Fabric reads it; `root` unset is the
person's default workspace on that node (/home/ma-user/work/$NPUENV_USER).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .. import schema as s
from ..errors import UsageError

NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]*$")


@dataclass(frozen=True)
class Node:
    name: str
    host: str
    user: Optional[str] = None
    port: Optional[int] = None
    root: Optional[str] = None
    npuenv: tuple[str, ...] = ("npuenv",)


def _port(ck: s.Checker, kp: Any, value: Any) -> Optional[int]:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    ck.add(kp, f"expected a port number 1–65535, got {value!r}")
    return None


def _absolute(ck: s.Checker, kp: Any, value: Any) -> Optional[str]:
    text = s.nonempty(ck, kp, value)
    if text is not None and not text.startswith("/"):
        ck.add(kp, f"{text!r}: give the node's workspace as an absolute path")
        return None
    return text


def _host(ck: s.Checker, kp: Any, value: Any) -> Optional[str]:
    text = s.nonempty(ck, kp, value)
    if text is not None and not NODE_RE.match(text):
        ck.add(kp, f"{text!r} is not a host name, address or SSH alias")
        return None
    return text


def _command(ck: s.Checker, kp: Any, value: Any) -> Optional[tuple[str, ...]]:
    import shlex

    try:
        words = shlex.split(value) if isinstance(value, str) else value
    except ValueError as exc:
        ck.add(kp, f"{value!r}: {exc}")
        return None
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
        ck.add(kp, f"expected the command that starts npuenv on the node, e.g. npuenv or "
                   f"[uv, run, --project, /home/ma-user/work/npuenv, npuenv], got {value!r}")
        return None
    return tuple(words)


FIELDS: s.Schema = {"host": (_host, False), "user": (s.nonempty, False), "port": (_port, False),
                    "root": (_absolute, False), "npuenv": (_command, False)}


def read_hosts(path: Path) -> list[Node]:
    """The nodes a hosts file names, every problem reported at once with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"-H {path}: cannot read the hosts file ({exc.strerror})",
                         hint="give a hosts.yaml or a file of SSH aliases, one per line") from None
    if path.suffix not in (".yaml", ".yml"):
        return _aliases(path, text)
    return _yaml(path)


def _aliases(path: Path, text: str) -> list[Node]:
    nodes, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        alias = line.split("#", 1)[0].strip()
        if not alias:
            continue
        if not NODE_RE.match(alias):
            problems.append(f"{path}:{number}: {alias!r} is not an SSH alias or host")
        nodes.append(Node(alias, alias))
    return _checked(path, nodes, problems)


def _yaml(path: Path) -> list[Node]:
    from ..yamlpos import load

    try:
        doc = load(path, str(path))
    except Exception as exc:  # noqa: BLE001 - YAML errors, too large: one message either way
        raise UsageError(f"{path}: not YAML ({str(exc).splitlines()[0]})", hint="fix the file at that line") from None
    ck = s.Checker(doc.locs, pep=False)
    data = doc.data if isinstance(doc.data, dict) else {}
    if not isinstance(doc.data, dict):
        ck.add((), "expected a mapping with `nodes:` (and optional `defaults:`)")
    for key in data:
        if key not in ("nodes", "defaults"):
            ck.add((key,), s.unknown_key(key, ["nodes", "defaults"]))
    defaults = s.fields(ck, ("defaults",), data.get("defaults") or {}, {k: v for k, v in FIELDS.items() if k != "host"})
    nodes = _yaml_nodes(ck, data.get("nodes"), defaults)
    return _checked(path, nodes, [text for _f, _l, text in ck.problems])


def _yaml_nodes(ck: s.Checker, value: Any, defaults: dict) -> list[Node]:
    if isinstance(value, list):
        names = [_host(ck, ("nodes", i), v) for i, v in enumerate(value)]
        return [Node(n, n, **defaults) for n in names if n]
    if not isinstance(value, dict):
        ck.add(("nodes",), "expected the nodes: a mapping of name -> {host, user, port, root}, or a list of SSH aliases")
        return []
    nodes = []
    for name, item in value.items():
        checked = s.fields(ck, ("nodes", name), item if item is not None else {}, FIELDS)
        merged = {**defaults, **{k: v for k, v in checked.items() if v is not None}}
        nodes.append(Node(str(name), merged.pop("host", None) or str(name), **merged))
    return nodes


def _checked(path: Path, nodes: list[Node], problems: list[str]) -> list[Node]:
    seen: dict[str, int] = {}
    for node in nodes:
        seen[node.name] = seen.get(node.name, 0) + 1
    problems += [f"{path}: the node {name!r} is named {count} times" for name, count in seen.items() if count > 1]
    if not nodes and not problems:
        problems.append(f"{path}: names no node")
    if problems:
        raise UsageError("\n  ".join([f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the hosts file:",
                                      *problems]), hint="each node: a name, and host/user/port/root where ssh_config "
                                                        "does not already say them")
    return nodes
