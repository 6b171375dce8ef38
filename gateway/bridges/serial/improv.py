"""Improv Wi-Fi's serial packets, and the msgflo broker command added to them: a pure codec.

The format (docs/provisioning.md; https://www.improv-wifi.com/serial/)::

    "IMPROV" | version:u8 (1) | type:u8 | length:u8 | data[length] | checksum:u8

The checksum is the sum of every byte before it (header included), modulo 256. Improv shares
the port with whatever else the board prints (ESPHome's log lines, a sketch's debug output),
so a receiver looks for the header and ignores every byte outside a packet; a sender ends each
packet with a line feed, which keeps those logs readable in a terminal and is ignored too.

Packet types: current state (1, device -> client), error state (2, device -> client), RPC
command (3, client -> device: ``command:u8 | length:u8 | data``) and RPC result (4, device ->
client: ``command:u8 | length:u8 | (length:u8 | string)*``). Improv's commands carry their
strings the same way (``01 1E 0C "MyWirelessAP" 10 "mysecurepassword"``).

Improv's standard commands carry the WiFi name and passphrase only. A msgflo board also needs
its broker, MQTT user and password and its role: :data:`Command.BROKER` (0xF0) carries them,
in Improv's own string encoding, as ``"1", role, host, port, user, password`` (``"1"`` is the
extension's version; later versions append strings). Sent without data it asks the board for
its current role, which is how the gateway tells a msgflo board from any other Improv device
(ESPHome, WLED) before it creates credentials for it.

:class:`PacketDecoder` turns bytes into :class:`Packet` values and :class:`ImprovError` for
bad checksums and versions; the ``parse_*`` and ``encode_*`` functions give each packet's
meaning. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gateway.errors import GatewayError

HEADER = b"IMPROV"
VERSION = 1
MAX_DATA = 255  # the length byte
MAX_RPC_DATA = MAX_DATA - 2  # an RPC's own command and length bytes are inside the packet
END = b"\n"  # after each packet we send; ignored by receivers
BROKER_VERSION = "1"  # the first string of a broker command and of its result


class PacketType(enum.IntEnum):
    CURRENT_STATE = 0x01
    ERROR_STATE = 0x02
    RPC = 0x03
    RPC_RESULT = 0x04


class ImprovState(enum.IntEnum):
    AUTHORIZATION_REQUIRED = 0x01  # (BLE only in Improv's spec)
    READY = 0x02  # ready to accept credentials
    PROVISIONING = 0x03  # credentials received, joining the WiFi
    PROVISIONED = 0x04  # joined


class ImprovErrorCode(enum.IntEnum):
    NONE = 0x00
    INVALID_RPC = 0x01
    UNKNOWN_RPC = 0x02
    UNABLE_TO_CONNECT = 0x03
    BAD_HOSTNAME = 0x05
    UNKNOWN = 0xFF


class Command(enum.IntEnum):
    WIFI_SETTINGS = 0x01
    REQUEST_STATE = 0x02
    DEVICE_INFO = 0x03
    SCAN = 0x04
    HOSTNAME = 0x05
    DEVICE_NAME = 0x06
    NETWORK_STATE = 0x07
    BROKER = 0xF0  # msgflo's extension: broker, user, password, role


class ErrorKind(enum.StrEnum):
    """Why a packet was dropped, as the vectors and the C++ decoder name it."""

    BAD_CHECKSUM = "bad_checksum"
    BAD_VERSION = "bad_version"
    BAD_BODY = "bad_body"  # a packet whose data does not fit its type


class ImprovError(GatewayError):
    """A dropped packet; ``kind`` says why."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet as received: its type (any byte) and its data."""

    type: int
    data: bytes


# -- checksum and packets ------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """The sum of ``data``'s bytes modulo 256."""
    return sum(data) & 0xFF


def encode_packet(kind: int, data: bytes) -> bytes:
    """A whole packet, its line feed included."""
    if len(data) > MAX_DATA:
        raise ValueError(f"packet data of {len(data)} bytes, at most {MAX_DATA}")
    head = HEADER + bytes([VERSION, kind, len(data)]) + data
    return head + bytes([checksum(head)]) + END


