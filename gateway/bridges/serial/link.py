"""The serial link's wire format as pure code: CRC-16, COBS, typed frames, a streaming decoder.

The format is specified in ``docs/serial-link.md``; ``tests/vectors/serial_link.json`` holds the
vectors this module and the firmware's C++ codec (``firmware/src/MsgfloLink.*``) both pass.
A frame on the wire is ``COBS(type | seq | body | crc16-BE) 0x00``.

No I/O here: :func:`encode_frame` returns bytes to write, :meth:`LinkDecoder.feed` takes bytes
read and returns frames and :class:`~gateway.errors.SerialLinkError` values (never raised: bad
input from a device is expected, counted in :attr:`LinkDecoder.stats` and skipped).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from gateway.errors import FrameTooLargeError, SerialLinkError

PROTOCOL_VERSION = 1
MAX_FRAME = 254  # largest decoded frame (type..crc): one COBS block, 255 bytes encoded
MIN_FRAME = 4  # type, seq and the two CRC bytes
MAX_BODY = MAX_FRAME - MIN_FRAME
MAX_ENCODED = MAX_FRAME + 1  # COBS adds one byte per started 254-byte block
AVR_MAX_FRAME = 60  # what an ATmega328P with a 64-byte RX ring accepts (docs/serial-link.md 6)
DELIMITER = b"\x00"


class FrameType(enum.IntEnum):
    """The type byte, an ASCII letter (docs/serial-link.md section 4)."""

    HELLO = ord("H")
    DESCRIBE = ord("D")  # both ways: request (body 0 or 2 bytes) and reply (4 or more)
    MESSAGE = ord("M")  # both ways
    PING = ord("P")  # host to device
    PONG = ord("p")
    ERROR = ord("E")


class LinkErrorKind(enum.StrEnum):
    """Why a received frame was dropped; the ``kind`` of a :class:`SerialLinkError`."""

    BAD_COBS = "bad_cobs"
    BAD_CRC = "bad_crc"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    UNKNOWN_TYPE = "unknown_type"
    BAD_BODY = "bad_body"


class DeviceErrorCode(enum.IntEnum):
    """First byte of an ``E`` body. Codes from 0x80 up belong to the application."""

    UNKNOWN_TYPE = 1
    BAD_BODY = 2
    NO_SUCH_PORT = 3
    TOO_LONG = 4
    BUSY = 5


# -- CRC and COBS --------------------------------------------------------------------------------


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0 (check 0x29B1)."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """COBS without the delimiter. A final full block (254 non-zero bytes) gets no extra code."""
    out = bytearray(1)
    code_at = 0
    for byte in data:
        if len(out) - code_at == 0xFF:  # 254 bytes since the code: close the block, no zero
            out[code_at] = 0xFF
            code_at = len(out)
            out.append(0)
        if byte:
            out.append(byte)
        else:
            out[code_at] = len(out) - code_at
            code_at = len(out)
            out.append(0)
    out[code_at] = len(out) - code_at
    return bytes(out)


def cobs_decode(encoded: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`SerialLinkError` (``bad_cobs``)."""
    out = bytearray()
    pos, end = 0, len(encoded)
    while pos < end:
        code = encoded[pos]
        block_end = pos + code
        if code == 0 or block_end > end:
            raise SerialLinkError(LinkErrorKind.BAD_COBS, f"block at offset {pos} is cut short")
        out += encoded[pos + 1 : block_end]
        if code != 0xFF and block_end < end:
            out.append(0)
        pos = block_end
    return bytes(out)


# -- typed frames --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """``H``: sent by the device at boot, and again when asked with a ping after a reset."""

    name: str
    version: str
    protocol: int = PROTOCOL_VERSION
    max_frame: int = MAX_FRAME


@dataclass(frozen=True, slots=True)
class DescribeRequest:
    """``D`` from the host: asks for the description JSON from byte ``offset`` on."""

    offset: int = 0


@dataclass(frozen=True, slots=True)
class Description:
    """``D`` from the device: bytes ``offset..offset+len(data)`` of a ``total``-byte JSON text."""

    offset: int
    total: int
    data: bytes


@dataclass(frozen=True, slots=True)
class PortMessage:
    """``M``: a payload for inport ``port`` (host to device) or from outport ``port``."""

    port: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """``P``: liveness check from the host; the device answers with :class:`Pong`."""


@dataclass(frozen=True, slots=True)
class ErrorCounters:
    """The device's own receive error counters (saturating at 0xFFFF)."""

    cobs: int = 0
    crc: int = 0
    overflow: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class Pong:
    """``p``: the device's answer to a ping, with its error counters."""

    counters: ErrorCounters = field(default_factory=ErrorCounters)


