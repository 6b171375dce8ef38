"""The devices every bridge has seen and no config adopts, for the dashboard, and adopting one.

Each bridge publishes them as one retained JSON list on
``msgflo-gateway/bridges/<bridge>/seen`` (:mod:`gateway.bridges.seen`, one format for every
bridge). :class:`BridgeSeen` follows all of them with one wildcard subscription on the
coordinator's own connection and keeps each bridge's latest list: a malformed list is one
warning naming its topic, and that bridge's previous list and every other bridge's stay.

Adopting a device writes ``bridges.<bridge>.roles[id] = role`` into the coordinator's
``gateway.yaml`` (:func:`gateway.config.edit.adopt`: the config loader and dumper, atomically;
the file's comments are lost) and then calls the restart hook with the bridge's name, after
which that bridge names the device by its new role. On the appliance (``requests`` given) the
same checks are made, and the adoption is handed to root as a request
(:mod:`gateway.appliance.adopt`): the root ``msgflo-adopt.service`` writes the config and
restarts that bridge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.appliance.adopt import request_adoption
from gateway.bridges.seen import SEEN_WILDCARD, SeenDevice, bridge_of, parse_seen
from gateway.config import BridgesConfig
from gateway.config.edit import adopt, role_adopted
from gateway.errors import GatewayError
from gateway.transport.base import Delivery

if TYPE_CHECKING:
    from gateway.coordinator.runtime_environment import CoordinatorEnvironment

log = logging.getLogger(__name__)

# Entries kept of one bridge's list: the page shows them all, and a list is a broker message
# anyone on the broker may publish. The BLE bridge lists at most bridges.ble.max_seen (256).
MAX_LISTED = 1000

Restart = Callable[[str], Awaitable[None]]  # the bridge's name


class BridgeSeen:
    """:class:`~gateway.dashboard.devices.SeenDevices` for every bridge in ``bridges`` (default:
    every bridge the config knows): ``config`` is the gateway.yaml to write, ``restart(bridge)``
    makes a bridge take its new roles. With ``requests`` (the appliance) ``config`` is only
    read, and each adoption is added to that file for root to apply
    (:func:`gateway.appliance.adopt.request_adoption`); ``restart`` is not called."""

    def __init__(
        self,
        config: Path,
        restart: Restart | None = None,
        *,
        requests: Path | None = None,
        bridges: Collection[str] | None = None,
    ) -> None:
        self.config = config
        self.restart = restart
        self.requests = requests
        self.bridges = tuple(BridgesConfig.names() if bridges is None else bridges)
        self.refused = 0  # lists ignored: malformed or from a bridge not followed here
        self._lists: dict[str, list[SeenDevice]] = {}  # bridge -> its latest good list
        self._environment: CoordinatorEnvironment | None = None
        self._lock = asyncio.Lock()

    async def attach(self, environment: CoordinatorEnvironment) -> None:
        """Follow the bridges' lists on the coordinator's connection (kept across reconnects)."""
        self._environment = environment
        await environment.service.transport.subscribe(SEEN_WILDCARD, self._on_seen, qos=1)

    def seen(self) -> list[SeenDevice]:
        """Every bridge's devices, by bridge name, each bridge's in the order it listed them."""
        return [device for bridge in sorted(self._lists) for device in self._lists[bridge]]

    def _on_seen(self, delivery: Delivery) -> None:
        bridge = bridge_of(delivery.topic)
        if bridge is None:  # not a seen list: the wildcard cannot deliver one, but be sure
            return
        if bridge not in self.bridges:
            self._refuse(delivery.topic, f"no {bridge!r} bridge is enabled here")
            return
        try:
            devices = parse_seen(bridge, delivery.payload)
        except ValueError as exc:
            self._refuse(delivery.topic, f"malformed: {exc}")
            return
        if len(devices) > MAX_LISTED:
            log.warning("%s: listing the first %d of %d devices", delivery.topic, MAX_LISTED,
                        len(devices))  # fmt: skip
            devices = devices[:MAX_LISTED]
        self._lists[bridge] = devices

    def _refuse(self, topic: str, why: str) -> None:
        self.refused += 1
        log.warning("%s: ignoring the list of seen devices: %s", topic, why)

    async def adopt(self, bridge: str, device_id: str, role: str) -> None:
        if bridge not in self.bridges:
            known = ", ".join(self.bridges) or "none"
            raise GatewayError(f"no {bridge[:40]!r} bridge is enabled here ({known})")
        async with self._lock:  # two adoptions at once: the second sees the first's role
            await asyncio.to_thread(self._adopt, bridge, device_id, role, self._graph_roles())
        if self.requests is not None:
            log.info("%s device %s: adoption as %r requested in %s", bridge, device_id, role,
                     self.requests)  # fmt: skip
            return
        if self.restart is not None:
            await self.restart(bridge)
        log.info("%s device %s adopted as %r", bridge, device_id, role)

    def _graph_roles(self) -> set[str]:
        if self._environment is None:
            return set()
        return set(self._environment.coordinator.graph.processes)

    def _adopt(self, bridge: str, device_id: str, role: str, graph_roles: set[str]) -> None:
        if self.requests is None:
            adopt(self.config, bridge, device_id, role, graph_roles)
            return
        role_adopted(self.config, bridge, device_id, role, graph_roles)  # checked, not written
        request_adoption(self.requests, bridge, device_id, role)
