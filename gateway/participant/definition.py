"""Participant definitions: what a participant is and which queues its ports use (pure).

A definition is built once, from keyword arguments or from a msgflo-python style dict, and is
validated on the way in; everything past that sees frozen :class:`ParticipantDefinition` and
:class:`PortDefinition` objects.

Queue naming differs between the original libraries and third parties hard-code both, so it is a
switch (see :class:`QueueNaming`). Explicit queues always win, and ``#ROLE`` in them is replaced
by the role, as msgflo-register does. Roles and queues are used verbatim: ``/``, ``.``, ``:`` and a
leading ``/`` are all meaningful to somebody's deployment.
"""

from __future__ import annotations

import enum
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.errors import DefinitionError
from gateway.transport.base import Persistence

Json = Any  # a value that came from, or will go to, JSON

DEFAULT_ICON = "file-word-o"  # msgflo-python's default icon
ROLE_PLACEHOLDER = "#ROLE"
# MQTT wildcards cannot appear in a topic we publish to, and NUL is invalid in any topic.
FORBIDDEN_QUEUE_CHARS = frozenset("+#\x00")
# An MQTT topic is a UTF-8 string of at most 65,535 bytes (MQTT 5 1.5.4, 3.1.1 1.5.3); an AMQP
# queue or exchange name is a short string of at most 255 (AMQP 0-9-1 4.2.5.3). A device can
# announce anything, so a queue that would make the encoder raise is refused here, once, at the
# boundary, instead of inside the coordinator's forwarding path.
MAX_QUEUE_BYTES = 65_535
# Port keys this module understands; anything else is kept and announced untouched.
PORT_KEYS = frozenset({"id", "type", "description", "hidden", "queue", "options", "qos"})
DEFINITION_KEYS = frozenset({"id", "role", "component", "label", "icon", "inports", "outports"})


class QueueNaming(enum.Enum):
    """How a port's queue is named when the definition does not give one."""

    PYTHON = "role/port"  # msgflo-python >= 0.3.0: ``repeater/in``
    NODEJS = "role.PORT"  # msgflo-nodejs, msgflo-cpp, the coordinator's convention: ``repeater.IN``

    def queue_for(self, role: str, port_id: str) -> str:
        if self is QueueNaming.NODEJS:
            return f"{role}.{port_id.upper()}"
        return f"{role}/{port_id}"

    def default_id(self, role: str, rng: random.Random | None = None) -> str:
        """A fresh participant id in the style of the library this naming comes from."""
        if self is QueueNaming.NODEJS:
            return f"{role}-{uuid.uuid4()}"
        return f"{role}{(rng or random).randint(0, 99999)}"


class Direction(enum.Enum):
    IN = "inports"
    OUT = "outports"


@dataclass(frozen=True)
class PortDefinition:
    """One inport or outport. ``qos`` is local (MQTT QoS used for this port) and not announced."""

    id: str
    queue: str
    type: str = "any"
    description: str = ""
    hidden: bool = False
    options: Mapping[str, Json] = field(default_factory=dict)
    qos: int = 0
    extra: Mapping[str, Json] = field(default_factory=dict)

    @property
    def persistence(self) -> Persistence:
        """From ``options.persistent`` (checked to be a boolean when the port was parsed)."""
        value = self.options.get("persistent")
        return Persistence.from_option(value if isinstance(value, bool) else None)

    def to_discovery(self) -> dict[str, Json]:
        """The port object as announced: id, type, queue, then optional and pass-through keys."""
        port: dict[str, Json] = {"id": self.id, "type": self.type, "queue": self.queue}
        if self.description:
            port["description"] = self.description
        if self.options:
            port["options"] = dict(self.options)
        port.update(self.extra)
        return port


