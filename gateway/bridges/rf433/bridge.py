"""The 433 MHz bridge's device side: rtl_433's events in, participants and values out (thin).

:class:`Rf433Bridge` runs inside a :class:`~gateway.bridges.host.BridgeHost`. The source (the
supervised rtl_433, :mod:`~gateway.bridges.rf433.child`) calls :meth:`Rf433Bridge.heard` for
each decoded packet; events wait in a bounded queue (:data:`QUEUE`; full, as under a flood,
they are dropped and counted) and one task hands each to the
:class:`~gateway.bridges.rf433.registry.Registry`, which decides everything. This module only
carries the report out: the adopted device's participant (the host's ``DeviceParticipant``,
kept under its *role*, so a device whose id changed is the same participant; withdrawn after
``timeout`` without a packet and announced again on the next), its values, and the devices
heard and not adopted, published at most every :data:`SEEN_EVERY` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from gateway.bridges.host import BridgeHost
from gateway.bridges.rf433.events import RadioEvent
from gateway.bridges.rf433.registry import Registry, Report
from gateway.config import Rf433BridgeConfig

log = logging.getLogger("gateway.bridges.rf433")

QUEUE = 1024  # events waiting for the registry
SEEN_EVERY = 5.0  # seconds between publications of the seen list (when it changed)


class Source(Protocol):
    async def run(self, deliver: Callable[[RadioEvent], None]) -> None: ...


class Rf433Bridge:
    def __init__(
        self,
        section: Rf433BridgeConfig,
        source: Source,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        seen_every: float = SEEN_EVERY,
    ) -> None:
        self.section = section
        self.source = source
        self.registry = Registry(section)
        self.clock = clock
        self.wall = wall
        self.seen_every = seen_every
        self.dropped = 0
        self.sent = 0
        self._queue: asyncio.Queue[RadioEvent] = asyncio.Queue(QUEUE)
        self._host: BridgeHost | None = None

    async def run(self, host: BridgeHost) -> None:
        self._host = host
        async with asyncio.TaskGroup() as group:
            group.create_task(self._handle(), name="rf433 events")
            group.create_task(self._publish_seen(), name="rf433 seen")
            await self.source.run(self.heard)

    def heard(self, event: RadioEvent) -> None:
        """The source's callback, from the event loop: never blocks."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("events arrive faster than they are handled; %d dropped", self.dropped)

    async def _handle(self) -> None:
        while True:
            event = await self._queue.get()
            report = self.registry.observe(event, self.clock(), self.wall())
            if report is not None:
                await self._carry_out(report)

    async def _carry_out(self, report: Report) -> None:
        assert self._host is not None
        slot = report.slot
        device = self._host.device(slot.role, slot.label, timeout=self.section.timeout)
        device.label = slot.label  # the id in it changes with an id swap
        if (report.announce or device.definition is None) and slot.definition is not None:
            await device.announce(slot.definition)
        if not report.values:
            device.heard()
        for port, payload in report.values:
            device.send(port, payload)
            self.sent += 1

    async def _publish_seen(self) -> None:
        assert self._host is not None
        while True:
            self._host.set_seen(self.registry.seen(self.clock()))
            await asyncio.sleep(self.seen_every)

    def counts(self) -> dict[str, int]:
        counts = {"dropped": self.dropped, "sent": self.sent, "bad": getattr(self.source, "bad", 0)}
        counts.update(self.registry.counts.as_dict())
        return counts
