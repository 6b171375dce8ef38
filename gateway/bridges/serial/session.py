"""One USB serial device's session with the bridge, as a pure state machine (no I/O, no clock).

The driver (``bridge.py``) feeds it what the port gave (:meth:`DeviceSession.feed`), the
messages MQTT delivered on the device's inport queues (:meth:`DeviceSession.on_mqtt`) and the
time (:meth:`DeviceSession.tick`, also the ``now`` of every call), and carries out the
:data:`Action` values each call returns: bytes to write, a participant to announce or to stop
announcing, MQTT messages to publish, log lines, and a request to reopen the port.

States, following ``docs/serial-link.md`` section 8::

    AWAITING_HELLO --hello--> DESCRIBING --valid description--> READY
         |  no hello in time: describe requests with backoff     |  ping every ping_interval
         +------------------------------------------------------>|  missed pongs: CLOSED (reopen)
    DESCRIBING --bad description--> FAILED (waits for the next hello; pings go on)
    any state --hello with another protocol--> INCOMPATIBLE (pings only)
    any state --hello--> DESCRIBING again (the device restarted; its firmware may have changed)

An Uno resets when its port is opened and sits in its bootloader for 1-2 s, so the session
never sleeps a fixed time: it waits for the hello and, if none comes, asks for the description
with growing intervals (a board that does not reset answers those).
"""

from __future__ import annotations

import collections
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.bridges.serial.description import (
    DescriptionAssembler,
    DeviceDescription,
    check_topic,
    parse_description,
)
from gateway.bridges.serial.link import (
    AVR_MAX_FRAME,
    PROTOCOL_VERSION,
    DescribeRequest,
    Description,
    DeviceError,
    ErrorCounters,
    Frame,
    Hello,
    LinkDecoder,
    Ping,
    Pong,
    PortMessage,
    Received,
    encode_frame,
)
from gateway.errors import (
    DefinitionError,
    DescriptionError,
    FrameTooLargeError,
    SerialLinkError,
)
from gateway.participant.definition import ParticipantDefinition, QueueNaming, define

# -- actions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Write:
    """Bytes to write to the serial port."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Announce:
    """Start (or keep) announcing this participant and subscribe to its inport queues."""

    definition: ParticipantDefinition


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Stop announcing this participant and unsubscribe from its inport queues."""

    definition: ParticipantDefinition


@dataclass(frozen=True, slots=True)
class Publish:
    """An MQTT message: a device outport's payload, unchanged."""

    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class LogLine:
    """A line for the log; the driver adds the port name."""

    level: int
    message: str


@dataclass(frozen=True, slots=True)
class Reopen:
    """Close the port and open it again (the device stopped answering pings)."""

    reason: str


Action = Write | Announce | Withdraw | Publish | LogLine | Reopen


class State(enum.Enum):
    AWAITING_HELLO = "awaiting hello"
    DESCRIBING = "describing"
    READY = "ready"
    FAILED = "bad description"
    INCOMPATIBLE = "incompatible protocol"
    CLOSED = "closed"


# -- configuration and counters ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Timing and naming of a session. Times are seconds."""

    role: str
    hello_timeout: float = 2.5  # an Uno's bootloader takes 1-2 s after the open resets it
    describe_initial: float = 0.5  # first retry interval of describe requests, doubled each time
    describe_max: float = 8.0
    ping_interval: float = 5.0
    max_missed_pongs: int = 3
    report_interval: float = 30.0  # dropped-frame summaries at most this often
    naming: QueueNaming = QueueNaming.PYTHON
    # A device that says hello more than restart_burst times within restart_window seconds is
    # restarting in a loop (or hostile): it is described again only once it has been quiet for
    # restart_holdoff seconds, so it cannot flood the log, the broker and the coordinator.
    restart_burst: int = 10
    restart_window: float = 60.0
    restart_holdoff: float = 30.0

    def describe_delay(self, attempt: int) -> float:
        return min(self.describe_max, self.describe_initial * 2.0 ** min(attempt, 16))


@dataclass
class SessionStats:
    """What happened on this session, for logs, tests and the benchmark."""

    to_mqtt: int = 0
    to_device: int = 0
    refused: int = 0  # MQTT messages too big for the device, or for a port it lacks
    dropped_while_not_ready: int = 0
    unknown_outport: int = 0
    device_errors: int = 0
    pings: int = 0
    pongs: int = 0
    describe_requests: int = 0
    hellos: int = 0
    hellos_held_off: int = 0  # hellos in a restart loop: not described at once


