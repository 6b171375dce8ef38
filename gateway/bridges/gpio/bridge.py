"""The GPIO bridge's device side: gpiozero devices as participants on the bridge host (thin).

Every device in ``bridges.gpio.devices`` is opened once, at start, on the one pin factory, and
announced as its role's participant (:mod:`~gateway.bridges.gpio.kinds`); a device that cannot
be opened (its pin is busy) is one log line and left out, the others run.

Inputs. gpiozero calls ``when_activated`` / ``when_deactivated`` from its own threads (lgpio's
or RPi.GPIO's callback thread; the mock pins' caller). The callbacks only put an :class:`Edge`
into the :class:`Inbox`: bounded (a pin flapping faster than the loop drains drops edges,
counted, and the inputs' levels are read again once it drains), and one loop wake-up per
burst, through ``call_soon_threadsafe``. In the loop each input's
:class:`~gateway.bridges.gpio.debounce.Debouncer` turns edges into settled levels, read from
the pin itself when a quiet time ends; a button's ``held`` is a timer from its press, cancelled
by its release. No thread is started here: gpiozero's ``hold_time`` and ``MotionSensor``
would each add one that wakes many times a second for ever (a motion sensor is a plain digital
input: a PIR module's output is already a clean, held level).

Outputs. Inport messages arrive in the loop and are carried out at once (a pin write; a blink
is gpiozero's own thread while it blinks). A message an inport cannot use is one log line,
counted (:attr:`GpioBridge.bad`), and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gpiozero import (
    LED,
    PWMLED,
    Button,
    Buzzer,
    DigitalInputDevice,
    DigitalOutputDevice,
    Factory,
)

from gateway.bridges.gpio import kinds
from gateway.bridges.gpio.debounce import Debouncer, Step
from gateway.bridges.gpio.header import where
from gateway.bridges.host import BridgeHost, DeviceParticipant
from gateway.config import GpioBridgeConfig, GpioDevice

log = logging.getLogger("gateway.bridges.gpio")

QUEUE = 1024  # edges waiting for the loop
INPUTS = ("button", "motion", "input")
DEFAULT_BOUNCE = {"button": 0.05, "input": 0.05, "motion": None}  # seconds
DEFAULT_PULL = {"button": "up", "input": "up", "motion": "down"}


@dataclass(frozen=True)
class Edge:
    role: str
    active: bool


class Inbox:
    """Edges from any thread to the loop's ``handle(edges, lost)``: at most ``cap`` wait, and
    one ``call_soon_threadsafe`` per burst (``lost``: some were dropped since the last)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handle: Callable[[list[Edge], bool], None],
        cap: int = QUEUE,
    ) -> None:
        self.loop = loop
        self.handle = handle
        self.cap = cap
        self.dropped = 0
        self._lock = threading.Lock()
        self._items: list[Edge] = []
        self._lost = False
        self._scheduled = False

    def put(self, edge: Edge) -> None:
        """From any thread; never blocks, never raises."""
        with self._lock:
            if len(self._items) >= self.cap:
                self.dropped += 1
                self._lost = True
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    log.warning("inputs change faster than they are handled; %d edges dropped",
                                self.dropped)  # fmt: skip
                return
            self._items.append(edge)
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: the bridge is stopping
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            lost, self._lost = self._lost, False
            self._scheduled = False
        self.handle(items, lost)


@dataclass
class Opened:
    """One device: its config, its gpiozero object, its participant."""

    role: str
    config: GpioDevice
    device: Any  # a gpiozero device
    participant: DeviceParticipant
    debouncer: Debouncer | None = None  # inputs
    held: asyncio.TimerHandle | None = None  # a button's pending held
    label: str = field(default="")


