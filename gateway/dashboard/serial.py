"""The serial bridge's boards without a configured role, for the dashboard, and adopting one.

The bridge publishes them as one retained JSON list on
:data:`~gateway.bridges.serial.bridge.SEEN_TOPIC` (docs/serial-bridge.md); :class:`SerialSeen`
keeps the latest list, from a subscription on the coordinator's own connection. Adopting a
board writes ``bridges.serial.roles[id] = role`` into the coordinator's ``gateway.yaml``
(:func:`gateway.config.edit.adopt_serial`: the config loader and dumper, atomically; the
file's comments are lost) and then calls the restart hook, after which the bridge names the
board by its new role. On the appliance (``requests`` given) the same checks are made, and the
adoption is handed to root as a request (:mod:`gateway.appliance.adopt`): the root
``msgflo-adopt.service`` writes the config and restarts the bridge.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.appliance.adopt import request_adoption
from gateway.bridges.serial.bridge import SEEN_TOPIC
from gateway.config.edit import adopt_serial, serial_role_adopted
from gateway.dashboard.devices import SeenDevice
from gateway.errors import GatewayError
from gateway.transport.base import Delivery

if TYPE_CHECKING:
    from gateway.coordinator.runtime_environment import CoordinatorEnvironment

log = logging.getLogger(__name__)

BRIDGE = "serial"
Restart = Callable[[], Awaitable[None]]


class SerialSeen:
    """:class:`~gateway.dashboard.devices.SeenDevices` for the serial bridge: ``config`` is the
    gateway.yaml to write, ``restart`` makes the bridge take the new roles. With ``requests``
    (the appliance) ``config`` is only read, and each adoption is added to that file for root
    to apply (:func:`gateway.appliance.adopt.request_adoption`); ``restart`` is not called."""

    def __init__(
        self, config: Path, restart: Restart | None = None, *, requests: Path | None = None
    ) -> None:
        self.config = config
        self.restart = restart
        self.requests = requests
        self._devices: list[SeenDevice] = []
        self._environment: CoordinatorEnvironment | None = None
        self._lock = asyncio.Lock()

    async def attach(self, environment: CoordinatorEnvironment) -> None:
        """Follow the bridge's list on the coordinator's connection (kept across reconnects)."""
        self._environment = environment
        await environment.service.transport.subscribe(SEEN_TOPIC, self._on_seen, qos=1)

    def seen(self) -> list[SeenDevice]:
        return list(self._devices)

    def _on_seen(self, delivery: Delivery) -> None:
        try:
            self._devices = parse_seen(delivery.payload)
        except ValueError as exc:
            log.warning("%s: ignoring a malformed list of seen devices: %s", delivery.topic, exc)

    async def adopt(self, bridge: str, device_id: str, role: str) -> None:
        if bridge != BRIDGE:
            raise GatewayError(f"the serial bridge does not adopt {bridge} devices")
        async with self._lock:  # two adoptions at once: the second sees the first's role
            await asyncio.to_thread(self._adopt, device_id, role, self._graph_roles())
        if self.requests is not None:
            log.info("serial device %s: adoption as %r requested in %s", device_id, role,
                     self.requests)  # fmt: skip
            return
        if self.restart is not None:
            await self.restart()
        log.info("serial device %s adopted as %r", device_id, role)

    def _graph_roles(self) -> set[str]:
        if self._environment is None:
            return set()
        return set(self._environment.coordinator.graph.processes)

    def _adopt(self, device_id: str, role: str, graph_roles: set[str]) -> None:
        if self.requests is None:
            adopt_serial(self.config, device_id, role, graph_roles)
            return
        serial_role_adopted(self.config, device_id, role, graph_roles)  # checked, not written
        request_adoption(self.requests, BRIDGE, device_id, role)


def parse_seen(payload: bytes) -> list[SeenDevice]:
    """The bridge's list (docs/serial-bridge.md); ValueError says what is wrong with it."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, list):
        raise ValueError("not a JSON list")
    return [_device(entry, n) for n, entry in enumerate(data)]


def _device(entry: Any, n: int) -> SeenDevice:
    if not isinstance(entry, dict):
        raise ValueError(f"entry {n} is not an object")
    texts = {}
    for key in ("id", "model", "name"):
        value = entry.get(key)
        if not isinstance(value, str) or (key == "id" and not value):
            raise ValueError(f"entry {n}: {key!r} is not a string")
        texts[key] = value
    last_seen = entry.get("last_seen")
    if last_seen is not None and (
        not isinstance(last_seen, int | float) or isinstance(last_seen, bool)
    ):
        raise ValueError(f"entry {n}: 'last_seen' is not a number")
    device_id = texts["id"]
    return SeenDevice(
        BRIDGE,
        device_id,
        texts["model"],
        texts["name"],
        None if last_seen is None else float(last_seen),
        f"bridges.serial.roles: {{{json.dumps(device_id)}: ROLE}}",
    )
