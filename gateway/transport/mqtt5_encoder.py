"""Encoders for the packets an MQTT 5.0 client sends (pure: each returns bytes).

The other half of the codec is :mod:`gateway.transport.mqtt5_codec` (constants, events and the
incremental decoder). :class:`PublishEncoder` keeps each topic's encoded form, so an outgoing
QoS 0 PUBLISH to a known topic is a fixed header and two appends. Section numbers refer to the
MQTT Version 5.0 OASIS Standard.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.transport.base import Will
from gateway.transport.mqtt5_codec import (
    MAX_PACKET_ID,
    MAX_REMAINING_LENGTH,
    MAX_STRING,
    PROTOCOL_LEVEL,
    PROTOCOL_NAME,
    TOPIC_CACHE_SIZE,
    RetainHandling,
)


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """3.8.3.1: the options byte of one SUBSCRIBE entry."""

    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: RetainHandling = RetainHandling.SEND_ON_SUBSCRIBE

    def byte(self) -> int:
        _check_qos(self.qos)
        return (
            self.qos
            | (0x04 if self.no_local else 0)
            | (0x08 if self.retain_as_published else 0)
            | (int(self.retain_handling) << 4)
        )


def encode_varint(value: int) -> bytes:
    """1.5.5 Variable Byte Integer: 7 bits a byte, least significant first."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_string(text: str) -> bytes:
    return encode_binary(text.encode("utf-8"))


def encode_binary(data: bytes) -> bytes:
    if len(data) > MAX_STRING:
        raise ValueError(f"string of {len(data)} bytes is longer than {MAX_STRING}")
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def _check_qos(qos: int) -> None:
    if qos not in (0, 1, 2):
        raise ValueError(f"QoS must be 0, 1 or 2, not {qos}")


def _check_packet_id(packet_id: int) -> None:
    if not 0 < packet_id <= MAX_PACKET_ID:
        raise ValueError(f"packet identifier must be 1..{MAX_PACKET_ID}, not {packet_id}")


def encode_connect(
    client_id: str,
    *,
    keepalive: int = 60,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
    session_expiry: int = 0,
) -> bytes:
    """3.1: CONNECT. ``session_expiry`` 0 is a clean session that ends with the connection;
    above 0, the broker resumes the session of this client id (3.1.2.4, Clean Start 0) and
    keeps it, queueing QoS 1 and 2 messages for its subscriptions, for that many seconds
    after a disconnect (3.1.2.11.2)."""
    if not 0 <= keepalive <= 0xFFFF:
        raise ValueError(f"keep alive must be 0..65535 s, not {keepalive}")
    if not 0 <= session_expiry <= 0xFFFFFFFF:
        raise ValueError(f"session expiry must be 0..4294967295 s, not {session_expiry}")
    flags = 0 if session_expiry else 0x02
    properties = b"\x05\x11" + session_expiry.to_bytes(4, "big") if session_expiry else b"\x00"
    payload = [encode_string(client_id)]
    if will is not None:
        _check_qos(will.qos)
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += [b"\x00", encode_string(will.topic), encode_binary(will.payload)]
    if username is not None:
        flags |= 0x80
        payload.append(encode_string(username))
    if password is not None:
        flags |= 0x40
        payload.append(encode_binary(password.encode("utf-8")))
    header = PROTOCOL_NAME + bytes([PROTOCOL_LEVEL, flags]) + keepalive.to_bytes(2, "big")
    return _packet(0x10, header + properties + b"".join(payload))


def encode_subscribe(packet_id: int, topics: Iterable[tuple[str, SubscriptionOptions]]) -> bytes:
    """3.8: one SUBSCRIBE for any number of topic filters, each with its options."""
    _check_packet_id(packet_id)
    entries = [encode_string(topic) + bytes([options.byte()]) for topic, options in topics]
    if not entries:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    return _packet(0x82, packet_id.to_bytes(2, "big") + b"\x00" + b"".join(entries))


def encode_unsubscribe(packet_id: int, topics: Iterable[str]) -> bytes:
    """3.10: UNSUBSCRIBE."""
    _check_packet_id(packet_id)
    entries = [encode_string(topic) for topic in topics]
    if not entries:
        raise ValueError("UNSUBSCRIBE needs at least one topic filter")
    return _packet(0xA2, packet_id.to_bytes(2, "big") + b"\x00" + b"".join(entries))


def encode_publish(
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    retain: bool = False,
    packet_id: int = 0,
    dup: bool = False,
) -> bytes:
    """3.3: PUBLISH without properties."""
    out = bytearray()
    PublishEncoder().write(
        out, topic, payload, qos=qos, retain=retain, packet_id=packet_id, dup=dup
    )
    return bytes(out)


def _ack(first: int, packet_id: int) -> bytes:
    _check_packet_id(packet_id)
    return bytes([first, 2]) + packet_id.to_bytes(2, "big")  # 3.4.2.1: reason 0 may be omitted


def encode_puback(packet_id: int) -> bytes:
    return _ack(0x40, packet_id)


def encode_pubrec(packet_id: int) -> bytes:
    return _ack(0x50, packet_id)


def encode_pubrel(packet_id: int) -> bytes:
    return _ack(0x62, packet_id)


def encode_pubcomp(packet_id: int) -> bytes:
    return _ack(0x70, packet_id)


def encode_pingreq() -> bytes:
    return b"\xc0\x00"


def encode_disconnect(reason_code: int = 0) -> bytes:
    if reason_code == 0:
        return b"\xe0\x00"
    return bytes([0xE0, 1, reason_code])


class PublishEncoder:
    """Encodes PUBLISH packets, keeping each topic's encoded name (with the empty property
    length after it) so a forwarder's repeated topics cost a dictionary lookup."""

    def __init__(self) -> None:
        self._topics: dict[str, bytes] = {}

    def topic_bytes(self, topic: str) -> bytes:
        encoded = self._topics.get(topic)
        if encoded is None:
            if not topic or "+" in topic or "#" in topic:
                raise ValueError(f"not a topic name to publish to: {topic!r}")
            if len(self._topics) >= TOPIC_CACHE_SIZE:
                self._topics.clear()
            encoded = self._topics[topic] = encode_string(topic)
        return encoded

    def write(
        self,
        out: bytearray,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        packet_id: int = 0,
        dup: bool = False,
    ) -> None:
        """Append one PUBLISH to ``out``."""
        name = self._topics.get(topic) or self.topic_bytes(topic)
        first = 0x30 | (qos << 1) | retain | (0x08 if dup else 0)
        if qos:
            _check_qos(qos)
            _check_packet_id(packet_id)
            length = len(name) + 3 + len(payload)
        else:
            length = len(name) + 1 + len(payload)
        if length < 128:
            out.append(first)
            out.append(length)
        else:
            out.append(first)
            out += encode_varint(length)
        out += name
        if qos:
            out += packet_id.to_bytes(2, "big")
        out.append(0)  # property length: no properties
        out += payload
