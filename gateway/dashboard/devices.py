"""Devices the bridges have seen but not adopted, and adopting them (``/api/devices/adopt``).

A source of them is a :class:`SeenDevices`; each device is a
:class:`gateway.bridges.seen.SeenDevice`, the format every bridge publishes. The one for every
bridge is :class:`~gateway.dashboard.bridges.BridgeSeen`. Without a source, the dashboard lists
no devices and refuses every adoption: it never invents any. One that also has ``attach``
(:class:`Attached`) is attached to the coordinator when the dashboard starts serving, to
subscribe on its connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from gateway.bridges.seen import SeenDevice

if TYPE_CHECKING:
    from gateway.coordinator.runtime_environment import CoordinatorEnvironment


class SeenDevices(Protocol):
    """What a bridge host offers the dashboard."""

    def seen(self) -> list[SeenDevice]:
        """The devices seen and not adopted, now."""
        ...

    async def adopt(self, bridge: str, device_id: str, role: str) -> None:
        """Write the config that gives the device ``role`` and restart the bridge; raises
        GatewayError (one line) when it cannot."""
        ...


@runtime_checkable
class Attached(Protocol):
    """A source of seen devices that follows the coordinator's connection."""

    async def attach(self, environment: CoordinatorEnvironment) -> None: ...
