"""What the BLE bridge knows of the devices around it, and what to do with each advert (pure).

:meth:`Registry.observe` takes one :class:`~gateway.bridges.ble.advert.Advert` and answers an
:class:`~gateway.bridges.observe.Outcome` (the adopted :class:`Sensor` it came from, whether its
participant must be announced now, the values to publish) or None. The observing device side
(:mod:`gateway.bridges.observe`, run by ``bridge.py``) only carries the outcome out.

Memory is bounded whatever the air brings. A busy street has thousands of phones, each with a
new random address every few minutes, none of which decodes:

- an advert that does not decode is not stored at all, only its digest (8 bytes, with the
  address) in a small LRU so the same advert repeated is not decoded again
  (:data:`NEGATIVE_CACHE` entries);
- a device that decodes and that nothing adopts is listed as seen, in an LRU of ``max_seen``;
- adopted devices are those the config names (``roles``), plus those ``adopt`` rules match, at
  most :data:`MAX_RULE_ADOPTED` of them.

Adoption: ``roles`` by address, else the first ``adopt`` rule whose ``model`` (a glob over the
decoder's model id, so the exact id matches itself) and ``name`` (a glob over the advertised
name, empty when none was heard) match; its role with ``{id}`` replaced by the address's last six
hex digits, lower case. Nothing is announced unless adopted.

Reporting: each property is one outport carrying the value as JSON; a value is sent when it
changed or when it was last sent ``report_interval`` ago, so a reader that joins late hears every
value within that time. ``rssi`` is sent when it moved by :data:`RSSI_STEP` dB or more (it
jitters by a few dB on every advert, and every advert would be too many messages) or after
``report_interval``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from gateway.bridges.ble.advert import Advert
from gateway.bridges.ble.decode import Decoder, Model, Property, Reading, Value, details
from gateway.bridges.observe import Outcome
from gateway.bridges.seen import SeenDevice
from gateway.config import BleBridgeConfig
from gateway.participant.definition import ParticipantDefinition, define

log = logging.getLogger("gateway.bridges.ble")

NEGATIVE_CACHE = 2048  # digests of adverts known not to decode (16 bytes of key each, about)
MAX_RULE_ADOPTED = 512  # devices adopt rules may adopt; the config's roles always are
RSSI_STEP = 6  # dB the rssi must move before it is sent again within report_interval
RSSI_PORT = "rssi"
ICONS = {"THB": "thermometer-half", "THBX": "thermometer-half", "PLANT": "leaf"}
DEFAULT_ICON = "bluetooth-b"


@dataclass
class RegistryCounts:
    adverts: int = 0
    repeats: int = 0  # undecodable adverts skipped by the negative cache
    mismatched: int = 0  # an adopted device's advert decoded as another model
    not_adopted: int = 0  # rule matches past MAX_RULE_ADOPTED

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Sensor:
    """One adopted device: its participant's definition and what was last sent on each port."""

    address: str
    role: str
    model: Model
    definition: ParticipantDefinition
    sent: dict[str, tuple[bytes, float]] = field(default_factory=dict)  # port -> (payload, when)
    warned_mismatch: bool = False

    @property
    def key(self) -> str:  # the host keeps its participant under its address
        return self.address

    @property
    def label(self) -> str:
        return f"ble {self.address} ({self.role})"

    def reports(
        self, values: dict[str, Value], rssi: int, now: float, interval: float
    ) -> list[tuple[str, bytes]]:
        """The (port, payload) pairs to send for these values at ``now``."""
        out = []
        for port, value in values.items():
            payload = json.dumps(value).encode()
            last = self.sent.get(port)
            if last is None or last[0] != payload or now - last[1] >= interval:
                out.append((port, payload))
        last = self.sent.get(RSSI_PORT)
        if last is None or abs(int(last[0]) - rssi) >= RSSI_STEP or now - last[1] >= interval:
            out.append((RSSI_PORT, str(rssi).encode()))
        for port, payload in out:
            self.sent[port] = (payload, now)
        return out


@dataclass(frozen=True)
class _Seen:
    address: str
    model: str
    name: str
    last_seen: float  # epoch
    details: str


