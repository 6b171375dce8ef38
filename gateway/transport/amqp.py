"""AMQP 0-9-1 transport on aio-pika, declaring broker objects exactly as msgflo-nodejs does.

Wire compatibility (reference doc 4.2, msgflo-nodejs ``src/amqp.coffee``):

- publishing to ``name`` publishes to the durable **fanout exchange** ``name`` with routing key
  ``''`` (an outport);
- subscribing to ``name`` declares the durable **queue** ``name`` with
  ``x-dead-letter-exchange: dead-<name>``, a durable fanout exchange of the same name bound to it,
  and consumes it with manual acknowledgements and a prefetch (default 2, as the original);
- discovery (``fbp``) goes to the durable queue ``fbp`` through the default exchange (reference
  doc 2.1: ``assertQueue('fbp')`` then ``sendToQueue``), not to an exchange.

Everything that talks to the broker (publishes, acks, nacks) goes through one ordered outbox and
one sender task: ``publish`` must return at once, and a message's ack must follow the outputs
sent while processing it, as in msgflo-nodejs. Reconnecting is the lifecycle every transport shares
(:class:`gateway.transport.lifecycle.Lifecycle`): it replays ports and consumers and then calls
the connect listeners so participants announce themselves again. The coordinator's AMQP binder
opens its channels on this same connection (:meth:`AmqpTransport.open_channel`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from pamqp.commands import Basic

from gateway.broker import BrokerUrl
from gateway.errors import BrokerUrlError, TransportError
from gateway.transport.backoff import Backoff
from gateway.transport.base import (
    ConnectListener,
    Delivery,
    DeliveryHandler,
    Persistence,
    Transport,
    TransportStats,
    mqtt_client_id,
)
from gateway.transport.lifecycle import Lifecycle
from gateway.transport.tls import tls_context

log = logging.getLogger(__name__)

DEFAULT_PREFETCH = 2  # msgflo-nodejs participant option ``prefetch``
DEFAULT_MAX_QUEUED = 10_000
CONNECT_TIMEOUT = 10.0
DISCOVERY_QUEUE = "fbp"
TRANSIENT, PERSISTENT = 1, 2  # AMQP delivery modes


def dead_letter_exchange(queue: str) -> str:
    """msgflo-nodejs names an inport's dead-letter exchange ``dead-<queue>``."""
    return f"dead-{queue}"


ChannelOpener = Callable[[], Awaitable[AbstractChannel]]


async def exchange_exists(open_channel: ChannelOpener, name: str) -> bool:
    """Whether exchange ``name`` exists, asked on a channel of its own: RabbitMQ closes the
    channel that asks about a missing one (404), and declaring it ourselves could contradict
    its owner's durability (406, e.g. a msgflo-nodejs port with ``persistent: false``)."""
    channel = await open_channel()
    try:
        await channel.declare_exchange(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()
    return True


async def ensure_fanout(
    open_channel: ChannelOpener, channel: AbstractChannel, name: str
) -> AbstractExchange:
    """Fanout exchange ``name`` for a port of someone else's (an edge's source, a tap, an IIP's
    target): used as its owner declared it, and declared durable, as msgflo-nodejs declares
    ports, only when missing."""
    if await exchange_exists(open_channel, name):
        return await channel.get_exchange(name, ensure=False)
    return await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)


@dataclass(frozen=True, slots=True)
class _Publish:
    topic: str
    payload: bytes
    delivery_mode: int


@dataclass(slots=True)
class _Pending:
    """A delivery's ack handle (``Delivery.tag``): valid only on the channel it came from."""

    channel: aiormq.abc.AbstractChannel
    delivery_tag: int
    settled: bool = False


@dataclass(frozen=True, slots=True)
class _Settle:
    pending: _Pending
    ack: bool
    requeue: bool = False


@dataclass(slots=True)
class _Consumer:
    handler: DeliveryHandler
    manual_ack: bool
    observer: bool = False  # a private copy of an exchange's messages, not its queue
    queue: aio_pika.abc.AbstractQueue | None = None
    tag: str | None = None


