"""The transport interface: what participants and the coordinator need from a broker.

One implementation per URL scheme (``mqtt/`` for mqtt:// and mqtts://, ``amqp.py`` for
amqp:// and amqps://, ``memory.py`` for the in-process memory:// of tests), made by
:func:`gateway.transport.open_transport`. A transport is an async context manager that keeps
its connection alive by itself, through the lifecycle they all share (``lifecycle.py``): it
reconnects with backoff, replays subscriptions and then tells its connect listeners, so callers
announce themselves again after every reconnect.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from gateway.broker import BrokerUrl
from gateway.errors import TransportError


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message received from the broker. ``tag`` is the transport's ack/nack handle."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    tag: object | None = None


@dataclass(frozen=True)
class Will:
    """Last will: published by the broker if the connection dies without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


@dataclass
class TransportStats:
    """Message counters of a transport."""

    published: int = 0
    received: int = 0
    dropped: int = 0
    connects: int = 0


class Persistence(enum.Enum):
    """How long a port's broker objects and messages live: msgflo's port option ``persistent``.

    msgflo-nodejs knows ``persistent: false`` (its queue and exchange are deleted with their
    last user) and the default (durable objects, transient messages, lost when the broker
    restarts); ``persistent: true`` adds what the original lacked: messages that a durable
    queue keeps across a broker restart. MQTT brokers have no such per-topic setting.
    """

    TRANSIENT = "transient"  # persistent: false
    DURABLE = "durable"  # not given
    PERSISTENT = "persistent"  # persistent: true

    @classmethod
    def from_option(cls, value: bool | None) -> Persistence:
        if value is None:
            return cls.DURABLE
        return cls.PERSISTENT if value else cls.TRANSIENT


DeliveryHandler = Callable[[Delivery], None]
ConnectListener = Callable[[], None]


class Transport(abc.ABC):
    """A live, self-healing connection to one broker."""

    url: BrokerUrl
    stats: TransportStats

    @abc.abstractmethod
    async def __aenter__(self) -> Self:
        """Start connecting in the background and return at once; see :meth:`wait_connected`."""

    @abc.abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Disconnect cleanly and stop reconnecting."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool: ...

    @abc.abstractmethod
    async def wait_connected(self) -> None:
        """Wait until connected (bound it with ``asyncio.timeout``)."""

    @abc.abstractmethod
    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Queue ``payload`` for ``topic`` and return at once (never blocks the event loop)."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until everything published so far has left (QoS 0) or been acknowledged."""

    @abc.abstractmethod
    async def subscribe(
        self,
        topic: str,
        handler: DeliveryHandler,
        *,
        qos: int = 0,
        no_local: bool = False,
        retain_as_published: bool = False,
        replay_retained: bool = True,
    ) -> None:
        """Deliver messages on ``topic`` to ``handler``, now and after every reconnect.

        The options are MQTT 5 subscription options, for forwarders: ``no_local`` (never
        receive our own publishes), ``retain_as_published`` (the retain flag as the publisher
        set it) and ``replay_retained`` (whether retained messages arrive at subscribe time).
        A transport that cannot honour a non-default option raises ``TransportError``.
        """

    @property
    def supports_no_local(self) -> bool:
        """Whether :meth:`subscribe` takes ``no_local``: not on MQTT 3.1.1, where a client
        receives its own messages back and cannot tell them from others'."""
        return True

    async def subscribe_acked(self, topic: str, handler: DeliveryHandler, *, qos: int = 0) -> bool:
        """Subscribe so that the subscriber settles each delivery with :meth:`ack` or
        :meth:`nack`. Returns whether the transport acknowledges per message (AMQP); where it
        does not (MQTT), this is a plain :meth:`subscribe` and ack/nack do nothing."""
        await self.subscribe(topic, handler, qos=qos)
        return False

    async def observe(self, topic: str, handler: DeliveryHandler, *, qos: int = 0) -> None:
        """Deliver a copy of each message published to ``topic`` without consuming anyone
        else's messages (dump tools, monitors). On MQTT every subscriber gets a copy, so this
        is a plain :meth:`subscribe`; AMQP binds a private queue."""
        await self.subscribe(topic, handler, qos=qos)

    def shared_subscription(self, topic: str, group: str) -> str:
        """The name to subscribe to so that the subscribers of ``group`` share the messages of
        ``topic`` (each message to one of them). Raises ``TransportError`` where the transport
        cannot share."""
        raise TransportError(f"{type(self).__name__} cannot share {topic!r} between subscribers")

    @abc.abstractmethod
    async def unsubscribe(self, topic: str) -> None: ...

    async def declare_port(self, topic: str, persistence: Persistence) -> None:  # noqa: B027
        """Make ``topic`` one of this connection's own ports: its broker objects exist from
        now on and after every reconnect, before anything is announced, declared and its
        messages sent as ``persistence`` says. Call it before subscribing or publishing.
        Nothing to do on MQTT, where topics need no declaring."""

    @abc.abstractmethod
    def add_connect_listener(self, listener: ConnectListener) -> None:
        """Call ``listener`` after each (re)connect, once subscriptions are replayed."""

    @abc.abstractmethod
    def pause_reading(self) -> None:
        """Stop taking messages from the broker (backpressure) until :meth:`resume_reading`."""

    @abc.abstractmethod
    def resume_reading(self) -> None: ...

    def ack(self, delivery: Delivery) -> None:  # noqa: B027 - MQTT has nothing to acknowledge
        """Acknowledge a delivery (AMQP); on MQTT there is nothing to do."""

    def nack(self, delivery: Delivery) -> None:  # noqa: B027
        """Reject a delivery (AMQP: dead-letter it); on MQTT there is nothing to do."""


def mqtt_client_id(url: BrokerUrl, default: str, *, persistent: bool = False) -> str:
    """The client id: the URL's ``clientId`` option or ``default``; ``%i`` becomes hex digits,
    as msgflo-cpp's ``clientId=name-%i`` (a number there). Tools that may run twice at once use
    it: a broker disconnects a client when another connects with the same id.

    The digits are random, except for a ``persistent`` session: the broker keeps that session
    under its client id, so a participant restarted on the same machine must ask for the same
    id to get its queued messages; there they are a hash of the host name and the id."""
    cid = url.options.get("clientId") or default
    if "%i" not in cid:
        return cid
    if persistent:
        seed = f"{socket.gethostname()}\0{cid}".encode()
        return cid.replace("%i", hashlib.blake2s(seed, digest_size=4).hexdigest())
    return cid.replace("%i", secrets.token_hex(4))


def mqtt_keepalive(url: BrokerUrl, given: int | None) -> int:
    """Keepalive seconds: the argument, else the URL's ``keepAlive`` option, else 60."""
    return given or int(url.options.get("keepAlive", 60))
