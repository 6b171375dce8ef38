"""Line mode: a USB serial device that prints text lines, as a pure session (no I/O, no clock).

Most things on a USB serial port do not speak the serial link: an Arduino sketch that does
``Serial.println("temp=21.5")``, a board printing one JSON object per line, a USB GPS printing
NMEA 0183. :class:`LineSession` has the public interface of
:class:`~gateway.bridges.serial.session.DeviceSession` and returns the same :data:`Action`
values, so the bridge's device task runs either; which one is decided by configuration
(``bridges.serial.lines`` in gateway.yaml, :func:`line_device_for`), as such a device cannot
describe itself. Its participant is defined there and announced as soon as the port is open.

Bytes become lines at ``\\n`` (a ``\\r`` before it is dropped). A line longer than
``max_line`` bytes is never held whole: the bytes past the limit are discarded as they come and
the line is counted and dropped (cut short, ``temp=21.5`` could read as ``temp=2``: a wrong
value is worse than none). A line that is not UTF-8 is counted and dropped. Both are reported
in rate-limited log lines, and nothing stops.

Each line is offered to every outport (so ``temp=21.5 hum=40`` feeds ``temp`` and ``hum``):

- ``pattern``: a regular expression searched in the line; its group (or group ``value``) is
  the value;
- ``key``: the line is ``key=value`` pairs separated by spaces, commas or semicolons, or a JSON
  object; the port takes the value under its key;
- ``nmea``: a GGA or RMC sentence from any talker (``$GPGGA``, ``$GNRMC``...), checksum
  verified, becomes an object with ``lat``/``lon`` in decimal degrees and the sentence's other
  fields (:func:`parse_nmea`).

A value that reads as a number is published as a JSON number, other text as a JSON string.
A line no outport takes is counted, not an error: devices print banners and debug output.

A message on an inport is written as one line: a JSON string payload as its text, anything
else as its bytes, then ``\\n``. A payload holding a line break would be several lines and is
refused, as is one longer than ``max_line``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gateway.bridges.serial.description import check_topic
from gateway.bridges.serial.session import (
    Action,
    Announce,
    LogLine,
    Publish,
    RateLimitedReport,
    State,
    Withdraw,
    Write,
)
from gateway.config.model import LineDevice, LinePort
from gateway.errors import DefinitionError, DescriptionError
from gateway.participant.definition import Json, ParticipantDefinition, QueueNaming, define

MAX_LINE = 1024  # bytes before the \n; an NMEA sentence has at most 82
REPORT_INTERVAL = 30.0  # seconds between summaries of dropped lines and refused messages

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INTEGER = re.compile(r"[-+]?\d+")
_PAIR_SEPARATORS = re.compile(r"[\s,;]+")
_USB_ID = re.compile(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}")


# -- which devices are in line mode ---------------------------------------------------------------


def line_device_for(
    lines: Sequence[tuple[str, LineDevice]], keys: Iterable[str], vid_pid: str | None = None
) -> LineDevice | None:
    """The line-mode config of a device, or None (it speaks the serial link).

    ``keys`` are what the device may be configured by, the most specific first, as for roles:
    its USB serial number, by-id link name, name, path, ``VID:PID``. A ``VID:PID`` key in the
    file (any device of that product) also matches ``vid_pid`` in capitals or not.
    """
    by_key = dict(lines)
    for key in keys:
        if key in by_key:
            return by_key[key]
    if vid_pid is None:
        return None
    wanted = vid_pid.lower()
    return next((d for k, d in lines if _USB_ID.fullmatch(k) and k.lower() == wanted), None)


# -- values ---------------------------------------------------------------------------------------


def value_of(text: str) -> Json:
    """Text from a line as a JSON value: a number if it reads as one, else the text."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):  # 1e999 stays text: JSON has no infinity
            return number
    return text


