"""The serial bridge daemon: USB serial devices as msgflo participants (``msgflo-serial``).

One :class:`SerialBridge` owns one broker connection and one ``asyncio.TaskGroup`` holding: the
watcher (polls the glob patterns every second: hotplug), the announcer (every period / 2.2), and
one task per device path. A device task opens the port, runs a
:class:`~gateway.bridges.serial.session.DeviceSession` on it and carries out its actions; the
session decides everything, the task only moves bytes and messages. A slow, stalled or noisy
device only ever occupies its own task: reads never block (the fd is watched by the loop), and
writes to a device that does not read are capped (:data:`~gateway.bridges.serial.port.MAX_PENDING`)
and then dropped and counted.

Unplug: a read error, or the path disappearing, ends the session; the participant is no longer
announced (the coordinator expires it) and its inport queues are unsubscribed. When the path
comes back, a new task starts and the device is announced with the same role and id.

What the bridge has seen and not adopted: the boards present that no configured role names
(``roles`` in gateway.yaml), as one retained JSON list on :data:`SEEN_TOPIC`, published on
every hotplug and emptied when the bridge stops cleanly. The dashboard lists them and adopts
one by configuring its role (docs/dashboard.md, docs/serial-bridge.md).

One transport for all devices rather than one each: discovery has no "gone" message for a last
will to carry, so per-device connections would buy nothing and cost a broker connection per
board.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gateway.bridges.serial.port import PortOpener, SerialPort, TtyPort
from gateway.bridges.serial.roles import RoleMap, config_key, product
from gateway.bridges.serial.session import (
    Action,
    Announce,
    DeviceSession,
    LogLine,
    Publish,
    Reopen,
    SessionConfig,
    Withdraw,
    Write,
)
from gateway.config import SerialBridgeConfig
from gateway.errors import TransportError
from gateway.participant.definition import ParticipantDefinition
from gateway.participant.discovery import DISCOVERY_TOPIC, announce_interval, encode_discovery
from gateway.transport.backoff import Backoff
from gateway.transport.base import Delivery, Transport

log = logging.getLogger("gateway.bridges.serial")

DEFAULTS = SerialBridgeConfig()  # gateway.yaml's defaults are the bridge's
MAX_TICK = 1.0  # a device task looks at the clock at least this often
SEEN_TOPIC = "msgflo-gateway/bridges/serial/seen"  # retained: the boards without a configured role
STOP_FLUSH = 2.0  # seconds a clean stop waits for the emptied list to leave
MAX_ABSENT = 32  # unplugged devices whose stats are kept (a device re-enumerating under ever new
# names must not grow the bridge without bound)


@dataclass(frozen=True)
class BridgeConfig:
    """Where to look, how fast, which roles, how often: made from gateway.yaml's section by
    ``run.bridge_config``; the timings beyond it are for tests."""

    globs: tuple[str, ...] = DEFAULTS.globs
    baud: int = DEFAULTS.baud
    roles: RoleMap = field(default_factory=RoleMap)
    period: float = DEFAULTS.period
    poll_interval: float = 1.0
    session: SessionConfig = field(default_factory=lambda: SessionConfig(role="-"))
    reopen: Backoff = field(default_factory=lambda: Backoff(initial=0.5, maximum=10.0))


@dataclass
class DeviceStats:
    """Per path, across reopens: for logs and tests."""

    opens: int = 0
    sessions_ended: int = 0
    write_drops: int = 0
    to_mqtt: int = 0
    to_device: int = 0


class Device:
    """One device path's task: open, run a session, reopen while the path exists."""

    def __init__(self, bridge: SerialBridge, path: str, role: str) -> None:
        self.bridge = bridge
        self.path = path
        self.label = printable(path)  # the path in log lines
        self.role = role
        self.failures = 0  # unexpected errors met by this device's task
        self.stats = DeviceStats()
        self.session: DeviceSession | None = None
        self._port: SerialPort | None = None
        self._announced: ParticipantDefinition | None = None

    async def run(self) -> None:
        # Runs until the watcher cancels it (the path is gone); meanwhile a port that fails to
        # open or dies is reopened with backoff.
        attempt = 0
        while True:
            port = self._open(attempt)
            if port is not None:
                attempt = 0 if await self._serve(port) else attempt
            await asyncio.sleep(self.bridge.config.reopen.delay(attempt))
            attempt += 1

    def _open(self, attempt: int) -> SerialPort | None:
        try:
            port = self.bridge.opener(self.path, self.bridge.config.baud)
        except (OSError, ValueError) as error:
            if attempt == 0:
                log.warning("%s: cannot open: %s (retrying while it exists)", self.label, error)
            return None
        self.stats.opens += 1
        log.info("%s: opened at %d baud, role %r", self.label, self.bridge.config.baud, self.role)
        return port

    async def _serve(self, port: SerialPort) -> bool:
        """Run one session; True if it got as far as a working device."""
        clock = self.bridge.clock
        config = replace(self.bridge.config.session, role=self.role)
        session = self.session = DeviceSession(config, clock())
        self._port = port
        try:
            self._apply_now(session.start())
            await self._loop(session, port)
        except OSError as error:
            log.warning("%s: %s; device unplugged?", self.label, error)
        finally:
            self._port = None
            port.close()
            self._apply_now(session.close())
            await self._unsubscribe()
            self.stats.sessions_ended += 1
        return session.stats.pongs > 0 or session.stats.to_mqtt > 0

    async def _loop(self, session: DeviceSession, port: SerialPort) -> None:
        clock = self.bridge.clock
        while True:
            wait = min(session.next_deadline() - clock(), MAX_TICK)
            actions: list[Action] = []
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    data = await port.read()
                actions += session.feed(data, clock())
            except TimeoutError:
                pass
            actions += session.tick(clock())
            if await self._apply(actions):
                return
            await asyncio.sleep(0)  # a device that never stops talking still lets others run

    async def _apply(self, actions: list[Action]) -> bool:
        """Carry out actions; True when the session asked to reopen the port."""
        reopen = False
        for action in actions:
            if isinstance(action, Announce):
                await self._subscribe(action.definition)
            elif isinstance(action, Withdraw):
                self._apply_now([action])
                await self._unsubscribe()
            elif isinstance(action, Reopen):
                reopen = True
            else:
                self._apply_now([action])
        return reopen

    def _apply_now(self, actions: list[Action]) -> None:
        for action in actions:
            handler = _SYNC_ACTIONS.get(type(action))
            if handler is not None:
                handler(self, action)

    def _write(self, action: Action) -> None:
        assert isinstance(action, Write)
        if self._port is not None and not self._port.write(action.data):
            self.stats.write_drops += 1
            if self.stats.write_drops in (1, 10, 100) or self.stats.write_drops % 1000 == 0:
                log.warning(
                    "%s: device is not reading; %d frames dropped",
                    self.label,
                    self.stats.write_drops,
                )

    def _publish(self, action: Action) -> None:
        assert isinstance(action, Publish)
        self.stats.to_mqtt += 1
        self.bridge.transport.publish(action.topic, action.payload)

    def _log(self, action: Action) -> None:
        assert isinstance(action, LogLine)
        log.log(action.level, "%s: %s", self.label, action.message)

    def _withdraw(self, action: Action) -> None:
        assert isinstance(action, Withdraw)
        self.bridge.withdraw(self.path)

    async def _subscribe(self, definition: ParticipantDefinition) -> None:
        await self._unsubscribe()
        self._announced = definition
        # Listening before announcing, as msgflo participants do: once the coordinator knows
        # the device, what it forwards to the inports is not lost.
        for port in definition.inports:
            await self.bridge.transport.subscribe(port.queue, self._on_delivery, qos=port.qos)
        if self._announced is definition:
            self.bridge.announce(self.path, definition)

    async def _unsubscribe(self) -> None:
        definition, self._announced = self._announced, None
        if definition is None:
            return
        self.bridge.withdraw(self.path)
        for port in definition.inports:
            with contextlib.suppress(Exception):  # the connection may be down: nothing to undo
                await self.bridge.transport.unsubscribe(port.queue)

    def _on_delivery(self, delivery: Delivery) -> None:
        session = self.session
        if session is None or self._port is None:
            return
        self.stats.to_device += 1
        self._apply_now(session.on_mqtt(delivery.topic, delivery.payload, self.bridge.clock()))


