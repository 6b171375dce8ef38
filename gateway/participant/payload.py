"""Message payloads (pure): JSON in and out, raw bytes kept byte-for-byte.

Libraries of the original JSON-encode what they send and try to JSON-decode what they receive,
falling back to the raw payload. Devices send bare ``true``, ``23.5`` or ``open``; firmware compares
raw bytes, so anything sent as :class:`Raw` or as ``bytes`` goes out exactly as given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from gateway.participant.definition import Json


@dataclass(frozen=True)
class Raw:
    """Payload bytes to send unchanged (no JSON encoding). ``str`` is sent as UTF-8."""

    data: bytes | str

    def to_bytes(self) -> bytes:
        return self.data.encode("utf-8") if isinstance(self.data, str) else self.data


def encode(data: Json | Raw) -> bytes:
    """The bytes to publish for ``data``: :class:`Raw` and ``bytes`` as they are, anything else
    as JSON. A received non-JSON payload has its bytes as ``data``, so it is passed on unchanged."""
    if isinstance(data, Raw):
        return data.to_bytes()
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    return json.dumps(data).encode("utf-8")


@dataclass
class Message:
    """A message received on an inport, API-compatible with msgflo-python's ``Message``.

    ``buffer`` is the raw payload; ``data`` the decoded JSON value, or ``buffer`` when the payload
    is not JSON; ``json`` the decoded value or, as in msgflo-python, the decode exception.
    ``delivery`` is the transport's handle for ack/nack (``None`` for IIPs and injected data).
    """

    buffer: bytes
    data: Json
    json: Json
    topic: str = ""
    delivery: object | None = field(default=None, repr=False)

    @property
    def is_json(self) -> bool:
        return not isinstance(self.json, ValueError)

    @classmethod
    def from_bytes(cls, payload: bytes, topic: str = "", delivery: object | None = None) -> Message:
        try:
            decoded: Json = json.loads(payload)
        except ValueError as exc:  # includes UnicodeDecodeError
            return cls(payload, payload, exc, topic, delivery)
        return cls(payload, decoded, decoded, topic, delivery)

    @classmethod
    def from_value(cls, value: Json) -> Message:
        """A message carrying an already-decoded value (an IIP or injected data)."""
        return cls(encode(value), value, value)
