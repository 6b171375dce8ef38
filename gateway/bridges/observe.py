"""The observing device side: what a bridge over a radio it only listens to shares with the others.

BLE adverts and rtl_433's 433 MHz packets are the same problem: events arrive from the air at
whatever rate the air brings, a pure registry decides what each means, and the devices it adopts
become participants of the :class:`~gateway.bridges.host.BridgeHost`. :class:`ObservingSide` is
that device side once; a bridge subclasses it and keeps only what is its own: its source (the
bleak scanner, the rtl_433 child), its registry's rules, and :meth:`~ObservingSide.observe` and
:meth:`~ObservingSide.seen`, which call the registry with the clocks it wants.

The pump:

- the source calls :meth:`ObservingSide.heard` for each event, from the event loop; events wait
  in a bounded queue (:data:`QUEUE`; full, as under a flood the registry cannot keep up with,
  they are dropped, counted, and logged on the first and every 10,000th);
- one task hands each event to :meth:`~ObservingSide.observe`, which answers an
  :class:`Outcome` or None (not adopted: the registry lists it as seen);
- an outcome is carried out on the host: the adopted device's participant, kept under the
  record's :attr:`Adopted.key` and withdrawn after ``timeout`` without an event, is announced
  when the outcome says so (new, or its ports changed) or when it never was, then each value
  is sent on its outport; an outcome without values (a repeat) only marks the device heard;
- the devices seen and not adopted are published with :meth:`BridgeHost.set_seen` at most every
  :data:`SEEN_EVERY` seconds (a sensor is heard every second or so; the dashboard needs no
  more, and the host publishes only a list that changed).

A source that ends (a replay file played to its end) leaves its participants announced until
the bridge is stopped: the pump and the seen list run until cancelled. Bad input is the
source's: it counts what it cannot parse (``bad``), with one log line naming where.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from gateway.bridges.seen import SeenDevice
from gateway.participant.definition import ParticipantDefinition

if TYPE_CHECKING:
    from gateway.bridges.host import BridgeHost

QUEUE = 1024  # events waiting for the registry
SEEN_EVERY = 5.0  # seconds between publications of the seen list (when it changed)
DROP_LOG_EVERY = 10_000  # dropped events between two log lines about them

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)


class Adopted(Protocol):
    """A registry's record of one adopted device, as the observing side reads it."""

    @property
    def key(self) -> str:
        """The host's key for its participant: what stays the same while it is the same one."""
        ...

    @property
    def label(self) -> str:
        """How log lines name it (may change: a 433 MHz id swap)."""
        ...

    @property
    def definition(self) -> ParticipantDefinition | None:
        """Its participant; None: not known yet (nothing is announced)."""
        ...


A_co = TypeVar("A_co", bound=Adopted, covariant=True)


@dataclass(frozen=True)
class Outcome(Generic[A_co]):
    """What a registry's ``observe`` answers for an event from an adopted device."""

    adopted: A_co  # the registry's record of the device the event came from
    announce: bool  # its definition is new or changed: announce it before sending
    values: tuple[tuple[str, bytes], ...] = ()  # (outport, payload); empty: only heard


class Source(Protocol[E_co]):
    """Where a bridge's events come from: ``run`` calls ``deliver`` for each, from the event
    loop, and returns only when there are no more (a replay played to its end)."""

    async def run(self, deliver: Callable[[E_co], None]) -> None: ...


class ObservingSide(Generic[E]):
    """``await side.run(host)``: the device side of a bridge that listens to the air (module
    docstring). A subclass names its events (:attr:`events`, for the log) and implements
    :meth:`observe` and :meth:`seen`."""

    events = "events"  # what the log calls them

    def __init__(
        self,
        name: str,
        source: Source[E],
        *,
        timeout: float | None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        seen_every: float = SEEN_EVERY,
    ) -> None:
        self.name = name
        self.source = source
        self.timeout = timeout  # seconds without an event before a device is withdrawn
        self.clock = clock
        self.wall = wall
        self.seen_every = seen_every
        self.dropped = 0
        self.sent = 0
        self.log = logging.getLogger(f"gateway.bridges.{name}")
        self._queue: asyncio.Queue[E] = asyncio.Queue(QUEUE)
        self._host: BridgeHost | None = None

    # -- what a bridge says ----------------------------------------------------------------------

    def observe(self, event: E) -> Outcome[Adopted] | None:
        """The registry's answer for ``event``, now."""
        raise NotImplementedError

    def seen(self) -> list[SeenDevice]:
        """The devices seen and not adopted, now."""
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        """The pump's counts and the source's bad input; a bridge adds its registry's."""
        return {"dropped": self.dropped, "sent": self.sent, "bad": getattr(self.source, "bad", 0)}

    # -- the pump --------------------------------------------------------------------------------

    async def run(self, host: BridgeHost) -> None:
        self._host = host
        async with asyncio.TaskGroup() as group:
            group.create_task(self._pump(), name=f"{self.name} {self.events}")
            group.create_task(self._publish_seen(), name=f"{self.name} seen")
            await self.source.run(self.heard)

    def heard(self, event: E) -> None:
        """The source's callback, from the event loop: never blocks."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % DROP_LOG_EVERY == 0:
                self.log.warning(
                    "%s arrive faster than they are handled; %d dropped", self.events, self.dropped
                )

    async def _pump(self) -> None:
        while True:
            event = await self._queue.get()
            outcome = self.observe(event)
            if outcome is not None:
                await self._carry_out(outcome)

    async def _carry_out(self, outcome: Outcome[Adopted]) -> None:
        assert self._host is not None
        adopted = outcome.adopted
        device = self._host.device(adopted.key, adopted.label, timeout=self.timeout)
        device.label = adopted.label  # a 433 MHz id swap changes the id in it
        if (outcome.announce or device.definition is None) and adopted.definition is not None:
            await device.announce(adopted.definition)
        if not outcome.values:
            device.heard()
        for port, payload in outcome.values:
            device.send(port, payload)
            self.sent += 1

    async def _publish_seen(self) -> None:
        assert self._host is not None
        while True:
            self._host.set_seen(self.seen())
            await asyncio.sleep(self.seen_every)