_SYNC_ACTIONS: dict[type, Callable[[Device, Action], None]] = {
    Write: Device._write,
    Publish: Device._publish,
    LogLine: Device._log,
    Withdraw: Device._withdraw,
}


class SerialBridge:
    """The daemon: ``await SerialBridge(config, transport).run()`` until cancelled."""

    def __init__(
        self,
        config: BridgeConfig,
        transport: Transport,
        *,
        opener: PortOpener = TtyPort.open,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.transport = transport
        self.opener = opener
        self.clock = clock
        self.devices: dict[str, Device] = {}
        self.announced: dict[str, ParticipantDefinition] = {}  # by device path
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._seen: dict[str, float] = {}  # unconfigured device path -> epoch it was found
        self._seen_sent: bytes | None = None
        self._seen_off = False  # the transport cannot retain the list
        self.transport.add_connect_listener(self.announce_all)
        self.transport.add_connect_listener(self._republish_seen)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._announcer(), name="serial announcer")
                group.create_task(self._watch(group), name="serial watcher")
        finally:
            await self._empty_seen()

    # -- discovery -------------------------------------------------------------------------------

    def announce(self, path: str, definition: ParticipantDefinition) -> None:
        for other, known in self.announced.items():
            if other != path and known.role == definition.role:
                log.error(
                    "%s: role %r is already the role of %s; their queues clash (give each a "
                    "distinct role with --role SERIALNUMBER=ROLE)",
                    printable(path),
                    definition.role,
                    printable(other),
                )
        self.announced[path] = definition
        self._publish_discovery(definition)
        if path in self._seen:
            self._publish_seen()  # the component is known now

    def withdraw(self, path: str) -> None:
        if self.announced.pop(path, None) is not None:
            log.info("%s: no longer announced", printable(path))

    def announce_all(self) -> None:
        for definition in list(self.announced.values()):
            self._publish_discovery(definition)

    def _publish_discovery(self, definition: ParticipantDefinition) -> None:
        if self.transport.connected:
            self.transport.publish(DISCOVERY_TOPIC, encode_discovery(definition))

    # -- seen and not adopted --------------------------------------------------------------------

    def seen(self) -> list[dict[str, object]]:
        """The boards present without a configured role, as published on :data:`SEEN_TOPIC`."""
        found = []
        for path, since in sorted(self._seen.items()):
            device = self.devices.get(path)
            definition = self.announced.get(path)
            model = definition.component if definition is not None else product(path)
            found.append({
                "id": config_key(path),
                "model": model or "",
                "name": device.role if device is not None else "",
                "last_seen": since,
            })  # fmt: skip
        return found

    def _publish_seen(self, *, force: bool = False) -> None:
        payload = json.dumps(self.seen(), separators=(",", ":")).encode()
        if self._seen_off or (payload == self._seen_sent and not force):
            return
        if self.transport.connected:
            try:
                self.transport.publish(SEEN_TOPIC, payload, qos=1, retain=True)
            except TransportError as error:  # AMQP: no retained messages, so no list
                self._seen_off = True
                log.info("not publishing the boards without a role: %s", error)
                return
            self._seen_sent = payload

    def _republish_seen(self) -> None:
        self._publish_seen(force=True)

    async def _empty_seen(self) -> None:
        self._seen.clear()
        self._publish_seen(force=True)
        with contextlib.suppress(Exception):  # a broker that is gone: nothing more to do
            async with asyncio.timeout(STOP_FLUSH):
                await self.transport.flush()

    async def _announcer(self) -> None:
        while True:
            await asyncio.sleep(announce_interval(self.config.period))
            self.announce_all()

    # -- hotplug ---------------------------------------------------------------------------------

    def scan(self) -> list[str]:
        """The device paths the globs match now."""
        found = {path for pattern in self.config.globs for path in glob.glob(pattern)}
        return sorted(found)

    async def _watch(self, group: asyncio.TaskGroup) -> None:
        while True:
            present = set(self.scan())
            for path in present - self._tasks.keys():
                self._start(group, path)
            for path, task in list(self._tasks.items()):
                if path not in present:
                    task.cancel()
                if task.done() or path not in present:
                    del self._tasks[path]
            if self._seen.keys() - present:
                self._seen = {path: t for path, t in self._seen.items() if path in present}
                self._publish_seen()
            self._forget_absent(present)
            await asyncio.sleep(self.config.poll_interval)

    def _forget_absent(self, present: set[str]) -> None:
        """Keep the stats of at most MAX_ABSENT unplugged devices, the most recent ones."""
        absent = [path for path in self.devices if path not in present and path not in self._tasks]
        for path in absent[: max(0, len(absent) - MAX_ABSENT)]:
            del self.devices[path]

    def _start(self, group: asyncio.TaskGroup, path: str) -> None:
        role = self.config.roles.role_for(path)
        device = self.devices.pop(path, None) or Device(self, path, role)
        self.devices[path] = device  # last in the dict: the most recently seen
        log.info("%s: found, role %r", device.label, role)
        self._tasks[path] = group.create_task(_guarded(device), name=f"serial {path}")
        if self.config.roles.configured(path) is None:
            self._seen[path] = time.time()
            self._publish_seen()


async def _guarded(device: Device) -> None:
    """A bug met by one device ends that device's task, never the daemon's TaskGroup; the
    watcher starts it again on a later scan. The traceback is logged once per device; a bug
    met again is one line, so a device that triggers it on every open cannot fill the log."""
    try:
        await device.run()
    except Exception as error:
        device.failures += 1
        if device.failures == 1:
            log.exception("%s: unexpected error; restarting this device shortly", device.label)
        else:
            log.error(
                "%s: unexpected error again (%d times): %r; restarting this device shortly",
                device.label,
                device.failures,
                error,
            )
        await asyncio.sleep(device.bridge.config.reopen.maximum)


def printable(path: str) -> str:
    """``path`` for a log line: as it is when it is printable UTF-8, else escaped (a link name
    with bytes that are not UTF-8 holds lone surrogates, which no log handler can encode)."""
    try:
        path.encode()
    except UnicodeEncodeError:
        return ascii(path)
    return path if path.isprintable() else ascii(path)
