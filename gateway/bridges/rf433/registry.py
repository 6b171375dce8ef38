"""What the 433 MHz bridge knows of the devices it hears, and what to do with each event (pure).

:meth:`Registry.observe` takes one :class:`~gateway.bridges.rf433.events.RadioEvent` and answers
an :class:`~gateway.bridges.observe.Outcome` (the :class:`Slot` of the role it belongs to,
whether its participant must be announced, the values to send) or None. The observing device
side (:mod:`gateway.bridges.observe`, run by ``bridge.py``) only carries the outcome out.

Adoption. ``bridges.rf433.roles`` maps device keys to roles; nothing else is announced. Each
role is a :class:`Slot` that one device key holds at a time:

- an exact key (``Nexus-TH/1/136``) holds its role whenever it is heard (also taking it back
  from an id that had taken it over, logged);
- a key with ``*`` for the id (``Nexus-TH/1/*``) is given to the first id of that model and
  channel heard (the user says the channel is theirs);
- an id swap (a battery change makes most sensors pick a new random id): the role moves from
  its holder to a new id of the same model and channel when all of these hold, and the move is
  logged with the config line that makes it permanent:

  1. the holder was heard in this run (after a restart nothing is known of who was around);
  2. the new id was first heard *after* the holder's last packet, and the holder has stayed
     silent since (a neighbour's sensor on the same channel is heard while ours still sends,
     so it can never qualify, however long ours is silent later);
  3. the new id has been heard for ``swap_after`` seconds (the holder missing a few packets is
     not enough; ``None``: never move);
  4. it is the only such new id, and only one role of that model and channel is waiting for one
     (otherwise nothing moves and one line says which ids are in question).

  What is not guarded against: our sensor dying and, in the same minutes, a neighbour putting a
  new one on the same channel. The log line says what moved, so it can be undone.

Repeats. A sensor sends each reading, a remote each press, 3-6 times. Within a device's window
(``window``, ``windows`` per key) a packet whose device key *and* full content (every decoded
field; not the time or the level) equal the previous packet's is a repeat: counted, marks the
device alive, sends nothing. The window slides (a held button is one message). A changed value
is never a repeat, however soon it follows.

Ports. Each decoded field is an outport (``temperature_C``, ``battery_ok``, ``button``...),
the value as JSON; a field first seen later extends the participant (announced again), up to
:data:`MAX_PORTS`.

Memory is bounded: one slot per configured role, and the devices heard and not adopted in an
LRU of ``max_heard`` (the seen list), whatever the air brings.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field

from gateway.bridges.observe import Outcome
from gateway.bridges.rf433.events import RadioEvent, Value, split_key
from gateway.bridges.seen import SeenDevice, adopt_line
from gateway.config import Rf433BridgeConfig
from gateway.participant.definition import ParticipantDefinition, define

log = logging.getLogger("gateway.bridges.rf433")

MAX_PORTS = 48  # outports of one device (rtl_433's richest decoders have about 20 fields)
WILDCARD = "*"
_PORT_BAD = re.compile(r"[^A-Za-z0-9_-]")
TEMPERATURE_ICON = "thermometer-half"
DEFAULT_ICON = "rss"


@dataclass
class RegistryCounts:
    events: int = 0
    repeats: int = 0  # collapsed into the message before them
    moved: int = 0  # roles that moved to a new id
    ambiguous: int = 0  # id swaps not made: more than one new id, or more than one role

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Slot:
    """One configured role, and the device key that holds it now."""

    role: str
    pattern: str  # the roles key: an exact key or GROUP/*
    group: str  # MODEL/CHANNEL
    holder: str | None = None  # the key holding the role; exact patterns start holding it
    last_heard: float | None = None  # monotonic, of the holder; None: not heard in this run
    definition: ParticipantDefinition | None = None
    ports: dict[str, str] = field(default_factory=dict)  # port -> type, in order of appearance
    last_content: bytes = b""
    last_time: float = 0.0
    warned_ports: bool = False
    warned_ambiguous: frozenset[str] = frozenset()

    @property
    def wildcard(self) -> bool:
        return self.pattern.endswith("/" + WILDCARD)

    @property
    def key(self) -> str:
        """The host keeps its participant under the role: a device whose id changed (an id
        swap) is the same participant."""
        return self.role

    @property
    def label(self) -> str:
        return f"rf433 {self.holder or self.pattern} ({self.role})"


@dataclass
class _Heard:
    key: str
    group: str
    model: str
    first_heard: float  # monotonic
    last_heard: float  # monotonic
    last_seen: float | None  # epoch
    details: str


class Registry:
    def __init__(self, section: Rf433BridgeConfig) -> None:
        self.section = section
        self.counts = RegistryCounts()
        self.slots = [_slot(pattern, role) for pattern, role in section.roles]
        self._exact = {slot.pattern: slot for slot in self.slots if not slot.wildcard}
        self._windows = dict(section.windows)
        self._heard: OrderedDict[str, _Heard] = OrderedDict()

    # -- events ----------------------------------------------------------------------------------

    def observe(
        self, event: RadioEvent, now: float, wall: float | None = None
    ) -> Outcome[Slot] | None:
        """What to do with ``event`` heard at ``now`` (monotonic seconds; ``wall``: epoch)."""
        self.counts.events += 1
        key = event.key
        slot = self._slot_of(key)
        if slot is None:
            self._note_heard(event, now, wall)
            slot = self._claim(event, now)
            if slot is None:
                return None
            self._heard.pop(key, None)
        slot.last_heard = now
        return self._report(slot, event, now)

    def _slot_of(self, key: str) -> Slot | None:
        exact = self._exact.get(key)
        if exact is not None:
            if exact.holder != key:
                log.warning(
                    "%s: heard again; it takes role %s back from %s", key, exact.role, exact.holder
                )
                exact.holder = key
                exact.last_content = b""
            return exact
        return next((slot for slot in self.slots if slot.holder == key), None)

    def _claim(self, event: RadioEvent, now: float) -> Slot | None:
        """The role a key no slot holds takes: a free wildcard, or an id swap."""
        group = event.group
        slots = [slot for slot in self.slots if slot.group == group]
        if not slots:
            return None
        free = next((s for s in slots if s.wildcard and s.holder is None), None)
        if free is not None:
            free.holder = event.key
            log.info("%s: adopted as %s (by %s)", event.key, free.role, free.pattern)
            return free
        return self._swap(event.key, group, slots, now)

    def _swap(self, key: str, group: str, slots: list[Slot], now: float) -> Slot | None:
        after = self.section.swap_after
        heard = self._heard.get(key)
        if after is None or heard is None:
            return None
        waiting = [
            s
            for s in slots
            if s.last_heard is not None and s.last_heard < heard.first_heard and s.holder != key
        ]
        if not waiting or now - heard.first_heard < after:
            return None
        newest = min(s.last_heard for s in waiting if s.last_heard is not None)
        newcomers = sorted(
            h.key for h in self._heard.values() if h.group == group and h.first_heard > newest
        )
        if len(waiting) > 1 or newcomers != [key]:
            self._ambiguous(waiting, newcomers)
            return None
        slot = waiting[0]
        old, slot.holder = slot.holder, key
        slot.last_content = b""
        self.counts.moved += 1
        log.warning(
            "%s: takes role %s from %s, silent for %.0f s while it was heard (an id swap, as "
            "after a battery change); to keep it after a restart: %s",
            key,
            slot.role,
            old,
            now - (slot.last_heard or now),
            adopt_line("rf433", key).replace("ROLE", slot.role),
        )
        return slot

    def _ambiguous(self, waiting: list[Slot], newcomers: list[str]) -> None:
        self.counts.ambiguous += 1
        for slot in waiting:
            if frozenset(newcomers) == slot.warned_ambiguous:
                continue
            slot.warned_ambiguous = frozenset(newcomers)
            log.warning(
                "%s: silent, and %d new id(s) of its model and channel are heard (%s), with %d "
                "role(s) waiting; none takes it (adopt the right one in bridges.rf433.roles)",
                slot.label,
                len(newcomers),
                ", ".join(newcomers[:5]),
                len(waiting),
            )

    # -- reports ---------------------------------------------------------------------------------

    def window(self, key: str) -> float:
        group = key.rsplit("/", 1)[0]
        return self._windows.get(key, self._windows.get(f"{group}/{WILDCARD}", self.section.window))

    def _report(self, slot: Slot, event: RadioEvent, now: float) -> Outcome[Slot]:
        content = _content(event)
        window = self.window(event.key)
        if content == slot.last_content and now - slot.last_time < window:
            slot.last_time = now  # sliding: a held button is one message
            self.counts.repeats += 1
            return Outcome(slot, announce=slot.definition is None)  # a repeat: only alive
        slot.last_content, slot.last_time = content, now
        announce = self._extend(slot, event)
        values = tuple(
            (_port(name), json.dumps(value).encode())
            for name, value in event.fields
            if _port(name) in slot.ports
        )
        return Outcome(slot, announce, values)

    def _extend(self, slot: Slot, event: RadioEvent) -> bool:
        """Add the event's new fields as ports; True when the definition changed."""
        changed = slot.definition is None
        for name, value in event.fields:
            port = _port(name)
            if port in slot.ports:
                continue
            if len(slot.ports) >= MAX_PORTS:
                if not slot.warned_ports:
                    slot.warned_ports = True
                    log.warning(
                        "%s: more than %d fields; %s and later ignored", slot.label, MAX_PORTS, name
                    )
                continue
            slot.ports[port] = _type(value)
            changed = True
        label = f"{event.model} {event.key}"
        if changed or slot.definition is None or slot.definition.label != label:
            slot.definition = definition(slot.role, event.model, label, slot.ports)
            return True
        return False

    # -- heard and not adopted -------------------------------------------------------------------

    def _note_heard(self, event: RadioEvent, now: float, wall: float | None) -> None:
        old = self._heard.pop(event.key, None)
        self._heard[event.key] = _Heard(
            event.key,
            event.group,
            event.model,
            old.first_heard if old else now,
            now,
            wall,
            event.details(),
        )
        while len(self._heard) > self.section.max_heard:
            self._heard.popitem(last=False)

    def seen(self, now: float) -> list[SeenDevice]:
        """The devices heard and not adopted within ``timeout`` of ``now`` (monotonic)."""
        horizon = now - self.section.timeout
        return [
            SeenDevice(
                "rf433",
                h.key,
                h.model,
                "",
                None if h.last_seen is None else round(h.last_seen, 1),
                h.details,
            )
            for h in self._heard.values()
            if h.last_heard >= horizon
        ]

    def role_for(self, key: str) -> str | None:
        """The role the config gives device ``key`` (exactly, or by its model and channel)."""
        exact = self._exact.get(key)
        if exact is not None:
            return exact.role
        group = key.rsplit("/", 1)[0]
        return next((s.role for s in self.slots if s.wildcard and s.group == group), None)

    def size(self) -> dict[str, int]:
        return {"slots": len(self.slots), "heard": len(self._heard)}


