"""Messages and suggestions for .fbp syntax errors.

The parser reports the furthest position it reached and what it expected there (as PEG parsers
do); this turns that into one sentence and, where a common slip is recognisable (``=>`` for
``->``, ``INPUT=``, a trailing space, a tab, a ``.`` in a component), a suggestion.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.common.problems import did_you_mean
from gateway.graph.fbp_tokens import NEWLINE


def describe_failure(
    text: str, at: int, expected: set[str], open_quote: int | None
) -> tuple[str, str]:
    """The message and hint for a syntax error at ``at``."""
    if open_quote is not None and "a closing quote" in expected:
        return "this IIP string is never closed", "end it with ' (write a quote inside it as \\')"
    wanted = sorted(expected) or ["a connection, declaration or comment"]
    listing = wanted[-1] if len(wanted) == 1 else ", ".join(wanted[:-1]) + " or " + wanted[-1]
    return f"expected {listing}, found {_found(text, at)}", _hint(text, at)


def _found(text: str, at: int) -> str:
    if at >= len(text):
        return "end of file"
    ch = text[at]
    if ch in NEWLINE:
        return "end of line"
    word = re.match(r"[^\s]+", text[at:])
    return repr(word.group()[:20]) if word else repr(ch)


_KEYWORDS = ("INPORT=", "OUTPORT=", "DEFAULT_INPORT=", "DEFAULT_OUTPORT=")
_ARROW_TYPOS = ("=>", "- >", "-->", "<-", "->>", "\u2014>", "\u2013>")  # incl. em/en dash


def _hint(text: str, at: int) -> str:
    """A suggestion for the syntax error at ``at``, from the first rule that recognises it."""
    line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", at)
    line_end = len(text) if line_end < 0 else line_end
    before, rest = text[line_start:at], text[at:line_end]
    keyword = re.match(r"\s*([A-Za-z_]+=)", before + rest)
    if keyword and keyword.group(1) not in _KEYWORDS:
        return did_you_mean(keyword.group(1), _KEYWORDS)
    return next((hint for test, hint in _HINTS if test(before, rest)), "")


_HINTS: tuple[tuple[Callable[[str, str], bool], str], ...] = (
    (lambda _, rest: rest.startswith(_ARROW_TYPOS), "did you mean '->'?"),
    (
        lambda before, rest: rest.startswith("[") and before.lstrip().startswith(_KEYWORDS[:2]),
        "INPORT=/OUTPORT= name a port without an [index]",
    ),
    (
        lambda before, rest: "\t" in before + rest,
        "indent with spaces: a tab here starts a JSON value in the .fbp grammar",
    ),
    (
        lambda before, rest: before.endswith(" ") and not rest.strip(),
        "remove the trailing space: the reference parser rejects it here",
    ),
    (
        lambda before, _: re.search(r"\([^):]*:[^)]*$", before) is not None,
        "metadata is key=value,... using only letters, digits, '/' and '_'",
    ),
    (
        lambda before, _: re.search(r"\([^)]*$", before) is not None,
        "component names use only letters, digits, '/', '-' and '_'",
    ),
)
