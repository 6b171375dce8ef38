"""GATT characteristic values <-> MQTT payloads (pure).

A characteristic holds bytes; a msgflo port carries JSON. Each configured port names an
encoding (``GattPort.encoding`` in gateway.yaml, docs/ble.md "GATT devices"):

- ``raw``: the bytes as they are, both ways; nothing is parsed, so any payload up to
  :data:`MAX_VALUE` bytes reaches the device unchanged.
- ``utf8``: text. Device to MQTT the text is sent as a JSON string; MQTT to device a JSON string
  is written as its text and any other payload as it came (msgflo senders often send bare text).
- ``json``: the characteristic holds UTF-8 JSON text; it is checked both ways and sent compact.
- ``int8`` ... ``uint32le``: one little-endian integer of exactly that width. Device to MQTT it
  is multiplied by the port's ``scale`` (a temperature in hundredths of a degree has scale 0.01);
  MQTT to device the number is divided by ``scale``, rounded to the nearest integer (half to
  even) and range-checked. ``true``/``false`` are 1/0, for switches and buzzers.

Scaling is done in decimal (the scale's shortest decimal spelling), so ``2137`` at scale 0.01 is
``21.37``, not ``21.370000000000001``, and every integer survives a round trip: bytes -> value ->
bytes gives the same bytes. A value that does not fit is an :class:`EncodingError` carrying one
line for the log, never anything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

Json = Any  # a value that came from, or will go to, JSON

MAX_VALUE = 512  # bytes: the longest attribute value ATT allows (Core spec Vol 3, Part F 3.2.9)
MAX_PAYLOAD = 16 * 1024  # MQTT payloads longer than this are refused before they are parsed

# encoding -> (bytes, signed)
INTEGERS: dict[str, tuple[int, bool]] = {
    "int8": (1, True),
    "uint8": (1, False),
    "int16le": (2, True),
    "uint16le": (2, False),
    "int32le": (4, True),
    "uint32le": (4, False),
}
ENCODINGS = ("raw", "utf8", "json", *INTEGERS)


class EncodingError(ValueError):
    """A value that does not fit its port's encoding; the message is one line for the log."""


@dataclass(frozen=True)
class Codec:
    """How one port's characteristic value is turned into a message and back."""

    encoding: str = "raw"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}")

    # -- device -> MQTT --------------------------------------------------------------------------

    def to_mqtt(self, data: bytes) -> bytes:
        """The message for a value read or notified by the device."""
        if self.encoding == "raw":
            return bytes(data)
        return _dump(self.decode(data))

    def decode(self, data: bytes) -> Json:
        """The JSON value of a characteristic's bytes (not for ``raw``, which has none)."""
        if self.encoding == "utf8":
            return _text(data, "the device's value")
        if self.encoding == "json":
            return _parse(_text(data, "the device's value"), "the device's value")
        if self.encoding in INTEGERS:
            size, signed = INTEGERS[self.encoding]
            if len(data) != size:
                raise EncodingError(f"{self.encoding}: expected {size} bytes, got {len(data)}")
            return self._scaled(int.from_bytes(data, "little", signed=signed))
        raise EncodingError("raw values have no JSON form")

    def _scaled(self, number: int) -> Json:
        scale = _decimal(self.scale)
        value = Decimal(number) * scale
        if scale == scale.to_integral_value():  # 1, 10: integers stay integers
            return int(value)
        return float(value)

    # -- MQTT -> device --------------------------------------------------------------------------

    def from_mqtt(self, payload: bytes) -> bytes:
        """The bytes to write for a message on the port's inport."""
        if len(payload) > MAX_PAYLOAD:
            raise EncodingError(f"message of {len(payload)} bytes is too long")
        if self.encoding == "raw":
            data = bytes(payload)
        elif self.encoding == "utf8":
            text = _text(payload, "the message")
            try:
                value = _parse(text, "the message")
            except EncodingError:
                value = None  # bare text
            data = value.encode() if isinstance(value, str) else payload
        else:
            data = self.encode(_parse(_text(payload, "the message"), "the message"))
        if len(data) > MAX_VALUE:
            raise EncodingError(f"{len(data)} bytes do not fit a characteristic (max {MAX_VALUE})")
        return data

    def encode(self, value: Json) -> bytes:
        """The characteristic's bytes for a JSON value (not for ``raw``)."""
        if self.encoding == "utf8":
            if not isinstance(value, str):
                raise EncodingError(f"utf8: expected a string, got {_shown(value)}")
            return value.encode()
        if self.encoding == "json":
            return _dump(value)
        if self.encoding in INTEGERS:
            return self._integer(value)
        raise EncodingError("raw values have no JSON form")

    def _integer(self, value: Json) -> bytes:
        size, signed = INTEGERS[self.encoding]
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float):
            raise EncodingError(f"{self.encoding}: expected a number, got {_shown(value)}")
        scale = _decimal(self.scale)
        if scale == 0:
            raise EncodingError(f"{self.encoding}: scale 0 cannot be divided by")
        try:
            number = int((Decimal(repr(value)) / scale).to_integral_value(ROUND_HALF_EVEN))
        except (InvalidOperation, OverflowError, ValueError):
            raise EncodingError(f"{self.encoding}: {_shown(value)} is not a number") from None
        low, high = (
            (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, 256**size - 1)
        )
        if not low <= number <= high:
            shown = _shown(value) if scale == 1 else f"{_shown(value)} / {self.scale:g} = {number}"
            raise EncodingError(f"{self.encoding}: {shown} is out of range {low}..{high}")
        return number.to_bytes(size, "little", signed=signed)


def _decimal(scale: float) -> Decimal:
    # repr is the shortest spelling that reads back as the same float: 0.01, not 0.0100000002...
    return Decimal(repr(float(scale)))


def _text(data: bytes, what: str) -> str:
    try:
        return bytes(data).decode()
    except UnicodeDecodeError as error:
        raise EncodingError(f"{what} is not UTF-8 (byte {error.start})") from None


def _refuse_constant(name: str) -> None:
    raise EncodingError(f"{name} is not JSON")  # json.loads takes NaN and Infinity otherwise


def _parse(text: str, what: str) -> Json:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except EncodingError:
        raise
    except json.JSONDecodeError as error:
        raise EncodingError(f"{what} is not JSON: {error.msg} at {error.pos}") from None
    except (ValueError, RecursionError) as error:  # an integer of 5000 digits, [[[[...]]]]
        raise EncodingError(f"{what} is not usable JSON: {error}") from None


def _dump(value: Json) -> bytes:
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError, RecursionError) as error:
        raise EncodingError(f"cannot write {_shown(value)} as JSON: {error}") from None


def _shown(value: Json) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
