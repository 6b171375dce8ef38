"""A sans-I/O MQTT 5.0 client codec: encoders that return bytes, a decoder fed with bytes.

No sockets, no event loop: :class:`Decoder.feed` takes whatever arrived and returns the complete
packets in it as typed events, keeping a partial packet for the next call; the ``encode_*``
functions in :mod:`gateway.transport.mqtt5_encoder` build the packets a client sends. The driver
(``mqtt5_fast.py``) moves the bytes.

Only what a client needs, and the hot path of a forwarder kept lean: an incoming PUBLISH is a
few slices (its properties are skipped by length, never parsed), and :class:`PublishEncoder`
keeps each topic's encoded form so an outgoing QoS 0 PUBLISH is a header and two appends.
Section numbers (``3.3.2``) refer to the MQTT Version 5.0 OASIS Standard.

Malformed input raises :class:`MalformedPacketError` and nothing else; the driver then drops the
connection (4.13: "the receiver closes the Network Connection").
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import TransportError

PROTOCOL_NAME = b"\x00\x04MQTT"
PROTOCOL_LEVEL = 5
MAX_REMAINING_LENGTH = 268_435_455  # 1.5.5: four bytes of variable byte integer
MAX_PACKET_ID = 65_535
MAX_STRING = 65_535
TOPIC_CACHE_SIZE = 4096  # encoded topics kept by a PublishEncoder before it starts over


class MalformedPacketError(TransportError):
    """The broker sent bytes that are not a valid MQTT 5 packet for a client. ``events`` are
    the good packets decoded before the bad one in the same :meth:`Decoder.feed` call."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.events: list[Event] = []


class PacketType(enum.IntEnum):
    """2.1.2: the high nibble of the first byte."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


class RetainHandling(enum.IntEnum):
    """3.8.3.1: whether retained messages are sent when a subscription is made."""

    SEND_ON_SUBSCRIBE = 0
    SEND_IF_NEW = 1
    DO_NOT_SEND = 2


# 2.4: reason codes a client may see, with the names the standard gives them.
REASONS = {
    0x00: "Success",
    0x01: "Granted QoS 1",
    0x02: "Granted QoS 2",
    0x04: "Disconnect with Will Message",
    0x10: "No matching subscribers",
    0x11: "No subscription existed",
    0x80: "Unspecified error",
    0x81: "Malformed Packet",
    0x82: "Protocol Error",
    0x83: "Implementation specific error",
    0x84: "Unsupported Protocol Version",
    0x85: "Client Identifier not valid",
    0x86: "Bad User Name or Password",
    0x87: "Not authorized",
    0x88: "Server unavailable",
    0x89: "Server busy",
    0x8A: "Banned",
    0x8B: "Server shutting down",
    0x8C: "Bad authentication method",
    0x8D: "Keep Alive timeout",
    0x8E: "Session taken over",
    0x8F: "Topic Filter invalid",
    0x90: "Topic Name invalid",
    0x91: "Packet Identifier in use",
    0x92: "Packet Identifier not found",
    0x93: "Receive Maximum exceeded",
    0x94: "Topic Alias invalid",
    0x95: "Packet too large",
    0x96: "Message rate too high",
    0x97: "Quota exceeded",
    0x98: "Administrative action",
    0x99: "Payload format invalid",
    0x9A: "Retain not supported",
    0x9B: "QoS not supported",
    0x9C: "Use another server",
    0x9D: "Server moved",
    0x9E: "Shared Subscriptions not supported",
    0x9F: "Connection rate exceeded",
    0xA0: "Maximum connect time",
    0xA1: "Subscription Identifiers not supported",
    0xA2: "Wildcard Subscriptions not supported",
}


def reason_name(code: int) -> str:
    return REASONS.get(code, f"reason code 0x{code:02X}")


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnAck:
    reason_code: int
    session_present: bool = False
    receive_maximum: int = 65_535  # 3.2.2.3.3: how many QoS>0 PUBLISHes may be unacknowledged
    server_keep_alive: int | None = None  # 3.2.2.3.14: overrides the client's keep alive
    assigned_client_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_id: int
    reason_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UnsubAck:
    packet_id: int
    reason_codes: tuple[int, ...]


@dataclass(slots=True)
class Publish:
    """An incoming message. Not frozen: a frozen dataclass's ``__init__`` costs a microsecond
    per message on the forwarding path; nobody mutates it."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    packet_id: int = 0
    dup: bool = False


