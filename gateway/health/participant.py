"""The gateway's health as a participant: ``msgflo-bridge@health``, a bridge whose one device
is the gateway itself (docs/health.md).

It runs on the shared :class:`~gateway.bridges.host.BridgeHost` (announced every period / 2.2
and after each reconnect, one guarded task), as role ``bridges.health.role`` (``gateway``) and
component ``gateway/Health``. Every ``sample_interval`` it reads its sources
(:mod:`gateway.health.sample`) and lets :class:`~gateway.health.core.HealthCore` decide what
to send: each present reading on its own outport as a JSON value every ``interval``, the
``alarms`` object then too and at once when a flag changes. The same figures go, retained, to
``msgflo-gateway/health`` for the dashboard (:mod:`gateway.health.status`). The broker's
client count comes from its ``$SYS/broker/clients/connected``, on the bridge's own connection.

With ``shutdown_below`` set, a battery that stays that low for ``shutdown_after`` seconds is
announced on the ``shutdown`` port and in the log, and ten seconds later the participant asks
root to power off: it writes ``poweroff`` into its runtime directory
(``$RUNTIME_DIRECTORY``, /run/msgflo-gateway/health), which ``msgflo-poweroff.path`` watches.
It cannot power off by itself (docs/security.md), and a request in /run does not outlive the
boot, so a kit cannot power off again at once when it is started on a low battery by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from gateway.bridges.host import BridgeHost, DeviceParticipant
from gateway.common.atomic import write_atomic
from gateway.config.model import HealthConfig
from gateway.errors import TransportError
from gateway.health.core import PORTS, SHUTDOWN_NOTICE, HealthCore, Step, Thresholds
from gateway.health.ina219 import Bus, Ina219
from gateway.health.sample import HealthSources, read_sample
from gateway.health.status import STATUS_TOPIC, HealthStatus, encode_status
from gateway.participant.definition import ParticipantDefinition, define
from gateway.transport.base import Delivery, Transport

log = logging.getLogger("gateway.health")

COMPONENT = "gateway/Health"
DEVICE_KEY = "health"
BROKER_CLIENTS = "$SYS/broker/clients/connected"
POWEROFF_REQUEST = "poweroff"  # the file msgflo-poweroff.path waits for
STOP_FLUSH = 2.0  # seconds a clean stop waits for the cleared status to leave

BusOpener = Callable[[int], Bus]  # the I2C bus number -> the bus


def definition(role: str) -> ParticipantDefinition:
    ports = [{"id": p.id, "type": p.type, "description": p.description} for p in PORTS]
    return define(role, COMPONENT, outports=ports, label="the gateway's health", icon="heartbeat")


def open_smbus(bus: int) -> Bus:
    from smbus2 import SMBus  # only with a battery monitor: the rest runs without I2C

    smbus: Bus = SMBus(bus)
    return smbus


def battery_monitor(section: HealthConfig, opener: BusOpener) -> Ina219 | None:
    """The configured battery monitor; None (logged) when there is none or its bus is not
    there: the other readings go on without it."""
    battery = section.battery
    if battery.monitor is None:
        return None
    try:
        bus = opener(battery.bus)
    except OSError as exc:
        log.error("health: battery monitor: cannot open /dev/i2c-%d: %s", battery.bus,
                  exc.strerror or exc)  # fmt: skip
        return None
    return Ina219(bus, battery.address, battery.shunt_ohms, battery.cells)


def request_dir() -> Path | None:
    """Where the power-off request goes: the unit's runtime directory, None off the kit."""
    chosen = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(chosen) if chosen else None


