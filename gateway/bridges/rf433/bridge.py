"""The 433 MHz bridge's device side: rtl_433's events in, participants and values out (thin).

:class:`Rf433Bridge` is an :class:`~gateway.bridges.observe.ObservingSide` (the bounded queue,
the pump to the host's participants, the seen list: :mod:`gateway.bridges.observe`). What is
its own: the source (the supervised rtl_433, :mod:`~gateway.bridges.rf433.child`) and the
:class:`~gateway.bridges.rf433.registry.Registry`, which decides everything; it keeps an adopted
device's participant under its *role*, so a device whose id changed is the same participant.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.bridges.observe import SEEN_EVERY, ObservingSide, Outcome, Source
from gateway.bridges.rf433.events import RadioEvent
from gateway.bridges.rf433.registry import Registry, Slot
from gateway.bridges.seen import SeenDevice
from gateway.config import Rf433BridgeConfig


class Rf433Bridge(ObservingSide[RadioEvent]):
    def __init__(
        self,
        section: Rf433BridgeConfig,
        source: Source[RadioEvent],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        seen_every: float = SEEN_EVERY,
    ) -> None:
        super().__init__(
            "rf433", source, timeout=section.timeout, clock=clock, wall=wall, seen_every=seen_every
        )
        self.section = section
        self.registry = Registry(section)

    def observe(self, event: RadioEvent) -> Outcome[Slot] | None:
        return self.registry.observe(event, self.clock(), self.wall())

    def seen(self) -> list[SeenDevice]:
        return self.registry.seen(self.clock())  # heard within timeout, by the monotonic clock

    def counts(self) -> dict[str, int]:
        return super().counts() | self.registry.counts.as_dict()