class RateLimitedReport:
    """Logs the first occurrence of a problem at once, then a count summary per interval."""

    def __init__(self, what: str, interval: float) -> None:
        self._what = what
        self._interval = interval
        self._pending: dict[str, int] = {}
        self._next_at: float | None = None

    def add(self, kind: str, detail: str, now: float) -> list[Action]:
        if self._next_at is None or (now >= self._next_at and not self._pending):
            self._next_at = now + self._interval
            return [LogLine(logging.WARNING, f"{self._what}: {detail}")]
        self._pending[kind] = self._pending.get(kind, 0) + 1
        return []

    def flush(self, now: float) -> list[Action]:
        if not self._pending or self._next_at is None or now < self._next_at:
            return []
        counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(self._pending.items()))
        total = sum(self._pending.values())
        self._pending.clear()
        self._next_at = now + self._interval
        line = f"{self._what}: {total} more in the last {self._interval:.0f} s ({counts})"
        return [LogLine(logging.WARNING, line)]

    @property
    def deadline(self) -> float | None:
        return self._next_at if self._pending else None


def make_definition(
    role: str, description: DeviceDescription, naming: QueueNaming = QueueNaming.PYTHON
) -> ParticipantDefinition:
    """The participant announced for a described device: id = role, so a replug is the same
    participant to the coordinator; queues ``role/port`` (msgflo-python naming) by default."""
    return define(
        role,
        description.component,
        inports=[{"id": p.id, "type": p.type} for p in description.inports],
        outports=[{"id": p.id, "type": p.type} for p in description.outports],
        label=description.label,
        icon=description.icon or "microchip",
        participant_id=role,
        naming=naming,
    )


# -- the session ---------------------------------------------------------------------------------


@dataclass
class _Exchange:
    """The describe exchange in progress: what was asked, when to ask again."""

    assembler: DescriptionAssembler = field(default_factory=DescriptionAssembler)
    seq: int = -1
    attempt: int = 0
    retry_at: float = 0.0