class Registry:
    def __init__(self, section: BleBridgeConfig, decoder: Decoder | None = None) -> None:
        self.section = section
        self.decoder = decoder or Decoder()
        self.counts = RegistryCounts()
        self.roles = {address.upper(): role for address, role in section.roles}
        self.gatt = {address.upper() for address, _ in section.gatt}  # configured elsewhere
        self.sensors: dict[str, Sensor] = {}
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._undecodable: OrderedDict[bytes, None] = OrderedDict()
        self._rule_adopted = 0
        self._warned_full = False

    # -- adverts ---------------------------------------------------------------------------------

    def observe(self, advert: Advert, now: float) -> Outcome[Sensor] | None:
        """What to do with ``advert`` heard at ``now`` (monotonic seconds); None: nothing."""
        self.counts.adverts += 1
        if advert.address in self.gatt:
            return None  # a GATT device: its own task announces it (gatt.py)
        key = _digest(advert)
        if key in self._undecodable:
            self._undecodable.move_to_end(key)
            self.counts.repeats += 1
            return None
        reading = self.decoder.decode(advert)
        if reading is None:
            self._undecodable[key] = None
            if len(self._undecodable) > NEGATIVE_CACHE:
                self._undecodable.popitem(last=False)
            return None
        sensor = self.sensors.get(advert.address)
        announce = False
        if sensor is None:
            sensor = self._adopt(advert, reading)
            if sensor is None:
                self._note_seen(advert, reading)
                return None
            announce = True
        elif sensor.model.id != reading.model.id:
            self._mismatch(sensor, reading)
            return None
        ports = {port.id for port in sensor.definition.outports}
        values = {key: value for key, value in reading.values.items() if key in ports}
        reports = sensor.reports(values, advert.rssi, now, self.section.report_interval)
        return Outcome(sensor, announce, tuple(reports))

    def role_for(self, advert: Advert, model_id: str) -> str | None:
        """The role the config gives the device of ``advert`` (a ``model_id``), or None."""
        return self.roles.get(advert.address) or self._rule_role(advert, model_id)

    def _adopt(self, advert: Advert, reading: Reading) -> Sensor | None:
        role = self.roles.get(advert.address)
        if role is None:
            role = self._rule_role(advert, reading.model.id)
            if role is None:
                return None
            if self._rule_adopted >= MAX_RULE_ADOPTED:
                self.counts.not_adopted += 1
                if not self._warned_full:
                    self._warned_full = True
                    log.warning(
                        "adopt rules have adopted %d devices already; %s (%s) and later ones "
                        "are not adopted (narrow the rules, or name devices in bridges.ble.roles)",
                        MAX_RULE_ADOPTED,
                        advert.address,
                        reading.model.id,
                    )
                return None
            self._rule_adopted += 1
        self._seen.pop(advert.address, None)
        sensor = Sensor(advert.address, role, reading.model, definition(role, advert, reading))
        self.sensors[advert.address] = sensor
        log.info("%s: adopted, a %s", sensor.label, reading.model.id)
        return sensor

    def _rule_role(self, advert: Advert, model_id: str) -> str | None:
        for rule in self.section.adopt:
            if fnmatchcase(model_id, rule.model) and fnmatchcase(advert.name, rule.name):
                return rule.role.replace("{id}", advert.short_id)
        return None

    def _mismatch(self, sensor: Sensor, reading: Reading) -> None:
        """An adopted device's advert that decodes as another model: a stray match of another
        model's pattern, or a firmware change; its ports stay those it was announced with
        (restart the bridge after changing a sensor's firmware)."""
        self.counts.mismatched += 1
        if not sensor.warned_mismatch:
            sensor.warned_mismatch = True
            log.warning(
                "%s: an advert decoded as %s, not %s; ignored (restart the bridge if its "
                "firmware changed)",
                sensor.label,
                reading.model.id,
                sensor.model.id,
            )

    # -- seen and not adopted --------------------------------------------------------------------

    def _note_seen(self, advert: Advert, reading: Reading) -> None:
        if advert.address in self.gatt:
            return
        old = self._seen.pop(advert.address, None)
        name = advert.name or (old.name if old else "")
        self._seen[advert.address] = _Seen(
            advert.address,
            reading.model.id,
            name,
            advert.time,
            details(reading, advert.rssi),
        )
        while len(self._seen) > self.section.max_seen:
            self._seen.popitem(last=False)

    def seen(self, now: float) -> list[SeenDevice]:
        """The devices decoded and not adopted that were heard within ``timeout`` of ``now``
        (epoch seconds), for the retained seen list."""
        horizon = now - self.section.timeout
        return [
            SeenDevice("ble", s.address, s.model, s.name, round(s.last_seen, 1), s.details)
            for s in self._seen.values()
            if s.last_seen >= horizon
        ]

    def size(self) -> dict[str, int]:
        """How many entries each bounded store holds (tests assert the bounds)."""
        return {
            "sensors": len(self.sensors),
            "seen": len(self._seen),
            "undecodable": len(self._undecodable),
        }


def definition(role: str, advert: Advert, reading: Reading) -> ParticipantDefinition:
    """The participant of an adopted device: component ``ble/<model id>``, one outport per
    property the model declares (the values' keys when it declares none) plus ``rssi``."""
    model = reading.model
    properties = model.properties or tuple(
        _untyped(key, value) for key, value in reading.values.items()
    )
    outports = [
        {
            "id": p.key,
            "type": p.type,
            "description": f"{p.name or p.key} ({p.unit})" if p.unit else p.name or p.key,
        }
        for p in properties
    ]
    outports.append({"id": RSSI_PORT, "type": "number", "description": "signal strength (dBm)"})
    label = " ".join(part for part in (model.brand, model.name, advert.address) if part)
    return define(
        role,
        f"ble/{model.id}",
        outports=outports,
        label=label,
        icon=ICONS.get(model.type, DEFAULT_ICON),
        participant_id=f"{role}-{advert.address.replace(':', '').lower()}",
    )


def _untyped(key: str, value: Value) -> Property:
    if isinstance(value, bool):
        return Property(key, key, "status")
    return Property(key, key, "string" if isinstance(value, str) else "")


def _digest(advert: Advert) -> bytes:
    """8 bytes that tell this advert's content from another's (the rssi aside)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(advert.address.encode())
    h.update(b"\0" + advert.name.encode("utf-8", "surrogatepass"))
    for cid, data in sorted(advert.manufacturer_data.items()):
        h.update(b"\1" + cid.to_bytes(2, "little") + len(data).to_bytes(2, "little") + data)
    for uuid, data in sorted(advert.service_data.items()):
        h.update(b"\2" + uuid.encode() + len(data).to_bytes(2, "little") + data)
    return h.digest()