class HealthParticipant:
    """See the module docstring. ``requests``: the directory of the power-off request (None:
    this machine cannot be powered off from here, which is logged when it would be);
    ``notice``: seconds from announcing the shutdown to requesting it."""

    def __init__(
        self,
        section: HealthConfig,
        sources: HealthSources,
        requests: Path | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        notice: float = SHUTDOWN_NOTICE,
    ) -> None:
        self.section = section
        self.sources = sources
        self.requests = requests
        self.clock = clock
        self.wall = wall
        limits = Thresholds(
            section.hot, section.battery_low, section.shutdown_below, section.shutdown_after, notice
        )
        self.core = HealthCore(section.interval, limits)
        self.definition = definition(section.role)
        self.broker_clients: int | None = None
        self.bad_sys = 0  # $SYS messages that were not a count
        self._status_off = False
        self._active: list[str] = []  # the alarms raised, as last logged
        sources.broker_clients = lambda: self.broker_clients

    async def run(self, host: BridgeHost) -> None:
        self._clear_request()
        await self._follow_broker(host.transport)
        device = host.device(DEVICE_KEY, f"health ({self.section.role})")
        await device.announce(self.definition)
        log.info("health: announced as %s (%s)", self.section.role, COMPONENT)
        try:
            while True:
                await self.tick(host.transport, device)
                await asyncio.sleep(self.section.sample_interval)
        finally:
            await self._clear_status(host.transport)

    async def tick(self, transport: Transport, device: DeviceParticipant) -> Step:
        sample = await read_sample(self.sources)
        step = self.core.step(sample, self.clock())
        for name, value in step.readings.items():
            device.send(name, json.dumps(value).encode())
        if step.alarms is not None:
            device.send("alarms", json.dumps(step.alarms).encode())
        if step.alarms_changed:
            self._log_alarms()
        if step.announce is not None:
            notice = step.announce
            log.warning("health: battery at %.0f %% (shutdown_below %.0f): powering off in %.0f s",
                        notice.battery_percent, notice.threshold, notice.requested_in)  # fmt: skip
            device.send("shutdown", json.dumps(notice.to_json()).encode())
        if step.request_shutdown:
            self._request_poweroff()
        if step.readings or step.announce is not None:
            self._publish_status(transport)
        return step

    def _log_alarms(self) -> None:
        active = sorted(name for name, on in self.core.alarms.items() if on)
        if active:
            log.warning("health: alarms: %s", ", ".join(active))
        elif self._active:
            log.info("health: alarms cleared")
        self._active = active

    # -- the broker's client count ---------------------------------------------------------------

    async def _follow_broker(self, transport: Transport) -> None:
        try:
            await transport.subscribe(BROKER_CLIENTS, self._on_clients)
        except TransportError as exc:  # AMQP has no $SYS; a refused subscription: no count
            log.info("health: no broker client count: %s", exc)

    def _on_clients(self, delivery: Delivery) -> None:
        try:
            self.broker_clients = int(delivery.payload.decode("ascii").strip())
        except (ValueError, UnicodeDecodeError):
            self.bad_sys += 1
            if self.bad_sys == 1:
                log.warning("health: %s: not a count: %r", delivery.topic, delivery.payload[:40])

    # -- the dashboard's summary -----------------------------------------------------------------

    def status(self) -> HealthStatus:
        notice = self.core.shutdown
        return HealthStatus(
            self.section.role,
            self.wall(),
            self.core.latest,
            self.core.alarms,
            None if notice is None else notice.to_json(),
            self.section.interval,
        )

    def _publish_status(self, transport: Transport) -> None:
        if self._status_off or not transport.connected:
            return
        try:
            transport.publish(STATUS_TOPIC, encode_status(self.status()), qos=1, retain=True)
        except TransportError as exc:  # AMQP: nothing retained, so no summary
            self._status_off = True
            log.info("health: not publishing the dashboard's summary: %s", exc)

    async def _clear_status(self, transport: Transport) -> None:
        """A stopped participant's figures are not left behind as if current."""
        if self._status_off or not transport.connected:
            return
        with contextlib.suppress(Exception):  # the broker may be gone: nothing more to do
            transport.publish(STATUS_TOPIC, b"", qos=1, retain=True)
            async with asyncio.timeout(STOP_FLUSH):
                await transport.flush()

    # -- the orderly shutdown --------------------------------------------------------------------

    def _request_poweroff(self) -> None:
        if self.requests is None:
            log.error("health: cannot power off: no runtime directory for the request "
                      "(the appliance's msgflo-bridge@health has one)")  # fmt: skip
            return
        text = json.dumps({"reason": "battery", "time": self.wall()}) + "\n"
        try:
            write_atomic(self.requests / POWEROFF_REQUEST, text, mode=0o640)
        except OSError as exc:
            log.error("health: cannot request the power-off: %s", exc)
            return
        log.warning("health: power-off requested (%s)", self.requests / POWEROFF_REQUEST)

    def _clear_request(self) -> None:
        """A request left from a run that was stopped before root acted is not acted on."""
        if self.requests is not None:
            with contextlib.suppress(OSError):
                (self.requests / POWEROFF_REQUEST).unlink()


def device_side(
    section: HealthConfig,
    *,
    root: Path = Path("/"),
    opener: BusOpener = open_smbus,
    requests: Path | None = None,
) -> Callable[[BridgeHost], Coroutine[Any, Any, None]]:
    """The health bridge's device side (``gateway-run bridge health``); tests give a fake
    ``root`` tree, a fake bus and a request directory."""
    hostapd = None if section.hostapd_ctrl is None else str(section.hostapd_ctrl)
    sources = HealthSources(root, section.disk, hostapd, battery_monitor(section, opener))
    participant = HealthParticipant(section, sources, requests or request_dir())

    async def main(host: BridgeHost) -> None:
        await participant.run(host)

    return main
