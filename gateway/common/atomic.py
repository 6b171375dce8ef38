"""Replace a file all at once, durably: the one way every file is written (graphs, the
registry, secrets, rendered configs), since the appliance loses power at any moment.

Temp file in the same directory (so the rename stays on one filesystem), write, set mode and
owner on the descriptor, fsync the file, rename over the target, fsync the file again (for
FAT) and the directory. A reader sees the old content or the new one, never a mixture, and
after a power cut the new content is on disk once ``write_atomic`` has returned. A write that
fails (a full partition, a missing directory) raises ``FileWriteError`` naming the file, and
leaves the old file and no temp file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from gateway.errors import FileWriteError

NEW_FILE_MODE = 0o644  # for mode=None and no file to take the mode from


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | str,
    mode: int | None = 0o600,
    owner: tuple[int, int] | None = None,
) -> None:
    """Write ``data`` (str as UTF-8) to ``path`` with ``mode`` and optional ``(uid, gid)``;
    ``mode=None`` keeps the mode of the file replaced (``NEW_FILE_MODE`` for a new one).

    Raises ``FileWriteError`` naming the file; the old file, if any, is then untouched and no
    temporary file is left behind.
    """
    target = Path(path)
    if mode is None:
        mode = _current_mode(target)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FileWriteError(target, exc.strerror or str(exc)) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            _fill(out, payload, mode, owner)
            os.replace(tmp, target)
            # Synced again under its new name: FAT (the boot partition) writes a renamed
            # file's directory entry, with its size and first cluster, only with the file's
            # own metadata, so until writeback (30 s later) the name points at an empty file.
            # On ext4 this finds nothing left to write once the rename is committed.
            os.fsync(out.fileno())
    except (OSError, OverflowError) as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise FileWriteError(target, reason) from exc
    fsync_directory(target.parent)


def _current_mode(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return NEW_FILE_MODE


def _fill(out: BinaryIO, payload: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    # Mode and owner before the data: a secret is never readable by others, not even briefly.
    os.fchmod(out.fileno(), mode)
    if owner is not None:
        os.fchown(out.fileno(), *owner)
    out.write(payload)
    out.flush()
    os.fsync(out.fileno())


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make renames and new entries in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(
    path: str | os.PathLike[str], mode: int = 0o700, owner: tuple[int, int] | None = None
) -> Path:
    """Create ``path`` (and parents) if needed and set its mode and owner; returns it."""
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, mode)
        if owner is not None:
            os.chown(directory, *owner)
    except OSError as exc:
        raise FileWriteError(directory, exc.strerror or str(exc), "cannot create") from exc
    fsync_directory(directory.parent)
    return directory
