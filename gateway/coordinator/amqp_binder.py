"""The coordinator on AMQP: edges as broker-side bindings, so the coordinator is not in the
data path (protocol.md 4.2).

- pubsub edge ``src -> tgt``: the inport queue ``tgt`` bound to the outport's fanout exchange
  ``src`` with routing key ``''`` (msgflo-nodejs ``bindQueue(tgt, src, '')``); removed with an
  unbind when the edge goes (the original never unbinds).
- dead-letter edge (a ``msgflo/RoundRobin``'s ``DEADLETTER``): the dead-letter target's queue
  bound to the fanout exchange ``dead-<worker queue>``, which is the worker queue's
  ``x-dead-letter-exchange``; declared durable as the original coordinator does, and deleted
  again when its last dead-letter edge goes. The original also puts a direct exchange
  ``out-<src>`` between source and workers; it routes exactly what a plain binding routes, and
  would be a durable object nobody removes, so the binding is made directly.
- edge inspection: per observed outport, an exclusive, auto-delete, server-lifetime-bound queue
  bound to its exchange (the original's ``.msgflo-broker-subscriptions-<uuid>``), deleted when
  the observation ends and by the broker when the coordinator's connection closes.
- discovery: the durable queue ``fbp`` as participants declare it (no arguments), every message
  acknowledged, even a bad one (protocol.md 2.1).
- the record of what it bound (``amqp_bindings.py``), read at connect, so that bindings of
  edges removed while no coordinator ran are removed too.

Everything here runs on two channels of the coordinator's own transport connection
(:meth:`gateway.transport.amqp.AmqpTransport.open_channel`), opened again after each reconnect
the transport makes: a refused operation (RabbitMQ closes the channel on a 404 or 406) costs
only the admin channel, which is reopened, and the edge is tried again later.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from gateway.coordinator.amqp_bindings import (
    Binding,
    binding_of,
    decode_record,
    read_record,
    record_queue,
    write_record,
)
from gateway.coordinator.binder import Binder, DataFn
from gateway.coordinator.wiring import EdgeState
from gateway.errors import TransportError
from gateway.participant.discovery import DISCOVERY_TOPIC
from gateway.transport.amqp import AmqpTransport, ensure_fanout
from gateway.transport.base import Delivery, DeliveryHandler

log = logging.getLogger(__name__)

AMQP_ERRORS = (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException)
TAP_PREFIX = ".msgflo-coordinator-tap-"
DISCOVERY_PREFETCH = 100

AdminOp = Callable[[AbstractChannel], Awaitable[None]]
TapFn = Callable[[AbstractIncomingMessage], Awaitable[None]]


class AmqpBinder(Binder):
    """Bindings, taps and discovery on channels of ``transport``'s connection; IIPs go
    through ``transport`` (to the inport's exchange, as a participant's output would)."""

    def __init__(
        self, transport: AmqpTransport, on_data: DataFn, *, record: str | None = None
    ) -> None:
        self.transport = transport
        self.url = transport.url
        self.bound: set[Binding] = set()
        # Bound on an earlier connection, or by an earlier coordinator of this deployment (its
        # record): durable, so probably still on the broker, and unbound unless still wanted.
        self._maybe_bound: set[Binding] = set()
        self._record = record  # the deployment's name; None: keep no record
        self._recorded: set[Binding] | None = None  # what the record on the broker says
        self.taps: dict[str, str] = {}  # observed exchange -> its tap queue
        self._on_data = on_data
        self._discovery: DeliveryHandler | None = None
        self._consuming: AbstractChannel | None = None  # discovery and taps
        self._admin: AbstractChannel | None = None  # declarations; may be closed by a refusal
        self._ready = asyncio.Event()  # the channels are open on the current connection
        self._setup: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifetime ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.transport.add_connect_listener(self._set_up_soon)
        if self.transport.connected:
            self._set_up_soon()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for exchange in list(self.taps):
            await self._untap(exchange)
        self._closing = True
        if self._setup is not None:
            self._setup.cancel()
            await asyncio.gather(self._setup, return_exceptions=True)
        await self._close_channels()

    async def wait_connected(self) -> None:
        await self._ready.wait()

    def _set_up_soon(self) -> None:
        """A connect listener: the transport (re)connected, so open our channels on it."""
        if self._closing:
            return
        if self._setup is not None:
            self._setup.cancel()
        self._setup = asyncio.create_task(self._set_up(), name=f"amqp binder {self.url}")

    async def _set_up(self) -> None:
        self._ready.clear()
        await self._close_channels()
        try:
            consuming = await self.transport.open_channel()
            consuming.close_callbacks.add(self._on_channel_closed)
            self._consuming = consuming
            await consuming.set_qos(prefetch_count=DISCOVERY_PREFETCH)
            self._admin = await self.transport.open_channel()
            await self._read_record()
            if self._discovery is not None:
                await self._consume_discovery()
        except (TransportError, *AMQP_ERRORS) as exc:
            # The next connect listener call sets up again; a channel refused while the
            # connection lives is retried by _on_channel_closed.
            log.warning("amqp binder: cannot set up on %s: %s", self.url, exc)
            return
        # Taps died with the old channel. Bindings are durable, but say them again (the
        # broker may have lost them), and remember them: an edge removed while the connection
        # was down (the graph changes, apply cannot reach the broker) must still be unbound.
        self.taps.clear()
        self._maybe_bound |= self.bound
        self.bound.clear()
        self._ready.set()
        if self.on_reconnect is not None:
            self.on_reconnect()

    def _on_channel_closed(self, sender: object, exc: BaseException | None) -> None:
        if self._consuming is not sender:
            return  # one we closed ourselves
        self._ready.clear()
        self._consuming = None
        if not self._closing and self.transport.connected:
            log.warning("amqp binder: consuming channel closed: %r; opening it again", exc)
            self._set_up_soon()

    async def _close_channels(self) -> None:
        channels, self._consuming, self._admin = (self._consuming, self._admin), None, None
        for channel in channels:
            if channel is not None and not channel.is_closed:
                try:
                    await channel.close()
                except (*AMQP_ERRORS, OSError) as exc:
                    log.debug("amqp binder: close failed: %r", exc)

    # -- discovery -----------------------------------------------------------------------------

    async def subscribe_discovery(self, handler: DeliveryHandler) -> None:
        self._discovery = handler
        if self._ready.is_set():
            await self._consume_discovery()

    async def _consume_discovery(self) -> None:
        assert self._consuming is not None
        # As msgflo-nodejs participants declare it: durable, no arguments (protocol.md 2.1).
        queue = await self._consuming.declare_queue(DISCOVERY_TOPIC, durable=True)
        await queue.consume(self._on_discovery, no_ack=False)

    async def _on_discovery(self, message: AbstractIncomingMessage) -> None:
        try:
            if self._discovery is not None:
                self._discovery(Delivery(DISCOVERY_TOPIC, message.body))
        finally:
            await message.ack()  # every message, even a bad one: it will not get better

    # -- bindings ------------------------------------------------------------------------------

    async def apply(self, states: Sequence[EdgeState], observed: frozenset[str]) -> bool:
        if not self._ready.is_set():
            return False
        wanted = {b for s in states if (b := binding_of(s)) is not None}
        complete = True
        for binding in sorted((self.bound | self._maybe_bound) - wanted):
            complete &= await self._unbind(binding)
        for binding in sorted(wanted - self.bound):
            complete &= await self._bind(binding)
        for exchange in sorted(set(self.taps) - observed):
            await self._untap(exchange)
        for exchange in sorted(observed - set(self.taps)):
            complete &= await self._tap(exchange)
        if self.bound != self._recorded:
            await self._write_record()
        return complete

    async def _read_record(self) -> None:
        if self._record is None or self._admin is None:
            return
        body = await read_record(self._admin, self._record)
        if body is None:
            self._recorded = set()
            return
        try:
            self._recorded = decode_record(body)
        except ValueError as exc:
            log.warning("amqp: ignoring %s: %s", record_queue(self._record), exc)
            self._recorded = set()
        self._maybe_bound |= self._recorded

    async def _write_record(self) -> None:
        if self._record is None:
            return
        bound, name = set(self.bound), self._record

        async def write(channel: AbstractChannel) -> None:
            await write_record(channel, name, bound)

        if await self._admin_op(f"record the bindings in {record_queue(name)}", write):
            self._recorded = bound

    async def _bind(self, binding: Binding) -> bool:
        async def bind(channel: AbstractChannel) -> None:
            # Binding does not depend on who came first: a missing exchange is declared as
            # its owner would (participant outport, or dead-letter exchange as the original
            # coordinator: durable fanout); an existing one is left as its owner declared it.
            await self._ensure_fanout(channel, binding.exchange)
            queue = await channel.get_queue(binding.queue, ensure=False)
            await queue.bind(binding.exchange, routing_key="")

        if await self._admin_op(f"bind {binding.queue} to {binding.exchange}", bind):
            self.bound.add(binding)
            self._maybe_bound.discard(binding)
            log.info("amqp: bound queue %s to exchange %s", binding.queue, binding.exchange)
            return True
        return False

    async def _unbind(self, binding: Binding) -> bool:
        async def unbind(channel: AbstractChannel) -> None:
            queue = await channel.get_queue(binding.queue, ensure=False)
            await queue.unbind(binding.exchange, routing_key="")

        self.bound.discard(binding)
        self._maybe_bound.discard(binding)
        done = await self._admin_op(f"unbind {binding.queue} from {binding.exchange}", unbind)
        if done:
            log.info("amqp: unbound queue %s from exchange %s", binding.queue, binding.exchange)
        if binding.dead and not any(b.exchange == binding.exchange for b in self.bound):
            await self._admin_op(f"delete {binding.exchange}", _delete_unused(binding.exchange))
        return done

    async def _ensure_fanout(self, channel: AbstractChannel, name: str) -> None:
        # Not declared durable over a port declared ``persistent: false``: RabbitMQ would
        # refuse it (406), to us or to the participant.
        await ensure_fanout(self.transport.open_channel, channel, name)

    async def _admin_op(self, what: str, op: AdminOp) -> bool:
        """Run ``op`` on the admin channel; a refusal is logged and the channel reopened."""
        if self._admin is None:
            return False
        try:
            await op(self._admin)
            return True
        except AMQP_ERRORS as exc:
            log.warning("amqp: cannot %s: %s; will retry", what, exc)
        try:
            self._admin = await self.transport.open_channel()
        except (TransportError, *AMQP_ERRORS) as exc:
            log.warning("amqp: cannot reopen the admin channel: %r", exc)
        return False

    # -- inspection ----------------------------------------------------------------------------

    async def _tap(self, exchange: str) -> bool:
        name = f"{TAP_PREFIX}{uuid.uuid4().hex[:12]}-{exchange}"[:255]

        async def tap(channel: AbstractChannel) -> None:
            await self._ensure_fanout(channel, exchange)
            assert self._consuming is not None
            queue = await self._consuming.declare_queue(
                name, durable=False, exclusive=True, auto_delete=True
            )
            await queue.bind(exchange, routing_key="")
            await queue.consume(self._tap_receiver(exchange), no_ack=True)

        if not await self._admin_op(f"inspect {exchange}", tap):
            return False
        self.taps[exchange] = name
        return True

    def _tap_receiver(self, exchange: str) -> TapFn:
        async def receive(message: AbstractIncomingMessage) -> None:
            self._on_data(exchange, message.body)

        return receive

    async def _untap(self, exchange: str) -> None:
        name = self.taps.pop(exchange, None)
        if name is None or self._admin is None:
            return

        async def delete(channel: AbstractChannel) -> None:
            await channel.queue_delete(name)

        await self._admin_op(f"delete inspection queue {name}", delete)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, queue: str, payload: bytes, *, qos: int = 0) -> None:
        # To the inport's own fanout exchange: the broker delivers it to the queue (and only
        # there: an inport exchange is not an edge source).
        self.transport.publish(queue, payload, qos=qos)


def _delete_unused(exchange: str) -> AdminOp:
    async def delete(channel: AbstractChannel) -> None:
        await channel.exchange_delete(exchange, if_unused=True)

    return delete
