"""The bridge host: what every device bridge shares, so that a bridge is only its device side.

One :class:`BridgeHost` owns one broker connection for all the devices of one bridge (serial,
BLE, 433 MHz, GPIO) and one ``asyncio.TaskGroup``. A bridge asks it for a
:class:`DeviceParticipant` per device and calls :meth:`DeviceParticipant.announce` once the
device's ports are known, :meth:`~DeviceParticipant.send` for each value and
:meth:`~DeviceParticipant.withdraw` when the device is gone. The host:

- announces every announced device every ``period / 2.2`` and after every reconnect;
- subscribes a device's inports before announcing it (what the coordinator forwards to a device
  it has just learnt of is not lost) and unsubscribes them on withdrawal;
- withdraws a device on its own when nothing was heard from it for its ``timeout`` (a BLE or
  radio sensor that went out of range), and announces it again on the next value, with the same
  role and id, so the coordinator's edges to it come back;
- warns once when two devices are announced with the same role (their queues clash);
- runs one task per device (:meth:`start`, :meth:`stop`): a bug met by one device ends that
  device's task with one log line, never the daemon;
- publishes the devices the bridge has seen and that no config names, as one retained JSON
  list on ``msgflo-gateway/bridges/<name>/seen`` (:mod:`gateway.bridges.seen`), the list the
  dashboard shows and adopts from (docs/bridges.md), emptied when the bridge stops cleanly.

Bridges that only listen to the air (BLE, 433 MHz) share one device side on top of the host:
:class:`~gateway.bridges.observe.ObservingSide`.

One connection for all devices rather than one each: discovery has no "gone" message for a last
will to carry, so per-device connections would buy nothing and cost a broker connection each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from gateway.bridges.seen import SeenDevice, encode_seen, seen_topic
from gateway.errors import TransportError
from gateway.participant.definition import ParticipantDefinition
from gateway.participant.discovery import DISCOVERY_TOPIC, announce_interval, encode_discovery
from gateway.transport.base import Delivery, Transport

log = logging.getLogger("gateway.bridges")

STOP_FLUSH = 2.0  # seconds a clean stop waits for the emptied list to leave
# How often device timeouts are looked at (they are seconds to minutes), while a device that
# has one is present; with none, the host does not wake for them at all (idle power).
LIVENESS_TICK = 1.0
RESTART_AFTER_BUG = 10.0  # seconds before a device task that met a bug may be started again

InportHandler = Callable[[str, bytes], None]  # (port id, payload)


class DeviceParticipant:
    """One device as a participant, made by :meth:`BridgeHost.device`."""

    def __init__(self, host: BridgeHost, key: str, label: str, timeout: float | None) -> None:
        self.host = host
        self.key = key  # unique within the bridge: a path, an address, a radio id
        self.label = label  # how log lines name the device
        self.timeout = timeout  # seconds without news before it is withdrawn; None: never
        self.definition: ParticipantDefinition | None = None
        self.present = False  # announced and not timed out
        self.last_heard = 0.0  # host clock
        self.sent = 0
        self.received = 0
        self._on_inport: InportHandler | None = None
        self._queues: dict[str, str] = {}  # inport queue -> port id

    async def announce(
        self, definition: ParticipantDefinition, on_inport: InportHandler | None = None
    ) -> None:
        """Subscribe the inports (to ``on_inport``), then announce: from now on and every
        period / 2.2. Announcing a new definition replaces the old one."""
        await self._unsubscribe()
        self.definition = definition
        self._on_inport = on_inport
        self._queues = {port.queue: port.id for port in definition.inports}
        for port in definition.inports:
            await self.host.transport.subscribe(port.queue, self._delivered, qos=port.qos)
        if self.definition is definition:  # not replaced meanwhile
            self.last_heard = self.host.clock()
            self.host.check_role(self)
            self.present = True
            self.host.timing(self)
            self.host.publish_discovery(definition)

    async def withdraw(self) -> None:
        """No longer announced (the coordinator expires it) and its inports unsubscribed."""
        if self.definition is not None and self.present:
            log.info("%s: no longer announced", self.label)
        self.present = False
        await self._unsubscribe()
        self.definition = None

    def send(self, port: str, payload: bytes) -> None:
        """Publish on outport ``port``; a device that had timed out is announced again first."""
        definition = self.definition
        if definition is None:
            return
        self.heard()
        self.sent += 1
        queue = next((p.queue for p in definition.outports if p.id == port), None)
        if queue is None:
            raise ValueError(f"{self.label}: no outport {port!r}")
        self.host.transport.publish(queue, payload)

    def heard(self) -> None:
        """The device showed it is there (a value, an advert, a pong)."""
        self.last_heard = self.host.clock()
        if not self.present and self.definition is not None:
            log.info("%s: back", self.label)
            self.present = True
            self.host.timing(self)
            self.host.publish_discovery(self.definition)

    def expire(self, now: float) -> None:
        if self.present and self.timeout is not None and now - self.last_heard > self.timeout:
            log.info("%s: not heard for %.0f s; no longer announced", self.label, self.timeout)
            self.present = False

    def _delivered(self, delivery: Delivery) -> None:
        port = self._queues.get(delivery.topic)
        if port is None or self._on_inport is None:
            return
        self.received += 1
        self._on_inport(port, delivery.payload)

    async def _unsubscribe(self) -> None:
        queues, self._queues = self._queues, {}
        for queue in queues:
            with contextlib.suppress(Exception):  # the connection may be down: nothing to undo
                await self.host.transport.unsubscribe(queue)


class BridgeHost:
    """``await BridgeHost("ble", transport).run(main)``: ``main(host)`` is the bridge's device
    side (a scanner, a port watcher); it runs, with the announcer and the liveness check, in the
    host's TaskGroup until cancelled."""

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        period: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.transport = transport
        self.period = period
        self.clock = clock
        self.devices: dict[str, DeviceParticipant] = {}
        self.failures: dict[str, int] = {}  # device key -> unexpected errors met by its task
        self._group: asyncio.TaskGroup | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._seen: list[SeenDevice] = []
        self._seen_sent: bytes | None = None
        self._seen_off = False  # the transport cannot retain the list (AMQP)
        self._timed = asyncio.Event()  # set when a device with a timeout became present
        transport.add_connect_listener(self.announce_all)
        transport.add_connect_listener(self._republish_seen)

    async def run(self, main: Callable[[BridgeHost], Coroutine[Any, Any, None]]) -> None:
        # The first values a device side sends would be dropped while the connection is still
        # being made (QoS 0); devices wait for it as they would after a broker restart.
        await self.transport.wait_connected()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._announcer(), name=f"{self.name} announcer")
                group.create_task(self._liveness(), name=f"{self.name} liveness")
                group.create_task(main(self), name=f"{self.name} devices")
        finally:
            self._group = None
            await self._empty_seen()

    # -- devices ---------------------------------------------------------------------------------

    def device(
        self, key: str, label: str | None = None, *, timeout: float | None = None
    ) -> DeviceParticipant:
        """The participant of device ``key``, made on first use and kept across reconnects of
        the device, so it comes back with the same role and id."""
        found = self.devices.get(key)
        if found is None:
            found = self.devices[key] = DeviceParticipant(self, key, label or key, timeout)
        return found

    def forget(self, key: str) -> None:
        """Drop what is kept about a device that is gone for good (bounded memory)."""
        self.devices.pop(key, None)
        self.failures.pop(key, None)

    def start(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job()`` as device ``key``'s task unless one runs; a bug it meets is logged."""
        running = self._tasks.get(key)
        if running is not None and not running.done():
            return
        assert self._group is not None, "start() is for use inside run()"
        self._tasks[key] = self._group.create_task(self._guarded(key, job), name=key)

    def stop(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    def running(self) -> set[str]:
        return {key for key, task in self._tasks.items() if not task.done()}

    async def _guarded(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """A bug met by one device's task ends that task, never the daemon's TaskGroup. The
        traceback is logged once per device; met again it is one line, so a device that
        triggers it each time cannot fill the log."""
        try:
            await job()
        except Exception as error:
            count = self.failures[key] = self.failures.get(key, 0) + 1
            label = self.devices[key].label if key in self.devices else key
            if count == 1:
                log.exception("%s: unexpected error; restarting this device shortly", label)
            else:
                log.error(
                    "%s: unexpected error again (%d times): %r; restarting this device shortly",
                    label,
                    count,
                    error,
                )
            await asyncio.sleep(RESTART_AFTER_BUG)

    # -- discovery -------------------------------------------------------------------------------

    def publish_discovery(self, definition: ParticipantDefinition) -> None:
        if self.transport.connected:
            self.transport.publish(DISCOVERY_TOPIC, encode_discovery(definition))

    def announce_all(self) -> None:
        for device in list(self.devices.values()):
            if device.present and device.definition is not None:
                self.publish_discovery(device.definition)

    def announced(self) -> dict[str, ParticipantDefinition]:
        """The definitions announced now, by device key."""
        return {
            key: device.definition
            for key, device in self.devices.items()
            if device.present and device.definition is not None
        }

    def check_role(self, device: DeviceParticipant) -> None:
        assert device.definition is not None
        role = device.definition.role
        for other in self.devices.values():
            clash = other is not device and other.present and other.definition is not None
            if clash and other.definition is not None and other.definition.role == role:
                log.error(
                    "%s: role %r is already the role of %s; their queues clash (give each "
                    "a distinct role in the bridges.%s section)",
                    device.label,
                    role,
                    other.label,
                    self.name,
                )

    async def _announcer(self) -> None:
        while True:
            await asyncio.sleep(announce_interval(self.period))
            self.announce_all()

    def timing(self, device: DeviceParticipant) -> None:
        """``device`` became present: the liveness loop looks at it if it has a timeout."""
        if device.timeout is not None:
            self._timed.set()

    async def _liveness(self) -> None:
        while True:
            if not any(d.present and d.timeout is not None for d in self.devices.values()):
                self._timed.clear()
                await self._timed.wait()
            await asyncio.sleep(LIVENESS_TICK)
            now = self.clock()
            for device in list(self.devices.values()):
                device.expire(now)

    # -- seen and not adopted --------------------------------------------------------------------

    def set_seen(self, devices: Iterable[SeenDevice]) -> None:
        """The devices present that no config adopts; published when the list changed."""
        self._seen = sorted(devices, key=lambda d: d.id)
        self._publish_seen()

    def seen(self) -> list[SeenDevice]:
        return list(self._seen)

    def _publish_seen(self, *, force: bool = False) -> None:
        payload = encode_seen(self._seen)
        if self._seen_off or (payload == self._seen_sent and not force):
            return
        if self.transport.connected:
            try:
                self.transport.publish(seen_topic(self.name), payload, qos=1, retain=True)
            except TransportError as error:  # AMQP: no retained messages, so no list
                self._seen_off = True
                log.info("not publishing the devices without a role: %s", error)
                return
            self._seen_sent = payload

    def _republish_seen(self) -> None:
        self._publish_seen(force=True)

    async def _empty_seen(self) -> None:
        self._seen = []
        self._publish_seen(force=True)
        with contextlib.suppress(Exception):  # a broker that is gone: nothing more to do
            async with asyncio.timeout(STOP_FLUSH):
                await self.transport.flush()