def _slot(pattern: str, role: str) -> Slot:
    parts = split_key(pattern)
    if parts is None:
        raise ValueError(f"{pattern!r} is not a device key (MODEL/CHANNEL/ID)")
    slot = Slot(role, pattern, f"{parts[0]}/{parts[1]}")
    if not slot.wildcard:
        slot.holder = pattern
    return slot


def definition(role: str, model: str, label: str, ports: dict[str, str]) -> ParticipantDefinition:
    """An adopted device's participant: component ``rf433/<model>``, one outport per field."""
    icon = TEMPERATURE_ICON if any(p.startswith("temperature") for p in ports) else DEFAULT_ICON
    return define(
        role,
        f"rf433/{model}",
        outports=[{"id": port, "type": kind} for port, kind in ports.items()],
        label=label,
        icon=icon,
        participant_id=f"{role}-rf433",
    )


def _content(event: RadioEvent) -> bytes:
    """The dedup key: the device and every decoded field (not the time or the level)."""
    return json.dumps([event.key, event.fields], separators=(",", ":")).encode()


def _port(name: str) -> str:
    """The port of field ``name``, lower case: .fbp graphs name ports in any case and the
    parser lower-cases them (``garden TEMPERATURE_C -> ...`` is ``temperature_c``)."""
    return _PORT_BAD.sub("_", name.lower())[:64] or "_"


def _type(value: Value) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"