@dataclass(frozen=True)
class ParticipantDefinition:
    """What a participant announces: identity, component, and its ports with their queues."""

    role: str
    id: str
    component: str
    label: str = ""
    icon: str = DEFAULT_ICON
    inports: tuple[PortDefinition, ...] = ()
    outports: tuple[PortDefinition, ...] = ()
    extra: Mapping[str, Json] = field(default_factory=dict)

    def port(self, direction: Direction, port_id: str) -> PortDefinition | None:
        ports = self.inports if direction is Direction.IN else self.outports
        return next((p for p in ports if p.id == port_id), None)

    def to_discovery(self) -> dict[str, Json]:
        """The discovery payload. Exactly the seven keys the original libraries send, plus any
        extra keys the definition was explicitly given; hidden ports are not announced."""
        payload: dict[str, Json] = {
            "component": self.component,
            "label": self.label,
            "icon": self.icon,
            "role": self.role,
            "id": self.id,
            "inports": [p.to_discovery() for p in self.inports if not p.hidden],
            "outports": [p.to_discovery() for p in self.outports if not p.hidden],
        }
        payload.update(self.extra)
        return payload

    def with_id(self, participant_id: str) -> ParticipantDefinition:
        return replace(self, id=_nonempty_str(participant_id, "id"))


def define(
    role: str,
    component: str,
    *,
    inports: Iterable[Mapping[str, Json] | str] = (),
    outports: Iterable[Mapping[str, Json] | str] = (),
    label: str = "",
    icon: str = DEFAULT_ICON,
    participant_id: str | None = None,
    naming: QueueNaming = QueueNaming.PYTHON,
) -> ParticipantDefinition:
    """Build a validated definition; ports are given as ids or as msgflo port dicts."""
    spec: dict[str, Json] = {
        "component": component,
        "label": label,
        "icon": icon,
        "inports": [{"id": p} if isinstance(p, str) else dict(p) for p in inports],
        "outports": [{"id": p} if isinstance(p, str) else dict(p) for p in outports],
    }
    if participant_id is not None:
        spec["id"] = participant_id
    return from_dict(spec, role, naming=naming, default_ports=False)


def from_dict(
    spec: Mapping[str, Json],
    role: str | None = None,
    *,
    naming: QueueNaming = QueueNaming.PYTHON,
    default_ports: bool = True,
    rng: random.Random | None = None,
) -> ParticipantDefinition:
    """Build a definition from a msgflo-python style dict.

    Defaults as msgflo-python 0.4.1: ``role`` from the argument, ``id`` = role + random number,
    icon ``file-word-o``, label ``""``, and when ``default_ports`` is set an absent ``inports`` /
    ``outports`` key means one ``in`` / ``out`` port of type ``any``. Presence is tested, never
    truthiness: ``inports: []`` is a valid source with no inports. A port may be given as just
    its id (``"outports": ["tick"]``).
    """
    if not isinstance(spec, Mapping):
        raise DefinitionError("", f"expected a mapping, got {type(spec).__name__}")
    role_value = role if role is not None else spec.get("role")
    role_str = _nonempty_str(role_value, "role")
    given_id = spec.get("id")
    pid = naming.default_id(role_str, rng) if given_id is None else _nonempty_str(given_id, "id")
    inports = _ports(spec, Direction.IN, role_str, naming, default_ports)
    outports = _ports(spec, Direction.OUT, role_str, naming, default_ports)
    return ParticipantDefinition(
        role=role_str,
        id=pid,
        component=_nonempty_str(spec.get("component"), "component"),
        label=_str(spec.get("label", ""), "label"),
        icon=_str(spec.get("icon", DEFAULT_ICON), "icon"),
        inports=inports,
        outports=outports,
        extra={k: v for k, v in spec.items() if k not in DEFINITION_KEYS},
    )


