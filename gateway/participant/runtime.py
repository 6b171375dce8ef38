"""Runs one participant on a transport: subscribes its inports, announces it, feeds its handler.

Messages reach the handler one at a time, in arrival order, through a bounded inbox. When the
inbox reaches its size the transport stops reading from the broker (TCP backpressure) instead of
dropping messages, and resumes once the handler has caught up to half of it. A few messages
already read from the socket may still arrive after the pause, so the hard limit, past which
messages are dropped and counted, is a multiple of the size.

Acknowledgement (AMQP; MQTT has no per-message ack at this level): a message is acked once
``process`` has returned, after the outputs it sent (the transport keeps them in order), and
nacked, which dead-letters it to ``dead-<queue>`` as msgflo-nodejs does, when ``process`` raises.
A message the process acked or nacked itself is not settled again. Until it is acked the broker
counts it against the prefetch limit and redelivers it if this process dies.

A ``shared`` group makes several participants of one role share their inports' messages, each
message to one of them: on AMQP that is what consuming one queue does anyway; on MQTT it is an
MQTT 5 shared subscription (``$share/<group>/<topic>``). Discovery keeps the plain queue names.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from gateway.errors import PortError
from gateway.participant.definition import Direction, Json, ParticipantDefinition, PortDefinition
from gateway.participant.discovery import (
    DEFAULT_PERIOD,
    DISCOVERY_TOPIC,
    announce_interval,
    encode_discovery,
)
from gateway.participant.payload import Message, Raw, encode
from gateway.transport.base import Delivery, Transport

log = logging.getLogger(__name__)

ProcessFn = Callable[[str, Message], Awaitable[None] | None]
OutputListener = Callable[[str, Json | Raw], None]
DEFAULT_INBOX = 1000
HARD_LIMIT_FACTOR = 4


@dataclass
class RuntimeStats:
    received: int = 0
    dropped: int = 0
    pauses: int = 0
    sent: int = 0
    failed: int = 0
    announced: int = 0


class ParticipantRuntime:
    """The engine behind a participant. ``process(inport, message)`` may be sync or async."""

    def __init__(
        self,
        definition: ParticipantDefinition,
        process: ProcessFn,
        transport: Transport,
        *,
        discovery_period: float = DEFAULT_PERIOD,
        iips: Mapping[str, Json] | None = None,
        inbox_size: int = DEFAULT_INBOX,
        shared: str | None = None,
    ) -> None:
        self.definition = definition
        self.stats = RuntimeStats()
        self._process = process
        self._transport = transport
        self._interval = announce_interval(discovery_period)
        self._discovery = encode_discovery(definition)
        self._iips = dict(iips or {})
        self._inbox: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
        self._inbox_size = inbox_size
        self._shared = shared
        self._paused = False
        self._listeners: list[OutputListener] = []
        self._first_connect = asyncio.Event()
        self._outports = {p.id: p for p in definition.outports}
        for port_id in self._iips:
            self._inport(port_id)

    async def run(self, on_start: Callable[[], Awaitable[None] | None] | None = None) -> None:
        """Subscribe, announce and process messages until cancelled."""
        for port in (*self.definition.inports, *self.definition.outports):
            if not port.hidden:
                await self._transport.declare_port(port.queue, port.persistence)
        for port in self.definition.inports:
            if not port.hidden:
                await self._subscribe(port)
        # No await between these two lines: a connection made in between cannot be missed.
        self._transport.add_connect_listener(self._on_connected)
        if self._transport.connected:
            self._on_connected()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._work())
            tasks.create_task(self._announce_periodically())
            tasks.create_task(self._start(on_start))

    # -- sending -------------------------------------------------------------------------------

    def send(self, outport: str, data: Json | Raw) -> None:
        """Send ``data`` on ``outport``: JSON-encoded, or byte-for-byte when wrapped in ``Raw``.
        A hidden outport is not published; local output listeners still see the data."""
        port = self._outports.get(outport)
        if port is None:
            known = ", ".join(self._outports) or "none"
            role = self.definition.role
            raise PortError(f"{role} has no outport {outport!r} (outports: {known})")
        for listener in self._listeners:
            listener(outport, data)
        if not port.hidden:
            self._transport.publish(port.queue, encode(data), qos=port.qos)
            self.stats.sent += 1

    def inject(self, inport: str, data: Json) -> None:
        """Feed ``data`` to the handler as if it had arrived on ``inport`` (IIPs, sources)."""
        self._enqueue(self._inport(inport).id, Message.from_value(data))

    def add_output_listener(self, listener: OutputListener) -> None:
        self._listeners.append(listener)

    def ack(self, message: Message) -> None:
        if isinstance(message.delivery, Delivery):
            self._transport.ack(message.delivery)

    def nack(self, message: Message) -> None:
        if isinstance(message.delivery, Delivery):
            self._transport.nack(message.delivery)

    def announce(self) -> None:
        self._transport.publish(DISCOVERY_TOPIC, self._discovery)
        self.stats.announced += 1

    async def started(self) -> None:
        """Wait until the participant has connected and announced itself once."""
        await self._first_connect.wait()

    # -- receiving -----------------------------------------------------------------------------

    async def _subscribe(self, port: PortDefinition) -> None:
        topic = port.queue
        if self._shared is not None:
            topic = self._transport.shared_subscription(topic, self._shared)
        await self._transport.subscribe_acked(topic, self._receiver(port), qos=port.qos)

    def _receiver(self, port: PortDefinition) -> Callable[[Delivery], None]:
        port_id = port.id

        def receive(delivery: Delivery) -> None:
            self._enqueue(port_id, Message.from_bytes(delivery.payload, delivery.topic, delivery))

        return receive

    def _enqueue(self, port_id: str, message: Message) -> None:
        self.stats.received += 1
        if self._inbox.qsize() >= self._inbox_size * HARD_LIMIT_FACTOR:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                role = self.definition.role
                log.warning(
                    "%s: inbox full, dropped message on %r (%d dropped so far)",
                    role,
                    port_id,
                    self.stats.dropped,
                )
            self.nack(message)  # AMQP: dead-lettered, not left holding a prefetch slot
            return
        self._inbox.put_nowait((port_id, message))
        if not self._paused and self._inbox.qsize() >= self._inbox_size:
            self._paused = True
            self.stats.pauses += 1
            self._transport.pause_reading()

    async def _work(self) -> None:
        while True:
            port_id, message = await self._inbox.get()
            await self._handle(port_id, message)
            if self._paused and self._inbox.qsize() <= self._inbox_size // 2:
                self._paused = False
                self._transport.resume_reading()

    async def _handle(self, port_id: str, message: Message) -> None:
        try:
            result = self._process(port_id, message)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self.stats.failed += 1
            log.exception("%s: process(%r) failed: %s", self.definition.role, port_id, exc)
            self.nack(message)
            return
        self.ack(message)  # after the outputs process sent: the transport keeps the order

    # -- lifecycle -----------------------------------------------------------------------------

    def _on_connected(self) -> None:
        self.announce()
        if not self._first_connect.is_set():
            self._first_connect.set()
            for port_id, data in self._iips.items():
                self.inject(port_id, data)

    async def _announce_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._transport.connected:
                self.announce()

    async def _start(self, on_start: Callable[[], Awaitable[None] | None] | None) -> None:
        if on_start is None:
            return
        await self._first_connect.wait()
        result = on_start()
        if inspect.isawaitable(result):
            await result

    def _inport(self, port_id: str) -> PortDefinition:
        port = self.definition.port(Direction.IN, port_id)
        if port is None:
            known = ", ".join(p.id for p in self.definition.inports) or "none"
            raise PortError(f"{self.definition.role} has no inport {port_id!r} (inports: {known})")
        return port
