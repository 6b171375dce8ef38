"""The gateway's health on the dashboard: what the health participant publishes.

The health participant (``msgflo-bridge@health``, :mod:`gateway.health.participant`) reads
the sources and keeps its figures and alarms, retained, on ``msgflo-gateway/health``;
:class:`HealthView` follows that topic on the coordinator's connection and shows it. Only when
no participant's summary is there, or it is stale (the laptop demo runs none; a stopped one
clears it), the page gets one sample of the same readers (:mod:`gateway.health.sample`) read
in this process: one implementation of each source either way. A source this machine does not
have is absent from the answer, never zero.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.health.core import UNITS, Thresholds, alarm_flags
from gateway.health.sample import HealthSources, read_sample
from gateway.health.status import STATUS_TOPIC, HealthStatus, parse_status
from gateway.transport.base import Delivery

if TYPE_CHECKING:
    from gateway.coordinator.runtime_environment import CoordinatorEnvironment

log = logging.getLogger(__name__)


class HealthView:
    """The ``health`` of ``/api/status`` (docs/dashboard.md)."""

    def __init__(self, sources: HealthSources, wall: Callable[[], float] = time.time) -> None:
        self.sources = sources
        self.wall = wall
        self.status: HealthStatus | None = None
        self.refused = 0  # summaries that were not one

    async def attach(self, environment: CoordinatorEnvironment) -> None:
        await environment.service.transport.subscribe(STATUS_TOPIC, self.on_status, qos=1)

    def on_status(self, delivery: Delivery) -> None:
        if not delivery.payload:  # the participant stopped and cleared it
            self.status = None
            return
        try:
            self.status = parse_status(delivery.payload)
        except ValueError as exc:
            self.refused += 1
            log.warning("%s: ignoring the health summary: %s", delivery.topic, exc)

    async def read(self) -> dict[str, Any]:
        status = self.status
        if status is not None and not status.stale(self.wall()):
            return {
                "source": "participant",
                "role": status.role,
                "time": status.time,
                "readings": status.readings_json(),
                "alarms": dict(status.alarms),
                "shutdown": None if status.shutdown is None else dict(status.shutdown),
            }
        sample = await read_sample(self.sources)
        return {
            "source": "local",
            "role": None,
            "time": self.wall(),
            "readings": {
                name: {"value": value, "unit": UNITS[name]}
                for name, value in sample.items()
                if value is not None
            },
            "alarms": alarm_flags(sample, {}, Thresholds()),
            "shutdown": None,
        }
