"""Checks for single values of ``gateway.yaml``: what YAML gave -> the typed value, or why not.

Each check takes the Python value of one YAML scalar (or a ``Shape`` standing in for a
mapping or a list) and returns the typed value, or raises ``InvalidValueError`` whose message
is the part after the key path: ``expected an integer 1-65535, got 'abc'``. The loader adds
file, line and key.
Pure functions: no YAML nodes, no I/O.
"""

from __future__ import annotations

import math
import re
import termios
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, ip_address
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
Check = Callable[[object], T]

MAX_MQTT_PACKET = 268_435_455  # MQTT's remaining-length limit; mosquitto rejects more
SSID_BYTES = 32  # IEEE 802.11 SSID element
MAX_STATIONS = 2007  # hostapd's max_num_sta ceiling (MAX_STA_COUNT): one AID each
SUFFIX = "{suffix}"
SUFFIX_LEN = 4  # four hex digits, generated at first boot
IFNAMSIZ = 15  # Linux interface names, without the NUL
# A queue is role/port and an MQTT topic holds 65,535 bytes: leave room for the port id.
MAX_ROLE_BYTES = 60_000

_COUNTRY = re.compile(r"[A-Z]{2}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class InvalidValueError(Exception):
    """A value that fails its check; the message is one line, without file or key."""


@dataclass(frozen=True)
class Shape:
    """Stands in for a YAML mapping or list where a scalar was expected."""

    name: str  # "a mapping", "a list"


def shown(value: object) -> str:
    """A value as a user wrote it, for ``got ...``: YAML spelling, strings quoted."""
    if isinstance(value, Shape):
        return value.name
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def kind(value: object) -> str:
    """The type of a value without the value, for secrets that must not be echoed."""
    if isinstance(value, Shape):
        return value.name
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else "a string"


def expected(what: str, value: object, *, secret: bool = False) -> InvalidValueError:
    got = kind(value) if secret else shown(value)
    return InvalidValueError(f"expected {what}, got {got}")


def integer(low: int, high: int | None = None) -> Check[int]:
    """Whole numbers in ``low..high``; YAML booleans and floats such as ``30.0`` are refused."""
    what = f"an integer {low}-{high}" if high is not None else f"an integer >= {low}"
    if low == 1 and high is None:
        what = "a positive integer"

    def check(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise expected(what, value)
        if value < low or (high is not None and value > high):
            raise expected(what, value)
        return value

    return check


port = integer(1, 65535)
positive = integer(1)
channel = integer(1, 14)  # 2.4 GHz; 14 is Japan-only, hostapd checks it against country
message_size = integer(1, MAX_MQTT_PACKET)
# hostapd's max_num_sta: 2007 association ids (IEEE 802.11's AID is 1-2007) is its ceiling.
stations = integer(1, MAX_STATIONS)


def baud(value: object) -> int:
    """A serial line speed this system's termios can set (``B115200`` exists)."""
    rate = positive(value)
    if not hasattr(termios, f"B{rate}"):
        raise InvalidValueError(f"expected a baud rate this system supports, got {rate}")
    return rate


def seconds(value: object) -> float:
    """A positive, finite duration in seconds; integers are accepted."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise expected("a positive number of seconds", value)
    if not math.isfinite(value) or value <= 0:
        raise expected("a positive number of seconds", value)
    return float(value)


def boolean(value: object) -> bool:
    """A real YAML boolean: ``true``/``false``. ``yes``/``on`` are strings in YAML 1.2."""
    if not isinstance(value, bool):
        raise expected("true or false", value)
    return value


def optional(check: Check[T]) -> Check[T | None]:
    """``null`` (or an empty value) means "not set"; anything else goes through ``check``."""

    def check_optional(value: object) -> T | None:
        return None if value is None else check(value)

    return check_optional


def string(what: str, value: object) -> str:
    """``value`` if it is a non-empty string; else the error says it should be ``what``."""
    if not isinstance(value, str) or not value:
        raise expected(what, value)
    return value


def label(value: object) -> str:
    """Free text shown to users (the runtime's label): one line, not empty."""
    text = string("a non-empty string", value)
    if text.splitlines() != [text]:  # also NEL and U+2028, which YAML reads as line breaks
        raise InvalidValueError("expected a single line of text, got a line break")
    if not text.isprintable():
        raise InvalidValueError("expected a single line of text, got a control character")
    return text


def glob(value: object) -> str:
    return string("a non-empty glob pattern", value)


def role(value: object) -> str:
    """A participant role: it becomes an MQTT topic level and a user name (``<role>/#``)."""
    text = string("a role name", value)
    if "#" in text or "+" in text:
        raise InvalidValueError(f"role {text!r} contains an MQTT wildcard ('#' or '+')")
    if text.startswith("/"):
        raise InvalidValueError(f"role {text!r} starts with '/'")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise InvalidValueError(f"role {text!r} contains whitespace or a control character")
    size = len(text.encode())  # printable: no lone surrogates from a command line's bytes
    if size > MAX_ROLE_BYTES:
        raise InvalidValueError(f"a role of {size} bytes is longer than {MAX_ROLE_BYTES}")
    return text


def choice(*allowed: str) -> Check[str]:
    def check(value: object) -> str:
        if value not in allowed:
            raise expected(f"one of {', '.join(allowed)}", value)
        assert isinstance(value, str)
        return value

    return check


def number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise expected("a number", value)
    return float(value)


def port_name(value: object) -> str:
    """A port id: it becomes part of a queue name, so no wildcards, spaces or slashes."""
    text = string("a port name", value)
    if not _PORT.fullmatch(text):
        raise InvalidValueError(f"port {text!r}: expected letters, digits, '_' and '-'")
    return text


_PORT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UUID = re.compile(r"[0-9a-fA-F]{4}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_BLE_ADDRESS = re.compile(r"(?:[0-9A-F]{2}:){5}[0-9A-F]{2}")
GATT_ENCODINGS = (
    "raw", "utf8", "json", "int8", "uint8", "int16le", "uint16le", "int32le", "uint32le",
)  # fmt: skip


def uuid(value: object) -> str:
    """A characteristic's UUID: 16-bit (``2a6e``) or 128-bit, as bleak takes it."""
    text = string("a UUID", value)
    if not _UUID.fullmatch(text):
        raise InvalidValueError(f"expected a 16-bit or 128-bit UUID, got {text!r}")
    return text.lower()


def is_ble_address(text: str) -> bool:
    """A BLE address as BlueZ writes it: six upper-case hex pairs with colons."""
    return bool(_BLE_ADDRESS.fullmatch(text))


def is_rf433_key(text: str) -> bool:
    """A 433 MHz device key as ``msgflo-rf433 heard`` prints it: ``MODEL[:SUBTYPE]/CHANNEL/ID``
    (``-`` for a channel or id the decoder does not give), the id may be ``*`` (docs/rf433.md)."""
    parts = text.split("/")
    if len(parts) != 3 or not all(parts) or "*" in parts[0] + parts[1]:
        return False
    if parts[2] != "*" and "*" in parts[2]:
        return False
    return all(ch.isprintable() and not ch.isspace() for ch in text)


def is_serial(text: str) -> bool:
    """A USB serial number, VID:PID (``2341:0043``), by-id link name or path, as the file
    spells it: printable text."""
    return text.isprintable() and not text.isspace()


def secret(value: object) -> str:
    """A shared secret: any non-empty string. Never echoed in messages."""
    if not isinstance(value, str) or not value:
        raise expected("a non-empty string", value, secret=True)
    return value


def passphrase(value: object) -> str:
    """WPA2-PSK: 8-63 printable ASCII characters (IEEE 802.11i). Never echoed in messages."""
    what = "a passphrase of 8-63 printable ASCII characters"
    if not isinstance(value, str):
        raise expected(what, value, secret=True)
    if not 8 <= len(value) <= 63:
        raise InvalidValueError(f"expected {what}, got {len(value)} characters")
    bad = next((i for i, ch in enumerate(value) if not " " <= ch <= "~"), None)
    if bad is not None:
        raise InvalidValueError(f"expected {what}, got another character at position {bad + 1}")
    return value


def ssid(value: object) -> str:
    """1-32 bytes of UTF-8 once ``{suffix}`` becomes its four hex digits."""
    what = f"an SSID of 1-{SSID_BYTES} bytes"
    if not isinstance(value, str):
        raise expected(what, value)
    size = len(value.replace(SUFFIX, "x" * SUFFIX_LEN).encode("utf-8"))
    if not 1 <= size <= SSID_BYTES:
        note = f" with {SUFFIX} as {SUFFIX_LEN} characters" if SUFFIX in value else ""
        raise InvalidValueError(f"expected {what}, got {value!r} ({size} bytes{note})")
    return value


def country(value: object) -> str:
    """An ISO 3166-1 alpha-2 code as hostapd wants it (``DE``, ``US``): it sets legal channels."""
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise expected("a two-letter country code in capitals, e.g. 'DE'", value)
    return value


def hostname(value: object) -> str:
    """A DNS name (RFC 1123 labels): what clients on the access point resolve."""
    what = "a host name such as 'gateway.msgflo'"
    if not isinstance(value, str) or len(value) > 253:
        raise expected(what, value)
    if not all(_LABEL.fullmatch(part) for part in value.split(".")):
        raise expected(what, value)
    return value


def host(value: object) -> str:
    """Where a server listens: an IP address (``0.0.0.0``, ``::``) or a host name."""
    if isinstance(value, str) and _is_ip(value):
        return value
    try:
        return hostname(value)
    except InvalidValueError:
        raise expected("an IP address or host name, e.g. '127.0.0.1'", value) from None


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def netdev(value: object) -> str:
    """A Linux network interface name (``wlan0``): at most 15 bytes, no '/' or whitespace."""
    what = "a network interface name such as 'wlan0'"
    text = string(what, value)
    if len(text.encode()) > IFNAMSIZ or "/" in text or any(ch.isspace() for ch in text):
        raise expected(what, value)
    return text


def ipv4_interface(value: object) -> IPv4Interface:
    """The gateway's address with its prefix length (``192.168.4.1/24``), a usable host."""
    what = "an IPv4 address with prefix length, e.g. '192.168.4.1/24'"
    if not isinstance(value, str) or "/" not in value:
        raise expected(what, value)
    try:
        iface = IPv4Interface(value)
    except ValueError:
        raise expected(what, value) from None
    net = iface.network
    if net.prefixlen <= 30 and iface.ip in (net.network_address, net.broadcast_address):
        raise InvalidValueError(
            f"{value!r} is not a host address of {net} (use, say, {net[1]}/{net.prefixlen})"
        )
    return iface


def ipv4(value: object) -> IPv4Address:
    what = "an IPv4 address, e.g. '192.168.4.10'"
    if not isinstance(value, str):
        raise expected(what, value)
    try:
        return IPv4Address(value)
    except ValueError:
        raise expected(what, value) from None


def path(base: Path) -> Check[Path]:
    """A file or directory; relative ones are relative to ``base`` (the config file's folder)."""

    def check(value: object) -> Path:
        text = string("a path", value)
        if "\0" in text:
            raise InvalidValueError("expected a path, got a NUL character")
        return base / text  # an absolute ``text`` replaces ``base``

    return check
