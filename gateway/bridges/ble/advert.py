"""One BLE advertisement as the bridge sees it, whoever heard it (pure).

An :class:`Advert` is made from what bleak hands a detection callback (:func:`from_bleak`) or
from one line of a replay file (:func:`parse_replay_line`), and past this module nothing else
is looked at: the decoder, the registry and the tests see the same frozen value either way.

Everything an advert carries came over the air from anybody, so it is checked here, once:
sizes are capped (a legacy advertisement holds 31 bytes, an extended one at most 1,650 in all;
nothing larger is an advertisement), types are what they claim, and an address is six hex
pairs. What fails is :class:`BadAdvertError`, which the caller counts and logs; nothing downstream
needs to be careful again.

Replay lines are JSON objects, bytes as hex strings::

    {"address": "A4:C1:38:D5:D4:98", "name": "ATC_D5D498", "rssi": -67,
     "manufacturer_data": {"0x0499": "0512fc..."}, "service_data": {"181a": "a4c138..."},
     "time": 1718000000.25}

Company ids are ``0x`` hex or decimal; service data UUIDs 16-bit (``181a``, ``0x181a``) or
128-bit, normalised to the 128-bit lower-case form bleak reports on every platform.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_DATA = 255  # bytes in one AD structure's payload (its length is one byte)
MAX_ENTRIES = 8  # manufacturer or service data entries in one advert (31 bytes hold few)
MAX_NAME = 248  # bytes of a device name (the GAP Device Name characteristic's maximum)
MAX_LINE = 8192  # characters of one replay line
BASE_UUID = "-0000-1000-8000-00805f9b34fb"  # the Bluetooth base UUID's tail

_ADDRESS = re.compile(r"(?:[0-9A-F]{2}:){5}[0-9A-F]{2}")
_UUID128 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUID16 = re.compile(r"(?:0x)?([0-9a-f]{4})")


class BadAdvertError(ValueError):
    """An advert (or replay line) that is not one; the message says what is wrong."""


@dataclass(frozen=True)
class Advert:
    address: str  # upper case with colons, as BlueZ writes it
    name: str = ""
    rssi: int = -127  # dBm; -127 is the HCI's "not available"
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)  # company id -> data
    service_data: Mapping[str, bytes] = field(default_factory=dict)  # 128-bit UUID -> data
    service_uuids: tuple[str, ...] = ()
    time: float = 0.0  # epoch seconds it was heard

    @property
    def short_id(self) -> str:
        """The last six hex digits of the address, lower case: ``{id}`` in role templates."""
        return self.address.replace(":", "")[-6:].lower()


def normal_address(text: object) -> str:
    if not isinstance(text, str) or not _ADDRESS.fullmatch(text.upper()):
        raise BadAdvertError(f"address {str(text)[:40]!r} is not six hex pairs with colons")
    return text.upper()


def normal_uuid(text: object) -> str:
    """``181a``, ``0x181a`` or a 128-bit UUID, as bleak writes it (128-bit, lower case)."""
    if not isinstance(text, str):
        raise BadAdvertError(f"service UUID {text!r} is not a string")
    low = text.lower()
    short = _UUID16.fullmatch(low)
    if short:
        return f"0000{short.group(1)}{BASE_UUID}"
    if _UUID128.fullmatch(low):
        return low
    raise BadAdvertError(f"service UUID {text[:40]!r} is neither 16-bit nor 128-bit")


def short_uuid(uuid: str) -> str | None:
    """``0x181a`` for a UUID of the Bluetooth base, else None."""
    if uuid.startswith("0000") and uuid.endswith(BASE_UUID):
        return "0x" + uuid[4:8]
    return None


def make_advert(
    address: object,
    *,
    name: object = None,
    rssi: object = None,
    manufacturer_data: object = None,
    service_data: object = None,
    service_uuids: object = None,
    time: object = 0.0,
) -> Advert:
    """An :class:`Advert` from loosely typed parts, every one checked; :class:`BadAdvertError`."""
    return Advert(
        address=normal_address(address),
        name=_name(name),
        rssi=_rssi(rssi),
        manufacturer_data=_manufacturer(manufacturer_data),
        service_data=_services(service_data),
        service_uuids=_uuids(service_uuids),
        time=_time(time),
    )


def from_bleak(device: Any, data: Any, now: float) -> Advert:
    """From bleak's ``(BLEDevice, AdvertisementData)``. BlueZ keeps a device's name across
    adverts, so the device's name stands in when this advert carries none (passive scans
    rarely do)."""
    return make_advert(
        device.address,
        name=data.local_name or device.name,
        rssi=data.rssi,
        manufacturer_data=data.manufacturer_data,
        service_data=data.service_data,
        service_uuids=data.service_uuids,
        time=now,
    )


def parse_replay_line(line: str) -> Advert:
    """One replay line (module docstring); :class:`BadAdvertError` says what is wrong."""
    if len(line) > MAX_LINE:
        raise BadAdvertError(f"line of {len(line)} characters (at most {MAX_LINE})")
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise BadAdvertError(f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise BadAdvertError("not a JSON object")
    unknown = set(raw) - {
        "address",
        "name",
        "rssi",
        "manufacturer_data",
        "service_data",
        "service_uuids",
        "time",
    }
    if unknown:
        raise BadAdvertError(f"unknown key {sorted(unknown)[0]!r}")
    return make_advert(
        raw.get("address"),
        name=raw.get("name"),
        rssi=raw.get("rssi"),
        manufacturer_data=_hex_values(raw.get("manufacturer_data"), "manufacturer_data"),
        service_data=_hex_values(raw.get("service_data"), "service_data"),
        service_uuids=raw.get("service_uuids"),
        time=raw.get("time", 0.0),
    )


def to_replay_line(advert: Advert) -> str:
    """The replay line of ``advert`` (what :func:`parse_replay_line` reads back)."""
    line: dict[str, Any] = {"address": advert.address}
    if advert.name:
        line["name"] = advert.name
    line["rssi"] = advert.rssi
    if advert.manufacturer_data:
        line["manufacturer_data"] = {
            f"0x{cid:04x}": data.hex() for cid, data in advert.manufacturer_data.items()
        }
    if advert.service_data:
        line["service_data"] = {
            short_uuid(uuid) or uuid: data.hex() for uuid, data in advert.service_data.items()
        }
    line["time"] = advert.time
    return json.dumps(line, separators=(", ", ": "))


# -- checks ---------------------------------------------------------------------------------------


def _name(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadAdvertError(f"name is a {type(value).__name__}, not a string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_NAME:
        raise BadAdvertError(f"name longer than {MAX_NAME} bytes")
    return value if value.isprintable() else value.encode("unicode_escape").decode("ascii")


NO_RSSI = 127


def _rssi(value: object) -> int:
    # 127 is how an HCI advertising report says "not available" (BlueZ's emulator sends it).
    if value is None or value == NO_RSSI:
        return -127
    if isinstance(value, bool) or not isinstance(value, int) or not -127 <= value <= 20:
        raise BadAdvertError(f"rssi {str(value)[:20]!r} is not an integer from -127 to 20 dBm")
    return value


def _time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadAdvertError(f"time {str(value)[:40]!r} is not a number of seconds")
    return float(value)


def _data(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise BadAdvertError(f"{what} is a {type(value).__name__}, not bytes")
    if len(value) > MAX_DATA:
        raise BadAdvertError(f"{what} of {len(value)} bytes (an AD structure holds {MAX_DATA})")
    return bytes(value)


def _entries(value: object, what: str) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadAdvertError(f"{what} is a {type(value).__name__}, not a mapping")
    if len(value) > MAX_ENTRIES:
        raise BadAdvertError(f"{what} has {len(value)} entries (at most {MAX_ENTRIES})")
    return value


def _manufacturer(value: object) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for key, data in _entries(value, "manufacturer_data").items():
        cid = _company(key)
        found[cid] = _data(data, f"manufacturer data of 0x{cid:04x}")
    return found


def _company(key: object) -> int:
    if isinstance(key, str):
        text = key
        try:
            key = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise BadAdvertError(f"company id {text[:20]!r} is not a number") from None
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= 0xFFFF:
        raise BadAdvertError(f"company id {str(key)[:20]!r} is not 16 bits")
    return key


def _services(value: object) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key, data in _entries(value, "service_data").items():
        uuid = normal_uuid(key)
        found[uuid] = _data(data, f"service data of {uuid}")
    return found


def _uuids(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or len(value) > 4 * MAX_ENTRIES:
        raise BadAdvertError("service_uuids is not a short list")
    return tuple(normal_uuid(uuid) for uuid in value)


def _hex_values(value: object, what: str) -> object:
    """A replay line's ``{key: "hex"}`` with the hex turned into bytes."""
    if not isinstance(value, dict):
        return value  # None is fine, anything else fails in _entries
    decoded: dict[object, bytes] = {}
    for key, text in value.items():
        if not isinstance(text, str):
            raise BadAdvertError(f"{what}[{key!r}] is a {type(text).__name__}, not a hex string")
        try:
            decoded[key] = bytes.fromhex(text)
        except ValueError:
            raise BadAdvertError(f"{what}[{key!r}] is not hex") from None
    return decoded
