"""The tokens of the .fbp grammar and the JavaScript value semantics its actions have.

Each pattern is the character class of one rule of the reference grammar (npm ``fbp`` 1.8.0,
``grammar/fbp.peg``); numbers follow JavaScript (``parseFloat``, doubles, ``JSON.stringify``)
because that is what the reference's output holds.
"""

from __future__ import annotations

import json
import math
import re

NODE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_\-]*")
PORT_NAME = re.compile(r"[a-zA-Z_][a-zA-Z.0-9_]*")
COMPONENT = re.compile(r"[a-zA-Z/\-0-9_]*")
META = re.compile(r"[a-zA-Z/=_,0-9]+")
INDEX = re.compile(r"\[([0-9]+)\]")
SPACES = re.compile(r" *")
NEWLINE = "\n\r\u2028\u2029"
REST_OF_LINE = re.compile(r"[^\n\r\u2028\u2029]*")
# Possessive quantifiers: the PEG's repetitions never give characters back.
ANNOTATION = re.compile(r"# ++@([a-zA-Z0-9\-_]++) ++([a-zA-Z0-9\-_ .]++)[\n\r\u2028\u2029]")
JSON_WS = re.compile(r"[ \t\n\r]*")
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
JSON_STRING = re.compile(r'"(?:[^\x00-\x1f"\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')
JSON_WORDS = ("false", "null", "true")
JS_SAFE_INT = 2**53
ANON_RUN = re.compile(r"[^a-zA-Z0-9]+")
JS_FLOAT_PREFIX = re.compile(r"Infinity|[0-9]+(?:[eE][0-9]+)?")


def skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """End of ``pattern`` (one that can match empty) at ``pos``."""
    match = pattern.match(text, pos)
    return pos if match is None else match.end()


JS_SAFE_DIGITS = len(str(JS_SAFE_INT))  # more digits (JSON has no leading zeros): beyond 2**53


def js_int(text: str) -> int | float | None:
    # JavaScript numbers are doubles: integers beyond 2**53 are really the nearest double, and
    # one beyond the doubles is Infinity, which JSON.stringify writes as null. Long ones never
    # go through int(), which refuses more than sys.get_int_max_str_digits() digits.
    if len(text.lstrip("-")) <= JS_SAFE_DIGITS:
        value = int(text)
        if abs(value) <= JS_SAFE_INT:
            return value
    return js_float(text)


def js_index(text: str) -> int | None:
    # parseInt of a port index: also a double, so huge indices come out rounded, and one
    # beyond the doubles is Infinity, which the reference's JSON has as null: no index.
    if len(text) <= JS_SAFE_DIGITS:
        value = int(text)
        if value <= JS_SAFE_INT:
            return value
    rounded = float(text)
    return int(rounded) if math.isfinite(rounded) else None


def js_float(text: str) -> float | None:
    # JSON.stringify writes Infinity as null.
    value = float(text)
    return value if math.isfinite(value) else None


def json_parse(text: str) -> object:
    return json.loads(text, parse_int=js_int, parse_float=js_float)


def meta_number(text: str) -> int | float | None:
    """``parseFloat`` as the reference applies it to ``x``/``y`` metadata (NaN becomes null)."""
    match = JS_FLOAT_PREFIX.match(text)
    if not match:
        return None
    value = float(match.group())
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


NodeMetadata = dict[str, str | int | float | None]


def parse_node_metadata(items: list[str]) -> NodeMetadata:
    """``key=val`` items of ``n(Comp:key=val,x=1)``; a bare item means ``routes=item``."""
    metadata: NodeMetadata = {}
    for item in items:
        parts = item.split("=")
        key, value = ("routes", parts[0]) if len(parts) == 1 else (parts[0], parts[1])
        metadata[key] = meta_number(value) if key in ("x", "y") else value
    return metadata


def json_value_end(text: str, pos: int) -> int | None:
    """End of the JSON value at ``pos`` per the reference's JSON grammar (RFC 7159), or None."""
    for word in JSON_WORDS:
        if text.startswith(word, pos):
            return pos + len(word)
    ch = text[pos : pos + 1]
    if ch in ("{", "["):
        return _json_container_end(text, pos)
    pattern = JSON_STRING if ch == '"' else JSON_NUMBER
    match = pattern.match(text, pos)
    return None if match is None else match.end()


def _json_container_end(text: str, pos: int) -> int | None:
    close = "}" if text[pos] == "{" else "]"
    pos = skip(JSON_WS, text, pos + 1)
    if text.startswith(close, pos):
        return pos + 1
    while True:
        if close == "}":
            key = JSON_STRING.match(text, pos)
            if key is None:
                return None
            pos = skip(JSON_WS, text, key.end())
            if not text.startswith(":", pos):
                return None
            pos = skip(JSON_WS, text, pos + 1)
        end = json_value_end(text, pos)
        if end is None:
            return None
        pos = skip(JSON_WS, text, end)
        if text.startswith(close, pos):
            return pos + 1
        if not text.startswith(",", pos):
            return None
        pos = skip(JSON_WS, text, pos + 1)


# A single-quoted IIP: inside, \' is a quote and every other character (newlines and other
# backslashes included) is itself; possessive, since the grammar's repetition never backtracks.
QUOTED_IIP = re.compile(r"'((?:\\'|[^'])*+)'")
