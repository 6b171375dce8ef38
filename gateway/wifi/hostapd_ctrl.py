"""hostapd's control interface protocol, sans I/O: commands to bytes, replies and events to objects.

The protocol (hostapd/ctrl_iface.c, src/common/wpa_ctrl.c in w1.fi's hostap) is text over a UNIX
datagram socket: one command per datagram, one reply per datagram. A reply is either a bare word
(``PONG``, ``OK``, ``FAIL``, ``UNKNOWN COMMAND``) or ``key=value`` lines. A client that sent
``ATTACH`` also receives unsolicited events, each one datagram that starts with ``<level>``
(wpa_debug's levels, 3 = MSG_INFO), e.g. ``<3>AP-STA-CONNECTED 02:00:00:00:01:00``. Like
wpa_ctrl_request, we tell an event from a reply by that leading ``<``: no reply starts with it.

No sockets and no event loop here; :mod:`gateway.wifi.hostapd_client` moves the datagrams. Every
parser takes the raw bytes of one datagram and returns a frozen object or raises
:class:`~gateway.errors.HostapdError`, never anything else, whatever the bytes.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.errors import HostapdError

_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_INT = re.compile(r"-?[0-9]{1,20}")
_INDEXED = re.compile(r"(bss|bssid|ssid|num_sta)\[([0-9]{1,4})\]")
_FLAGS = re.compile(r"(?:\[[^\[\]]*\])*")
_EVENT = re.compile(r"<([0-9]{1,2})>(.*)", re.DOTALL)


class Command(enum.StrEnum):
    """The commands this client knows, spelled as hostapd's ctrl_iface.c matches them."""

    PING = "PING"
    STATUS = "STATUS"
    STA_FIRST = "STA-FIRST"
    STA_NEXT = "STA-NEXT"
    ATTACH = "ATTACH"
    DETACH = "DETACH"
    ENABLE = "ENABLE"  # start the AP (answers FAIL if it runs); emits AP-ENABLED
    DISABLE = "DISABLE"  # stop the AP, keep the control socket; emits AP-DISABLED


class Reply(enum.StrEnum):
    """The bare-word replies."""

    PONG = "PONG"
    OK = "OK"
    FAIL = "FAIL"
    UNKNOWN_COMMAND = "UNKNOWN COMMAND"


class ApState(enum.StrEnum):
    """``state=`` in STATUS: hostapd_state_text() in src/ap/hostapd.c, plus our UNKNOWN for a
    word a newer hostapd may add."""

    UNINITIALIZED = "UNINITIALIZED"
    DISABLED = "DISABLED"
    COUNTRY_UPDATE = "COUNTRY_UPDATE"
    ACS = "ACS"
    HT_SCAN = "HT_SCAN"
    DFS = "DFS"
    NO_IR = "NO_IR"
    ENABLED = "ENABLED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, text: str) -> ApState:
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class MacAddress:
    """An Ethernet address in hostapd's form (MACSTR: lower-case hex, colons)."""

    value: str

    def __post_init__(self) -> None:
        if not _MAC.fullmatch(self.value):
            raise HostapdError(f"{self.value!r} is not a MAC address like 02:00:00:00:01:00")

    @classmethod
    def parse(cls, text: str) -> MacAddress:
        return cls(text.strip().lower())

    def __str__(self) -> str:
        return self.value


def _frozen(mapping: dict[str, str]) -> Mapping[str, str]:
    return MappingProxyType(mapping)


@dataclass(frozen=True)
class Bss:
    """One BSS (one SSID) of the radio, from the ``bss[i]``/``bssid[i]``/``ssid[i]``/
    ``num_sta[i]`` lines. ``ssid`` is as hostapd prints it: non-printable bytes escaped."""

    ifname: str
    bssid: MacAddress
    ssid: str
    num_sta: int


@dataclass(frozen=True)
class ApStatus:
    """The STATUS reply. ``freq`` is in MHz (0 when the driver has no radio, as with
    ``driver=none``); ``extra`` holds every other key, unparsed, for diagnostics."""

    state: ApState
    channel: int
    freq: int
    bss: tuple[Bss, ...]
    extra: Mapping[str, str] = field(default_factory=lambda: _frozen({}))

    @property
    def ssid(self) -> str:
        return self.bss[0].ssid

    @property
    def bssid(self) -> MacAddress:
        return self.bss[0].bssid

    @property
    def num_sta(self) -> int:
        """Stations on every BSS of the radio."""
        return sum(b.num_sta for b in self.bss)


