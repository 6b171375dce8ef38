"""Boards that log in to the broker themselves (an ESP on the kit's WiFi): the dashboard's
"Devices on the WiFi" list, adding one with its ``secrets.h`` to download, removing one.

A board is a device role with its own broker user (:mod:`gateway.appliance.devices`). The list
is :func:`~gateway.appliance.devices.list_devices` (``coordinator.json``, which the
coordinator's user may read) with whether each is connected, from the coordinator's registry
(:func:`~gateway.appliance.devices.device_states`: a connected board announces itself on
``fbp``), plus the requests still pending. Adding and removing go through
:mod:`gateway.appliance.device_requests`: on the appliance (``by_request``) the request is left
for the root ``msgflo-devices.service`` and the page polls until its ``secrets.h`` is there;
elsewhere the same request is carried out at once in this process with ``reload`` (the caller
owns the data directory then).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from gateway.appliance.device_requests import (
    apply_device_requests,
    outcome,
    pending,
    request_device,
)
from gateway.appliance.devices import Reload, device_states, list_devices, role_problem
from gateway.appliance.secrets import SecretsLayout
from gateway.config.model import GatewayConfig
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.coordinator.registry import Registry


class BoardsError(GatewayError):
    """A request the dashboard refuses (bad role, exists, nothing to add to): one line."""


class Boards:
    """The device roles of ``config``'s gateway (see the module docstring). ``reload`` is
    used when not ``by_request``: it tells the broker to read its files again."""

    def __init__(self, config: GatewayConfig, *, by_request: bool, reload: Reload) -> None:
        self.config = config
        self.by_request = by_request
        self.reload = reload
        self._lock = asyncio.Lock()  # in-process: one request carried out at a time

    def problem(self) -> str | None:
        """Why boards cannot be added here, or None."""
        if not self.config.access_point.enabled:
            return "access_point.enabled is false: no board could reach the broker"
        layout = SecretsLayout.at(self.config.data_dir)
        if not self.by_request and not os.access(layout.secrets_json, os.R_OK | os.W_OK):
            return f"{layout.secrets_json}: this process cannot change the broker's users"
        return None

    def listing(self, registry: Registry, now: float, epoch_now: float) -> dict[str, Any]:
        """What ``GET /api/boards`` answers."""
        data_dir = self.config.data_dir
        try:
            roles = list_devices(data_dir)
        except GatewayError as exc:
            return {"available": False, "problem": str(exc), "boards": []}
        asked = pending(data_dir)
        every = sorted({*roles, *(r for r, action in asked.items() if action == "add")})
        boards = []
        for state in device_states(every, registry, now):
            done = outcome(data_dir, state.role)
            last = state.last_seen
            boards.append(
                {
                    "role": state.role,
                    "added": state.role in roles,
                    "online": state.online,
                    "last_seen": None if last is None else epoch_now - (now - last),
                    "pending": asked.get(state.role),
                    "secrets_h": done.secrets_h is not None,
                    "problem": None if done.problem is None else done.problem.strip(),
                }
            )
        problem = self.problem()
        return {"available": problem is None, "problem": problem, "boards": boards}

    def secrets_h(self, role: str) -> str | None:
        return outcome(self.config.data_dir, role).secrets_h

    async def add(self, role: str) -> None:
        problem = role_problem(role) or self.problem()
        if problem is None and role in list_devices(self.config.data_dir):
            problem = f"device {role!r} exists already: download its secrets.h or remove it"
        if problem is not None:
            raise BoardsError(problem)
        await self._request("add", role)

    async def remove(self, role: str) -> None:
        problem = role_problem(role)
        if problem is None and role not in list_devices(self.config.data_dir):
            problem = f"no device {role!r}"
        if problem is not None:
            raise BoardsError(problem)
        await self._request("remove", role)

    async def show(self, role: str) -> None:
        """Ask for ``role``'s secrets.h again (after it was removed by a failed request)."""
        if role not in list_devices(self.config.data_dir):
            raise BoardsError(f"no device {role!r}")
        await self._request("show", role)

    async def _request(self, action: str, role: str) -> None:
        data_dir = self.config.data_dir
        async with self._lock:
            await asyncio.to_thread(request_device, data_dir, action, role)
            if not self.by_request:
                await asyncio.to_thread(apply_device_requests, self.config, self.reload)
