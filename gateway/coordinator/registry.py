"""The participant registry: who is out there, keyed by id, grouped by role, with expiry (pure).

Fed with parsed discovery messages and the current time, it answers "which queue does port P of
role R use right now?" and reports what changed, so the wiring can follow. Time is passed in, never
read here, so tests drive it with plain numbers.

Fixes over the original coordinator (protocol.md 2.4, 2.5): participants expire when they stop
announcing (default 600 s, or three of their own declared periods), stale participants never win a
queue lookup over live ones, and a role announced by several sources (a YAML registration and the
device itself) resolves each port from whichever live participant declares it.

It is bounded, because anyone who may publish on ``fbp`` can invent participant ids: the original
kept every id it ever saw. A role keeps at most :data:`MAX_GONE_PER_ROLE` participants that went
quiet (the newest; their ports still wire the role), and a new id is refused while its role has
:data:`MAX_LIVE_PER_ROLE` live participants or the registry holds :data:`MAX_PARTICIPANTS`
(quiet ones are forgotten first, oldest first).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, replace

from gateway.errors import DiscoveryError
from gateway.participant.definition import Direction, ParticipantDefinition, PortDefinition
from gateway.participant.discovery import DEFAULT_PERIOD

DEFAULT_EXPIRY = 600.0  # seconds; the limit the original documents
PERIOD_KEY = "discoveryPeriod"  # optional, opt-in: a participant's own announce period, seconds
MISSED_PERIODS = 3  # a participant that declares its period is gone after missing this many
MAX_PARTICIPANTS = 1000  # a kit has tens; with 32 KiB definitions at most, this bounds memory
MAX_LIVE_PER_ROLE = 64  # workers sharing one role
MAX_GONE_PER_ROLE = 4


class Change(enum.Enum):
    ADDED = "added"  # a new id
    UPDATED = "updated"  # a known id announced different ports or component
    RETURNED = "returned"  # a known id that had expired announced again
    GONE = "gone"  # a known id stopped announcing


@dataclass(frozen=True)
class Seen:
    """A participant as the registry knows it."""

    definition: ParticipantDefinition
    first_seen: float
    last_seen: float
    timeout: float
    alive: bool = True

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def role(self) -> str:
        return self.definition.role

    def online(self, now: float) -> bool:
        """Announced within its discovery period (its own, else the default 60 s) and not
        expired: a participant that stopped shows as offline long before it expires."""
        period = declared_period(self.definition) or DEFAULT_PERIOD
        return self.alive and now - self.last_seen <= period


@dataclass(frozen=True)
class RegistryEvent:
    change: Change
    participant: Seen


class Registry:
    """Participants by id; see the module docstring."""

    def __init__(
        self,
        expiry: float = DEFAULT_EXPIRY,
        *,
        max_participants: int = MAX_PARTICIPANTS,
        max_live_per_role: int = MAX_LIVE_PER_ROLE,
    ) -> None:
        self.expiry = expiry
        self.max_participants = max_participants
        self.max_live_per_role = max_live_per_role
        self._by_id: dict[str, Seen] = {}
        self._by_role: dict[str, dict[str, Seen]] = {}  # role -> id -> participant

    def observe(self, definition: ParticipantDefinition, now: float) -> RegistryEvent | None:
        """Record a discovery message; return what changed, or ``None`` for a plain heartbeat.
        Raises :class:`DiscoveryError` for a new id the registry has no room for."""
        timeout = self.timeout_for(definition)
        known = self._by_id.get(definition.id)
        if known is None:
            self._make_room(definition.role)
            seen = Seen(definition, now, now, timeout)
            self._store(seen)
            return RegistryEvent(Change.ADDED, seen)
        seen = replace(known, definition=definition, last_seen=now, timeout=timeout, alive=True)
        if known.role != seen.role:  # an id that moved to another role
            self._by_role.get(known.role, {}).pop(known.id, None)
        self._store(seen)
        if not known.alive:
            return RegistryEvent(Change.RETURNED, seen)
        if _wiring_differs(known.definition, definition):
            return RegistryEvent(Change.UPDATED, seen)
        return None

    def expire(self, now: float) -> list[RegistryEvent]:
        """Mark participants not heard from within their timeout as gone."""
        events = []
        for seen in list(self._by_id.values()):
            if seen.alive and now - seen.last_seen > seen.timeout:
                gone = replace(seen, alive=False)
                self._store(gone)
                self._forget_gone(seen.role, keep=MAX_GONE_PER_ROLE)
                events.append(RegistryEvent(Change.GONE, gone))
        return events

    def _make_room(self, role: str) -> None:
        """Room for a new id of ``role``: forget quiet participants, or refuse it."""
        live = len(self.live(role))
        if live >= self.max_live_per_role:
            raise DiscoveryError(
                f"role {role!r} has {live} live participants already; new id refused"
            )
        self._forget_gone(role, keep=MAX_GONE_PER_ROLE - 1)
        if len(self._by_id) < self.max_participants:
            return
        gone = [s for s in self._by_id.values() if not s.alive]
        if not gone:
            raise DiscoveryError(
                f"{len(self._by_id)} participants known, the most allowed; new id refused"
            )
        self.remove(min(gone, key=lambda s: s.last_seen).id)

    def _forget_gone(self, role: str, keep: int) -> None:
        gone = [s for s in self.known(role) if not s.alive]  # newest first
        for seen in gone[keep:]:
            self.remove(seen.id)

    def next_expiry(self) -> float | None:
        """When the next live participant would expire if it stays silent (for a timer)."""
        deadlines = [s.last_seen + s.timeout for s in self._by_id.values() if s.alive]
        return min(deadlines, default=None)

    def remove(self, participant_id: str) -> Seen | None:
        seen = self._by_id.pop(participant_id, None)
        if seen is not None:
            self._by_role.get(seen.role, {}).pop(seen.id, None)
        return seen

    def _store(self, seen: Seen) -> None:
        self._by_id[seen.id] = seen
        self._by_role.setdefault(seen.role, {})[seen.id] = seen

    def get(self, participant_id: str) -> Seen | None:
        return self._by_id.get(participant_id)

    def __iter__(self) -> Iterator[Seen]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def live(self, role: str) -> list[Seen]:
        """Live participants of ``role``, most recently announced first."""
        found = [s for s in self._by_role.get(role, {}).values() if s.alive]
        return sorted(found, key=lambda s: s.last_seen, reverse=True)

    def known(self, role: str) -> list[Seen]:
        """All participants of ``role``: live ones first, then gone ones; newest first."""
        found = self._by_role.get(role, {}).values()
        return sorted(found, key=lambda s: (s.alive, s.last_seen), reverse=True)

    def port(self, role: str, direction: Direction, port_id: str) -> PortDefinition | None:
        """The port of ``role``: from the most recently announced live participant that
        declares it, else from the last one known (a device that went quiet keeps its wiring
        until something newer says otherwise); ``None`` when it was never discovered."""
        for seen in self.known(role):
            port = seen.definition.port(direction, port_id)
            if port is not None and not port.hidden:
                return port
        return None

    def timeout_for(self, definition: ParticipantDefinition) -> float:
        """How long a participant announcing ``definition`` stays live without announcing."""
        period = declared_period(definition)
        if period is not None:
            return max(period * MISSED_PERIODS, 1.0)
        return self.expiry


def declared_period(definition: ParticipantDefinition) -> float | None:
    """The participant's own announce period (``discoveryPeriod``), if it declares a valid one."""
    period = definition.extra.get(PERIOD_KEY)
    if isinstance(period, int | float) and not isinstance(period, bool) and period > 0:
        return float(period)
    return None


def _wiring_differs(old: ParticipantDefinition, new: ParticipantDefinition) -> bool:
    """Whether anything the wiring depends on changed: which ports exist and their queues."""
    return _queues(old) != _queues(new) or old.component != new.component


def _queues(d: ParticipantDefinition) -> tuple[tuple[str, str], ...]:
    ports = [("in:" + p.id, p.queue) for p in d.inports] + [
        ("out:" + p.id, p.queue) for p in d.outports
    ]
    return tuple(sorted(ports))