@dataclass(frozen=True)
class Station:
    """One STA-FIRST/STA-NEXT reply (hostapd_ctrl_iface_sta_mib in src/ap/ctrl_iface_ap.c).

    The counters and ``signal`` (dBm) come from the driver and are ``None`` when it gave none;
    ``connected_time`` is in seconds. ``flags`` are the bracketed words of ``flags=``, e.g.
    ``AUTH``, ``ASSOC``, ``AUTHORIZED``. ``extra`` holds every other key, unparsed.
    """

    mac: MacAddress
    flags: frozenset[str] = frozenset()
    aid: int | None = None
    connected_time: int | None = None
    inactive_msec: int | None = None
    rx_packets: int | None = None
    tx_packets: int | None = None
    rx_bytes: int | None = None
    tx_bytes: int | None = None
    signal: int | None = None
    extra: Mapping[str, str] = field(default_factory=lambda: _frozen({}))

    @property
    def authorized(self) -> bool:
        """The station may send data (its 802.1X/WPA handshake is done)."""
        return "AUTHORIZED" in self.flags


@dataclass(frozen=True)
class StationConnected:
    """``AP-STA-CONNECTED <mac>``: a station finished associating (and authorizing)."""

    mac: MacAddress


@dataclass(frozen=True)
class StationDisconnected:
    """``AP-STA-DISCONNECTED <mac>``."""

    mac: MacAddress


@dataclass(frozen=True)
class ApEnabled:
    """``AP-ENABLED``: the interface started beaconing (also after an ``ENABLE`` command)."""


@dataclass(frozen=True)
class ApDisabled:
    """``AP-DISABLED``: the interface stopped (``DISABLE``, or hostapd shutting down)."""


@dataclass(frozen=True)
class Terminating:
    """``CTRL-EVENT-TERMINATING``: hostapd is exiting; no more events will come."""


@dataclass(frozen=True)
class OtherEvent:
    """Any other event, its text without the ``<level>`` prefix."""

    text: str

    @property
    def name(self) -> str:
        return self.text.split(" ", 1)[0]


Event = StationConnected | StationDisconnected | ApEnabled | ApDisabled | Terminating | OtherEvent

_PLAIN_EVENTS: dict[str, Event] = {
    "AP-ENABLED": ApEnabled(),
    "AP-DISABLED": ApDisabled(),
    "CTRL-EVENT-TERMINATING": Terminating(),
}


def encode_command(command: Command, *args: str) -> bytes:
    """One request datagram. hostapd reads it as a C string, so no NUL; no newline either."""
    text = " ".join([command.value, *args])
    if not text.isascii() or not text.isprintable():
        raise HostapdError(f"refusing to send a non-printable command {text!r}")
    return text.encode("ascii")


def reply_text(command: str, datagram: bytes) -> str:
    """The reply as text; ``FAIL``, ``UNKNOWN COMMAND`` and non-text raise HostapdError."""
    try:
        text = datagram.decode("utf-8")
    except UnicodeDecodeError:
        raise HostapdError("reply is not text", command=command) from None
    word = text.strip()
    if word == Reply.FAIL:
        raise HostapdError("answered FAIL", command=command)
    if word == Reply.UNKNOWN_COMMAND:
        raise HostapdError("unknown command (hostapd built without it?)", command=command)
    return text


def expect_word(command: str, datagram: bytes, expected: Reply) -> None:
    """Check a bare-word reply such as ``PONG`` or ``OK``."""
    word = reply_text(command, datagram).strip()
    if word != expected:
        raise HostapdError(f"expected {expected.value}, got {word[:40]!r}", command=command)


def parse_status(datagram: bytes) -> ApStatus:
    """The STATUS reply (hostapd_ctrl_iface_status in src/ap/ctrl_iface_ap.c)."""
    command = Command.STATUS.value
    fields = _key_values(command, reply_text(command, datagram).splitlines())
    if "state" not in fields:
        raise HostapdError("reply has no state= line", command=command)
    extra = {k: v for k, v in fields.items() if k not in {"state", "channel", "freq"}}
    bss = _bss_list(command, extra)
    return ApStatus(
        state=ApState.parse(fields["state"]),
        channel=_int(command, fields, "channel") or 0,
        freq=_int(command, fields, "freq") or 0,
        bss=bss,
        extra=_frozen(extra),
    )


def _bss_list(command: str, fields: dict[str, str]) -> tuple[Bss, ...]:
    """Take the indexed bss lines out of ``fields`` and group them by index."""
    indexed: dict[int, dict[str, str]] = {}
    for key in list(fields):
        if match := _INDEXED.fullmatch(key):
            indexed.setdefault(int(match[2]), {})[match[1]] = fields.pop(key)
    if 0 not in indexed:
        raise HostapdError("reply names no BSS (no bss[0]= line)", command=command)
    return tuple(_bss(command, indexed[i]) for i in sorted(indexed))


