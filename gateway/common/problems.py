"""How a problem in a file is worded, the same for every checker (graphs, ``gateway.yaml``):
the key path as a user would write it, and a did-you-mean hint for a misspelt name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

KeyPath = tuple[str | int, ...]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``did you mean 'x'?`` for the closest candidate, or ``""`` if none is close enough."""
    pool = [c for c in candidates if c != word]
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), lowered, n=1)]
    return f"did you mean {close[0]!r}?" if close else ""


def format_path(path: KeyPath) -> str:
    """``connections[3].tgt.process``: a key path as a user would write it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
