"""GATT devices: LED strips, buzzers, sensors that need a connection, with characteristics as
ports (docs/ble.md "GATT devices").

Advertisement sensors are only listened to; a GATT device is connected to. Each configured
device (``bridges.ble.gatt`` in gateway.yaml: address -> ports) gets one task,
:func:`run_gatt_device`, started by the bridge's device side through ``host.start``. The task:

1. connects with bleak-retry-connector (it knows BlueZ's transient failures and retries them),
   holding the adapter's ``connect_lock``: BlueZ and most controllers handle one connection
   attempt at a time, and concurrent attempts fail each other with "in progress" errors;
2. looks up the configured characteristics, announces the device as a participant (component
   ``ble/gatt``; ``notify`` and ``read`` ports are outports, ``write`` ports inports), starts
   the notifications, one poller per ``read`` port and one writer;
3. waits for the disconnect, withdraws the participant, and connects again after a backoff that
   grows while the device stays away (a device that stayed connected for longer than the
   backoff's maximum starts again from the shortest wait).

The participant comes from ``host.device(address)``, which outlives connections, and its
definition is built once with the role as id, so the device comes back with the same role and
id and the coordinator's edges to it are restored.

Writes: an inport message is encoded at once (a payload that does not fit the port's encoding
is one log line and counted, and goes no further) and put on the connection's bounded queue;
one writer drains it, so writes reach the device in order and a slow device never blocks the
broker connection. A full queue drops the message and counts it, with one log line per
overload (until a message finds room again). Writes still queued at a disconnect are dropped:
the device's state after a reconnect is what the next message sets, not a backlog of stale
colours.

Failures (the device unreachable, a characteristic missing, a read or write refused) are log
lines and counts in :class:`GattStats`; nothing but cancellation leaves :func:`run_gatt_device`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak_retry_connector import establish_connection

from gateway.bridges.ble.encoding import Codec, EncodingError
from gateway.bridges.host import BridgeHost, DeviceParticipant
from gateway.config.model import BleBridgeConfig, GattPort
from gateway.participant.definition import ParticipantDefinition, define
from gateway.transport.backoff import Backoff

log = logging.getLogger("gateway.bridges.ble.gatt")

COMPONENT = "ble/gatt"
ICON = "bluetooth"
RECONNECT = Backoff(initial=2.0, maximum=120.0)
CONNECT_ATTEMPTS = 2  # bleak-retry-connector's tries per connection; the backoff does the rest
MAX_PENDING_WRITES = 16  # per device: an LED strip fed faster than it takes writes drops
IO_TIMEOUT = 10.0  # seconds one read or write may take before it counts as failed
CONNECTED_CHECK = 5.0  # seconds between looks at is_connected (the callback should come first)
DISCONNECT_TIMEOUT = 10.0  # seconds a clean disconnect may take when the task stops

PORT_TYPES = {"raw": "any", "utf8": "string", "json": "any"}  # integers are "number"


@dataclass
class GattStats:
    """Per device, across connections: for logs and tests."""

    connects: int = 0  # connections made
    connect_failures: int = 0  # establish_connection gave up
    disconnects: int = 0  # connections that ended
    notified: int = 0  # notifications sent on to MQTT
    reads: int = 0  # values read and sent on to MQTT
    read_errors: int = 0
    bad_values: int = 0  # device values that did not decode
    writes: int = 0  # values written to the device
    write_errors: int = 0
    write_drops: int = 0  # messages dropped because the queue was full
    bad_payloads: int = 0  # inport messages that did not encode
    missing: int = 0  # configured characteristics the device did not have, per connection


def default_role(address: str) -> str:
    """The role of a device that ``bridges.ble.roles`` does not name."""
    return "ble-" + address.replace(":", "")[-6:].lower()


def configured_devices(config: BleBridgeConfig) -> list[tuple[str, str, tuple[GattPort, ...]]]:
    """(address, role, ports) of every configured GATT device: what to start tasks for."""
    roles = dict(config.roles)
    return [
        (address, roles.get(address) or default_role(address), ports)
        for address, ports in config.gatt
    ]


def definition(role: str, address: str, ports: Sequence[GattPort]) -> ParticipantDefinition:
    """The device's participant: outports for notify/read ports, inports for write ports."""

    def port(spec: GattPort) -> dict[str, Any]:
        kind = PORT_TYPES.get(spec.encoding, "number")
        what = f"GATT {spec.uuid}, {spec.access}, {spec.encoding}"
        scaled = f" x {spec.scale:g}" if kind == "number" and spec.scale != 1 else ""
        return {"id": spec.port, "type": kind, "description": what + scaled}

    return define(
        role,
        COMPONENT,
        inports=[port(p) for p in ports if p.access == "write"],
        outports=[port(p) for p in ports if p.access != "write"],
        label=f"BLE GATT device {address}",
        icon=ICON,
        participant_id=role,
    )


