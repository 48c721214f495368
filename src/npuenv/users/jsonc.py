"""A small JSONC reader and editor (VS Code's settings.json): comments and trailing commas are kept.

The parser only finds positions; an edit splices new text into the original, so everything npuenv does
not change stays as it was, byte for byte. A document that cannot be parsed is reported with line and
column, never rewritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import JsoncError

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}


@dataclass
class Node:
    """A value in the text: `start`/`end` are offsets of its first and one-past-last character."""

    shape: str  # object | array | string | number | literal
    start: int
    end: int
    value: Any = None  # the Python value, for scalars
    members: list[Member] = field(default_factory=list)  # object
    items: list[Node] = field(default_factory=list)  # array


@dataclass
class Member:
    key: str
    key_start: int
    value: Node
    comma: Optional[int] = None  # offset of the ',' after the value, when there is one


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text, self.source, self.pos = text, source, 0

    def fail(self, problem: str, at: Optional[int] = None) -> JsoncError:
        line, column = position(self.text, self.pos if at is None else at)
        return JsoncError(problem, line, column, self.source)

    def skip(self) -> None:
        """Skip whitespace and comments."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r\n\ufeff":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def document(self) -> Optional[Node]:
        self.skip()
        if self.pos == len(self.text):
            return None
        node = self.value()
        self.skip()
        if self.pos < len(self.text):
            raise self.fail(f"unexpected {self.peek()!r} after the end of the top-level value")
        return node

    def value(self) -> Node:
        char = self.peek()
        if char == "{":
            return self.object()
        if char == "[":
            return self.array()
        if char == '"':
            start = self.pos
            return Node("string", start, self.string_end(), value=self.string_value(start))
        match = _NUMBER.match(self.text, self.pos)
        if match and char and char in "-0123456789":
            self.pos = match.end()
            return Node("number", match.start(), match.end(), value=json.loads(match.group()))
        for word, value in _LITERALS.items():
            if self.text.startswith(word, self.pos):
                start, self.pos = self.pos, self.pos + len(word)
                return Node("literal", start, self.pos, value=value)
        if not char:
            raise self.fail("unexpected end of the file: expected a value")
        raise self.fail(f"unexpected {char!r}: expected a value")

    def string_end(self) -> int:
        start, text = self.pos, self.text
        i = start + 1
        while i < len(text):
            char = text[i]
            if char == "\\":
                i += 2
            elif char == '"':
                self.pos = i + 1
                return self.pos
            elif char == "\n":
                raise self.fail("line break inside a string (missing closing quote?)", i)
            else:
                i += 1
        raise self.fail("unterminated string", start)

    def string_value(self, start: int) -> str:
        try:
            return json.loads(self.text[start:self.pos])
        except ValueError as exc:
            raise self.fail(f"invalid string: {exc.msg}", start) from None

    def object(self) -> Node:
        node = Node("object", self.pos, self.pos)
        self.pos += 1
        while True:
            self.skip()
            char = self.peek()
            if char == "}":
                break
            if char != '"':
                raise self.fail("expected a quoted key or '}'" if char
                                else "unexpected end of the file inside an object")
            key_start = self.pos
            self.string_end()
            key = self.string_value(key_start)
            self.skip()
            if self.peek() != ":":
                raise self.fail(f"expected ':' after the key {key!r}")
            self.pos += 1
            self.skip()
            member = Member(key, key_start, self.value())
            node.members.append(member)
            self.skip()
            if self.peek() == ",":
                member.comma = self.pos
                self.pos += 1
            elif self.peek() != "}":
                raise self.fail("expected ',' or '}' after a value" if self.peek()
                                else "unexpected end of the file inside an object")
        self.pos += 1
        node.end = self.pos
        return node

    def array(self) -> Node:
        node = Node("array", self.pos, self.pos)
        self.pos += 1
        while True:
            self.skip()
            if self.peek() == "]":
                break
            node.items.append(self.value())
            self.skip()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                raise self.fail("expected ',' or ']' after a value" if self.peek()
                                else "unexpected end of the file inside a list")
        self.pos += 1
        node.end = self.pos
        return node


def parse(text: str, source: str = "") -> Optional[Node]:
    """The document's top-level value with positions; None when it holds only whitespace and comments."""
    return _Parser(text, source).document()


def to_python(node: Optional[Node]) -> Any:
    if node is None:
        return None
    if node.shape == "object":
        return {m.key: to_python(m.value) for m in node.members}  # a repeated key: the last one wins
    if node.shape == "array":
        return [to_python(item) for item in node.items]
    return node.value


