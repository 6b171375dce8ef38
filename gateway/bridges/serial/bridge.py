"""The serial bridge's device side: USB serial devices as msgflo participants (``msgflo-serial``).

It runs on a :class:`~gateway.bridges.host.BridgeHost`, which does what every bridge shares:
the broker connection, the announcer, inport subscriptions, the role-clash warning, one guarded
task per device and the retained list of devices without a role. What is left here:

- the watcher (:meth:`SerialDevices.run`): scans the glob patterns at start, then on every udev
  event or poll (:mod:`~gateway.bridges.serial.hotplug`); a path that appears gets a
  :class:`Device` task (``host.start``), one that disappears loses it (``host.stop``);
- a :class:`Device` task: opens the port, runs a
  :class:`~gateway.bridges.serial.session.DeviceSession` on it (a
  :class:`~gateway.bridges.serial.lines.LineSession` for a device ``bridges.serial.lines``
  names, at its own baud rate) and carries out its actions
  through its :class:`~gateway.bridges.host.DeviceParticipant` (announce with an inport handler
  that feeds the session, send for what the device publishes, withdraw). The session decides
  everything; the task only moves bytes and messages. A slow, stalled or noisy device only ever
  occupies its own task: reads never block (the fd is watched by the loop), and writes to a
  device that does not read are capped (:data:`~gateway.bridges.serial.port.MAX_PENDING`),
  then dropped and counted.

Unplug: a read error, or the path disappearing, ends the session; the participant is withdrawn
(the coordinator expires it) and its inports unsubscribed. When the path comes back, a new task
starts and the device is announced with the same role and id.

The boards present that no configured role names go to the host's seen list
(``msgflo-gateway/bridges/serial/seen``): id the key a role would be configured by (its USB
serial number, ...: :mod:`~gateway.bridges.serial.roles`), model its USB product, details the
component it described. The dashboard lists them and adopts one by configuring its role.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gateway.bridges.host import BridgeHost, DeviceParticipant
from gateway.bridges.seen import SeenDevice, seen_topic
from gateway.bridges.serial.hotplug import (
    Lister,
    MonitorFactory,
    identities,
    list_ports,
    scan,
    udev_monitor,
    watch,
)
from gateway.bridges.serial.lines import LineSession, line_device_for
from gateway.bridges.serial.port import PortOpener, SerialPort, TtyPort
from gateway.bridges.serial.provisioning import (
    Finished,
    IssueCredentials,
    IssueCredentialsAction,
    ProvisionAction,
    ProvisionConfig,
    Provisioner,
)
from gateway.bridges.serial.roles import PortIdentity, RoleMap
from gateway.bridges.serial.session import (
    Action,
    Announce,
    DeviceSession,
    LogLine,
    Publish,
    Reopen,
    SessionConfig,
    State,
    Withdraw,
    Write,
)
from gateway.config import SerialBridgeConfig
from gateway.config.model import LineDevice
from gateway.participant.definition import ParticipantDefinition
from gateway.transport.backoff import Backoff
from gateway.transport.base import Transport

log = logging.getLogger("gateway.bridges.serial")

BRIDGE = "serial"
DEFAULTS = SerialBridgeConfig()  # gateway.yaml's defaults are the bridge's
MAX_TICK = 1.0  # a device task looks at the clock at least this often
SEEN_TOPIC = seen_topic(BRIDGE)  # retained: the boards without a configured role
MAX_ABSENT = 32  # unplugged devices whose stats are kept (a device re-enumerating under ever new
# names must not grow the bridge without bound)


@dataclass(frozen=True)
class BridgeConfig:
    """Where to look, how fast, which roles, how often: made from gateway.yaml's section by
    :func:`bridge_config`; the timings beyond it are for tests."""

    globs: tuple[str, ...] = DEFAULTS.globs
    baud: int = DEFAULTS.baud
    roles: RoleMap = field(default_factory=RoleMap)
    period: float = DEFAULTS.period
    lines: tuple[tuple[str, LineDevice], ...] = DEFAULTS.lines  # devices in line mode
    poll_interval: float = 1.0  # when udev cannot say what changed
    session: SessionConfig = field(default_factory=lambda: SessionConfig(role="-"))
    # The boards that may be provisioned over USB: device keys as roles takes, or "*".
    provision: tuple[str, ...] = DEFAULTS.provision
    provisioning: ProvisionConfig = field(default_factory=lambda: ProvisionConfig(role="-"))
    reopen: Backoff = field(default_factory=lambda: Backoff(initial=0.5, maximum=10.0))


def bridge_config(section: SerialBridgeConfig) -> BridgeConfig:
    """The bridge's settings from its (already checked) section of ``gateway.yaml``."""
    session = SessionConfig(
        role="-", ping_interval=section.ping_interval, max_missed_pongs=section.missed_pongs
    )
    return BridgeConfig(
        globs=section.globs,
        baud=section.baud,
        roles=RoleMap(dict(section.roles)),
        period=section.period,
        lines=section.lines,
        session=session,
        provision=section.provision,
    )


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

    def __init__(
        self,
        side: SerialDevices,
        identity: PortIdentity,
        role: str,
        line: LineDevice | None = None,
        *,
        provisionable: bool = False,
    ) -> None:
        self.side = side
        self.identity = identity
        self.path = identity.path
        self.label = printable(self.path)  # the path in log lines
        self.role = role
        self.line = line  # line mode: its participant as configured
        self.baud = side.config.baud if line is None else line.baud
        self.stats = DeviceStats()
        self.session: DeviceSession | LineSession | None = None
        self.participant: DeviceParticipant = side.host.device(self.path, self.label)
        self._port: SerialPort | None = None
        self._outports: dict[str, str] = {}  # queue -> port id (the session publishes by queue)
        self._inports: dict[str, str] = {}  # port id -> queue (the session takes them by queue)
        # Provisioning over USB (docs/provisioning.md): a provisioner beside the link session
        # while the port may belong to an unprovisioned WiFi board; once it has dealt with one,
        # the port is left alone until the board is unplugged.
        self.provisionable = provisionable and line is None
        self.provisioner: Provisioner | None = None
        self.left_alone: str | None = None

    @property
    def settings(self) -> tuple[PortIdentity, str, LineDevice | None, bool]:
        """What a device is made with: a device found again with others is made anew."""
        return (self.identity, self.role, self.line, self.provisionable)

    @property
    def component(self) -> str | None:
        definition = self.participant.definition
        return definition.component if definition is not None else None

    async def run(self) -> None:
        # Runs until the watcher stops it (the path is gone); meanwhile a port that fails to
        # open or dies is reopened with backoff.
        attempt = 0
        self.left_alone = None
        while True:
            if self.left_alone is not None:
                await asyncio.get_running_loop().create_future()  # until unplugged (cancelled)
            port = self._open(attempt)
            if port is not None:
                attempt = 0 if await self._serve(port) else attempt
            await asyncio.sleep(self.side.config.reopen.delay(attempt))
            attempt += 1

    def _open(self, attempt: int) -> SerialPort | None:
        baud = self.baud
        try:
            port = self.side.opener(self.path, baud)
        except (OSError, ValueError) as error:
            if attempt == 0:
                log.warning("%s: cannot open: %s (retrying while it exists)", self.label, error)
            return None
        self.stats.opens += 1
        mode = " (line mode)" if self.line is not None else ""
        log.info("%s: opened at %d baud, role %r%s", self.label, baud, self.role, mode)
        return port

    async def _serve(self, port: SerialPort) -> bool:
        """Run one session; True if it got as far as a working device."""
        clock = self.side.clock
        config = replace(self.side.config.session, role=self.role)
        session: DeviceSession | LineSession
        if self.line is None:
            session = DeviceSession(config, clock())
        else:
            session = LineSession(self.line, self.role, clock(), naming=config.naming)
        self.session = session
        self.provisioner = self._provisioner() if self.provisionable else None
        self._port = port
        try:
            await self._apply(session.start())  # a line-mode session announces at once
            await self._loop(session, port)
        except OSError as error:
            log.warning("%s: %s; device unplugged?", self.label, error)
        finally:
            self._port = None
            port.close()
            session.close()  # no longer READY: what MQTT delivers now is dropped
            await self.participant.withdraw()
            self.stats.sessions_ended += 1
        pongs = session.stats.pongs if isinstance(session, DeviceSession) else 0
        return pongs > 0 or session.stats.to_mqtt > 0

    async def _loop(self, session: DeviceSession | LineSession, port: SerialPort) -> None:
        clock = self.side.clock
        while True:
            prov = self.provisioner if self.provisioner and not self.provisioner.finished else None
            claimed = prov is not None and prov.claimed  # the link session waits meanwhile
            deadline = float("inf") if claimed else session.next_deadline()
            if prov is not None:
                deadline = min(deadline, prov.next_deadline())
            wait = min(deadline - clock(), MAX_TICK)
            actions: list[Action] = []
            provisioning: list[ProvisionAction] = []
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    data = await port.read()
                # The provisioner first: the bytes that make it claim the port (Improv
                # packets) never reach the link's decoder as garbage.
                provisioning += prov.feed(data, clock()) if prov is not None else []
                if not (prov is not None and prov.claimed):
                    actions += session.feed(data, clock())
            except TimeoutError:
                pass
            if not (prov is not None and prov.claimed):
                actions += session.tick(clock())
            if prov is not None:
                silent = (
                    isinstance(session, DeviceSession) and session.state is State.AWAITING_HELLO
                )
                provisioning += prov.tick(clock(), link_silent=silent)
            if await self._apply(actions) or await self._provision(provisioning):
                return
            await asyncio.sleep(0)  # a device that never stops talking still lets others run

    # -- provisioning over USB -------------------------------------------------------------------

    def _provisioner(self) -> Provisioner:
        session = self.side.config.session
        # Probed only once a link board would have said hello or answered a describe request.
        wait = session.hello_timeout + session.describe_initial
        config = replace(self.side.config.provisioning, role=self.role, wait=wait)
        return Provisioner(config, self.side.clock())

    async def _provision(self, actions: list[ProvisionAction]) -> bool:
        """Carry out the provisioner's actions; True when it is done with the port."""
        pending = list(actions)
        while pending:
            action = pending.pop(0)
            if isinstance(action, Write):
                self._write(action)
            elif isinstance(action, LogLine):
                log.log(action.level, "%s: %s", self.label, action.message)
            elif isinstance(action, IssueCredentialsAction):
                pending += await self._issue(action.role)
            elif isinstance(action, Finished):
                self.left_alone = action.reason
                return True
        return False

    async def _issue(self, role: str) -> list[ProvisionAction]:
        provisioner, issuer = self.provisioner, self.side.issuer
        assert provisioner is not None and issuer is not None  # provisionable needs an issuer
        log.info("%s: an unprovisioned WiFi board; creating credentials for %r", self.label, role)
        try:
            # It rewrites the broker's files and reloads it: not on the event loop.
            credentials = await asyncio.to_thread(issuer, role)
        except Exception as error:  # whatever the issuer raises is one log line
            return provisioner.issue_failed(f"{type(error).__name__}: {error}", self.side.clock())
        return provisioner.issued(credentials, self.side.clock())

    async def _apply(self, actions: list[Action]) -> bool:
        """Carry out actions; True when the session asked to reopen the port."""
        reopen = False
        for action in actions:
            if isinstance(action, Announce):
                await self._announce(action.definition)
            elif isinstance(action, Withdraw):
                await self.participant.withdraw()
            elif isinstance(action, Reopen):
                reopen = True
            else:
                self._apply_now([action])
        return reopen

    def _apply_now(self, actions: list[Action]) -> None:
        """The actions that need no waiting: writes, publishes, log lines (a Withdraw is left
        to the caller, which awaits it)."""
        for action in actions:
            if isinstance(action, Write):
                self._write(action)
            elif isinstance(action, Publish):
                self._publish(action)
            elif isinstance(action, LogLine):
                log.log(action.level, "%s: %s", self.label, action.message)

    async def _announce(self, definition: ParticipantDefinition) -> None:
        self._outports = {port.queue: port.id for port in definition.outports}
        self._inports = {port.id: port.queue for port in definition.inports}
        await self.participant.announce(definition, self._on_inport)
        self.side.publish_seen()  # its component is known now

    def _write(self, action: Write) -> None:
        if self._port is not None and not self._port.write(action.data):
            self.stats.write_drops += 1
            if self.stats.write_drops in (1, 10, 100) or self.stats.write_drops % 1000 == 0:
                log.warning(
                    "%s: device is not reading; %d frames dropped",
                    self.label,
                    self.stats.write_drops,
                )

    def _publish(self, action: Publish) -> None:
        port = self._outports.get(action.topic)
        if port is None:  # the session publishes on the outports it announced only
            return
        self.stats.to_mqtt += 1
        self.participant.send(port, action.payload)

    def _on_inport(self, port: str, payload: bytes) -> None:
        session, queue = self.session, self._inports.get(port)
        if session is None or self._port is None or queue is None:
            return
        self.stats.to_device += 1
        self._apply_now(session.on_mqtt(queue, payload, self.side.clock()))