class GpioBridge:
    def __init__(self, section: GpioBridgeConfig, factory: Factory) -> None:
        self.section = section
        self.factory = factory
        self.devices: dict[str, Opened] = {}
        self.bad = 0  # inport messages that could not be used
        self.failed: list[str] = []  # roles whose device could not be opened
        self._loop: asyncio.AbstractEventLoop | None = None
        self.inbox: Inbox | None = None

    async def run(self, host: BridgeHost) -> None:
        self._loop = asyncio.get_running_loop()
        self.inbox = Inbox(self._loop, self._edges)
        try:
            for role, config in self.section.devices:
                opened = self._open(host, role, config)
                if opened is not None:
                    await self._announce(opened)
            await asyncio.Event().wait()  # until cancelled: the devices call us
        finally:
            self._close()

    # -- opening and closing ---------------------------------------------------------------------

    def _open(self, host: BridgeHost, role: str, config: GpioDevice) -> Opened | None:
        label = f"gpio {role} ({config.kind} on {where(config.pin)})"
        try:
            device = _make(config, self.factory)
        except Exception as error:  # gpiozero's and the pin library's errors: one line
            self.failed.append(role)
            log.error("%s: cannot open: %s: %s; not announced", label, type(error).__name__, error)
            return None
        participant = host.device(role, label)
        opened = Opened(role, config, device, participant, label=label)
        self.devices[role] = opened
        if config.kind in INPUTS:
            bounce = config.bounce_time or DEFAULT_BOUNCE[config.kind]
            opened.debouncer = Debouncer(bounce, bool(device.is_active))
            inbox = self.inbox
            assert inbox is not None
            device.when_activated = lambda: inbox.put(Edge(role, True))
            device.when_deactivated = lambda: inbox.put(Edge(role, False))
        return opened

    async def _announce(self, opened: Opened) -> None:
        definition = kinds.definition(opened.role, opened.config)
        if opened.config.kind in INPUTS:
            await opened.participant.announce(definition)
            if opened.config.kind != "button":  # a level a graph wants from the start
                assert opened.debouncer is not None
                self._emit(opened, opened.debouncer.reported)
        else:
            await opened.participant.announce(
                definition, lambda port, payload: self._inport(opened, port, payload)
            )

    def _close(self) -> None:
        for opened in self.devices.values():
            if opened.held is not None:
                opened.held.cancel()
            try:
                opened.device.close()
            except Exception as error:  # closing must reach every device
                log.warning("%s: closing: %r", opened.label, error)
        self.devices.clear()

    # -- inputs ----------------------------------------------------------------------------------

    def _edges(self, edges: list[Edge], lost: bool) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for edge in edges:
            opened = self.devices.get(edge.role)
            if opened is not None and opened.debouncer is not None:
                self._step(opened, opened.debouncer.edge(edge.active, now))
        if lost:  # edges were dropped: what the pins say now is the truth
            for opened in self.devices.values():
                if opened.debouncer is not None:
                    level = bool(opened.device.is_active)
                    self._step(opened, opened.debouncer.edge(level, now))

    def _settle(self, opened: Opened) -> None:
        assert self._loop is not None and opened.debouncer is not None
        if opened.role not in self.devices:
            return  # closed meanwhile
        level = bool(opened.device.is_active)
        self._step(opened, opened.debouncer.settle(level, self._loop.time()))

    def _step(self, opened: Opened, step: Step) -> None:
        assert self._loop is not None
        if step.level is not None:
            self._emit(opened, step.level)
        if step.wake is not None:
            self._loop.call_at(step.wake, self._settle, opened)

    def _emit(self, opened: Opened, level: bool) -> None:
        send = opened.participant.send
        kind = opened.config.kind
        if kind == "motion":
            send("motion", _json(level))
            return
        send("state", _json(level))
        if kind != "button":
            return
        if opened.held is not None:
            opened.held.cancel()
            opened.held = None
        if level:
            send("pressed", b"true")
            assert self._loop is not None
            opened.held = self._loop.call_later(opened.config.hold_time, self._held, opened)
        else:
            send("released", b"true")

    def _held(self, opened: Opened) -> None:
        opened.held = None
        if opened.role in self.devices:
            opened.participant.send("held", b"true")

    # -- outputs ---------------------------------------------------------------------------------

    def _inport(self, opened: Opened, port: str, payload: bytes) -> None:
        try:
            _carry_out(opened.device, port, payload)
        except kinds.BadPayloadError as error:
            self.bad += 1
            if self.bad <= 3 or self.bad % 1000 == 0:
                log.warning("%s: inport %s: %s; message dropped (%d so far)", opened.label, port,
                            error, self.bad)  # fmt: skip
        except Exception as error:  # the pin library failed: one line, the bridge goes on
            self.bad += 1
            log.error("%s: inport %s: %s: %s", opened.label, port, type(error).__name__, error)


def _carry_out(device: Any, port: str, payload: bytes) -> None:
    """One inport message on an output device (gpiozero's LED, PWMLED, Buzzer or
    DigitalOutputDevice)."""
    if port == "state":
        device.on() if kinds.switch(payload) else device.off()
    elif port == "level":
        device.value = kinds.level(payload)
    elif port in ("blink", "beep"):
        how = kinds.blink(payload)
        if how is None:
            device.off()
        else:
            device.blink(on_time=how.on_time, off_time=how.off_time, n=how.n, background=True)
    elif kinds.trigger(payload):
        {"on": device.on, "off": device.off, "toggle": device.toggle}[port]()


def _json(level: bool) -> bytes:
    return b"true" if level else b"false"


def _make(config: GpioDevice, factory: Factory) -> Any:
    """The gpiozero device of ``config``, without a bounce time (the bridge debounces)."""
    pin, kind = config.pin, config.kind
    if kind in INPUTS:
        pull = config.pull or DEFAULT_PULL[kind]
        pull_up = {"up": True, "down": False, "none": None}[pull]
        active = config.active_high if pull == "none" else None
        if kind == "button":
            return Button(pin, pull_up=pull_up, active_state=active, pin_factory=factory)
        return DigitalInputDevice(pin, pull_up=pull_up, active_state=active, pin_factory=factory)
    high = True if config.active_high is None else config.active_high
    if kind == "pwm_led":
        return PWMLED(pin, active_high=high, frequency=config.frequency, pin_factory=factory)
    made: dict[str, Callable[..., Any]] = {
        "led": LED, "buzzer": Buzzer, "output": DigitalOutputDevice,
    }  # fmt: skip
    return made[kind](pin, active_high=high, pin_factory=factory)
