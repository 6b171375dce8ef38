"""The MQTT client codec, for MQTT 3.1.1 (protocol level 4) and MQTT 5.0: bytes in, packets out.

Pure: :class:`Decoder` takes whatever arrived and returns the complete packets in it as typed
events, keeping a partial packet for the next call; the ``encode_*`` functions and
:class:`PublishEncoder` build what a client sends. Only what a client needs, and a forwarder's
hot path kept lean: an incoming PUBLISH is a few slices (MQTT 5 properties are skipped by
length, never parsed), and an outgoing one to a known topic is a header and two appends.

Section numbers (``3.3.2``) are the MQTT 5.0 OASIS Standard's; where 3.1.1 differs, the
difference is noted with "3.1.1". Bad input raises :class:`MalformedPacketError` (one line)
and nothing else; the receiver then closes the connection (4.13).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.errors import TransportError
from gateway.transport.base import Will
from gateway.transport.topics import check_topic

MQTT_311 = 4  # protocol levels, as in CONNECT (3.1.2.2)
MQTT_5 = 5
PROTOCOL_NAME = b"\x00\x04MQTT"
MAX_REMAINING_LENGTH = 268_435_455  # 1.5.5: four bytes of variable byte integer
MAX_PACKET_ID = 65_535
MAX_STRING = 65_535
TOPIC_CACHE_SIZE = 4096  # encoded topics kept by a PublishEncoder before it starts over

# Packet types (2.1.2), the high nibble of the first byte.
CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 2, 3, 4, 5, 6, 7
SUBACK, UNSUBACK, PINGRESP, DISCONNECT = 9, 11, 13, 14
PACKET_NAMES = ("reserved type 0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
                "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK",
                "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH")  # fmt: skip

# 3.8.3.1 Retain Handling: send retained messages when subscribing, or do not.
SEND_RETAINED, DO_NOT_SEND_RETAINED = 0, 2


class MalformedPacketError(TransportError):
    """The broker sent bytes that are not a valid packet for a client. ``events`` are the good
    packets decoded before the bad one in the same :meth:`Decoder.feed` call."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.events: list[Event] = []


# 2.4: reason codes a client may see, with the names the standard gives them.
REASONS = {
    0x00: "Success", 0x01: "Granted QoS 1", 0x02: "Granted QoS 2",
    0x04: "Disconnect with Will Message", 0x10: "No matching subscribers",
    0x11: "No subscription existed", 0x80: "Unspecified error", 0x81: "Malformed Packet",
    0x82: "Protocol Error", 0x83: "Implementation specific error",
    0x84: "Unsupported Protocol Version", 0x85: "Client Identifier not valid",
    0x86: "Bad User Name or Password", 0x87: "Not authorized", 0x88: "Server unavailable",
    0x89: "Server busy", 0x8A: "Banned", 0x8B: "Server shutting down",
    0x8C: "Bad authentication method", 0x8D: "Keep Alive timeout", 0x8E: "Session taken over",
    0x8F: "Topic Filter invalid", 0x90: "Topic Name invalid", 0x91: "Packet Identifier in use",
    0x92: "Packet Identifier not found", 0x93: "Receive Maximum exceeded",
    0x94: "Topic Alias invalid", 0x95: "Packet too large", 0x96: "Message rate too high",
    0x97: "Quota exceeded", 0x98: "Administrative action", 0x99: "Payload format invalid",
    0x9A: "Retain not supported", 0x9B: "QoS not supported", 0x9C: "Use another server",
    0x9D: "Server moved", 0x9E: "Shared Subscriptions not supported",
    0x9F: "Connection rate exceeded", 0xA0: "Maximum connect time",
    0xA1: "Subscription Identifiers not supported",
    0xA2: "Wildcard Subscriptions not supported",
}  # fmt: skip

