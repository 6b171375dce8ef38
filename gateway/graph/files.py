"""Graph files on disk: the format follows the extension, writes are atomic.

Like the original coordinator (``msgflo/msgflo src/common.coffee``), ``*.fbp`` is the .fbp
language and anything else is FBP JSON. Saving goes through ``gateway/common/atomic.py`` (temporary
file, fsync, rename), so a crash or a full disk never leaves a half-written graph behind
(protocol.md 3.5: the original's auto-save once wrote invalid JSON).
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.common.atomic import write_atomic
from gateway.errors import FileWriteError, GraphError
from gateway.graph.fbp_format import fbp_with_warnings, read_fbp
from gateway.graph.json_format import read_json, to_json
from gateway.graph.model import Graph


def is_fbp(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` names a .fbp file (by extension, case-insensitively)."""
    return os.fspath(path).lower().endswith(".fbp")


def read_graph(
    path: str | os.PathLike[str], *, case_sensitive: bool = False
) -> tuple[Graph, tuple[GraphError, ...]]:
    """Load a graph file; returns the graph and any warnings, raises ``InvalidGraphError``.

    ``case_sensitive`` applies to .fbp only (JSON graphs carry their own ``caseSensitive``).
    A file that cannot be read raises ``GraphError`` naming it.
    """
    name = os.fspath(path)
    try:
        # utf-8-sig: a byte-order mark some Windows editors add is not part of the graph.
        text = Path(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphError(f"cannot read graph: {_reason(exc)}", file=name) from exc
    if is_fbp(name):
        return read_fbp(text, file=name, case_sensitive=case_sensitive)
    return read_json(text, file=name)


def load_graph(path: str | os.PathLike[str], *, case_sensitive: bool = False) -> Graph:
    """Load a .fbp or JSON graph file, raising ``InvalidGraphError`` listing every error."""
    return read_graph(path, case_sensitive=case_sensitive)[0]


def render_graph(graph: Graph, path: str | os.PathLike[str], *, lossy: bool = False) -> str:
    """The text ``save_graph`` would write to ``path`` (.fbp or canonical JSON)."""
    if is_fbp(path):
        return fbp_with_warnings(graph, lossy=lossy, file=os.fspath(path))[0]
    return to_json(graph)


def save_graph(graph: Graph, path: str | os.PathLike[str], *, lossy: bool = False) -> None:
    """Write ``graph`` to ``path`` atomically, as .fbp or JSON by extension.

    Raises ``InvalidGraphError`` (and writes nothing) if .fbp cannot express the graph and
    ``lossy`` is false; ``GraphError`` if the file cannot be written.
    """
    write_graph_file(path, render_graph(graph, path, lossy=lossy).encode("utf-8"))


def write_graph_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the graph file ``path`` with ``data`` atomically (``gateway/common/atomic.py``),
    keeping its mode; ``GraphError`` naming the file when it cannot be written."""
    try:
        write_atomic(path, data, mode=None)
    except FileWriteError as exc:
        raise GraphError(f"cannot write graph: {exc.reason}", file=os.fspath(path)) from exc


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