def encode_strings(strings: Sequence[str]) -> bytes:
    """Improv's string list: each string's UTF-8 length byte, then the string."""
    out = bytearray()
    for text in strings:
        raw = text.encode()
        if len(raw) > 255:
            raise ValueError(f"a string of {len(raw)} bytes, at most 255")
        out += bytes([len(raw)]) + raw
    return bytes(out)


def decode_strings(data: bytes) -> tuple[str, ...]:
    """The inverse of :func:`encode_strings`; :class:`ImprovError` (bad_body) if it does not
    fit or is not UTF-8."""
    strings: list[str] = []
    pos = 0
    while pos < len(data):
        end = pos + 1 + data[pos]
        if end > len(data):
            raise ImprovError(ErrorKind.BAD_BODY, f"a string runs {end - len(data)} bytes past")
        try:
            strings.append(data[pos + 1 : end].decode())
        except UnicodeDecodeError:
            raise ImprovError(ErrorKind.BAD_BODY, "a string is not UTF-8") from None
        pos = end
    return tuple(strings)


def encode_rpc(command: int, data: bytes = b"") -> bytes:
    """An RPC command packet."""
    if len(data) > MAX_RPC_DATA:
        raise ValueError(f"RPC data of {len(data)} bytes, at most {MAX_RPC_DATA}")
    return encode_packet(PacketType.RPC, bytes([command, len(data)]) + data)


def encode_wifi_settings(ssid: str, passphrase: str) -> bytes:
    return encode_rpc(Command.WIFI_SETTINGS, encode_strings([ssid, passphrase]))


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """What the msgflo broker command carries besides the WiFi."""

    role: str
    host: str
    port: int
    user: str
    password: str

    def strings(self) -> tuple[str, ...]:
        return (BROKER_VERSION, self.role, self.host, str(self.port), self.user, self.password)


def encode_broker(settings: BrokerSettings | None) -> bytes:
    """The broker command; ``None``: the query for the board's role (no data)."""
    if settings is None:
        return encode_rpc(Command.BROKER)
    return encode_rpc(Command.BROKER, encode_strings(settings.strings()))


def encode_result(command: int, strings: Sequence[str]) -> bytes:
    """An RPC result packet (what a device sends)."""
    data = encode_strings(strings)
    if len(data) > MAX_RPC_DATA:
        raise ValueError(f"RPC result of {len(data)} bytes, at most {MAX_RPC_DATA}")
    return encode_packet(PacketType.RPC_RESULT, bytes([command, len(data)]) + data)


def encode_state(state: int) -> bytes:
    return encode_packet(PacketType.CURRENT_STATE, bytes([state]))


def encode_error(code: int) -> bytes:
    return encode_packet(PacketType.ERROR_STATE, bytes([code]))


# -- meanings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurrentState:
    state: int  # an ImprovState value, or another byte a newer device sends


@dataclass(frozen=True, slots=True)
class ErrorState:
    code: int  # an ImprovErrorCode value, or another byte


@dataclass(frozen=True, slots=True)
class RpcCommand:
    command: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RpcResult:
    command: int
    strings: tuple[str, ...]


Message = CurrentState | ErrorState | RpcCommand | RpcResult


def parse(packet: Packet) -> Message:
    """What a packet means; :class:`ImprovError` (bad_body) when its data does not fit its
    type, or the type is unknown."""
    data = packet.data
    if packet.type in (PacketType.CURRENT_STATE, PacketType.ERROR_STATE):
        if len(data) != 1:
            raise ImprovError(ErrorKind.BAD_BODY, f"a state of {len(data)} bytes")
        if packet.type == PacketType.CURRENT_STATE:
            return CurrentState(data[0])
        return ErrorState(data[0])
    if packet.type in (PacketType.RPC, PacketType.RPC_RESULT):
        if len(data) < 2 or data[1] != len(data) - 2:
            raise ImprovError(ErrorKind.BAD_BODY, "an RPC whose length byte does not fit")
        if packet.type == PacketType.RPC:
            return RpcCommand(data[0], data[2:])
        return RpcResult(data[0], decode_strings(data[2:]))
    raise ImprovError(ErrorKind.BAD_BODY, f"unknown packet type {packet.type:#04x}")


