"""Keep a corrupt persistence database from keeping Mosquitto down after a power cut.

Mosquitto writes its database only on its autosave timer and at shutdown; a power cut during
or soon after a save can leave an all-zero or truncated file, and then the broker refuses to
start (eclipse-mosquitto/mosquitto#189, #2639: 5-10 % of ~100 Pi dataloggers). Before the broker
starts, ``guard_persistence`` checks the file's structure and moves a bad one aside; it never
deletes anything.

The format (mosquitto ``src/persist.h``, ``persist_read.c``): a 15-byte magic
``00 B5 00 "mosquitto db"``, a 32-bit CRC (written as 0), a 32-bit big-endian format version
(6 for 2.0), then chunks: a type and a body length (both 32-bit big-endian in versions 5 and
6; a 16-bit type in 2-4), then the body. A whole file ends exactly after a chunk's body.
"""

from __future__ import annotations

import datetime
import os
import struct
from collections.abc import Callable
from pathlib import Path

from gateway.common.atomic import fsync_directory
from gateway.errors import ApplianceError

MAGIC = b"\x00\xb5\x00mosquitto db"
HEADER = struct.Struct(">15sII")  # magic, crc, version
CHUNK_V56 = struct.Struct(">II")
CHUNK_V234 = struct.Struct(">HI")
SUPPORTED_VERSIONS = range(2, 7)  # what mosquitto 2.0's persist__restore reads
CHUNK_TYPES = range(1, 8)  # DB_CHUNK_CFG .. DB_CHUNK_CLIENT in 2.0


def database_problem(data: bytes) -> str | None:
    """Why ``data`` is not a whole Mosquitto database, or ``None`` if it is (or is empty,
    which Mosquitto accepts as an empty database)."""
    if not data:
        return None
    if len(data) < HEADER.size:
        return f"truncated header ({len(data)} bytes)"
    magic, _crc, version = HEADER.unpack_from(data)
    if magic != MAGIC:
        return "no mosquitto db header" + (" (all zero bytes)" if not any(data) else "")
    if version not in SUPPORTED_VERSIONS:
        return f"unsupported format version {version}"
    return _chunks_problem(data, CHUNK_V56 if version >= 5 else CHUNK_V234)


def _chunks_problem(data: bytes, chunk: struct.Struct) -> str | None:
    offset = HEADER.size
    while offset < len(data):
        if offset + chunk.size > len(data):
            return f"truncated chunk header at byte {offset}"
        kind, length = chunk.unpack_from(data, offset)
        if kind not in CHUNK_TYPES:
            return f"unknown chunk type {kind} at byte {offset}"
        offset += chunk.size + length
        if offset > len(data):
            return f"chunk of type {kind} runs past the end of the file"
    return None


def guard_persistence(
    db_path: Path,
    *,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> str | None:
    """Move ``db_path`` aside to ``<db>.corrupt-<timestamp>`` if it is not a whole database.

    Returns a one-line message for the caller to log when it did, ``None`` otherwise (also
    when there is no database yet).
    """
    try:
        data = db_path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ApplianceError(f"cannot read {db_path}: {exc.strerror or exc}") from exc
    problem = database_problem(data)
    if problem is None:
        return None
    aside = _aside_name(db_path, now())
    try:
        os.rename(db_path, aside)
    except OSError as exc:
        raise ApplianceError(f"cannot move {db_path} aside: {exc.strerror or exc}") from exc
    fsync_directory(db_path.parent)
    return (
        f"broker database {db_path} was unusable ({problem}); moved it to {aside.name} "
        "and the broker starts with an empty one"
    )


def _aside_name(db_path: Path, when: datetime.datetime) -> Path:
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    candidate = db_path.with_name(f"{db_path.name}.corrupt-{stamp}")
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = db_path.with_name(f"{db_path.name}.corrupt-{stamp}-{counter}")
    return candidate