def loads(text: str, source: str = "") -> Any:
    """The document as Python values (an empty document is None)."""
    return to_python(parse(text, source))


# --- editing ------------------------------------------------------------------------------------------


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _indent_unit(text: str) -> str:
    match = re.search(r"^([ \t]+)\S", text, re.MULTILINE)
    if not match:
        return "    "  # what VS Code writes
    return "\t" if match.group(1).startswith("\t") else match.group(1)


def _line_indent(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    return re.match(r"[ \t]*", text[start:]).group()


def _starts_line(text: str, offset: int) -> bool:
    return text[text.rfind("\n", 0, offset) + 1:offset].strip() == ""


def _render(value: Any, indent: str, unit: str, newline: str) -> str:
    return json.dumps(value, indent=unit, ensure_ascii=False).replace("\n", newline + indent)


def _nest(keys: Sequence[str], value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def _last(node: Node, key: str) -> Optional[Member]:
    found = [m for m in node.members if m.key == key]
    return found[-1] if found else None


def _rest_of_line_is_blank(text: str, offset: int) -> int:
    """The end of the line at `offset` when only blanks or a // comment follow there, else -1."""
    end = text.find("\n", offset)
    end = len(text) if end < 0 else end
    rest = text[offset:end].strip()
    if rest and not rest.startswith("//"):
        return -1
    return end - 1 if text[offset:end].endswith("\r") else end


def _insert_member(text: str, obj: Node, key: str, value: Any) -> str:
    newline, unit = _newline(text), _indent_unit(text)
    outer = _line_indent(text, obj.start)
    if not obj.members:
        member = f"{json.dumps(key, ensure_ascii=False)}: {_render(value, outer + unit, unit, newline)}"
        tail = "" if "\n" in text[obj.start:obj.end] else newline + outer
        at = obj.start + 1
        return text[:at] + newline + outer + unit + member + tail + text[at:]
    first, last = obj.members[0], obj.members[-1]
    if not _starts_line(text, first.key_start):  # a one-line object: stay on the line
        member = f"{json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}"
        if last.comma is not None:
            return text[:last.comma + 1] + " " + member + "," + text[last.comma + 1:]
        return text[:last.value.end] + ", " + member + text[last.value.end:]
    indent = _line_indent(text, first.key_start)
    member = f"{json.dumps(key, ensure_ascii=False)}: {_render(value, indent, unit, newline)}"
    after = last.comma + 1 if last.comma is not None else last.value.end
    line_end = _rest_of_line_is_blank(text, after)
    at = line_end if line_end >= 0 else after
    trailing = "," if last.comma is not None else ""  # keep the file's trailing-comma habit
    text = text[:at] + newline + indent + member + trailing + text[at:]
    if last.comma is None:
        text = text[:last.value.end] + "," + text[last.value.end:]
    return text


def _replace_value(text: str, member: Member, value: Any) -> str:
    node = member.value
    rendered = _render(value, _line_indent(text, member.key_start), _indent_unit(text), _newline(text))
    return text[:node.start] + rendered + text[node.end:]


def _describe(node: Node) -> str:
    kinds = {"array": "a list", "string": "a string", "number": "a number"}
    return kinds.get(node.shape) or json.dumps(node.value)


def set_in(text: str, keys: Sequence[str], value: Any, source: str = "") -> str:
    """`text` with the value at `keys` (a path through nested objects) set; missing objects are made."""
    if not keys:
        raise ValueError("set_in needs at least one key")
    root = parse(text, source)
    if root is None:
        newline = _newline(text)
        lead = text if not text or text.endswith("\n") else text + newline
        return lead + _render(_nest(keys, value), "", _indent_unit(text), newline) + newline
    node = root
    for depth, key in enumerate(keys):
        if node.shape != "object":
            line, column = position(text, node.start)
            where = ".".join(json.dumps(k) for k in keys[:depth]) or "the top level"
            raise JsoncError(f"{where} is {_describe(node)}, expected an object {{...}}", line, column, source)
        member = _last(node, key)
        if member is None:
            return _insert_member(text, node, key, _nest(keys[depth + 1:], value))
        if depth == len(keys) - 1:
            if to_python(member.value) == value:
                return text
            return _replace_value(text, member, value)
        node = member.value
    raise AssertionError("unreachable")
