"""The BLE bridge's device side: adverts in, participants and values out (thin driver).

:class:`BleBridge` runs inside a :class:`~gateway.bridges.host.BridgeHost` (``main(host)``). The
source (a bleak scanner, or a replay file) calls :meth:`BleBridge.heard` for each advert from
the event loop; adverts wait in a bounded queue (:data:`QUEUE`; when it is full, as under a
flood the decoder cannot keep up with, adverts are dropped and counted) and one task hands each
to the :class:`~gateway.bridges.ble.registry.Registry`, which decides everything. This module
only carries out the outcome: announce an adopted device's participant (the host's
``DeviceParticipant``, withdrawn after ``timeout`` without an advert and announced again on the
next), send its values, and publish the devices seen and not adopted, at most every
:data:`SEEN_EVERY` seconds (a sensor advertises every second or so; the dashboard's list needs
no more).

GATT devices (``section.gatt``: connected devices whose characteristics are ports) are run by
``gateway/bridges/ble/gatt.py``, one host task each; see :meth:`BleBridge.start_gatt`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from gateway.bridges.ble.advert import Advert
from gateway.bridges.ble.registry import Outcome, Registry
from gateway.bridges.ble.sources import Source
from gateway.bridges.host import BridgeHost
from gateway.config import BleBridgeConfig

log = logging.getLogger("gateway.bridges.ble")

QUEUE = 1024  # adverts waiting for the decoder
SEEN_EVERY = 5.0  # seconds between publications of the seen list (when it changed)


class BleBridge:
    def __init__(
        self,
        section: BleBridgeConfig,
        source: Source,
        *,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        seen_every: float = SEEN_EVERY,
    ) -> None:
        self.section = section
        self.source = source
        self.registry = registry or Registry(section)
        self.clock = clock
        self.wall = wall
        self.seen_every = seen_every
        self.dropped = 0
        self.sent = 0
        self._queue: asyncio.Queue[Advert] = asyncio.Queue(QUEUE)
        self._host: BridgeHost | None = None

    async def run(self, host: BridgeHost) -> None:
        self._host = host
        async with asyncio.TaskGroup() as group:
            group.create_task(self._handle_adverts(), name="ble adverts")
            group.create_task(self._publish_seen(), name="ble seen")
            self.start_gatt(host)
            await self.source.run(self.heard)
            # A replay that ended: keep the participants announced until stopped.
            await asyncio.Event().wait()

    def heard(self, advert: Advert) -> None:
        """The source's callback, from the event loop: never blocks."""
        try:
            self._queue.put_nowait(advert)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("adverts arrive faster than they are decoded; %d dropped", self.dropped)

    async def _handle_adverts(self) -> None:
        while True:
            advert = await self._queue.get()
            outcome = self.registry.observe(advert, self.clock())
            if outcome is not None:
                await self._carry_out(outcome)

    async def _carry_out(self, outcome: Outcome) -> None:
        assert self._host is not None
        sensor = outcome.sensor
        device = self._host.device(sensor.address, sensor.label, timeout=self.section.timeout)
        if outcome.announce or device.definition is None:
            await device.announce(sensor.definition)
        if not outcome.reports:
            device.heard()
        for port, payload in outcome.reports:
            device.send(port, payload)
            self.sent += 1

    async def _publish_seen(self) -> None:
        assert self._host is not None
        while True:
            self._host.set_seen(self.registry.seen(self.wall()))
            await asyncio.sleep(self.seen_every)

    # -- GATT ------------------------------------------------------------------------------------

    def start_gatt(self, host: BridgeHost) -> None:
        """GATT HOOK: one host task per device of ``section.gatt``
        (:func:`gateway.bridges.ble.gatt.run_gatt_device`), all sharing one connect lock: BlueZ
        takes one connection attempt at a time. Their adverts are not the registry's."""
        from gateway.bridges.ble import gatt

        lock = asyncio.Lock()
        for address, role, ports in gatt.configured_devices(self.section):
            job = functools.partial(
                gatt.run_gatt_device,
                host,
                address,
                role,
                ports,
                adapter=self.section.adapter,
                connect_lock=lock,
            )
            host.start(address, job)

    def counts(self) -> dict[str, int]:
        counts = {"dropped": self.dropped, "sent": self.sent}
        counts.update(self.registry.counts.as_dict())
        counts.update(self.registry.decoder.counts.as_dict())
        counts["bad"] = getattr(self.source, "bad", 0)
        return counts