def key_values(text: str) -> dict[str, Json]:
    """``temp=21.5 hum=40`` (or ``,``/``;`` between pairs) or a JSON object: key -> value."""
    if text.lstrip().startswith("{"):
        try:
            found = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return {}
        return found if isinstance(found, dict) else {}
    pairs: dict[str, Json] = {}
    for token in _PAIR_SEPARATORS.split(text):
        key, equals, raw = token.partition("=")
        if equals and key and raw:
            pairs[key] = value_of(raw)
    return pairs


def _no_constant(name: str) -> Json:
    """NaN and Infinity: Python's json reads them, JSON has no such values."""
    raise ValueError(f"{name} is not JSON")


# -- NMEA 0183 ------------------------------------------------------------------------------------


class NmeaError(ValueError):
    """A sentence that fails its checksum or whose fields do not read."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Sentence:
    """A checksum-verified NMEA sentence: ``$GNGGA,...`` is talker GN, type GGA."""

    talker: str
    type: str
    fields: tuple[str, ...]


def parse_nmea(line: str) -> Sentence | None:
    """The sentence in ``line``; None if it is not one. Raises :class:`NmeaError` for a
    missing or wrong checksum (GGA and RMC always carry one)."""
    if not line.startswith("$") or len(line) < 6:
        return None
    body, star, checksum = line[1:].partition("*")
    address = body.split(",", 1)[0]
    if not (4 <= len(address) <= 8 and address.isalnum() and address.isupper()):
        return None
    if not star:
        raise NmeaError("bad checksum", f"{address} without a checksum")
    computed = functools.reduce(lambda a, c: a ^ ord(c), body, 0)
    if len(checksum.strip()) != 2 or checksum.strip().upper() != f"{computed:02X}":
        raise NmeaError(
            "bad checksum", f"{address}: checksum {checksum!r}, computed {computed:02X}"
        )
    # Proprietary sentences ($PUBX) have a one-letter talker P: their type is the rest.
    talker, kind = (address[:1], address[1:]) if address[0] == "P" else (address[:2], address[2:])
    return Sentence(talker, kind, tuple(body.split(",")[1:]))


def _field(fields: tuple[str, ...], index: int) -> str:
    return fields[index] if index < len(fields) else ""


def _number(text: str, what: str, kind: type[int] | type[float] = float) -> float | int | None:
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise NmeaError("bad sentence", f"{what} {text!r}") from None
    if not math.isfinite(value):
        raise NmeaError("bad sentence", f"{what} {text!r}")
    return value


def _degrees(text: str, hemisphere: str, signs: str, limit: int) -> float | None:
    """``4807.038``,``N`` (degrees and minutes) -> 48.1173; ``signs`` is ``NS`` or ``EW``."""
    if not text and not hemisphere:
        return None  # no fix
    dot = text.find(".")
    split = (dot if dot >= 0 else len(text)) - 2
    if split < 1 or not text[:split].isdigit() or hemisphere not in signs:
        raise NmeaError("bad sentence", f"position {text!r},{hemisphere!r}")
    minutes = _number(text[split:], "minutes")
    degrees = int(text[:split]) + (minutes or 0.0) / 60.0
    if minutes is None or minutes >= 60 or degrees > limit:
        raise NmeaError("bad sentence", f"position {text!r},{hemisphere!r}")
    return round(-degrees if hemisphere == signs[1] else degrees, 7)


def _time(text: str) -> str | None:
    """``123519.00`` -> ``12:35:19.00`` (UTC, as the GPS gives it)."""
    if not text:
        return None
    if len(text) < 6 or not text[:6].isdigit():
        raise NmeaError("bad sentence", f"time {text!r}")
    return f"{text[0:2]}:{text[2:4]}:{text[4:]}"


def _date(text: str) -> str | None:
    """``230394`` (ddmmyy) -> ``2094-03-23``... of this century: ``20yy``."""
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise NmeaError("bad sentence", f"date {text!r}")
    return f"20{text[4:6]}-{text[2:4]}-{text[0:2]}"


def _position(fields: tuple[str, ...], at: int) -> dict[str, Json]:
    lat = _degrees(_field(fields, at), _field(fields, at + 1), "NS", 90)
    lon = _degrees(_field(fields, at + 2), _field(fields, at + 3), "EW", 180)
    if (lat is None) != (lon is None):
        raise NmeaError("bad sentence", f"half a position: {fields[at : at + 4]}")
    return {"lat": lat, "lon": lon}


def _enough(sentence: Sentence, count: int) -> tuple[str, ...]:
    """The fields of a sentence that has at least ``count`` (later NMEA versions add some)."""
    if len(sentence.fields) < count:
        detail = f"{sentence.type} with {len(sentence.fields)} fields, at least {count} expected"
        raise NmeaError("bad sentence", detail)
    return sentence.fields


def gga(sentence: Sentence) -> dict[str, Json]:
    """A GGA (fix data) sentence as a message; ``lat``/``lon`` null without a fix."""
    f = _enough(sentence, 14)
    quality = _number(_field(f, 5), "fix quality", int)
    return {
        **_position(f, 1),
        "fix": bool(quality),
        "quality": quality,
        "satellites": _number(_field(f, 6), "satellites", int),
        "hdop": _number(_field(f, 7), "hdop"),
        "altitude": _number(_field(f, 8), "altitude"),
        "time": _time(_field(f, 0)),
    }


def rmc(sentence: Sentence) -> dict[str, Json]:
    """An RMC (recommended minimum) sentence as a message; ``fix`` is its status A."""
    f = _enough(sentence, 11)
    return {
        **_position(f, 2),
        "fix": _field(f, 1) == "A",
        "knots": _number(_field(f, 6), "speed"),
        "course": _number(_field(f, 7), "course"),
        "time": _time(_field(f, 0)),
        "date": _date(_field(f, 8)),
    }


NMEA_DECODERS: dict[str, Callable[[Sentence], dict[str, Json]]] = {"GGA": gga, "RMC": rmc}


# -- the session ----------------------------------------------------------------------------------


@dataclass
class LineStats:
    """What happened on this session. ``to_mqtt``, ``to_device`` and ``refused`` mean what
    they mean in :class:`~gateway.bridges.serial.session.SessionStats`."""

    lines: int = 0  # complete lines read, dropped ones included
    to_mqtt: int = 0  # messages published (a line may give several)
    to_device: int = 0  # lines written
    refused: int = 0  # inport messages not written (line breaks, too long, unknown queue)
    dropped_while_not_ready: int = 0  # inport messages after close
    unmatched: int = 0  # lines no outport took
    too_long: int = 0
    not_utf8: int = 0
    bad_checksum: int = 0  # NMEA
    bad_sentence: int = 0  # NMEA with a good checksum and fields that do not read


class _Line:
    """One line's text, with its key=value pairs and NMEA sentence parsed once, when asked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._pairs: dict[str, Json] | None = None
        self._sentence: Sentence | NmeaError | None = None
        self._parsed = False

    @property
    def pairs(self) -> dict[str, Json]:
        if self._pairs is None:
            self._pairs = key_values(self.text)
        return self._pairs

    def sentence(self) -> Sentence | None:
        """Raises the sentence's :class:`NmeaError` for every port that asks."""
        if not self._parsed:
            self._parsed = True
            try:
                self._sentence = parse_nmea(self.text)
            except NmeaError as error:
                self._sentence = error
        if isinstance(self._sentence, NmeaError):
            raise self._sentence
        return self._sentence


