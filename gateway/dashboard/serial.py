"""The serial bridge's boards without a configured role, for the dashboard, and adopting one.

The bridge publishes them as one retained JSON list on
:data:`~gateway.bridges.serial.bridge.SEEN_TOPIC` (docs/serial-bridge.md); :class:`SerialSeen`
keeps the latest list, from a subscription on the coordinator's own connection. Adopting a
board writes ``bridges.serial.roles[id] = role`` into the coordinator's ``gateway.yaml``
(loaded, changed and written back through the config loader and dumper, atomically) and then
calls the restart hook, after which the bridge names the board by its new role.

The dumper writes every key and no comments: a file written here loses the comments the
shipped ``gateway.yaml`` has (PyYAML, the project's YAML library, does not keep them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.bridges.serial.bridge import SEEN_TOPIC
from gateway.common.atomic import write_atomic
from gateway.config import dump_config, load_config, parse_config
from gateway.config import values as v
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
    gateway.yaml to write, ``restart`` makes the bridge take the new roles."""

    def __init__(self, config: Path, restart: Restart) -> None:
        self.config = config
        self.restart = restart
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
            await asyncio.to_thread(self._write, device_id, role, self._graph_roles())
        await self.restart()
        log.info("serial device %s adopted as %r", device_id, role)

    def _graph_roles(self) -> set[str]:
        if self._environment is None:
            return set()
        return set(self._environment.coordinator.graph.processes)

    def _write(self, device_id: str, role: str, graph_roles: set[str]) -> None:
        try:
            role = v.role(role)
        except v.InvalidValueError as exc:
            raise GatewayError(str(exc)) from None
        if not v.is_serial(device_id):
            raise GatewayError(f"{device_id[:80]!r} is not a serial number or link name")
        if role in graph_roles:
            raise GatewayError(f"role {role!r} is already a node of the graph")
        config = load_config(self.config)
        serial = config.bridges.serial
        roles = dict(serial.roles)
        owner = next((key for key, given in roles.items() if given == role), None)
        if owner is not None:
            raise GatewayError(f"role {role!r} already belongs to {owner!r} in {self.config}")
        roles[device_id] = role
        serial = dataclasses.replace(serial, roles=tuple(sorted(roles.items())))
        bridges = dataclasses.replace(config.bridges, serial=serial)
        text = dump_config(dataclasses.replace(config, bridges=bridges))
        parse_config(text, str(self.config))  # what is written loads back
        write_atomic(self.config, text, mode=None)


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