def _bss(command: str, lines: dict[str, str]) -> Bss:
    missing = {"bss", "bssid", "ssid", "num_sta"} - lines.keys()
    if missing:
        raise HostapdError(f"BSS lines lack {', '.join(sorted(missing))}", command=command)
    return Bss(
        ifname=lines["bss"],
        bssid=_mac(command, lines["bssid"]),
        ssid=lines["ssid"],
        num_sta=_int(command, lines, "num_sta") or 0,
    )


# The station keys that have a field of their own in Station; the others go to Station.extra.
_STATION_KEYS = frozenset(
    {
        "flags",
        "aid",
        "connected_time",
        "inactive_msec",
        "rx_packets",
        "tx_packets",
        "rx_bytes",
        "tx_bytes",
        "signal",
    }
)


def station_command(previous: MacAddress | None) -> tuple[Command, tuple[str, ...]]:
    """The next request of a station walk: STA-FIRST, then STA-NEXT after the last one seen."""
    if previous is None:
        return Command.STA_FIRST, ()
    return Command.STA_NEXT, (previous.value,)


def parse_station(command: str, datagram: bytes) -> Station | None:
    """A STA-FIRST/STA-NEXT reply; ``None`` at the end of the list.

    hostapd ends the walk with an empty reply; STA-NEXT answers FAIL when the station it was
    asked about has left since the previous reply, and hostapd_cli's ``all_sta`` stops there
    too, so that is also the end (of what can be listed now).
    """
    if command.startswith(Command.STA_NEXT) and datagram.strip() == Reply.FAIL.encode():
        return None
    lines = reply_text(command, datagram).splitlines()
    if not lines or not "".join(lines).strip():
        return None
    fields = _key_values(command, lines[1:])
    mac = _mac(command, lines[0])

    def number(key: str) -> int | None:
        return _int(command, fields, key)

    return Station(
        mac=mac,
        flags=_flags(command, fields.get("flags", "")),
        aid=number("aid"),
        connected_time=number("connected_time"),
        inactive_msec=number("inactive_msec"),
        rx_packets=number("rx_packets"),
        tx_packets=number("tx_packets"),
        rx_bytes=number("rx_bytes"),
        tx_bytes=number("tx_bytes"),
        signal=number("signal"),
        extra=_frozen({k: v for k, v in fields.items() if k not in _STATION_KEYS}),
    )


def _flags(command: str, text: str) -> frozenset[str]:
    """``[AUTH][ASSOC][AUTHORIZED]`` (ap_sta_flags_txt) -> {"AUTH", "ASSOC", "AUTHORIZED"}."""
    if not _FLAGS.fullmatch(text):
        raise HostapdError(f"flags={text[:60]!r} is not a list of [FLAG]s", command=command)
    return frozenset(word for word in text[1:-1].split("][") if word)


def is_event(datagram: bytes) -> bool:
    """Whether a datagram is an unsolicited event rather than a reply (wpa_ctrl's own test)."""
    return datagram.startswith(b"<")


def parse_event(datagram: bytes) -> Event:
    """One event datagram, ``<level>NAME args``."""
    try:
        text = datagram.decode("utf-8")
    except UnicodeDecodeError:
        raise HostapdError("event is not text", command="event") from None
    match = _EVENT.fullmatch(text)
    if match is None:
        raise HostapdError(f"{text[:60]!r} has no <level> prefix", command="event")
    body = match[2].strip()
    if not body:
        raise HostapdError(f"{text[:60]!r} is an empty event", command="event")
    name, _, args = body.partition(" ")
    if name in _PLAIN_EVENTS:
        return _PLAIN_EVENTS[name]
    if name == "AP-STA-CONNECTED":
        return StationConnected(_mac("event", args.split(" ", 1)[0]))
    if name == "AP-STA-DISCONNECTED":
        return StationDisconnected(_mac("event", args.split(" ", 1)[0]))
    return OtherEvent(body)


def _key_values(command: str, lines: Iterable[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise HostapdError(f"line {number} is not key=value: {line[:60]!r}", command=command)
        fields[key] = value
    return fields


def _int(command: str, fields: Mapping[str, str], key: str) -> int | None:
    if key not in fields:
        return None
    value = fields[key].strip()
    if not _INT.fullmatch(value):
        raise HostapdError(f"{key}={value[:40]!r} is not a number", command=command)
    return int(value)


def _mac(command: str, text: str) -> MacAddress:
    try:
        return MacAddress.parse(text)
    except HostapdError as exc:
        raise HostapdError(exc.problem, command=command) from None
