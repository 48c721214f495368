"""A YAML loader that remembers where every value came from (file and line) and refuses duplicate keys.

PyYAML's safe loader builds plain data and forgets positions. We compose the node graph instead and build
the data ourselves, recording a `Loc` for each key path: ("repos", "mindspeed", "commit") -> file, line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

KeyPath = Tuple[Union[str, int], ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml's parser when PyYAML has it (20x faster than the pure-Python one); both give node marks
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Loc:
    """Where a value was written: `line` is 1-based; `text` is the source text of a non-string scalar."""

    path: Path
    shown: str
    line: int
    text: str | None = None


@dataclass
class Document:
    """Plain data plus the location of each key path and the problems found while building it."""

    data: Any
    locs: Dict[KeyPath, Loc]
    problems: List[Tuple[KeyPath, Loc, str]]


class TooLarge(ValueError):
    """A file, or what its aliases expand to, beyond what any spec needs: refused before it costs memory."""


MAX_BYTES = 1 << 20  # the default spec is 6 KB
MAX_VALUES = 100_000  # values after aliases are expanded (a "billion laughs" file expands to 10^9)


def load(path: Path, shown: str) -> Document:
    """Load one YAML file. Raises OSError, UnicodeDecodeError, yaml.YAMLError (see `describe_error`) or
    TooLarge."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise TooLarge(f"{shown}: the file is {size} bytes; a spec is at most {MAX_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        builder = _Builder(loader, path, shown)
        root_line = node.start_mark.line + 1 if node is not None else 1
        doc = Document(None, {(): Loc(path, shown, root_line)}, builder.problems)
        doc.data = builder.build(node, (), doc.locs) if node is not None else None
        return doc
    finally:
        loader.dispose()


def describe_error(exc: yaml.YAMLError, shown: str) -> str:
    """'file:line:column: problem (context)' for a YAML syntax error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else shown
    return f"{where}: {problem}" + (f" ({context})" if context else "")


class _Builder:
    """Turns composed nodes into plain data, filling `locs` and collecting problems."""

    def __init__(self, loader: yaml.SafeLoader, path: Path, shown: str) -> None:
        self.loader = loader
        self.path = path
        self.shown = shown
        self.problems: List[Tuple[KeyPath, Loc, str]] = []
        self.active: set = set()
        self.values = 0  # built so far: aliases make a small file expand without bound

    def loc(self, node: Node, value_node: Node | None = None) -> Loc:
        text = None
        if isinstance(value_node, ScalarNode) and value_node.tag != "tag:yaml.org,2002:str":
            text = value_node.value
        return Loc(self.path, self.shown, node.start_mark.line + 1, text)

    def problem(self, kp: KeyPath, node: Node, message: str) -> None:
        self.problems.append((kp, self.loc(node), message))

    def build(self, node: Node, kp: KeyPath, locs: Dict[KeyPath, Loc]) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise TooLarge(f"{self.shown}:{node.start_mark.line + 1}: its aliases expand to more than {MAX_VALUES} "
                           "values (nested anchors?); a spec needs a few hundred")
        if id(node) in self.active:
            self.problem(kp, node, "a YAML alias refers to itself (recursive anchor)")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, kp, locs)
            if isinstance(node, SequenceNode):
                return self.sequence(node, kp, locs)
            return self.scalar(node, kp)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: Node, kp: KeyPath) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.problem(kp, node, f"YAML cannot read this value: {exc.problem}")
            return None

    def sequence(self, node: SequenceNode, kp: KeyPath, locs: Dict[KeyPath, Loc]) -> list:
        items = []
        for index, item in enumerate(node.value):
            locs[kp + (index,)] = self.loc(item, item)
            items.append(self.build(item, kp + (index,), locs))
        return items

    def mapping(self, node: MappingNode, kp: KeyPath, locs: Dict[KeyPath, Loc]) -> dict:
        data: dict = {}
        first_line: Dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, kp)
            if key is None:
                continue
            if key in data:
                self.problem(kp + (key,), key_node,
                             f"duplicate key {key!r} (first given on line {first_line[key]})")
                continue
            first_line[key] = key_node.start_mark.line + 1
            locs[kp + (key,)] = self.loc(key_node, value_node)
            data[key] = self.build(value_node, kp + (key,), locs)
        return data

    def key(self, key_node: Node, kp: KeyPath) -> str | None:
        if key_node.tag == _MERGE_TAG:
            self.problem(kp, key_node, "YAML merge keys (<<) are not supported: use `extends:` instead")
            return None
        if not isinstance(key_node, ScalarNode):
            self.problem(kp, key_node, "a key must be a plain string, not a list or mapping")
            return None
        key = self.scalar(key_node, kp)
        if not isinstance(key, str):
            self.problem(kp, key_node, f"YAML reads the key {key_node.value} as {key!r}, not a string: "
                                       f'write "{key_node.value}" in quotes')
            return None
        return key