def ble_device(address: str, adapter: str, *, bluez: bool) -> BLEDevice:
    """What bleak connects to. BlueZ's backend needs the device's object path; with it,
    bleak-retry-connector also asks BlueZ (over D-Bus) for stale connections and cached
    services. Another backend gets no path: it has no BlueZ to ask."""
    details: dict[str, Any] = {}
    if bluez:
        details["path"] = f"/org/bluez/{adapter}/dev_{address.replace(':', '_')}"
    return BLEDevice(address, None, details)


def counted(count: int) -> bool:
    """Whether the ``count``-th occurrence of a repeated problem is logged: the first ten,
    then every hundredth, so a device or sender that keeps at it cannot fill the log."""
    return count <= 10 or count % 100 == 0


@dataclass
class _Port:
    spec: GattPort
    codec: Codec
    characteristic: BleakGATTCharacteristic


@dataclass
class GattDevice:
    """One configured device's task state; :func:`run_gatt_device` makes and runs it."""

    host: BridgeHost
    address: str
    role: str
    ports: tuple[GattPort, ...]
    adapter: str
    connect_lock: asyncio.Lock
    backend: type[BaseBleakClient] | None = None
    reconnect: Backoff = RECONNECT
    attempts: int = CONNECT_ATTEMPTS
    max_pending: int = MAX_PENDING_WRITES
    clock: Callable[[], float] = time.monotonic
    stats: GattStats = field(default_factory=GattStats)

    def __post_init__(self) -> None:
        self.label = f"BLE {self.address} ({self.role})"
        self.participant: DeviceParticipant = self.host.device(self.address, self.label)
        self.definition = definition(self.role, self.address, self.ports)
        self.codecs = {p.port: Codec(p.encoding, p.scale) for p in self.ports}
        self._failures = 0  # connection attempts failed in a row
        self._dropping = False  # the last inport message found the write queue full

    async def run(self) -> None:
        attempt = 0  # of the backoff: grows while the device stays away or keeps dropping
        while True:
            connected = await self._connect_and_serve()
            if connected is not None and connected > self.reconnect.maximum:
                attempt = 0  # it stayed a while: start again from the short waits
            await asyncio.sleep(self.reconnect.delay(attempt))
            attempt += 1

    async def _connect_and_serve(self) -> float | None:
        """One connection: how many seconds it lasted, None if the device was not reached."""
        disconnected = asyncio.Event()
        try:
            client = await self._connect(disconnected)
        except Exception as error:  # unreachable, refused, a BlueZ hiccup: try again later
            self.stats.connect_failures += 1
            self._failures += 1
            if self._failures == 1:
                log.warning("%s: cannot connect: %s (retrying)", self.label, _one_line(error))
            elif _power_of_ten(self._failures):
                log.info("%s: still unreachable after %d attempts", self.label, self._failures)
            return None
        started = self.clock()
        self._failures = 0
        self.stats.connects += 1
        log.info("%s: connected", self.label)
        try:
            await self._serve(client, disconnected)
        except Exception as error:  # a backend failing mid-connection: reconnect
            log.warning("%s: connection failed: %s", self.label, _one_line(error))
        finally:
            self.stats.disconnects += 1
            await self.participant.withdraw()
            with contextlib.suppress(Exception):  # it may be gone already: nothing to undo
                async with asyncio.timeout(DISCONNECT_TIMEOUT):
                    await client.disconnect()
            log.info("%s: disconnected", self.label)
        return self.clock() - started

    async def _connect(self, disconnected: asyncio.Event) -> BleakClient:
        device = ble_device(self.address, self.adapter, bluez=self.backend is None)
        async with self.connect_lock:
            client = await establish_connection(
                BleakClient,
                device,
                self.role,  # bleak-retry-connector's messages add the address
                disconnected_callback=lambda _client: disconnected.set(),
                max_attempts=self.attempts,
                backend=self.backend,
                bluez={"adapter": self.adapter},
            )
        disconnected.clear()  # an earlier attempt's disconnect is not this connection's
        return client

    async def _serve(self, client: BleakClient, disconnected: asyncio.Event) -> None:
        ports = self._resolve(client)
        writes: asyncio.Queue[tuple[_Port, bytes]] = asyncio.Queue(self.max_pending)
        inports = {p.spec.port: p for p in ports if p.spec.access == "write"}
        await self.participant.announce(
            self.definition, lambda port, payload: self._inport(inports, writes, port, payload)
        )
        tasks: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as group:
            for port in ports:
                if port.spec.access == "notify":
                    await self._start_notify(client, port)
                elif port.spec.access == "read":
                    tasks.append(group.create_task(self._poll(client, port)))
            tasks.append(group.create_task(self._writer(client, writes)))
            while client.is_connected:  # the callback should say so first; this is the fallback
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CONNECTED_CHECK):
                        await disconnected.wait()
                        break
            for task in tasks:  # they never end by themselves
                task.cancel()

    def _resolve(self, client: BleakClient) -> list[_Port]:
        """The configured ports whose characteristic the device has; the others are logged
        (once per connection) and left out, announced but silent."""
        found = []
        for spec in self.ports:
            try:
                characteristic = client.services.get_characteristic(spec.uuid)
            except Exception as error:  # two with this UUID: bleak cannot choose
                characteristic, reason = None, _one_line(error)
            else:
                reason = "the device has no such characteristic"
            if characteristic is None:
                self.stats.missing += 1
                log.warning("%s: port %r (GATT %s): %s", self.label, spec.port, spec.uuid, reason)
                continue
            found.append(_Port(spec, self.codecs[spec.port], characteristic))
        return found

    # -- device -> MQTT --------------------------------------------------------------------------

    async def _start_notify(self, client: BleakClient, port: _Port) -> None:
        def notified(_characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
            if self._publish(port, bytes(data)):
                self.stats.notified += 1

        try:
            async with asyncio.timeout(IO_TIMEOUT):
                await client.start_notify(port.characteristic, notified)
        except Exception as error:
            log.warning(
                "%s: port %r: cannot start notifications: %s",
                self.label,
                port.spec.port,
                _one_line(error),
            )

    async def _poll(self, client: BleakClient, port: _Port) -> None:
        """Read now, then every ``poll`` seconds (a port without ``poll`` is read once)."""
        while True:
            try:
                async with asyncio.timeout(IO_TIMEOUT):
                    data = await client.read_gatt_char(port.characteristic)
            except Exception as error:
                self.stats.read_errors += 1
                if counted(self.stats.read_errors):
                    log.warning(
                        "%s: port %r: read failed: %s", self.label, port.spec.port, _one_line(error)
                    )
            else:
                if self._publish(port, bytes(data)):
                    self.stats.reads += 1
            if port.spec.poll is None:
                return
            await asyncio.sleep(port.spec.poll)

    def _publish(self, port: _Port, data: bytes) -> bool:
        try:
            payload = port.codec.to_mqtt(data)
        except EncodingError as error:
            self.stats.bad_values += 1
            if counted(self.stats.bad_values):
                log.warning(
                    "%s: port %r: value %s dropped: %s",
                    self.label,
                    port.spec.port,
                    data.hex(),
                    error,
                )
            return False
        self.participant.send(port.spec.port, payload)
        return True

    # -- MQTT -> device --------------------------------------------------------------------------

    def _inport(
        self,
        inports: dict[str, _Port],
        writes: asyncio.Queue[tuple[_Port, bytes]],
        port_id: str,
        payload: bytes,
    ) -> None:
        port = inports.get(port_id)
        if port is None:  # configured, but the device lacks it (logged at connect)
            return
        try:
            data = port.codec.from_mqtt(payload)
        except EncodingError as error:
            self.stats.bad_payloads += 1
            log.warning("%s: message on %s refused: %s", self.label, self._queue(port_id), error)
            return
        try:
            writes.put_nowait((port, data))
        except asyncio.QueueFull:
            self.stats.write_drops += 1
            if not self._dropping:  # one line per overload, not one per message
                log.warning(
                    "%s: the device is not keeping up with writes; dropping messages (%d so far)",
                    self.label,
                    self.stats.write_drops,
                )
            self._dropping = True
        else:
            self._dropping = False

    async def _writer(
        self, client: BleakClient, writes: asyncio.Queue[tuple[_Port, bytes]]
    ) -> None:
        while True:
            port, data = await writes.get()
            # With response where the characteristic allows it: the device confirms each write.
            response = "write" in port.characteristic.properties
            try:
                async with asyncio.timeout(IO_TIMEOUT):
                    await client.write_gatt_char(port.characteristic, data, response=response)
            except Exception as error:
                self.stats.write_errors += 1
                if counted(self.stats.write_errors):
                    log.warning(
                        "%s: port %r: write failed: %s",
                        self.label,
                        port.spec.port,
                        _one_line(error),
                    )
            else:
                self.stats.writes += 1

    def _queue(self, port_id: str) -> str:
        port = next((p for p in self.definition.inports if p.id == port_id), None)
        return port.queue if port is not None else port_id


async def run_gatt_device(
    host: BridgeHost,
    address: str,
    role: str,
    ports: tuple[GattPort, ...],
    *,
    adapter: str,
    connect_lock: asyncio.Lock,
    backend: type[BaseBleakClient] | None = None,
    reconnect: Backoff = RECONNECT,
    attempts: int = CONNECT_ATTEMPTS,
    max_pending: int = MAX_PENDING_WRITES,
) -> None:
    """Keep the GATT device at ``address`` connected and announced as ``role`` until
    cancelled; ``connect_lock`` is shared by every device on ``adapter``; ``backend`` replaces
    the platform's bleak backend (tests)."""
    device = GattDevice(
        host,
        address,
        role,
        ports,
        adapter,
        connect_lock,
        backend=backend,
        reconnect=reconnect,
        attempts=attempts,
        max_pending=max_pending,
    )
    await device.run()


def _power_of_ten(count: int) -> bool:
    """10, 100, 1000...: when a device that stays unreachable is mentioned again."""
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."