@dataclass(frozen=True, slots=True)
class DeviceError:
    """``E``: the device reports a problem; ``code`` is a :class:`DeviceErrorCode` or >= 0x80."""

    code: int
    text: str = ""


Frame = Hello | DescribeRequest | Description | PortMessage | Ping | Pong | DeviceError


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded frame with the sequence number it carried."""

    frame: Frame
    seq: int


# -- encoding ------------------------------------------------------------------------------------


def _u8(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} must be 0..255, got {value}")
    return value


def _u16(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{what} must be 0..65535, got {value}")
    return value.to_bytes(2, "big")


def _short_text(text: str, what: str) -> bytes:
    data = text.encode()
    if len(data) > 0xFF:
        raise ValueError(f"{what} must be 0..255 bytes of UTF-8, got {len(data)}")
    return bytes([len(data)]) + data


def _body(frame: Frame) -> tuple[FrameType, bytes]:  # noqa: PLR0911 (one return per type)
    match frame:
        case Hello(name, version, protocol, max_frame):
            head = bytes([_u8(protocol, "protocol"), _u8(max_frame, "max_frame")])
            body = head + _short_text(name, "name") + _short_text(version, "version")
            return FrameType.HELLO, body
        case DescribeRequest(offset):
            return FrameType.DESCRIBE, b"" if offset == 0 else _u16(offset, "offset")
        case Description(offset, total, data):
            return FrameType.DESCRIBE, _u16(offset, "offset") + _u16(total, "total") + data
        case PortMessage(port, payload):
            return FrameType.MESSAGE, bytes([_u8(port, "port")]) + payload
        case Ping():
            return FrameType.PING, b""
        case Pong(counters):
            values = (counters.cobs, counters.crc, counters.overflow, counters.rejected)
            return FrameType.PONG, b"".join(_u16(min(v, 0xFFFF), "counter") for v in values)
        case DeviceError(code, text):
            return FrameType.ERROR, bytes([_u8(code, "code")]) + text.encode()
    raise TypeError(f"not a serial link frame: {frame!r}")


def encode_frame(frame: Frame, seq: int, *, max_frame: int = MAX_FRAME) -> bytes:
    """The frame as it goes on the wire, delimiter included.

    ``max_frame`` is the receiver's limit on the decoded frame (from its hello); a frame over it
    raises :class:`~gateway.errors.FrameTooLargeError` and must not be sent.
    """
    frame_type, body = _body(frame)
    raw = bytes([frame_type, _u8(seq, "seq")]) + body
    size = len(raw) + 2
    if size > min(max_frame, MAX_FRAME):
        raise FrameTooLargeError(size, min(max_frame, MAX_FRAME))
    return cobs_encode(raw + crc16_ccitt_false(raw).to_bytes(2, "big")) + DELIMITER


def frame_size(frame: Frame) -> int:
    """The decoded size of ``frame`` (type..crc), to compare with a receiver's ``max_frame``."""
    return len(_body(frame)[1]) + MIN_FRAME


# -- decoding ------------------------------------------------------------------------------------


def _bad_body(frame_type: FrameType, why: str) -> SerialLinkError:
    return SerialLinkError(LinkErrorKind.BAD_BODY, f"{frame_type.name} frame: {why}")


def _take_text(body: bytes, pos: int, frame_type: FrameType, what: str) -> tuple[str, int]:
    if pos >= len(body) or pos + 1 + body[pos] > len(body):
        raise _bad_body(frame_type, f"{what} is cut short")
    end = pos + 1 + body[pos]
    try:
        return body[pos + 1 : end].decode(), end
    except UnicodeDecodeError:
        raise _bad_body(frame_type, f"{what} is not UTF-8") from None


def _parse_hello(body: bytes) -> Hello:
    if len(body) < 2:
        raise _bad_body(FrameType.HELLO, "shorter than 2 bytes")
    name, pos = _take_text(body, 2, FrameType.HELLO, "name")
    version, _ = _take_text(body, pos, FrameType.HELLO, "version")
    # Bytes after the version are for later protocol minor additions: ignored.
    return Hello(name, version, protocol=body[0], max_frame=body[1])


def _parse_describe(body: bytes) -> DescribeRequest | Description:
    if len(body) == 0:
        return DescribeRequest()
    if len(body) == 2:
        return DescribeRequest(struct.unpack(">H", body)[0])
    if len(body) < 4:
        raise _bad_body(FrameType.DESCRIBE, f"body of {len(body)} bytes")
    offset, total = struct.unpack_from(">HH", body)
    if offset + len(body) - 4 > total:
        raise _bad_body(FrameType.DESCRIBE, f"bytes past the total of {total}")
    return Description(offset, total, body[4:])


