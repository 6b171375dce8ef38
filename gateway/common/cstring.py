"""Text as a C/C++ string literal: the one escaping for every C source the project writes (a
sketch's ``secrets.h``, the firmware tests' vector headers).

Standard library only, so the firmware's CMake build can import it with any Python 3.
"""

from __future__ import annotations

# C's simple escapes; every other byte outside printable ASCII becomes a three-digit octal
# escape (a hex escape would swallow a hex digit that follows it). '?' is escaped so no
# trigraph (??= and friends, still read by C and pre-17 C++ compilers) can form.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "?": "\\?", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def c_string(text: str) -> str:
    """``text`` as a C/C++ string literal of its UTF-8 bytes."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'
