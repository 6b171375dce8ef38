"""Sensor values out of an advert, by Theengs Decoder (pure but for the decoder itself).

`Theengs Decoder <https://decoder.theengs.io>`_ knows the advertisement formats of a few hundred
devices (Xiaomi and its custom firmwares, RuuviTag, Govee, SwitchBot, Inkbird, ...). It takes
one JSON object per advert: ``id`` (the address), ``name``, ``rssi``, ``manufacturerdata`` (hex,
the company id first, little-endian, as on the air), ``servicedata`` (hex) and
``servicedatauuid`` (``0x181a``), one service data entry at a time. It answers the same object
with ``model_id``, ``brand``, ``model`` and the decoded properties added, or ``None``.
``getProperties(model_id)`` lists a model's properties with their names and units.

A :class:`Reading` keeps the model and the properties the model declares, minus bookkeeping
(the address again, ``mac``) and values that are not plain JSON numbers, strings or booleans.
Values the decoder adds that its model does not declare (``tempf`` next to ``tempc``, the
``cidc``/``acts``/``cont``/``track`` flags) are dropped, so a model's ports are the same from
one advert to the next even when each advert carries only some of them (MiBeacon).

Devices the decoder marks as having a rotating private address (``prmac``, type ``RMAC``:
phones, watches, laptops) are not readings: there is nothing to adopt by address.

The decoder is C++ reached through a JSON string: whatever it raises is caught and counted, as
is an answer that is not what it should be. A decode costs about a millisecond on a PC
(measured here), more on a Pi, so the registry does not decode the same undecodable advert
twice (:mod:`gateway.bridges.ble.registry`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gateway.bridges.ble.advert import Advert, short_uuid

log = logging.getLogger("gateway.bridges.ble")

Value = float | int | str | bool
# Keys of the decoder's answer that are not measurements.
BOOKKEEPING = frozenset(
    {
        "id",
        "name",
        "rssi",
        "manufacturerdata",
        "servicedata",
        "servicedatauuid",
        "uuid",
        "brand",
        "model",
        "model_id",
        "type",
        "mac",
        "cidc",
        "acts",
        "cont",
        "track",
        "prmac",
        "encr",
        "cipher",
        "ctr",
        "mic",
    }
)
APPLE, MICROSOFT = 0x004C, 0x0006  # Bluetooth SIG company ids
PHONE_MAKERS = frozenset({APPLE, MICROSOFT})
IBEACON = b"\x02\x15"  # Apple's iBeacon type and length: beacons and some sensors send it
PRIVATE_TYPE = "RMAC"  # the decoder's type of devices with rotating (random) addresses
MAX_PROPERTIES = 32  # ports of one model; the decoder's largest declare about 20
MAX_TEXT = 64  # characters of a string value
MAX_MODELS = 1024  # models remembered (the decoder knows a few hundred)


@dataclass(frozen=True)
class Property:
    key: str  # the decoder's key: the port's id (tempc, hum, batt)
    name: str = ""  # "temperature"
    unit: str = ""  # "°C"

    @property
    def type(self) -> str:
        return {"string": "string", "status": "boolean"}.get(self.unit, "number")


@dataclass(frozen=True)
class Model:
    id: str  # the decoder's model_id, e.g. "LYWSD03MMC/MJWSD05MMC_ATC"
    brand: str = ""
    name: str = ""  # "TH Sensor"
    type: str = ""  # the decoder's device type: THB, ACEL, PLANT, ...
    properties: tuple[Property, ...] = ()

    def property(self, key: str) -> Property | None:
        return next((p for p in self.properties if p.key == key), None)


@dataclass(frozen=True)
class Reading:
    model: Model
    values: Mapping[str, Value] = field(default_factory=dict)  # property key -> value


@dataclass
class DecodeCounts:
    decoded: int = 0
    undecoded: int = 0  # a valid advert the decoder knows nothing of
    private: int = 0  # a phone or laptop with a rotating private address: never a sensor
    errors: int = 0  # the decoder raised or answered nonsense

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


DecodeFn = Callable[[str], str | None]
PropertiesFn = Callable[[str], str | None]


def _theengs() -> tuple[DecodeFn, PropertiesFn]:
    # A C extension without type information (the 'ble' extra; bootstrap installs it).
    from TheengsDecoder import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        decodeBLE,
        getProperties,
    )

    return decodeBLE, getProperties


class Decoder:
    """``decode(advert)`` -> :class:`Reading` or None, counting what happened. The decoder
    functions can be given (tests of the error paths); by default Theengs Decoder's."""

    def __init__(
        self, decode_ble: DecodeFn | None = None, get_properties: PropertiesFn | None = None
    ) -> None:
        if decode_ble is None or get_properties is None:
            theengs_decode, theengs_properties = _theengs()
            decode_ble = decode_ble or theengs_decode
            get_properties = get_properties or theengs_properties
        self._decode_ble = decode_ble
        self._get_properties = get_properties
        self.counts = DecodeCounts()
        # Models are few (the decoder's list, a few hundred) and each is asked for once.
        self._models: dict[str, Model] = {}

    def decode(self, advert: Advert) -> Reading | None:
        if is_phone(advert):  # as the decoder would say, without its cost
            self.counts.private += 1
            self.counts.undecoded += 1
            return None
        for query in decoder_inputs(advert):
            try:
                answer = self._decode_ble(query)
                reading = None if answer is None else self._reading(answer)
            except Exception as error:  # C++ behind a JSON string: anything, counted
                self.counts.errors += 1
                log.debug("%s: decoder error %r", advert.address, error)
                continue
            if reading is not None:
                self.counts.decoded += 1
                return reading
        self.counts.undecoded += 1
        return None

    def _reading(self, answer: str) -> Reading | None:
        decoded = json.loads(answer)
        if not isinstance(decoded, dict) or not isinstance(decoded.get("model_id"), str):
            raise ValueError("decoder answer without a model_id")
        if decoded.get("prmac") is True or decoded.get("type") == PRIVATE_TYPE:
            # Phones, watches, laptops: their address changes every few minutes, so there is
            # nothing to adopt, and a street's worth of them would crowd out the sensors.
            self.counts.private += 1
            return None
        model = self._models.get(decoded["model_id"])
        if model is None:
            model = self._model_info(decoded["model_id"], decoded)
            if len(self._models) < MAX_MODELS:
                self._models[model.id] = model
        values: dict[str, Value] = {}
        for key, value in decoded.items():
            if key in BOOKKEEPING or not _plain(value):
                continue
            if model.properties and model.property(key) is None:
                continue  # derived (tempf) or undeclared: not a port
            values[key] = value
        return Reading(model, values) if values else None

    def _model_info(self, model_id: str, decoded: Mapping[str, object]) -> Model:
        brand, name, kind = (decoded.get(k) for k in ("brand", "model", "type"))
        return Model(
            id=model_id,
            brand=brand if isinstance(brand, str) else "",
            name=name if isinstance(name, str) else "",
            type=kind if isinstance(kind, str) else "",
            properties=self._properties(model_id),
        )

    def _properties(self, model_id: str) -> tuple[Property, ...]:
        try:
            text = self._get_properties(model_id)
            found = json.loads(text)["properties"] if text else {}
        except Exception as error:
            self.counts.errors += 1
            log.warning("model %s: no property list from the decoder (%r)", model_id, error)
            return ()
        if not isinstance(found, dict):
            return ()
        properties = []
        for key, raw in list(found.items())[:MAX_PROPERTIES]:
            if key in BOOKKEEPING or not isinstance(key, str) or not key.isidentifier():
                continue
            info = raw if isinstance(raw, dict) else {}
            name, unit = info.get("name", ""), info.get("unit", "")
            properties.append(
                Property(
                    key,
                    name if isinstance(name, str) else "",
                    unit if isinstance(unit, str) else "",
                )
            )
        return tuple(properties)


