"""Devices the bridges have seen but not adopted, and adopting them (``/api/devices/adopt``).

A bridge host provides :class:`SeenDevices` (the serial bridge's is
:class:`~gateway.dashboard.serial.SerialSeen`). Without one, the dashboard lists no devices and
refuses every adoption: it never invents any. One that also has ``attach`` (:class:`Attached`)
is attached to the coordinator when the dashboard starts serving, to subscribe on its
connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gateway.coordinator.runtime_environment import CoordinatorEnvironment


@dataclass(frozen=True)
class SeenDevice:
    bridge: str  # the bridge that saw it (serial, ble, ...)
    id: str  # unique within the bridge (a USB serial number, a BLE address)
    model: str
    name: str
    last_seen: float | None  # epoch seconds
    adopt: str  # the config line that adopts it, shown to the user

    def to_json(self) -> dict[str, Any]:
        return {
            "bridge": self.bridge,
            "id": self.id,
            "model": self.model,
            "name": self.name,
            "last_seen": self.last_seen,
            "adopt": self.adopt,
        }


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
