"""The BLE bridge's device side: adverts in, participants and values out (thin driver).

:class:`BleBridge` is an :class:`~gateway.bridges.observe.ObservingSide` (the bounded queue, the
pump to the host's participants, the seen list: :mod:`gateway.bridges.observe`). What is its
own: the source (a bleak scanner, or a replay file), the
:class:`~gateway.bridges.ble.registry.Registry`, which decides everything (an adopted device's
participant is kept under its address), and the GATT devices.

GATT devices (``section.gatt``: connected devices whose characteristics are ports) are run by
``gateway/bridges/ble/gatt.py``, one host task each; see :meth:`BleBridge.start_gatt`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable

from gateway.bridges.ble.advert import Advert
from gateway.bridges.ble.registry import Registry, Sensor
from gateway.bridges.ble.sources import Source
from gateway.bridges.host import BridgeHost
from gateway.bridges.observe import SEEN_EVERY, ObservingSide, Outcome
from gateway.bridges.seen import SeenDevice
from gateway.config import BleBridgeConfig


class BleBridge(ObservingSide[Advert]):
    events = "adverts"

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
        super().__init__(
            "ble", source, timeout=section.timeout, clock=clock, wall=wall, seen_every=seen_every
        )
        self.section = section
        self.registry = registry or Registry(section)

    async def run(self, host: BridgeHost) -> None:
        self.start_gatt(host)
        await super().run(host)

    def observe(self, event: Advert) -> Outcome[Sensor] | None:
        return self.registry.observe(event, self.clock())  # the advert carries its epoch time

    def seen(self) -> list[SeenDevice]:
        return self.registry.seen(self.wall())  # adverts' times are epoch seconds

    def counts(self) -> dict[str, int]:
        counts = super().counts() | self.registry.counts.as_dict()
        return counts | self.registry.decoder.counts.as_dict()

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
