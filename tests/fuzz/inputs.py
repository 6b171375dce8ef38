"""Hypothesis generators of near-valid inputs, shared by the fuzz targets.

``mutated`` takes seed inputs (a target's corpus, valid examples first) and applies a few
edits of the kinds that break parsers: tokens of the format spliced in, ranges deleted or
repeated, truncation, invalid UTF-8, numbers too large for Python's ``int``/``float``, lone
surrogates, and deep nesting. The structured generators build inputs of each format from its
vocabulary, so a fuzz run reaches past the syntax check into the typed checks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import strategies as st

INVALID_UTF8 = (
    b"\xff",
    b"\xc3",  # a lead byte without its continuation
    b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8
    b"\xc0\xaf",  # an overlong encoding
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\x00",
    b"\xef\xbb\xbf",  # a byte-order mark where none belongs
)
HUGE_NUMBERS = (
    b"9" * 4301,  # one digit over Python's int max_str_digits
    b"-" + b"1" * 5000,
    b"1e999999",
    b"-1e400",
    b"1.5e-400",
    b"18446744073709551616",
    b"0x" + b"f" * 40,
    b"NaN",
    b"Infinity",
    b"-0",
    b"1" + b"0" * 400 + b".5",
)
LONE_SURROGATES = (b'"\\ud800"', b'"\\udfff\\ud800"', b"\\ud83d", b'"\\u0000"')
DEEP = (64, 500, 3000, 100_000)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "\udfff", "a\x00b", "\u2028", "Ω", " ", "#ROLE"])
)


@st.composite
def mutated(
    draw: st.DrawFn, seeds: Sequence[bytes], tokens: Sequence[bytes] = (), edits: int = 4
) -> bytes:
    """A seed with 1..``edits`` random edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    splices = (*tokens, *INVALID_UTF8, *HUGE_NUMBERS, *LONE_SURROGATES)
    for _ in range(draw(st.integers(1, edits))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 6))
        if op == 0:
            data[pos:pos] = draw(st.sampled_from(splices))
        elif op == 1:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == 2:
            data[pos : pos + 1] = bytes([draw(st.integers(0, 255))])
        elif op == 3:
            del data[pos:]
        elif op == 4:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))] * draw(st.integers(1, 8))
        elif op == 5:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[pos:pos] = draw(st.sampled_from(tokens or splices)) * draw(st.integers(2, 50))
    return bytes(data)


@st.composite
def nested(draw: st.DrawFn, seeds: Sequence[bytes], pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A seed with a deeply nested value spliced in (closed or not)."""
    seed = draw(st.sampled_from(seeds))
    opener, closer = draw(st.sampled_from(pairs))
    depth = draw(st.sampled_from(DEEP))
    body = opener * depth + (closer * depth if draw(st.booleans()) else b"")
    pos = draw(st.integers(0, len(seed)))
    return seed[:pos] + body + seed[pos:]


def json_values(keys: Sequence[str], *, leaves: int = 20) -> st.SearchStrategy[object]:
    """JSON-shaped values whose object keys come mostly from ``keys``."""
    names = st.sampled_from(list(keys)) | st.text(max_size=4)
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=6),
        max_leaves=leaves,
    )


@st.composite
def json_text(draw: st.DrawFn, value: st.SearchStrategy[object]) -> bytes:
    """``value`` as JSON bytes: ASCII escapes, or raw UTF-8 (lone surrogates kept, so invalid)."""
    data = draw(value)
    if draw(st.booleans()):
        return json.dumps(data).encode("ascii")
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")


def text_of(parts: Sequence[str], *, max_parts: int = 40) -> st.SearchStrategy[bytes]:
    """Texts joined from a format's fragments and a little noise."""
    piece = st.sampled_from(list(parts)) | st.text(max_size=3)
    sep = st.sampled_from(["", " ", "\n", "\r\n", "\t", ", ", "  "])
    pairs = st.lists(st.tuples(piece, sep), max_size=max_parts)
    return pairs.map(lambda ps: "".join(p + s for p, s in ps).encode("utf-8", "surrogatepass"))


def seeds_or(corpus: Sequence[bytes], fallback: bytes) -> list[bytes]:
    return list(corpus) or [fallback]