async def connect_amqp(
    url: BrokerUrl, name: str, tls: ssl.SSLContext | None
) -> aio_pika.abc.AbstractConnection:
    """One AMQP connection to ``url``, named ``name`` in RabbitMQ's management views, over
    TLS when ``tls`` is given (:func:`gateway.transport.tls.tls_context`).

    aiormq opens the socket with asyncio.open_connection, whose transport sets TCP_NODELAY
    (asyncio base_events._set_nodelay): small messages do not wait on Nagle, unlike amqplib in
    msgflo-nodejs (~44 msg/s, reference doc 4.2).
    """
    return await aio_pika.connect(
        host=url.host,
        port=url.port,
        login=url.username or "guest",
        password=url.password or "guest",
        virtualhost=url.vhost or "/",
        ssl=tls is not None,
        ssl_context=tls,
        timeout=CONNECT_TIMEOUT,
        heartbeat=url.options.get("heartbeat"),  # None: aiormq's default (60 s)
        client_properties={"connection_name": name},
    )


class AmqpTransport(Transport):
    """A self-reconnecting AMQP connection; see :class:`gateway.transport.base.Transport`.

    A delivery is acked once its handler returns and nacked (dead-lettered) if the handler
    raises, unless the subscription is ``manual_ack``: then the subscriber calls :meth:`ack` or
    :meth:`nack` itself, and at most ``prefetch`` messages are unacknowledged at a time.
    """

    def __init__(
        self,
        url: BrokerUrl,
        *,
        client_id: str = "",
        prefetch: int | None = None,
        backoff: Backoff | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        if url.scheme not in ("amqp", "amqps"):
            raise BrokerUrlError(str(url), "not an AMQP URL")
        self.url = url
        self.tls = tls_context(url)  # here, so a bad certificate file fails at start
        self.client_id = mqtt_client_id(url, client_id)  # the connection's name; "%i" as MQTT
        # As given, else the URL's ``?prefetch=N``, else msgflo-nodejs's default.
        self.prefetch = prefetch or int(url.options.get("prefetch", DEFAULT_PREFETCH))
        self.stats = TransportStats()
        self._life = Lifecycle(
            url,
            connect=self._connect_once,
            replay=self._replay,
            cleanup=self._cleanup,
            backoff=backoff,
            stats=self.stats,
        )
        self._max_queued = max_queued
        self._consumers: dict[str, _Consumer] = {}
        self._persistence: dict[str, Persistence] = {}  # per port queue; DURABLE when absent
        self._outbox: collections.deque[_Publish | _Settle] = collections.deque()
        self._wake = asyncio.Event()  # something was put in the outbox
        self._life.add_listener(self._wake.set)  # what waited for the connection goes out
        self._idle = asyncio.Event()  # the outbox is empty and written out
        self._idle.set()
        self._connection: AbstractRobustConnection | aio_pika.abc.AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}  # declared on this connection
        self._paused = False
        self._held: collections.deque[tuple[str, AbstractIncomingMessage]] = collections.deque()
        self._sender: asyncio.Task[None] | None = None

    # -- context manager -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._life.start()
        self._sender = asyncio.create_task(self._send_forever(), name=f"amqp sender {self.url}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._life.close()
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self._close_connection()

    # -- the lifecycle's steps -----------------------------------------------------------------

    async def _connect_once(self) -> None:
        try:
            connection = await connect_amqp(self.url, self.client_id or "msgflo-gateway", self.tls)
        except aiormq.exceptions.AMQPError as exc:
            raise TransportError(f"broker refused the connection: {exc!r}") from None
        self._connection = connection
        connection.close_callbacks.add(self._on_close)

    async def _replay(self) -> None:
        """A channel, then the ports and consumers of the last connection, before the
        connect listeners announce anything."""
        assert self._connection is not None
        try:
            channel = await self._connection.channel(publisher_confirms=False)
            channel.close_callbacks.add(self._on_close)
            await channel.set_qos(prefetch_count=self.prefetch)
            self._channel = channel
            self._exchanges = {}
            for port in list(self._persistence):
                await self._exchange(port)
            for queue in list(self._consumers):
                await self._consume(queue)
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException) as exc:
            raise TransportError(f"cannot set up the channel: {exc!r}") from None
        self._wake.set()  # the sender may have messages waiting for the connection

    async def _cleanup(self) -> None:
        self._held.clear()  # unacked deliveries of a dead channel: the broker redelivers them
        await self._close_connection()

    def _on_close(self, sender: object, exc: BaseException | None) -> None:
        self._life.lost()

    async def _close_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            connection.close_callbacks.discard(self._on_close)
            try:
                await connection.close()
            except (aiormq.exceptions.AMQPError, OSError) as exc:
                log.debug("amqp: close failed: %r", exc)

    async def open_channel(self) -> AbstractChannel:
        """A new channel on this transport's connection, for the coordinator's binder: a
        refused declaration closes only that channel. Raises TransportError when there is no
        connection; the binder is told of the next one by a connect listener."""
        connection = self._connection
        if connection is None or connection.is_closed:
            raise TransportError(f"not connected to {self.url}")
        try:
            return await connection.channel()
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException) as exc:
            raise TransportError(f"cannot open a channel: {exc!r}") from None

    # -- public API ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._life.connected

    async def wait_connected(self) -> None:
        await self._life.wait_connected()

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        persistent: bool = False,
    ) -> None:
        """Queue ``payload`` for the outport exchange ``topic`` (``fbp``: the discovery queue).

        ``persistent`` (or the topic's :class:`Persistence`) sets delivery mode 2, so a durable
        queue keeps the message across a broker restart; msgflo-nodejs sends everything
        transient. Messages wait in the outbox while disconnected, up to ``max_queued``; beyond
        that they are dropped and counted.
        """
        if retain:
            raise TransportError("AMQP has no retained messages (retain=True is MQTT only)")
        if len(self._outbox) >= self._max_queued:
            self._count_drop(topic)
            return
        persistent = persistent or self._persistence.get(topic) is Persistence.PERSISTENT
        mode = PERSISTENT if persistent else TRANSIENT
        self._put(_Publish(topic, payload, mode))
        self.stats.published += 1

    async def flush(self) -> None:
        while not self._idle.is_set():
            await self._idle.wait()

    async def subscribe(
        self,
        topic: str,
        handler: DeliveryHandler,
        *,
        qos: int = 0,
        no_local: bool = False,
        retain_as_published: bool = False,
        replay_retained: bool = True,
        manual_ack: bool = False,
    ) -> None:
        """Consume the inport queue ``topic``, declaring it as msgflo-nodejs does.

        ``replay_retained`` is accepted either way: AMQP has no retained messages to replay.
        """
        if no_local or retain_as_published:
            raise TransportError("no_local and retain_as_published are MQTT 5 options")
        self._consumers[topic] = _Consumer(handler, manual_ack)
        if self.connected:
            await self._consume(topic)

    async def subscribe_acked(self, topic: str, handler: DeliveryHandler, *, qos: int = 0) -> bool:
        await self.subscribe(topic, handler, qos=qos, manual_ack=True)
        return True

    async def observe(self, topic: str, handler: DeliveryHandler, *, qos: int = 0) -> None:
        """Copies of what is published to the exchange ``topic`` (an outport, or an inport's
        own exchange), through a private queue: nothing is taken from the port's queue."""
        if topic == DISCOVERY_QUEUE:
            raise TransportError("on AMQP 'fbp' is a queue, not an exchange: it cannot be observed")
        self._consumers[topic] = _Consumer(handler, manual_ack=False, observer=True)
        if self.connected:
            await self._consume(topic)

    def shared_subscription(self, topic: str, group: str) -> str:
        """``topic`` itself: every consumer of an inport queue takes messages from the same
        queue, one consumer per message (competing consumers, as msgflo-nodejs roles)."""
        return topic

    async def declare_port(self, topic: str, persistence: Persistence) -> None:
        """Declare ``topic``'s fanout exchange now and after every reconnect, before the
        connect listeners announce the participant (as msgflo-nodejs asserts its ports at
        start): a coordinator that binds it after discovery finds it as declared here, instead
        of declaring it durable first. ``TRANSIENT``: the exchange (and, when subscribed, the
        queue) non-durable and auto-delete, as msgflo-nodejs does for ``persistent: false``;
        ``PERSISTENT``: messages published with delivery mode 2."""
        self._persistence[topic] = persistence
        if self.connected:
            try:
                await self._exchange(topic)
            except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException) as exc:
                # A refusal (406: declared otherwise before) closes the channel: the reconnect
                # loop logs and retries, declaring it again first.
                log.warning("amqp: cannot declare port %r: %r", topic, exc)

    def _durable(self, name: str) -> bool:
        return self._persistence.get(name) is not Persistence.TRANSIENT

    async def unsubscribe(self, topic: str) -> None:
        """Stop consuming ``topic``; the queue stays, as in msgflo-nodejs (durable, shared)."""
        consumer = self._consumers.pop(topic, None)
        if consumer is None or consumer.queue is None or consumer.tag is None or not self.connected:
            return
        await consumer.queue.cancel(consumer.tag)

    def add_connect_listener(self, listener: ConnectListener) -> None:
        self._life.add_listener(listener)

    def pause_reading(self) -> None:
        """Hold deliveries unacknowledged: with the prefetch limit, the broker stops sending."""
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        while self._held and not self._paused:
            queue, message = self._held.popleft()
            self._dispatch(queue, message)

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge ``delivery``; once settled, further acks and nacks are ignored."""
        self._settle(delivery, ack=True)

    def nack(self, delivery: Delivery) -> None:
        """Reject ``delivery`` without requeueing: the broker dead-letters it to ``dead-<queue>``
        (and drops it when that exchange does not exist), as msgflo-nodejs's ``nackMessage``."""
        self._settle(delivery, ack=False)

    # -- receiving -----------------------------------------------------------------------------

    async def _consume(self, queue_name: str) -> None:
        consumer = self._consumers.get(queue_name)
        if consumer is None:
            return
        queue = await self._declare_for(queue_name, observer=consumer.observer)
        if self._consumers.get(queue_name) is consumer:  # not unsubscribed meanwhile
            consumer.queue = queue
            consumer.tag = await queue.consume(self._receiver(queue_name), no_ack=False)

    async def _declare_for(self, name: str, *, observer: bool) -> aio_pika.abc.AbstractQueue:
        """The queue to consume for ``name``: its inport queue as msgflo-nodejs declares it,
        the discovery queue, or (``observer``) a private queue bound to its exchange."""
        channel = self._channel
        assert channel is not None
        if observer:
            # Server-named, exclusive, auto-delete: gone with this connection, never left to
            # fill up (the original's dump tool declared a durable queue named like the port).
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(await self._exchange(name), routing_key="")
            return queue
        if name == DISCOVERY_QUEUE:
            # Declared as the participants declare it (plain durable queue, default exchange):
            # other arguments would make RabbitMQ close the channel (PRECONDITION_FAILED).
            return await channel.declare_queue(DISCOVERY_QUEUE, durable=True)
        durable = self._durable(name)
        queue = await channel.declare_queue(
            name,
            durable=durable,
            auto_delete=not durable,
            arguments={"x-dead-letter-exchange": dead_letter_exchange(name)},
        )
        await queue.bind(await self._exchange(name), routing_key="")
        return queue

    def _receiver(self, queue: str) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def receive(message: AbstractIncomingMessage) -> None:
            self.stats.received += 1
            if self._paused:
                self._held.append((queue, message))
            else:
                self._dispatch(queue, message)

        return receive

    def _dispatch(self, queue: str, message: AbstractIncomingMessage) -> None:
        assert message.delivery_tag is not None  # consumed with no_ack=False
        pending = _Pending(message.channel, message.delivery_tag)
        consumer = self._consumers.get(queue)
        if consumer is None:
            # Unsubscribed while it was on its way: back to the queue for the next consumer.
            self._put(_Settle(pending, ack=False, requeue=True))
            return
        delivery = Delivery(queue, message.body, qos=1, tag=pending)
        try:
            consumer.handler(delivery)
        except Exception:
            log.exception("amqp: handler for %r failed; dead-lettering the message", queue)
            self._settle(delivery, ack=False)
            return
        if not consumer.manual_ack:
            self._settle(delivery, ack=True)

    def _settle(self, delivery: Delivery, *, ack: bool) -> None:
        pending = delivery.tag
        if not isinstance(pending, _Pending) or pending.settled:
            return  # not from AMQP, or settled already: a second ack would close the channel
        pending.settled = True
        self._put(_Settle(pending, ack))

    # -- sending -------------------------------------------------------------------------------

    def _put(self, item: _Publish | _Settle) -> None:
        self._outbox.append(item)
        self._idle.clear()
        self._wake.set()

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox and self.connected:
                await self._send_next()
            if not self._outbox:
                self._idle.set()

    async def _send_next(self) -> None:
        item = self._outbox[0]
        # Wait for the socket only on the last item of a burst, so a burst is written in one go.
        last = len(self._outbox) == 1
        try:
            await self._send(item, wait=last)
        except (
            aiormq.exceptions.AMQPError,
            aio_pika.exceptions.AMQPException,
            OSError,
            TransportError,
        ) as exc:
            if isinstance(item, _Publish) and self.connected:
                log.warning("amqp: cannot publish to %r: %r; dropped", item.topic, exc)
                self._outbox.popleft()
                self.stats.dropped += 1
            return  # lost the connection: the item is sent again after the reconnect
        except aiormq.exceptions.ChannelInvalidStateError:
            return
        self._outbox.popleft()

    async def _send(self, item: _Publish | _Settle, *, wait: bool) -> None:
        channel = self._channel
        assert channel is not None
        underlay = await channel.get_underlay_channel()
        # aiormq's Channel can publish without waiting for the socket; its ABC cannot say so.
        assert isinstance(underlay, aiormq.Channel)
        if isinstance(item, _Settle):
            await self._send_settle(item, underlay, wait=wait)
            return
        properties = Basic.Properties(delivery_mode=item.delivery_mode)
        if item.topic == DISCOVERY_QUEUE:
            await self._discovery_queue(channel)
            exchange, key = "", DISCOVERY_QUEUE
        else:
            exchange, key = (await self._exchange(item.topic)).name, ""
        await underlay.basic_publish(
            item.payload, exchange=exchange, routing_key=key, properties=properties, wait=wait
        )

    @staticmethod
    async def _send_settle(item: _Settle, underlay: aiormq.abc.AbstractChannel, wait: bool) -> None:
        if item.pending.channel is not underlay:
            return  # its channel is gone; the broker has requeued it already
        tag = item.pending.delivery_tag
        if item.ack:
            await underlay.basic_ack(tag, wait=wait)
        else:
            await underlay.basic_nack(tag, requeue=item.requeue, wait=wait)

    async def _exchange(self, name: str) -> AbstractExchange:
        """The fanout exchange ``name``, declared once per connection: as its port says when
        it is one of ours (:meth:`declare_port`), else with :func:`ensure_fanout`."""
        exchange = self._exchanges.get(name)
        if exchange is None:
            channel = self._channel
            assert channel is not None
            if name in self._persistence:
                durable = self._durable(name)
                exchange = await channel.declare_exchange(
                    name, aio_pika.ExchangeType.FANOUT, durable=durable, auto_delete=not durable
                )
            else:
                exchange = await ensure_fanout(self.open_channel, channel, name)
            self._exchanges[name] = exchange
        return exchange

    async def _discovery_queue(self, channel: AbstractChannel) -> None:
        if DISCOVERY_QUEUE not in self._exchanges:
            # msgflo-nodejs: assertQueue('fbp') (durable, no arguments), then sendToQueue.
            await channel.declare_queue(DISCOVERY_QUEUE, durable=True)
            self._exchanges[DISCOVERY_QUEUE] = channel.default_exchange

    def _count_drop(self, topic: str) -> None:
        self.stats.dropped += 1
        if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
            log.warning(
                "amqp: outbox full, dropped message for %r (%d dropped so far)",
                topic,
                self.stats.dropped,
            )