@dataclass(frozen=True, slots=True)
class PubAck:
    packet_id: int
    reason_code: int = 0


@dataclass(frozen=True, slots=True)
class PubRec:
    packet_id: int
    reason_code: int = 0


@dataclass(frozen=True, slots=True)
class PubRel:
    packet_id: int
    reason_code: int = 0


@dataclass(frozen=True, slots=True)
class PubComp:
    packet_id: int
    reason_code: int = 0


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    reason_code: int = 0
    reason_string: str | None = None


Event = (
    ConnAck
    | SubAck
    | UnsubAck
    | Publish
    | PubAck
    | PubRec
    | PubRel
    | PubComp
    | PingResp
    | Disconnect
)


# -- decoding ----------------------------------------------------------------------------------


def decode_varint(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """The Variable Byte Integer at ``data[pos:end]`` and the position after it; None when the
    bytes end before it does. More than four bytes is malformed (1.5.5)."""
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= end:
            return None
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise MalformedPacketError("variable byte integer longer than four bytes")


def _varint_in(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A Variable Byte Integer that must lie within one packet."""
    found = decode_varint(data, pos, end)
    if found is None:
        raise MalformedPacketError("packet ends inside a variable byte integer")
    return found


def _u16(data: bytes, pos: int, end: int) -> int:
    if pos + 2 > end:
        raise MalformedPacketError("packet ends inside a two byte integer")
    return (data[pos] << 8) | data[pos + 1]


def _string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    size = _u16(data, pos, end)
    stop = pos + 2 + size
    if stop > end:
        raise MalformedPacketError("packet ends inside a UTF-8 string")
    try:
        return data[pos + 2 : stop].decode("utf-8"), stop
    except UnicodeDecodeError:
        raise MalformedPacketError("string is not valid UTF-8") from None


def _skip_properties(data: bytes, pos: int, end: int) -> int:
    """The position after the properties at ``pos`` (their length, then that many bytes)."""
    length, pos = _varint_in(data, pos, end)
    pos += length
    if pos > end:
        raise MalformedPacketError("properties run past the end of the packet")
    return pos


# 2.2.2.2: property identifier -> how its value is encoded, for the packets whose properties
# are read (CONNACK, DISCONNECT). 1/2/4: that many bytes; "v": varint; "s"/"b": string or
# binary with a two byte length; "p": a pair of strings.
PROPERTY_KINDS: dict[int, int | str] = {
    0x01: 1, 0x02: 4, 0x03: "s", 0x08: "s", 0x09: "b", 0x0B: "v", 0x11: 4, 0x12: "s",
    0x13: 2, 0x15: "s", 0x16: "b", 0x17: 1, 0x18: 4, 0x19: 1, 0x1A: "s", 0x1C: "s",
    0x1F: "s", 0x21: 2, 0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1, 0x26: "p", 0x27: 4, 0x28: 1,
    0x29: 1, 0x2A: 1,
}  # fmt: skip


def _property_value(kind: int | str, data: bytes, pos: int, end: int) -> tuple[object, int]:
    if isinstance(kind, int):
        if pos + kind > end:
            raise MalformedPacketError("packet ends inside a property")
        return int.from_bytes(data[pos : pos + kind], "big"), pos + kind
    if kind == "v":
        return _varint_in(data, pos, end)
    if kind == "s":
        return _string(data, pos, end)
    if kind == "p":
        key, pos = _string(data, pos, end)
        value, pos = _string(data, pos, end)
        return (key, value), pos
    size = _u16(data, pos, end)
    if pos + 2 + size > end:
        raise MalformedPacketError("packet ends inside binary data")
    return data[pos + 2 : pos + 2 + size], pos + 2 + size


def decode_properties(data: bytes, pos: int, end: int) -> tuple[dict[int, object], int]:
    """The properties at ``pos`` as identifier -> value (user properties: the last one)."""
    length, pos = _varint_in(data, pos, end)
    stop = pos + length
    if stop > end:
        raise MalformedPacketError("properties run past the end of the packet")
    found: dict[int, object] = {}
    while pos < stop:
        ident, pos = _varint_in(data, pos, stop)
        kind = PROPERTY_KINDS.get(ident)
        if kind is None:
            raise MalformedPacketError(f"unknown property identifier 0x{ident:02X}")
        found[ident], pos = _property_value(kind, data, pos, stop)
    return found, stop


def _decode_publish(first: int, data: bytes, pos: int, end: int) -> Publish:
    """3.3: the hot path. Properties are skipped, not parsed."""
    size = (data[pos] << 8) | data[pos + 1] if pos + 2 <= end else -1
    stop = pos + 2 + size
    qos = (first >> 1) & 3
    if size < 0 or stop + (2 if qos else 0) >= end or qos == 3:
        return _publish_problem(first, data, pos, end)
    try:
        topic = data[pos + 2 : stop].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacketError("PUBLISH topic is not valid UTF-8") from None
    packet_id = 0
    if qos:
        packet_id = (data[stop] << 8) | data[stop + 1]
        stop += 2
    plen = data[stop]
    stop = stop + 1 + plen if plen < 0x80 else _skip_properties(data, stop, end)
    if stop > end or (qos and not packet_id):
        return _publish_problem(first, data, pos, end)
    return Publish(topic, data[stop:end], qos, bool(first & 1), packet_id, bool(first & 8))


def _publish_problem(first: int, data: bytes, pos: int, end: int) -> Publish:
    if (first >> 1) & 3 == 3:
        raise MalformedPacketError("PUBLISH with QoS 3")
    if pos + 2 > end:
        raise MalformedPacketError("PUBLISH too short for its topic length")
    stop = pos + 2 + ((data[pos] << 8) | data[pos + 1])
    if stop + (2 if first & 6 else 0) >= end:
        raise MalformedPacketError("PUBLISH ends inside its topic, packet identifier or properties")
    if first & 6 and not (data[stop] << 8) | data[stop + 1]:
        raise MalformedPacketError("QoS>0 PUBLISH with packet identifier 0")
    raise MalformedPacketError("PUBLISH properties run past the end of the packet")


def _decode_connack(first: int, data: bytes, pos: int, end: int) -> ConnAck:
    """3.2: CONNACK; its properties are read for the few a client must honour."""
    if end - pos < 2:
        raise MalformedPacketError("CONNACK too short")
    if data[pos] & 0xFE:
        raise MalformedPacketError("CONNACK with reserved flags set")
    props: dict[int, object] = {}
    if end - pos > 2:
        props, _ = decode_properties(data, pos + 2, end)
    receive_maximum = props.get(0x21, 65_535)
    keep_alive = props.get(0x13)
    client_id = props.get(0x12)
    return ConnAck(
        data[pos + 1],
        bool(data[pos] & 1),
        receive_maximum if isinstance(receive_maximum, int) and receive_maximum else 65_535,
        keep_alive if isinstance(keep_alive, int) else None,
        client_id if isinstance(client_id, str) else None,
    )


def _pub_ack_fields(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """3.4.2: a packet identifier, then an optional reason code and properties."""
    packet_id = _u16(data, pos, end)
    if not packet_id:
        raise MalformedPacketError("acknowledgement with packet identifier 0")
    reason = data[pos + 2] if end - pos > 2 else 0
    if end - pos > 3:
        _skip_properties(data, pos + 3, end)
    return packet_id, reason


def _decode_puback(first: int, data: bytes, pos: int, end: int) -> PubAck:
    return PubAck(*_pub_ack_fields(data, pos, end))


def _decode_pubrec(first: int, data: bytes, pos: int, end: int) -> PubRec:
    return PubRec(*_pub_ack_fields(data, pos, end))


def _decode_pubrel(first: int, data: bytes, pos: int, end: int) -> PubRel:
    return PubRel(*_pub_ack_fields(data, pos, end))


def _decode_pubcomp(first: int, data: bytes, pos: int, end: int) -> PubComp:
    return PubComp(*_pub_ack_fields(data, pos, end))


def _sub_ack_fields(name: str, data: bytes, pos: int, end: int) -> tuple[int, tuple[int, ...]]:
    packet_id = _u16(data, pos, end)
    pos = _skip_properties(data, pos + 2, end)
    if pos >= end:
        raise MalformedPacketError(f"{name} without reason codes")
    return packet_id, tuple(data[pos:end])


def _decode_suback(first: int, data: bytes, pos: int, end: int) -> SubAck:
    return SubAck(*_sub_ack_fields("SUBACK", data, pos, end))


def _decode_unsuback(first: int, data: bytes, pos: int, end: int) -> UnsubAck:
    return UnsubAck(*_sub_ack_fields("UNSUBACK", data, pos, end))


def _decode_pingresp(first: int, data: bytes, pos: int, end: int) -> PingResp:
    if end != pos:
        raise MalformedPacketError("PINGRESP with a body")
    return PingResp()


def _decode_disconnect(first: int, data: bytes, pos: int, end: int) -> Disconnect:
    if end == pos:
        return Disconnect()
    props: dict[int, object] = {}
    if end - pos > 1:
        props, _ = decode_properties(data, pos + 1, end)
    text = props.get(0x1F)
    return Disconnect(data[pos], text if isinstance(text, str) else None)


PacketDecoder = Callable[[int, bytes, int, int], Event]

# Packet type -> (required low nibble of the first byte or None for PUBLISH, decoder), for the
# packets a server sends to a client (2.1.3).
DECODERS: dict[int, tuple[int | None, PacketDecoder]] = {
    PacketType.CONNACK: (0, _decode_connack),
    PacketType.PUBLISH: (None, _decode_publish),
    PacketType.PUBACK: (0, _decode_puback),
    PacketType.PUBREC: (0, _decode_pubrec),
    PacketType.PUBREL: (2, _decode_pubrel),
    PacketType.PUBCOMP: (0, _decode_pubcomp),
    PacketType.SUBACK: (0, _decode_suback),
    PacketType.UNSUBACK: (0, _decode_unsuback),
    PacketType.PINGRESP: (0, _decode_pingresp),
    PacketType.DISCONNECT: (0, _decode_disconnect),
}


def decode_packet(first: int, data: bytes, pos: int, end: int) -> Event:
    """One packet whose first byte is ``first`` and whose body is ``data[pos:end]``."""
    entry = DECODERS.get(first >> 4)
    if entry is None:
        name = PacketType(first >> 4).name if first >> 4 else "reserved type 0"
        raise MalformedPacketError(f"a server does not send {name} packets")
    flags, decode = entry
    if flags is not None and first & 0x0F != flags:
        name = PacketType(first >> 4).name
        raise MalformedPacketError(f"{name} with invalid fixed header flags 0x{first & 0x0F:X}")
    return decode(first, data, pos, end)


class Decoder:
    """Incremental decoder: ``feed(bytes) -> [event, ...]``; a partial packet waits in a buffer."""

    def __init__(self, max_packet_size: int = MAX_REMAINING_LENGTH) -> None:
        self._buffer = bytearray()
        self.max_packet_size = max_packet_size

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete packet held for the next :meth:`feed`."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        events: list[Event] = []
        try:
            pos = self._decode_into(events, data)
        except MalformedPacketError as exc:
            exc.events = events
            raise
        if pos < len(data):
            self._buffer += data[pos:]
        return events

    def _decode_into(self, events: list[Event], data: bytes) -> int:
        """Append the complete packets in ``data`` to ``events``; return where the rest starts."""
        pos, size = 0, len(data)
        publish = _decode_publish
        while pos + 2 <= size:
            first = data[pos]
            length = data[pos + 1]
            start = pos + 2
            if length & 0x80:
                found = decode_varint(data, pos + 1, size)
                if found is None:
                    break
                length, start = found
                self._check_size(length)
            end = start + length
            if end > size:
                break
            if first >> 4 == 3:
                events.append(publish(first, data, start, end))
            else:
                events.append(decode_packet(first, data, start, end))
            pos = end
        return pos

    def _check_size(self, length: int) -> None:
        if length > self.max_packet_size:
            raise MalformedPacketError(
                f"packet of {length} bytes is larger than the maximum of {self.max_packet_size}"
            )
