"""One decoded radio transmission as a checked, frozen value, from one line of rtl_433's JSON
output (pure).

rtl_433 (``-F json -M level -M protocol -M time:unix:usec``) writes one JSON object per decoded
packet, e.g.::

    {"time":"1700000000.123456","protocol":19,"model":"Nexus-TH","id":136,"channel":1,
     "battery_ok":1,"temperature_C":21.5,"humidity":40,"mod":"ASK","freq":433.92,
     "rssi":-0.1,"snr":30.1,"noise":-30.2}

:func:`parse_line` turns it into a :class:`RadioEvent`: the naming keys (``model``,
``subtype``, ``channel``, ``id``: what tells one device from another), the decoded ``fields``
(what becomes outports), and the metadata (time, protocol, level) kept apart so that they never
make two identical readings look different. A line that is not JSON, not an object, has no
``model``, or holds values that are not plain numbers, strings or booleans raises
:class:`BadEventError` with one short reason; the caller counts and drops it.

The device key (:attr:`RadioEvent.key`, docs/rf433.md) is the text ``MODEL/CHANNEL/ID``, with
``MODEL:SUBTYPE`` when the decoder gives a subtype and ``-`` for a channel or id the decoder does
not give, e.g. ``Nexus-TH/1/136``, ``Generic-Remote/-/1234``. Three segments always, so a key is
never ambiguous; ``/``, ``*``, whitespace and control characters inside a value become ``_``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

MAX_LINE = 8192  # bytes; rtl_433's lines are a few hundred (more with -M bits, which we omit)
MAX_FIELDS = 32  # decoded fields kept per event; more is not a sensor reading
MAX_TEXT = 256  # characters of a string field
NAMING = ("model", "subtype", "channel", "id")
# rtl_433's metadata: where and when a packet was heard, not what it says.
METADATA = frozenset(
    {"time", "protocol", "mod", "freq", "freq1", "freq2", "rssi", "snr", "noise", "mic", "bits"}
)
LEVELS = ("rssi", "snr", "noise", "freq")
NONE = "-"  # a key segment the decoder does not give

Value = bool | int | float | str


class BadEventError(ValueError):
    """A line that is not one decoded packet; the message says why, in a few words."""


@dataclass(frozen=True)
class RadioEvent:
    model: str
    subtype: str | None
    channel: str | None  # as text: decoders give numbers or letters
    id: str | None
    fields: tuple[tuple[str, Value], ...]  # decoded values, in rtl_433's order
    time: float | None = None  # epoch seconds, when rtl_433 stamped it
    protocol: int | None = None  # rtl_433's decoder number (-R)
    levels: tuple[tuple[str, float], ...] = ()  # rssi, snr, noise (dB), freq (MHz)

    @property
    def key(self) -> str:
        """The device key: ``MODEL[:SUBTYPE]/CHANNEL/ID``."""
        return device_key(self.model, self.subtype, self.channel, self.id)

    @property
    def group(self) -> str:
        """The key without its id (``Nexus-TH/1``): what an id swap keeps."""
        return self.key.rsplit("/", 1)[0]

    def values(self) -> dict[str, Value]:
        return dict(self.fields)

    def details(self) -> str:
        """One line of the decoded values, for the seen list: ``temperature_C 21.5, ...``."""
        return ", ".join(f"{name} {_shown(value)}" for name, value in self.fields)


def device_key(model: str, subtype: str | None, channel: str | None, id_: str | None) -> str:
    head = _segment(model) + (f":{_segment(subtype)}" if subtype else "")
    return f"{head}/{_segment(channel) if channel else NONE}/{_segment(id_) if id_ else NONE}"


def split_key(key: str) -> tuple[str, str, str] | None:
    """(model[:subtype], channel, id) of a key, or None when it is not three segments."""
    parts = key.split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def _segment(text: str) -> str:
    return "".join("_" if ch in "/*" or ch.isspace() or not ch.isprintable() else ch for ch in text)


def parse_line(line: bytes | str) -> RadioEvent:
    """The event on one line of rtl_433's JSON output; :class:`BadEventError` if it is none."""
    if len(line) > MAX_LINE:
        raise BadEventError(f"a line of {len(line)} bytes (at most {MAX_LINE})")
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise BadEventError("not JSON") from None
    if not isinstance(data, dict):
        raise BadEventError(f"a JSON {type(data).__name__}, not an object")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadEventError("no model")
    fields: list[tuple[str, Value]] = []
    for name, value in data.items():
        if name in NAMING or name in METADATA:
            continue
        if len(fields) >= MAX_FIELDS:
            raise BadEventError(f"more than {MAX_FIELDS} fields")
        fields.append((name, _value(name, value)))
    return RadioEvent(
        model=model.strip(),
        subtype=_naming(data, "subtype"),
        channel=_naming(data, "channel"),
        id=_naming(data, "id"),
        fields=tuple(fields),
        time=_time(data.get("time")),
        protocol=data["protocol"] if _is_int(data.get("protocol")) else None,
        levels=tuple((name, float(data[name])) for name in LEVELS if _is_number(data.get(name))),
    )


def _naming(data: dict[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if _is_int(value):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 64:
        return value.strip()
    raise BadEventError(f"{name} {_shown_raw(value)} is not a number or a short text")


def _value(name: str, value: object) -> Value:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadEventError(f"{name} is not a finite number")
        return value
    if isinstance(value, str):
        return value[:MAX_TEXT]
    raise BadEventError(f"{name} is a JSON {type(value).__name__}")


def _time(value: object) -> float | None:
    """``-M time:unix:usec`` writes a string of seconds; a number is taken too; other time
    formats (ISO dates) are not what the bridge asked for, and are left out."""
    try:
        seconds = float(value) if isinstance(value, str | int | float) else None
    except ValueError:
        return None
    # pulse-data files give "0.000000": no time
    return seconds if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Value) -> str:
    return json.dumps(value) if isinstance(value, str | bool) else str(value)


def _shown_raw(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 20 else text[:17] + "..."