def _plain(value: object) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) < 2**53
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_TEXT and value.isprintable()


def is_phone(advert: Advert) -> bool:
    """An advert only phones, watches and laptops send: nothing but Apple's or Microsoft's
    manufacturer data, and not an iBeacon (which sensors use too). The decoder would mark it
    private anyway, but only after about 1 ms, 3.5 times a sensor's decode (bench/ble.py):
    at a venue such adverts are most of what is heard."""
    makers = advert.manufacturer_data
    if advert.service_data or not makers or not makers.keys() <= PHONE_MAKERS:
        return False
    return not makers.get(APPLE, b"").startswith(IBEACON)


def decoder_inputs(advert: Advert) -> list[str]:
    """The decoder's JSON inputs for ``advert``: one per service data entry (the decoder takes
    one), each with the first manufacturer data; then each other manufacturer data entry alone.
    At most MAX_ENTRIES * 2 (advert.py caps the entries)."""
    base: dict[str, object] = {"id": advert.address, "rssi": advert.rssi}
    if advert.name:
        base["name"] = advert.name
    makers = [
        f"{cid & 0xFF:02x}{cid >> 8:02x}{data.hex()}"
        for cid, data in advert.manufacturer_data.items()
    ]
    queries: list[dict[str, object]] = []
    for uuid, data in advert.service_data.items():
        query = dict(base, servicedata=data.hex(), servicedatauuid=short_uuid(uuid) or uuid)
        if makers:
            query["manufacturerdata"] = makers[0]
        queries.append(query)
    for index, maker in enumerate(makers):
        if index or not queries:
            queries.append(dict(base, manufacturerdata=maker))
    if not queries and advert.name:
        queries.append(base)  # some models are told by their name alone
    return [json.dumps(query, separators=(",", ":")) for query in queries]


def details(reading: Reading, rssi: int) -> str:
    """One line for the seen list: ``temperature 21.5, humidity 40, rssi -70``."""
    parts = []
    for key, value in reading.values.items():
        prop = reading.model.property(key)
        label = prop.name if prop and prop.name else key
        parts.append(f"{label} {_shown(value)}")
    parts.append(f"rssi {rssi}")
    return ", ".join(parts)


def _shown(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