def parse_broker(strings: Sequence[str]) -> BrokerSettings:
    """The broker command's strings (at least six; later versions append more)."""
    if len(strings) < 6 or not strings[0]:
        raise ImprovError(ErrorKind.BAD_BODY, f"a broker command of {len(strings)} strings")
    _, role, host, port, user, password = strings[:6]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ImprovError(ErrorKind.BAD_BODY, f"broker port {port!r}")
    return BrokerSettings(role, host, int(port), user, password)


# -- the stream decoder --------------------------------------------------------------------------


class _Phase(enum.Enum):
    HEADER = enum.auto()
    VERSION = enum.auto()
    TYPE = enum.auto()
    LENGTH = enum.auto()
    DATA = enum.auto()
    CHECKSUM = enum.auto()


@dataclass
class DecoderStats:
    packets: int = 0
    ignored: int = 0  # bytes outside packets (a board's log output): normal, not an error
    bad_checksum: int = 0
    bad_version: int = 0


class PacketDecoder:
    """Bytes in, packets and errors out. It holds at most one packet (255 data bytes).

    A packet with a bad checksum is dropped whole: scanning for the next header resumes after
    its checksum byte. A packet with another version is dropped at its version byte (its
    layout may differ), and scanning resumes right there.
    """

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._phase = _Phase.HEADER
        self._matched = 0  # header bytes matched so far
        self._buffer = bytearray()  # the packet so far, header included (for the checksum)
        self._type = 0
        self._length = 0

    def feed(self, data: bytes) -> Iterator[Packet | ImprovError]:
        for byte in data:
            event = self._push(byte)
            if event is not None:
                yield event

    def _push(self, byte: int) -> Packet | ImprovError | None:
        phase = self._phase
        if phase is _Phase.HEADER:
            self._header(byte)
            return None
        self._buffer.append(byte)
        if phase is _Phase.VERSION:
            if byte != VERSION:
                self.stats.bad_version += 1
                self._restart()
                return ImprovError(ErrorKind.BAD_VERSION, f"version {byte}, this side speaks 1")
            self._phase = _Phase.TYPE
        elif phase is _Phase.TYPE:
            self._type, self._phase = byte, _Phase.LENGTH
        elif phase is _Phase.LENGTH:
            self._length = byte
            self._phase = _Phase.DATA if byte else _Phase.CHECKSUM
        elif phase is _Phase.DATA:
            if len(self._buffer) == len(HEADER) + 3 + self._length:
                self._phase = _Phase.CHECKSUM
        else:
            return self._end(byte)
        return None

    def _header(self, byte: int) -> None:
        if byte == HEADER[self._matched]:
            self._matched += 1
        else:
            # "I" occurs only at the header's start: a mismatch restarts there or at nothing.
            self.stats.ignored += self._matched + (byte != HEADER[0])
            self._matched = 1 if byte == HEADER[0] else 0
        if self._matched == len(HEADER):
            self._buffer = bytearray(HEADER)
            self._phase = _Phase.VERSION
            self._matched = 0

    def _end(self, byte: int) -> Packet | ImprovError:
        body = bytes(self._buffer[:-1])
        self._restart()
        expected = checksum(body)
        if byte != expected:
            self.stats.bad_checksum += 1
            detail = f"checksum {byte:#04x}, expected {expected:#04x}"
            return ImprovError(ErrorKind.BAD_CHECKSUM, detail)
        self.stats.packets += 1
        return Packet(body[len(HEADER) + 1], body[len(HEADER) + 3 :])

    def _restart(self) -> None:
        self._phase = _Phase.HEADER
        self._matched = 0
        self._buffer = bytearray()


__all__ = [
    "BrokerSettings",
    "Command",
    "CurrentState",
    "ErrorKind",
    "ErrorState",
    "ImprovError",
    "ImprovErrorCode",
    "ImprovState",
    "Message",
    "Packet",
    "PacketDecoder",
    "PacketType",
    "RpcCommand",
    "RpcResult",
    "checksum",
    "decode_strings",
    "encode_broker",
    "encode_error",
    "encode_packet",
    "encode_result",
    "encode_rpc",
    "encode_state",
    "encode_strings",
    "encode_wifi_settings",
    "parse",
    "parse_broker",
]
