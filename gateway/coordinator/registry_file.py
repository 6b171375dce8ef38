"""The registry kept on disk, so that a restarted coordinator forwards at once.

Without it a coordinator that restarts (killed, crashed, or restarted by systemd) knows no
participant until each announces again, up to 27 s with the default period, and forwards nothing
meanwhile; with MQTT persistent sessions the broker has queued the data for it, which would be
acknowledged and dropped. So the participants it knew are written here (atomically, whenever one
is added, changes or goes quiet), read back before it connects, and confirmed or replaced by the
next announcements: a restored participant that never announces again expires as any other.

The file is a JSON object ``{"version": 1, "participants": [<discovery payload>, ...]}``; each
payload is read back through the discovery parser, so a damaged or edited file is bad input like
any other: one line, and the rest is used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from gateway.common.atomic import write_atomic
from gateway.coordinator.registry import Seen
from gateway.errors import DiscoveryError, GatewayError
from gateway.participant.definition import ParticipantDefinition
from gateway.participant.discovery import parse_discovery

log = logging.getLogger(__name__)

VERSION = 1
MAX_FILE_BYTES = 32 * 1024 * 1024  # the registry's own bound: 1,000 participants of 32 KiB


def encode_registry(participants: Iterable[Seen]) -> bytes:
    """The file's content: the live participants, in the order they were first seen."""
    live = sorted((s for s in participants if s.alive), key=lambda s: s.first_seen)
    entries = [s.definition.to_discovery() for s in live]
    return json.dumps({"version": VERSION, "participants": entries}).encode("utf-8")


def decode_registry(data: bytes, source: str) -> list[ParticipantDefinition]:
    """The definitions in a registry file; a bad entry is logged (``source``, one line) and
    skipped, a file that is not one at all raises ``GatewayError``."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise GatewayError(f"{source}: not a registry file: {exc}") from None
    entries = document.get("participants") if isinstance(document, dict) else None
    if not isinstance(entries, list) or document.get("version") != VERSION:
        raise GatewayError(f"{source}: not a version {VERSION} registry file")
    found = []
    for i, entry in enumerate(entries):
        message = {"protocol": "discovery", "command": "participant", "payload": entry}
        try:
            found.append(parse_discovery(json.dumps(message).encode("utf-8")).definition)
        except (DiscoveryError, TypeError, ValueError) as exc:
            log.warning("%s: participants[%d] skipped: %s", source, i, exc)
    return found


def read_registry(path: Path) -> list[ParticipantDefinition]:
    """What ``path`` holds; nothing when it does not exist or cannot be used (one line)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("%s: cannot read the registry file: %s", path, exc.strerror or exc)
        return []
    if len(data) > MAX_FILE_BYTES:
        log.warning("%s: larger than %d bytes, not used", path, MAX_FILE_BYTES)
        return []
    try:
        return decode_registry(data, str(path))
    except GatewayError as exc:
        log.warning("%s; starting without it", exc)
        return []


def write_registry(path: Path, data: bytes) -> None:
    """Replace the file atomically (raises ``GatewayError`` naming it; the old one stays)."""
    write_atomic(path, data, mode=0o600)