def _parse_message(body: bytes) -> PortMessage:
    if not body:
        raise _bad_body(FrameType.MESSAGE, "no port index")
    return PortMessage(body[0], body[1:])


def _parse_empty(body: bytes) -> Ping:
    if body:
        raise _bad_body(FrameType.PING, f"{len(body)} unexpected bytes")
    return Ping()


def _parse_pong(body: bytes) -> Pong:
    if len(body) < 8:
        raise _bad_body(FrameType.PONG, f"{len(body)} bytes of counters, 8 needed")
    return Pong(ErrorCounters(*struct.unpack_from(">4H", body)))  # more counters: later minor


def _parse_error(body: bytes) -> DeviceError:
    if not body:
        raise _bad_body(FrameType.ERROR, "no error code")
    return DeviceError(body[0], body[1:].decode(errors="replace"))


_PARSERS = {
    FrameType.HELLO: _parse_hello,
    FrameType.DESCRIBE: _parse_describe,
    FrameType.MESSAGE: _parse_message,
    FrameType.PING: _parse_empty,
    FrameType.PONG: _parse_pong,
    FrameType.ERROR: _parse_error,
}


def decode_frame(encoded: bytes) -> Received:
    """One frame from its COBS bytes (without the delimiter); raises :class:`SerialLinkError`."""
    if len(encoded) > MAX_ENCODED:
        raise SerialLinkError(LinkErrorKind.TOO_LONG, f"{len(encoded)} encoded bytes")
    raw = cobs_decode(encoded)
    if len(raw) < MIN_FRAME:
        raise SerialLinkError(LinkErrorKind.TOO_SHORT, f"{len(raw)} bytes, at least 4 needed")
    if crc16_ccitt_false(raw) != 0:  # the CRC over data + big-endian CRC is zero when intact
        raise SerialLinkError(LinkErrorKind.BAD_CRC, f"CRC mismatch in a {len(raw)}-byte frame")
    try:
        frame_type = FrameType(raw[0])
    except ValueError:
        raise SerialLinkError(LinkErrorKind.UNKNOWN_TYPE, f"type byte 0x{raw[0]:02x}") from None
    return Received(_PARSERS[frame_type](raw[2:-2]), raw[1])


def _no_errors() -> dict[LinkErrorKind, int]:
    return dict.fromkeys(LinkErrorKind, 0)


@dataclass
class LinkStats:
    """What a :class:`LinkDecoder` has seen: good frames and dropped ones by kind."""

    frames: int = 0
    errors: dict[LinkErrorKind, int] = field(
        default_factory=lambda: dict.fromkeys(LinkErrorKind, 0)
    )

    @property
    def dropped(self) -> int:
        return sum(self.errors.values())


class LinkDecoder:
    """Streaming decoder: feed it bytes as they come, get frames and errors back.

    Every 0x00 ends a frame. More than ``max_frame + 1`` bytes without a delimiter (a frame
    longer than ``max_frame`` once decoded) are an overflow: one ``too_long`` error, then
    everything up to the next 0x00 is discarded. Empty frames (``00 00``, or the lone 0x00 a
    host sends after opening) are not errors. A host keeps the default ``max_frame``; a
    simulated device passes its own limit (e.g. :data:`AVR_MAX_FRAME`).
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        if not MIN_FRAME <= max_frame <= MAX_FRAME:
            raise ValueError(f"max_frame must be {MIN_FRAME}..{MAX_FRAME}, got {max_frame}")
        self._max_encoded = max_frame + 1
        self._buffer = bytearray()
        self._overflow = False
        self.stats = LinkStats()

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished frame held for the next :meth:`feed`."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Received | SerialLinkError]:
        """Everything ``data`` completes, in order. Never raises on any input."""
        events: list[Received | SerialLinkError] = []
        pieces = bytes(data).split(DELIMITER)
        for piece in pieces[:-1]:
            self._take(piece, events)
            if not self._overflow and self._buffer:
                self._finish(events)
            self._buffer.clear()
            self._overflow = False
        self._take(pieces[-1], events)
        return events

    def _take(self, piece: bytes, events: list[Received | SerialLinkError]) -> None:
        if self._overflow:
            return
        self._buffer += piece
        if len(self._buffer) > self._max_encoded:
            self._buffer.clear()
            self._overflow = True
            self._count(SerialLinkError(LinkErrorKind.TOO_LONG, "no delimiter in time"), events)

    def _finish(self, events: list[Received | SerialLinkError]) -> None:
        try:
            received = decode_frame(bytes(self._buffer))
        except SerialLinkError as error:
            self._count(error, events)
            return
        self.stats.frames += 1
        events.append(received)

    def _count(self, error: SerialLinkError, events: list[Received | SerialLinkError]) -> None:
        self.stats.errors[LinkErrorKind(error.kind)] += 1
        events.append(error)
