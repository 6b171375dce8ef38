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


def js_int(text: str) -> int | float:
    # JavaScript numbers are doubles: integers beyond 2**53 are really the nearest double.
    value = int(text)
    return value if abs(value) <= JS_SAFE_INT else float(text)


def js_index(text: str) -> int:
    # parseInt of a port index: also a double, so huge indices come out rounded.
    value = int(text)
    return value if value <= JS_SAFE_INT else int(float(text))


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

# The statements nearly every line of a real graph consists of, each as one pattern, so the
# parser can take them without trying the grammar's alternatives one by one (several times
# faster). They match only text for which the full grammar gives the same result. Every
# repetition is possessive and every optional part greedy, as the PEG's are, so a pattern never
# finds a reading the grammar would not (``a->b`` reads ``a-`` as the name, then fails). What
# they cover, in the grammar's terms:
#
# * a source: a named node (with or without a component) and an optional port, or a quoted IIP,
#   or a JSON number IIP: the first alternative of ``source`` that matches there;
# * any number of middle nodes ``IN b OUT`` (the first ``bridge`` alternative) followed by
#   ``->``, as ``connection`` tries them before ``destination``;
# * a named target: ``PORT name``, ``name(Comp)`` or a bare ``name`` not followed by a space
#   (otherwise ``inport`` reads the name as a port and fails, which the grammar reports);
# * the ``LineTerminator``: spaces, an optional comma, an optional comment, a line break or the
#   end of the text. A statement that ends without a line break must end with a comma (then the
#   next statement on the line follows); the caller takes a line only if all its statements
#   match, so the grammar's failure bookkeeping (which never reaches past a line break here)
#   stays what it would have been.
_NAME = r"[a-zA-Z_][a-zA-Z0-9_\-]*+"
_PORT = r"[a-zA-Z_][a-zA-Z.0-9_]*+"
_NL = r"\n\r\u2028\u2029"


def _node(name: str) -> str:
    return (
        rf"(?P<{name}>{_NAME})"
        rf"(?:\((?P<{name}c>[a-zA-Z/\-0-9_]*+)(?::(?P<{name}m>[a-zA-Z/=_,0-9]++))?+\))?+"
    )


def _port(name: str) -> str:
    return rf"(?P<{name}>{_PORT})(?:\[(?P<{name}i>[0-9]++)\])?+"


_TERMINATOR = rf" *+(?P<comma>,)?+(?: *+#[^{_NL}]*+)?+(?P<nl>[{_NL}]|\Z)?+"
_MIDDLE = rf" *+-> *+{_port('mi')} ++{_node('m')} ++{_port('mo')}(?= *+->)"

# One statement: "src(Comp) PORT[i] -> PORT[j] mid(Comp) PORT[k] -> ... -> PORT[l] tgt(Comp)".
FAST_EDGE = re.compile(
    rf" *+(?:{_node('s')}(?: ++{_port('sp')})?+"
    r"|'(?P<iip>(?:\\'|[^'])*+)'"
    r"|(?P<num>-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+))"
    rf"(?P<chain>(?:{_MIDDLE})*+)"
    rf" *+-> *+(?:{_port('tp')} ++{_node('t')}|{_node('u')}(?(uc)|(?! )))" + _TERMINATOR
)
# One middle node of FAST_EDGE's chain, to walk it.
FAST_MIDDLE = re.compile(_MIDDLE)
# "name(Comp)" alone: declares the node, adds no edge.
FAST_DECLARATION = re.compile(rf" *+{_node('t')}(?(tc)|(?!))" + _TERMINATOR)