class DeviceSession:
    """The bridge's side of one device's serial link; see the module docstring."""

    def __init__(self, config: SessionConfig, now: float) -> None:
        self.config = config
        self.state = State.AWAITING_HELLO
        self.stats = SessionStats()
        self.decoder = LinkDecoder()
        self.hello: Hello | None = None
        self.description: DeviceDescription | None = None
        self.definition: ParticipantDefinition | None = None  # set while announced
        self.max_frame = AVR_MAX_FRAME  # until a hello says otherwise (docs/serial-link.md 6)
        self.counters = ErrorCounters()
        self._seq = 0
        self._exchange = _Exchange(retry_at=now + config.hello_timeout)
        self._ping_at = now + config.ping_interval
        self._ping_seq: int | None = None
        self._missed = 0
        self._inports: dict[str, int] = {}
        self._hellos: collections.deque[float] = collections.deque(maxlen=config.restart_burst)
        self._restart_loop = False  # logged, until the device is described again
        self._drops = RateLimitedReport("dropped frames", config.report_interval)
        self._refusals = RateLimitedReport("refused messages", config.report_interval)
        self._handlers: dict[type, Callable[[Received, float], list[Action]]] = {
            Hello: self._on_hello,
            Description: self._on_description,
            PortMessage: self._on_port_message,
            Pong: self._on_pong,
            DeviceError: self._on_device_error,
        }

    def start(self) -> list[Action]:
        """What to do right after opening: a lone 0x00 ends any half frame the device holds."""
        return [Write(b"\x00")]

    # -- inputs ----------------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> list[Action]:
        """Bytes read from the port."""
        actions: list[Action] = []
        if self.state is State.CLOSED:
            return actions
        for event in self.decoder.feed(data):
            if isinstance(event, SerialLinkError):
                actions += self._drops.add(event.kind, str(event), now)
            else:
                actions += self._dispatch(event, now)
        return actions

    def on_mqtt(self, topic: str, payload: bytes, now: float) -> list[Action]:
        """A message that arrived on one of the device's inport queues."""
        index = self._inports.get(topic)
        if index is None or self.state is not State.READY:
            self.stats.dropped_while_not_ready += 1
            return self._refusals.add("not ready", f"{topic}: device not ready, dropped", now)
        try:
            data = encode_frame(
                PortMessage(index, payload), self._next_seq(), max_frame=self.max_frame
            )
        except FrameTooLargeError as error:
            self.stats.refused += 1
            line = f"{topic}: {len(payload)}-byte payload refused: {error}"
            return self._refusals.add("too large", line, now)
        self.stats.to_device += 1
        return [Write(data)]

    def tick(self, now: float) -> list[Action]:
        """Time passed: retry a describe, send a ping, count a missed pong, flush summaries."""
        actions = self._drops.flush(now) + self._refusals.flush(now)
        if self.state in (State.AWAITING_HELLO, State.DESCRIBING):
            actions += self._describe_timeout(now)
        elif self.state is not State.CLOSED and now >= self._ping_at:
            actions += self._ping(now)
        return actions

    def next_deadline(self) -> float:
        """When :meth:`tick` has something to do next (the driver may tick earlier)."""
        times = [d for d in (self._drops.deadline, self._refusals.deadline) if d is not None]
        if self.state in (State.AWAITING_HELLO, State.DESCRIBING):
            times.append(self._exchange.retry_at)
        elif self.state is not State.CLOSED:
            times.append(self._ping_at)
        return min(times) if times else float("inf")

    def close(self) -> list[Action]:
        """The port is going away: stop announcing."""
        self.state = State.CLOSED
        return self._withdraw()

    # -- frames from the device ------------------------------------------------------------------

    def _dispatch(self, received: Received, now: float) -> list[Action]:
        handler = self._handlers.get(type(received.frame))
        if handler is None:  # a describe request or ping from a device: not for a host
            return self._drops.add("unexpected", f"unexpected {_name(received.frame)}", now)
        return handler(received, now)

    def _on_hello(self, received: Received, now: float) -> list[Action]:
        hello = received.frame
        assert isinstance(hello, Hello)
        self.hello = hello
        self.stats.hellos += 1
        actions = self._withdraw()
        who = f"{hello.name or '?'} {hello.version}".strip()
        looping = self._restarting_in_a_loop(now)
        if hello.protocol != PROTOCOL_VERSION:
            self.state = State.INCOMPATIBLE
            line = f"hello from {who}: protocol {hello.protocol}, this bridge speaks 1; not used"
            return actions if looping else [*actions, LogLine(logging.ERROR, line)]
        self.max_frame = hello.max_frame
        self.state = State.DESCRIBING
        if looping:
            # Described once it has been quiet for a while; every further hello pushes that back.
            self.stats.hellos_held_off += 1
            self._exchange = _Exchange(retry_at=now + self.config.restart_holdoff)
            if self._restart_loop:
                return actions
            self._restart_loop = True
            holdoff, window = self.config.restart_holdoff, self.config.restart_window
            line = f"hello from {who}: {len(self._hellos)} hellos within {window:g} s, "
            line += f"restarting in a loop; described again after {holdoff:g} s without one"
            return [*actions, LogLine(logging.WARNING, line)]
        actions.append(LogLine(logging.INFO, f"hello from {who}, max frame {hello.max_frame}"))
        self._exchange = _Exchange()
        return actions + self._request(0, now)

    def _restarting_in_a_loop(self, now: float) -> bool:
        self._hellos.append(now)
        full = len(self._hellos) == self._hellos.maxlen
        return full and now - self._hellos[0] < self.config.restart_window

    def _on_description(self, received: Received, now: float) -> list[Action]:
        part = received.frame
        assert isinstance(part, Description)
        if self.state not in (State.AWAITING_HELLO, State.DESCRIBING):
            return []  # a late reply to a request given up on
        if received.seq != self._exchange.seq:
            return []
        self.state = State.DESCRIBING
        try:
            text = self._exchange.assembler.add(part)
            if text is None:
                self._exchange.attempt = 0
                return self._request(self._exchange.assembler.next_offset, now)
            description = parse_description(text)
        except DescriptionError as error:
            self.state = State.FAILED
            self._ping_at = now + self.config.ping_interval
            return [LogLine(logging.ERROR, f"{error}; not announced (waiting for a restart)")]
        return self._ready(description, now)

    def _on_port_message(self, received: Received, now: float) -> list[Action]:
        message = received.frame
        assert isinstance(message, PortMessage)
        if self.state is not State.READY or self.definition is None:
            self.stats.dropped_while_not_ready += 1
            return self._drops.add("early", "message before the description, dropped", now)
        outports = self.definition.outports
        if message.port >= len(outports):
            self.stats.unknown_outport += 1
            detail = f"message for outport {message.port}, the device has {len(outports)}"
            return self._drops.add("no such outport", detail, now)
        self.stats.to_mqtt += 1
        return [Publish(outports[message.port].queue, message.payload)]

    def _on_pong(self, received: Received, now: float) -> list[Action]:
        pong = received.frame
        assert isinstance(pong, Pong)
        if self._ping_seq is None or received.seq != self._ping_seq:
            return []
        self.stats.pongs += 1
        self._ping_seq = None
        self._missed = 0
        if pong.counters == self.counters:
            return []
        self.counters = pong.counters
        c = pong.counters
        line = f"device counts dropped frames: cobs {c.cobs}, crc {c.crc}, "
        line += f"overflow {c.overflow}, rejected {c.rejected}"
        return [LogLine(logging.WARNING, line)]

    def _on_device_error(self, received: Received, now: float) -> list[Action]:
        error = received.frame
        assert isinstance(error, DeviceError)
        self.stats.device_errors += 1
        detail = f"device error {error.code}{': ' + error.text if error.text else ''}"
        return self._drops.add(f"device error {error.code}", detail, now)

    # -- describing ------------------------------------------------------------------------------

    def _request(self, offset: int, now: float) -> list[Action]:
        exchange = self._exchange
        exchange.seq = self._next_seq()
        exchange.retry_at = now + self.config.describe_delay(exchange.attempt)
        exchange.attempt += 1
        self.stats.describe_requests += 1
        return [Write(encode_frame(DescribeRequest(offset), exchange.seq))]

    def _describe_timeout(self, now: float) -> list[Action]:
        if now < self._exchange.retry_at:
            return []
        first = self.state is State.AWAITING_HELLO and self._exchange.attempt == 0
        actions: list[Action] = []
        if first:
            line = f"no hello within {self.config.hello_timeout:g} s; asking for the description"
            actions.append(LogLine(logging.INFO, line))
        return actions + self._request(self._exchange.assembler.next_offset, now)

    def _ready(self, description: DeviceDescription, now: float) -> list[Action]:
        self._restart_loop = False
        try:
            definition = make_definition(self.config.role, description, self.config.naming)
            for key, ports in (("inports", definition.inports), ("outports", definition.outports)):
                for n, port in enumerate(ports):
                    check_topic(port.queue, f"{key}[{n}].queue")
        except (DefinitionError, DescriptionError) as error:  # a role unfit for a queue name
            self.state = State.FAILED
            self._ping_at = now + self.config.ping_interval
            role = _excerpt(self.config.role)
            line = f"cannot announce the device as role {role}: {error}"
            return [LogLine(logging.ERROR, line)]
        self.description = description
        self.definition = definition
        self._inports = {p.queue: n for n, p in enumerate(definition.inports)}
        self.state = State.READY
        self._ping_at = now + self.config.ping_interval
        self._ping_seq = None
        self._missed = 0
        line = f"ready as {definition.role!r} ({description.component}, "
        line += f"{len(description.inports)} in, {len(description.outports)} out)"
        return [LogLine(logging.INFO, line), Announce(definition)]

    # -- liveness --------------------------------------------------------------------------------

    def _ping(self, now: float) -> list[Action]:
        if self._ping_seq is not None:
            self._missed += 1
            if self._missed >= self.config.max_missed_pongs:
                return self._give_up()
        self._ping_seq = self._next_seq()
        self._ping_at = now + self.config.ping_interval
        self.stats.pings += 1
        return [Write(encode_frame(Ping(), self._ping_seq))]

    def _give_up(self) -> list[Action]:
        reason = f"{self._missed} pings without a pong"
        actions = self.close()
        return [*actions, LogLine(logging.WARNING, f"{reason}; reopening"), Reopen(reason)]

    # -- helpers ---------------------------------------------------------------------------------

    def _withdraw(self) -> list[Action]:
        definition, self.definition = self.definition, None
        self._inports = {}
        return [] if definition is None else [Withdraw(definition)]

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq


def _name(frame: Frame) -> str:
    return type(frame).__name__


def _excerpt(text: str, limit: int = 60) -> str:
    """``text`` for a log line: quoted, escaped (lone surrogates too) and cut to ``limit``."""
    quoted = ascii(text[:limit])
    return quoted if len(text) <= limit else f"{quoted}... ({len(text)} characters)"


__all__ = [
    "Action",
    "Announce",
    "DeviceSession",
    "LogLine",
    "Publish",
    "Reopen",
    "SessionConfig",
    "State",
    "Withdraw",
    "Write",
    "make_definition",
]