class SerialDevices:
    """The device side the host runs: ``await host.run(SerialDevices(config).run)``."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        opener: PortOpener = TtyPort.open,
        clock: Callable[[], float] = time.monotonic,
        lister: Lister = list_ports,
        monitor: MonitorFactory | None = udev_monitor,
        issuer: IssueCredentials | None = None,
    ) -> None:
        self.config = config
        self.issuer = issuer  # creates a board's broker user (provisioning over USB)
        self.opener = opener
        self.clock = clock
        self.lister = lister  # pyserial's comports(), or a test's list
        self.monitor = monitor  # None: poll the globs
        self.devices: dict[str, Device] = {}  # by path, the most recently found last
        self._host: BridgeHost | None = None
        self._seen: dict[str, float] = {}  # unconfigured device path -> epoch it was found

    @property
    def host(self) -> BridgeHost:
        assert self._host is not None, "the host is known once it runs this side"
        return self._host

    async def run(self, host: BridgeHost) -> None:
        self._host = host
        hotplug = watch(self.config.globs, self.config.poll_interval, self.monitor)
        log.info("%s", hotplug.description)
        if self.config.provision and self.issuer is None:
            log.warning(
                "bridges.serial.provision is set, but nothing can create credentials "
                "here; boards are not provisioned"
            )
        try:
            while True:
                self.rescan()
                await hotplug.changed()
        finally:
            hotplug.close()

    def rescan(self) -> None:
        """Start a task for each path the globs match that has none, stop those of the paths
        gone."""
        host = self.host
        present = set(scan(self.config.globs))
        running = host.running()
        for path in running - present:
            host.stop(path)
        found = identities(sorted(present - running), self.lister)
        for identity in found.values():
            self._start(identity)
        gone = self._seen.keys() - present
        for path in gone:
            del self._seen[path]
        if found or gone:
            self.publish_seen()
        self._forget_absent(present)

    def _start(self, identity: PortIdentity) -> None:
        path = identity.path
        line = line_device_for(self.config.lines, identity.role_keys(), identity.vid_pid)
        role = (line.role if line is not None else None) or self.config.roles.role_for(identity)
        device = self.devices.pop(path, None)
        provisionable = line is None and self.may_provision(identity)
        same = (identity, role, line, provisionable)
        if (
            device is None
            or (device.identity, device.role, device.line, device.provisionable) != same
        ):
            device = Device(self, identity, role, line, provisionable=provisionable)
        self.devices[path] = device  # last in the dict: the most recently found
        usb = identity.describe()
        log.info("%s: found%s, role %r", device.label, f" ({usb})" if usb else "", role)
        self.host.start(path, device.run)
        if self.config.roles.configured(identity) is None and (line is None or not line.role):
            self._seen.setdefault(path, time.time())

    def may_provision(self, identity: PortIdentity) -> bool:
        """Whether ``bridges.serial.provision`` names this board (and credentials can be made)."""
        keys = set(self.config.provision)
        if self.issuer is None or not keys:
            return False
        if "*" in keys or keys.intersection(identity.role_keys()):
            return True
        vid_pid = identity.vid_pid
        return vid_pid is not None and vid_pid in {key.lower() for key in keys}

    def _forget_absent(self, present: set[str]) -> None:
        """Keep the stats of at most MAX_ABSENT unplugged devices, the most recent ones."""
        running = self.host.running()
        absent = [path for path in self.devices if path not in present and path not in running]
        for path in absent[: max(0, len(absent) - MAX_ABSENT)]:
            del self.devices[path]
            self.host.forget(path)

    # -- seen and not adopted --------------------------------------------------------------------

    def seen(self) -> list[SeenDevice]:
        """The boards present without a configured role, as the host publishes them."""
        found = []
        for path, since in self._seen.items():
            device = self.devices.get(path)
            if device is None:
                continue
            identity = device.identity
            details = [f"component {device.component}"] if device.component else []
            details += [identity.describe()] if identity.describe() else []
            found.append(
                SeenDevice(
                    BRIDGE,
                    identity.config_key,
                    model=identity.product,
                    name=device.role,
                    last_seen=since,
                    details=", ".join(details),
                )
            )
        return found

    def publish_seen(self) -> None:
        self.host.set_seen(self.seen())


class SerialBridge:
    """The serial device side on a host of its own over ``transport``:
    ``await SerialBridge(config, transport).run()`` until cancelled (tests, embedding; the
    daemons start it through :mod:`gateway.bridges.run`)."""

    def __init__(
        self,
        config: BridgeConfig,
        transport: Transport,
        *,
        opener: PortOpener = TtyPort.open,
        clock: Callable[[], float] = time.monotonic,
        lister: Lister = list_ports,
        monitor: MonitorFactory | None = udev_monitor,
        issuer: IssueCredentials | None = None,
    ) -> None:
        self.side = SerialDevices(
            config, opener=opener, clock=clock, lister=lister, monitor=monitor, issuer=issuer
        )
        self.host = BridgeHost(BRIDGE, transport, period=config.period, clock=clock)

    async def run(self) -> None:
        await self.host.run(self.side.run)

    @property
    def devices(self) -> dict[str, Device]:
        return self.side.devices

    @property
    def announced(self) -> dict[str, ParticipantDefinition]:
        """The definitions announced now, by device path."""
        return self.host.announced()


def printable(path: str) -> str:
    """``path`` for a log line: as it is when it is printable UTF-8, else escaped (a link name
    with bytes that are not UTF-8 holds lone surrogates, which no log handler can encode)."""
    try:
        path.encode()
    except UnicodeEncodeError:
        return ascii(path)
    return path if path.isprintable() else ascii(path)