def _ports(
    spec: Mapping[str, Json],
    direction: Direction,
    role: str,
    naming: QueueNaming,
    default_ports: bool,
) -> tuple[PortDefinition, ...]:
    key = direction.value
    if key not in spec:
        if not default_ports:
            return ()
        raw: Json = [{"id": "in" if direction is Direction.IN else "out", "type": "any"}]
    else:
        raw = spec[key]
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise DefinitionError(key, f"expected a list of ports, got {type(raw).__name__}")
    ports = tuple(
        port_from_dict({"id": p} if isinstance(p, str) else p, f"{key}[{i}]", role, naming)
        for i, p in enumerate(raw)
    )
    _check_unique(ports, key)
    return ports


def port_from_dict(
    raw: Json, path: str, role: str, naming: QueueNaming = QueueNaming.PYTHON
) -> PortDefinition:
    """One port from its dict form; ``path`` names it in error messages."""
    if not isinstance(raw, Mapping):
        raise DefinitionError(path, f"expected a port object, got {type(raw).__name__}")
    port_id = _nonempty_str(raw.get("id"), f"{path}.id")
    hidden = raw.get("hidden", False)
    if not isinstance(hidden, bool):
        raise DefinitionError(f"{path}.hidden", f"expected true or false, got {hidden!r}")
    queue = raw.get("queue")
    if queue is None:
        queue = "" if hidden else naming.queue_for(role, port_id)
    else:
        queue = _nonempty_str(queue, f"{path}.queue").replace(ROLE_PLACEHOLDER, role)
    if not hidden:
        check_queue(queue, f"{path}.queue")
    return PortDefinition(
        id=port_id,
        queue=queue,
        type=_str(raw.get("type", "any"), f"{path}.type"),
        description=_str(raw.get("description", ""), f"{path}.description"),
        hidden=hidden,
        options=_options(raw.get("options", {}), f"{path}.options"),
        qos=_qos(raw.get("qos", 0), f"{path}.qos"),
        extra={k: v for k, v in raw.items() if k not in PORT_KEYS},
    )


def check_queue(queue: str, path: str = "queue") -> str:
    """A queue name must be non-empty and usable as an MQTT publish topic."""
    bad = sorted(FORBIDDEN_QUEUE_CHARS.intersection(queue))
    if bad:
        hint = " (an unsubstituted #ROLE?)" if "#" in bad else ""
        raise DefinitionError(path, f"queue {queue!r} contains {bad[0]!r}{hint}")
    if not queue:
        raise DefinitionError(path, "queue is empty")
    try:
        size = len(queue.encode("utf-8"))
    except UnicodeEncodeError as exc:
        bad_char = queue[exc.start]
        raise DefinitionError(path, f"queue contains {bad_char!r}, which is not UTF-8") from None
    if size > MAX_QUEUE_BYTES:
        raise DefinitionError(path, f"queue is {size} bytes long, more than {MAX_QUEUE_BYTES}")
    return queue


def _check_unique(ports: tuple[PortDefinition, ...], key: str) -> None:
    seen: set[str] = set()
    for port in ports:
        if port.id in seen:
            raise DefinitionError(key, f"duplicate port id {port.id!r}")
        seen.add(port.id)


def _nonempty_str(value: Json, path: str) -> str:
    if not isinstance(value, str) or not value:
        got = "missing" if value is None else f"{value!r}"
        raise DefinitionError(path, f"must be a non-empty string ({got})")
    return value


def _str(value: Json, path: str) -> str:
    if not isinstance(value, str):
        raise DefinitionError(path, f"must be a string, got {value!r}")
    return value


def _mapping(value: Json, path: str) -> Mapping[str, Json]:
    if not isinstance(value, Mapping):
        raise DefinitionError(path, f"must be an object, got {value!r}")
    return dict(value)


def _options(value: Json, path: str) -> Mapping[str, Json]:
    options = _mapping(value, path)
    persistent = options.get("persistent")
    if persistent is not None and not isinstance(persistent, bool):
        raise DefinitionError(f"{path}.persistent", f"expected true or false, got {persistent!r}")
    return options


def _qos(value: Json, path: str) -> int:
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise DefinitionError(path, f"must be 0, 1 or 2, got {value!r}")
    return int(value)