_NOTHING = object()  # a port's mapper found no value in the line

Mapper = Callable[[_Line], object]


def _mapper(port: LinePort) -> Mapper:
    if port.pattern is not None:
        compiled = re.compile(port.pattern)
        group: int | str = "value" if "value" in compiled.groupindex else 1

        def by_pattern(line: _Line) -> object:
            match = compiled.search(line.text)
            found = None if match is None else match.group(group)
            return _NOTHING if found is None else value_of(found)

        return by_pattern
    if port.key is not None:
        key = port.key
        return lambda line: line.pairs.get(key, _NOTHING)
    assert port.nmea is not None, "the config loader requires one mapping kind"
    kind, decode = port.nmea, NMEA_DECODERS[port.nmea]

    def by_sentence(line: _Line) -> object:
        sentence = line.sentence()
        return _NOTHING if sentence is None or sentence.type != kind else decode(sentence)

    return by_sentence


def make_line_definition(
    role: str, device: LineDevice, naming: QueueNaming = QueueNaming.PYTHON
) -> ParticipantDefinition:
    """The participant of a device in line mode: id = role, as for described devices."""
    return define(
        role,
        device.component,
        inports=[{"id": name, "type": "string"} for name in device.inports],
        outports=[{"id": p.port, "type": "object" if p.nmea else "any"} for p in device.outports],
        label="Text lines on a serial port",
        icon="terminal",
        participant_id=role,
        naming=naming,
    )


