"""Where each value of a JSON text is, by key path, so errors can point at a line and column.

``json.loads`` gives values but no positions. This scanner walks text that already decoded
successfully and records, for every object member, the offset of its key (for objects and
arrays) or of its value (for scalars), and for every array element the offset of the element.
It also reports keys that appear twice in one object, which ``json.loads`` silently resolves
to the last one.
"""

from __future__ import annotations

import json
import re

from gateway.graph.diagnostics import Path

# Appended to a member's path, it names the position of the key itself.
KEY = "\0key"

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SCALAR = re.compile(r"[^,\]}\s]+")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.positions: dict[Path, int] = {}
        self.duplicates: list[Path] = []

    def ws(self, pos: int) -> int:
        match = _WS.match(self.text, pos)
        return pos if match is None else match.end()

    def value(self, pos: int, path: Path) -> int:
        pos = self.ws(pos)
        ch = self.text[pos]
        if ch == "{":
            return self.members(pos + 1, path)
        if ch == "[":
            return self.elements(pos + 1, path)
        pattern = _STRING if ch == '"' else _SCALAR
        match = pattern.match(self.text, pos)
        assert match is not None  # the text decoded as JSON, so a value starts here
        return match.end()

    def members(self, pos: int, path: Path) -> int:
        seen: set[str] = set()
        pos = self.ws(pos)
        while self.text[pos] != "}":
            key_match = _STRING.match(self.text, pos)
            assert key_match is not None
            key = _decode_key(key_match.group())
            member = (*path, key)
            if key in seen:
                self.duplicates.append(member)
            seen.add(key)
            value_at = self.ws(self.ws(key_match.end()) + 1)  # past ":"
            # Point at the key of a container member, at the value of a scalar one.
            self.positions[member] = pos if self.text[value_at] in "{[" else value_at
            self.positions[(*member, KEY)] = pos
            pos = self.ws(self.value(value_at, member))
            if self.text[pos] == ",":
                pos = self.ws(pos + 1)
        return pos + 1

    def elements(self, pos: int, path: Path) -> int:
        index = 0
        pos = self.ws(pos)
        while self.text[pos] != "]":
            self.positions[(*path, index)] = self.ws(pos)
            pos = self.ws(self.value(pos, (*path, index)))
            if self.text[pos] == ",":
                pos = self.ws(pos + 1)
            index += 1
        return pos + 1


def _decode_key(quoted: str) -> str:
    key = json.loads(quoted)
    assert isinstance(key, str)
    return key


def json_positions(text: str) -> tuple[dict[Path, int], list[Path]]:
    """(offset by key path, paths of keys repeated in their object) for valid JSON ``text``."""
    scanner = _Scanner(text)
    scanner.value(0, ())
    return scanner.positions, scanner.duplicates
