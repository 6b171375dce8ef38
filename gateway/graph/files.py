"""Graph files on disk: the format follows the extension, writes are atomic.

Like the original coordinator (``msgflo/msgflo src/common.coffee``), ``*.fbp`` is the .fbp
language and anything else is FBP JSON. Saving writes a temporary file in the same directory,
fsyncs it and renames it over the target, so a crash or a full disk never leaves a half-written
graph behind (protocol.md 3.5: the original's auto-save once wrote invalid JSON).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from gateway.errors import GraphError
from gateway.graph.fbp_format import fbp_with_warnings, read_fbp
from gateway.graph.json_format import read_json, to_json
from gateway.graph.model import Graph

_NEW_FILE_MODE = 0o644


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
    write_atomic(path, render_graph(graph, path, lossy=lossy).encode("utf-8"))


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: temp file, fsync, rename, fsync directory."""
    target = Path(os.fspath(path))
    directory = target.parent
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise GraphError(f"cannot write graph: {_reason(exc)}", file=str(target)) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise GraphError(f"cannot write graph: {_reason(exc)}", file=str(target)) from exc
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable. Not every platform lets a directory be opened; the data
    # is safe either way, only the rename might be lost on power failure there.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