# 3.1.1 3.2.2.3: CONNACK return codes, as the MQTT 5 reason codes that mean the same.
CONNACK_311 = {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


def reason_name(code: int) -> str:
    return REASONS.get(code, f"reason code 0x{code:02X}")


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnAck:
    """``reason_code`` in MQTT 5 terms also on 3.1.1 (see :data:`CONNACK_311`)."""

    reason_code: int
    session_present: bool = False
    receive_maximum: int = 65_535  # 3.2.2.3.3: how many QoS>0 PUBLISHes may be unacknowledged
    server_keep_alive: int | None = None  # 3.2.2.3.14: overrides the client's keep alive


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
class Ack:
    """PUBACK, PUBREC, PUBREL or PUBCOMP (``kind``, the packet type): 3.4 to 3.7."""

    kind: int
    packet_id: int
    reason_code: int = 0


@dataclass(frozen=True, slots=True)
class SubAck:
    """SUBACK or UNSUBACK (``kind``); 3.1.1's UNSUBACK has no reason codes."""

    kind: int
    packet_id: int
    reason_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    """3.14: only MQTT 5 servers send it."""

    reason_code: int = 0
    reason_string: str | None = None


Event = ConnAck | Publish | Ack | SubAck | PingResp | Disconnect


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
    found = decode_varint(data, pos, end)
    if found is None:
        raise MalformedPacketError("packet ends inside a variable byte integer")
    return found


def _u16(data: bytes, pos: int, end: int) -> int:
    if pos + 2 > end:
        raise MalformedPacketError("packet ends inside a two byte integer")
    return (data[pos] << 8) | data[pos + 1]


def _binary(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    stop = pos + 2 + _u16(data, pos, end)
    if stop > end:
        raise MalformedPacketError("packet ends inside a string or binary data")
    return data[pos + 2 : stop], stop


def _string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    raw, stop = _binary(data, pos, end)
    try:
        return raw.decode("utf-8"), stop
    except UnicodeDecodeError:
        raise MalformedPacketError("string is not valid UTF-8") from None


def _skip_properties(data: bytes, pos: int, end: int) -> int:
    """The position after the properties at ``pos`` (their length, then that many bytes)."""
    length, pos = _varint_in(data, pos, end)
    if pos + length > end:
        raise MalformedPacketError("properties run past the end of the packet")
    return pos + length


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
    return _binary(data, pos, end)


def decode_properties(data: bytes, pos: int, end: int) -> dict[int, object]:
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
    return found


def _decode_publish(first: int, data: bytes, pos: int, end: int, v5: bool) -> Publish:
    """3.3: the hot path, a few slices. MQTT 5 properties are skipped, not parsed."""
    size = (data[pos] << 8) | data[pos + 1] if pos + 2 <= end else -1
    stop = pos + 2 + size
    qos = (first >> 1) & 3
    if size < 0 or stop + (2 if qos else 0) + v5 > end or qos == 3:
        return _publish_problem(first, data, pos, end)
    try:
        topic = data[pos + 2 : stop].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacketError("PUBLISH topic is not valid UTF-8") from None
    packet_id = 0
    if qos:
        packet_id = (data[stop] << 8) | data[stop + 1]
        stop += 2
    if v5:
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
    if stop + (2 if first & 6 else 0) > end:
        raise MalformedPacketError("PUBLISH ends inside its topic or packet identifier")
    if first & 6 and not (data[stop] << 8) | data[stop + 1]:
        raise MalformedPacketError("QoS>0 PUBLISH with packet identifier 0")
    raise MalformedPacketError("PUBLISH properties run past the end of the packet")


def _decode_connack(first: int, data: bytes, pos: int, end: int, v5: bool) -> ConnAck:
    """3.2: CONNACK; its properties are read for the few a client must honour."""
    if end - pos < 2:
        raise MalformedPacketError("CONNACK too short")
    if data[pos] & 0xFE:
        raise MalformedPacketError("CONNACK with reserved flags set")
    code, present = data[pos + 1], bool(data[pos] & 1)
    if not v5 or (end - pos == 2 and code in CONNACK_311):
        # A 3.1.1 broker answers an MQTT 5 CONNECT in 3.1.1 (return code 1, 3.1.1 3.1.2.2).
        return ConnAck(CONNACK_311.get(code, code), present)
    props = decode_properties(data, pos + 2, end) if end - pos > 2 else {}
    receive_maximum = props.get(0x21)
    keep_alive = props.get(0x13)
    return ConnAck(
        code,
        present,
        receive_maximum if isinstance(receive_maximum, int) and receive_maximum else 65_535,
        keep_alive if isinstance(keep_alive, int) else None,
    )


def _decode_ack(first: int, data: bytes, pos: int, end: int, v5: bool) -> Ack:
    """3.4.2: a packet identifier, then (MQTT 5) an optional reason code and properties."""
    packet_id = _u16(data, pos, end)
    if not packet_id:
        raise MalformedPacketError("acknowledgement with packet identifier 0")
    if not v5 and end - pos != 2:
        raise MalformedPacketError(f"{PACKET_NAMES[first >> 4]} longer than two bytes")
    if end - pos > 3:
        _skip_properties(data, pos + 3, end)
    return Ack(first >> 4, packet_id, data[pos + 2] if end - pos > 2 else 0)


def _decode_suback(first: int, data: bytes, pos: int, end: int, v5: bool) -> SubAck:
    packet_id = _u16(data, pos, end)
    start = _skip_properties(data, pos + 2, end) if v5 else pos + 2
    if start >= end and (v5 or first >> 4 == SUBACK):
        raise MalformedPacketError(f"{PACKET_NAMES[first >> 4]} without reason codes")
    return SubAck(first >> 4, packet_id, tuple(data[start:end]))


def _decode_pingresp(first: int, data: bytes, pos: int, end: int, v5: bool) -> PingResp:
    if end != pos:
        raise MalformedPacketError("PINGRESP with a body")
    return PingResp()


def _decode_disconnect(first: int, data: bytes, pos: int, end: int, v5: bool) -> Disconnect:
    if not v5:
        raise MalformedPacketError("a 3.1.1 server does not send DISCONNECT packets")
    if end == pos:
        return Disconnect()
    text = decode_properties(data, pos + 1, end).get(0x1F) if end - pos > 1 else None
    return Disconnect(data[pos], text if isinstance(text, str) else None)


PacketDecoder = Callable[[int, bytes, int, int, bool], Event]

# Packet type -> (required low nibble of the first byte, decoder), for the packets a server
# sends to a client (2.1.3). PUBLISH is decoded before this table is looked at.
DECODERS: dict[int, tuple[int, PacketDecoder]] = {
    CONNACK: (0, _decode_connack),
    PUBACK: (0, _decode_ack),
    PUBREC: (0, _decode_ack),
    PUBREL: (2, _decode_ack),
    PUBCOMP: (0, _decode_ack),
    SUBACK: (0, _decode_suback),
    UNSUBACK: (0, _decode_suback),
    PINGRESP: (0, _decode_pingresp),
    DISCONNECT: (0, _decode_disconnect),
}


def decode_packet(first: int, data: bytes, pos: int, end: int, v5: bool = True) -> Event:
    """One packet whose first byte is ``first`` and whose body is ``data[pos:end]``."""
    if first >> 4 == PUBLISH:
        return _decode_publish(first, data, pos, end, v5)
    entry = DECODERS.get(first >> 4)
    if entry is None:
        raise MalformedPacketError(f"a server does not send {PACKET_NAMES[first >> 4]} packets")
    flags, decode = entry
    if first & 0x0F != flags:
        name = PACKET_NAMES[first >> 4]
        raise MalformedPacketError(f"{name} with invalid fixed header flags 0x{first & 0x0F:X}")
    return decode(first, data, pos, end, v5)


class Decoder:
    """Incremental: ``feed(bytes) -> [event, ...]``; a partial packet waits in a buffer."""

    def __init__(self, version: int = MQTT_5, max_packet_size: int = MAX_REMAINING_LENGTH) -> None:
        self._buffer = bytearray()
        self.v5 = version == MQTT_5
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
            if len(self._buffer) > self.max_packet_size + 5:  # 5: the largest fixed header
                raise MalformedPacketError("incomplete packet larger than the maximum")
        return events

    def _decode_into(self, events: list[Event], data: bytes) -> int:
        """Append the complete packets in ``data`` to ``events``; return where the rest starts."""
        pos, size, v5 = 0, len(data), self.v5
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
                if length > self.max_packet_size:
                    raise MalformedPacketError(
                        f"packet of {length} bytes is larger than the maximum of "
                        f"{self.max_packet_size}"
                    )
            end = start + length
            if end > size:
                break
            if first >> 4 == PUBLISH:
                events.append(publish(first, data, start, end, v5))
            else:
                events.append(decode_packet(first, data, start, end, v5))
            pos = end
        return pos


# -- encoding ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """3.8.3.1: the options byte of one SUBSCRIBE entry; 3.1.1 has the QoS only."""

    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = SEND_RETAINED

    @property
    def needs_v5(self) -> str | None:
        """The option 3.1.1 cannot express, if any (3.1.1 3.8.3.1: the other bits are 0)."""
        if self.no_local:
            return "no_local"
        return "retain_as_published" if self.retain_as_published else None

    def byte(self, version: int = MQTT_5) -> int:
        _check_qos(self.qos)
        if version != MQTT_5:
            return self.qos
        return (
            self.qos
            | (0x04 if self.no_local else 0)
            | (0x08 if self.retain_as_published else 0)
            | (self.retain_handling << 4)
        )


def encode_varint(value: int) -> bytes:
    """1.5.5 Variable Byte Integer: 7 bits a byte, least significant first."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise TransportError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_binary(data: bytes) -> bytes:
    if len(data) > MAX_STRING:
        raise TransportError(f"string of {len(data)} bytes is longer than {MAX_STRING}")
    return len(data).to_bytes(2, "big") + data


def encode_string(text: str) -> bytes:
    try:
        return encode_binary(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise TransportError(f"{text!r} is not UTF-8 ({exc.reason})") from None


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def _check_qos(qos: int) -> None:
    if qos not in (0, 1, 2):
        raise TransportError(f"QoS must be 0, 1 or 2, not {qos}")


def _check_packet_id(packet_id: int) -> None:
    if not 0 < packet_id <= MAX_PACKET_ID:
        raise TransportError(f"packet identifier must be 1..{MAX_PACKET_ID}, not {packet_id}")


def encode_connect(
    client_id: str,
    *,
    version: int = MQTT_5,
    keepalive: int = 60,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
    session_expiry: int = 0,
) -> bytes:
    """3.1: CONNECT. ``session_expiry`` 0 is a clean session that ends with the connection;
    above 0, the broker resumes the session of this client id (3.1.2.4, Clean Start 0) and
    keeps it, queueing QoS 1 and 2 messages for its subscriptions, for that many seconds
    after a disconnect (3.1.2.11.2). 3.1.1 has Clean Session 0 and no expiry: the broker
    keeps the session as long as its configuration says."""
    if not 0 <= keepalive <= 0xFFFF:
        raise TransportError(f"keep alive must be 0..65535 s, not {keepalive}")
    if not 0 <= session_expiry <= 0xFFFFFFFF:
        raise TransportError(f"session expiry must be 0..4294967295 s, not {session_expiry}")
    v5 = version == MQTT_5
    flags = 0 if session_expiry else 0x02
    properties = b""
    if v5:
        properties = b"\x05\x11" + session_expiry.to_bytes(4, "big") if session_expiry else b"\0"
    payload = [encode_string(client_id)]
    if will is not None:
        _check_qos(will.qos)
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += [b"\x00" if v5 else b"", encode_string(will.topic), encode_binary(will.payload)]
    if username is not None:
        flags |= 0x80
        payload.append(encode_string(username))
    if password is not None:
        flags |= 0x40
        payload.append(encode_binary(password.encode("utf-8")))
    header = PROTOCOL_NAME + bytes([version, flags]) + keepalive.to_bytes(2, "big")
    return _packet(0x10, header + properties + b"".join(payload))


def encode_subscribe(
    packet_id: int, topics: Iterable[tuple[str, SubscriptionOptions]], version: int = MQTT_5
) -> bytes:
    """3.8: one SUBSCRIBE for any number of topic filters, each with its options."""
    _check_packet_id(packet_id)
    entries = [encode_string(t) + bytes([options.byte(version)]) for t, options in topics]
    if not entries:
        raise TransportError("SUBSCRIBE needs at least one topic filter")
    props = b"\x00" if version == MQTT_5 else b""
    return _packet(0x82, packet_id.to_bytes(2, "big") + props + b"".join(entries))


def encode_unsubscribe(packet_id: int, topics: Iterable[str], version: int = MQTT_5) -> bytes:
    """3.10: UNSUBSCRIBE."""
    _check_packet_id(packet_id)
    entries = [encode_string(topic) for topic in topics]
    if not entries:
        raise TransportError("UNSUBSCRIBE needs at least one topic filter")
    props = b"\x00" if version == MQTT_5 else b""
    return _packet(0xA2, packet_id.to_bytes(2, "big") + props + b"".join(entries))


def encode_ack(kind: int, packet_id: int) -> bytes:
    """PUBACK, PUBREC, PUBREL (flags 2, 3.6.1) or PUBCOMP with reason Success, which MQTT 5
    lets a client omit (3.4.2.1) and 3.1.1 does not have: the same bytes in both."""
    _check_packet_id(packet_id)
    return bytes([kind << 4 | (2 if kind == PUBREL else 0), 2]) + packet_id.to_bytes(2, "big")


PINGREQ = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # 3.14: normal disconnection, the same bytes in 3.1.1


def encode_publish(
    topic: str, payload: bytes, *, version: int = MQTT_5, qos: int = 0, retain: bool = False,
    packet_id: int = 0, dup: bool = False,
) -> bytes:  # fmt: skip
    """3.3: one PUBLISH, without properties."""
    out = bytearray()
    PublishEncoder(version).write(out, topic, payload, qos, retain, packet_id=packet_id, dup=dup)
    return bytes(out)


class PublishEncoder:
    """Encodes PUBLISH packets, keeping each topic's encoded name, so a forwarder's repeated
    topics cost a dictionary lookup."""

    def __init__(self, version: int = MQTT_5) -> None:
        self._topics: dict[str, bytes] = {}
        self._props = b"\x00" if version == MQTT_5 else b""  # MQTT 5: no properties

    def topic_bytes(self, topic: str) -> bytes:
        encoded = self._topics.get(topic)
        if encoded is None:
            check_topic(topic)
            if len(self._topics) >= TOPIC_CACHE_SIZE:
                self._topics.clear()
            encoded = self._topics[topic] = encode_string(topic)
        return encoded

    def write(
        self,
        out: bytearray,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        *,
        packet_id: int = 0,
        dup: bool = False,
    ) -> None:
        """Append one PUBLISH to ``out``."""
        name = self._topics.get(topic) or self.topic_bytes(topic)
        props = self._props
        length = len(name) + len(props) + len(payload)
        if qos:
            _check_qos(qos)
            _check_packet_id(packet_id)
            length += 2
        out.append(0x30 | (qos << 1) | retain | (0x08 if dup else 0))
        if length < 128:
            out.append(length)
        else:
            out += encode_varint(length)
        out += name
        if qos:
            out += packet_id.to_bytes(2, "big")
        out += props
        out += payload