class LineSession:
    """The bridge's side of one device in line mode; see the module docstring.

    ``role`` is the device's role: ``device.role`` if the config gives one, else the role the
    bridge gives any device. ``now`` is taken for the driver's sake (same call as
    ``DeviceSession(config, now)``); nothing here waits for anything.
    """

    def __init__(
        self,
        device: LineDevice,
        role: str,
        now: float,
        *,
        naming: QueueNaming = QueueNaming.PYTHON,
        max_line: int = MAX_LINE,
        report_interval: float = REPORT_INTERVAL,
    ) -> None:
        del now
        self.device = device
        self.role = role
        self.naming = naming
        self.max_line = max_line
        self.state = State.AWAITING_HELLO  # until start(); READY while announced, then CLOSED
        self.stats = LineStats()
        self.definition: ParticipantDefinition | None = None  # set while announced
        self._mappers = [_mapper(port) for port in device.outports]
        self._inports: frozenset[str] = frozenset()
        self._buffer = bytearray()
        self._discarding = False  # inside a line already over max_line
        self._drops = RateLimitedReport("dropped lines", report_interval)
        self._refusals = RateLimitedReport("refused messages", report_interval)

    def start(self) -> list[Action]:
        """Right after opening: announce the configured participant (nothing to write)."""
        try:
            definition = make_line_definition(self.role, self.device, self.naming)
            for port in (*definition.inports, *definition.outports):
                check_topic(port.queue, f"port {port.id}")
        except (DefinitionError, DescriptionError) as error:
            self.state = State.FAILED
            line = f"cannot announce the device as role {self.role!r}: {error}"
            return [LogLine(logging.ERROR, line)]
        self.definition = definition
        self._inports = frozenset(port.queue for port in definition.inports)
        self.state = State.READY
        counts = f"{len(definition.inports)} in, {len(definition.outports)} out"
        line = f"line mode as {self.role!r} ({definition.component}, {counts})"
        return [LogLine(logging.INFO, line), Announce(definition)]

    # -- inputs ----------------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> list[Action]:
        """Bytes read from the port: every complete line in them is mapped."""
        actions: list[Action] = []
        if self.state is State.CLOSED:
            return actions
        start = 0
        while (end := data.find(b"\n", start)) >= 0:  # advances every time: bounded by len(data)
            actions += self._end_line(data[start:end], now)
            start = end + 1
        rest = data[start:]
        if rest and not self._discarding:
            if len(self._buffer) + len(rest) > self.max_line:
                actions += self._too_long(now)
            else:
                self._buffer += rest
        return actions

    def on_mqtt(self, topic: str, payload: bytes, now: float) -> list[Action]:
        """A message on one of the device's inport queues: written as one line."""
        if self.state is not State.READY:
            self.stats.dropped_while_not_ready += 1
            return self._refusals.add("not ready", f"{topic}: device not ready, dropped", now)
        if topic not in self._inports:
            self.stats.refused += 1
            return self._refusals.add("unknown", f"{topic}: not one of the device's inports", now)
        line = _line_text(payload)
        problem = ""
        if line is None:
            problem = "no text"
            line = b""
        elif b"\n" in line or b"\r" in line:
            problem = "line breaks"
        elif len(line) > self.max_line:
            problem = "too long"
        if problem:
            self.stats.refused += 1
            detail = f"{topic}: {len(payload)}-byte payload refused ({problem}: one line only)"
            return self._refusals.add(problem, detail, now)
        self.stats.to_device += 1
        return [Write(line + b"\n")]

    def tick(self, now: float) -> list[Action]:
        """Time passed: flush the summaries of dropped lines and refused messages."""
        return self._drops.flush(now) + self._refusals.flush(now)

    def next_deadline(self) -> float:
        """When :meth:`tick` has something to do next (inf: nothing until more input)."""
        times = [d for d in (self._drops.deadline, self._refusals.deadline) if d is not None]
        return min(times) if times else float("inf")

    def close(self) -> list[Action]:
        """The port is going away: stop announcing."""
        self.state = State.CLOSED
        definition, self.definition = self.definition, None
        self._inports = frozenset()
        return [] if definition is None else [Withdraw(definition)]

    # -- lines -----------------------------------------------------------------------------------

    def _end_line(self, tail: bytes, now: float) -> list[Action]:
        """A ``\\n`` arrived: ``tail`` is what came since the last read's buffered bytes."""
        self.stats.lines += 1
        if self._discarding:
            self._discarding = False  # already counted and reported when it overflowed
            return []
        if len(self._buffer) + len(tail) > self.max_line:
            return self._too_long(now, ended=True)
        raw = bytes(self._buffer + tail)
        self._buffer.clear()
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            self.stats.not_utf8 += 1
            detail = f"line of {len(raw)} bytes is not UTF-8 ({error.reason} at byte {error.start})"
            return self._drops.add("not UTF-8", detail, now)
        return self._map(text, now) if text.strip() else []

    def _too_long(self, now: float, *, ended: bool = False) -> list[Action]:
        self.stats.too_long += 1
        self._buffer.clear()
        self._discarding = not ended
        return self._drops.add("too long", f"line longer than {self.max_line} bytes", now)

    def _map(self, text: str, now: float) -> list[Action]:
        if self.definition is None:
            return []  # not announced (a role unfit for a queue name): nowhere to publish
        line = _Line(text)
        actions: list[Action] = []
        for port, mapper in zip(self.definition.outports, self._mappers, strict=True):
            try:
                value = mapper(line)
            except NmeaError as error:
                return self._nmea_error(error, now)
            if value is not _NOTHING:
                payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                actions.append(Publish(port.queue, payload.encode()))
        self.stats.to_mqtt += len(actions)
        if not actions:
            self.stats.unmatched += 1
        return actions

    def _nmea_error(self, error: NmeaError, now: float) -> list[Action]:
        if error.kind == "bad checksum":
            self.stats.bad_checksum += 1
        else:
            self.stats.bad_sentence += 1
        return self._drops.add(error.kind, str(error), now)


def _line_text(payload: bytes) -> bytes | None:
    """What an inport message writes: a JSON string's text, anything else as it came; None
    for a JSON string that is no text (a lone surrogate escape such as ``"\\udc80"``)."""
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, or not UTF-8: the bytes are the line
        return payload
    if not isinstance(value, str):
        return payload
    try:
        return value.encode()
    except UnicodeEncodeError:
        return None


__all__ = [
    "MAX_LINE",
    "LineSession",
    "LineStats",
    "NmeaError",
    "Sentence",
    "key_values",
    "line_device_for",
    "make_line_definition",
    "parse_nmea",
    "value_of",
]
