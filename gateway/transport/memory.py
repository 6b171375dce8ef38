"""An in-process broker and its transport, ``memory://<name>``: tests without mosquitto.

Every transport opened for the same name shares one :class:`MemoryBroker`, which behaves as an
MQTT 5 broker does for what the gateway uses: topic filters with ``+`` and ``#``, retained
messages, ``no_local``, ``retain_as_published``, ``replay_retained=False``, shared
subscriptions ``$share/<group>/<filter>`` (each message to one member, round-robin), wills, and
QoS accepted (nothing is ever lost in memory, so it only caps the delivered QoS).

Choices, where the interface leaves room:

- Deliveries are scheduled on the event loop, never made inside :meth:`publish`, and reach each
  subscriber in the order they were published; a transport whose reading is paused holds them.
- A message reaches each client once, however many of its subscriptions match (the exact filter
  wins, else the first wildcard subscribed), as the MQTT transport dispatches; every shared
  group matching it gives one more copy to one of its members.
- It is MQTT-like: ``subscribe_acked`` is a plain subscribe (returns False, ack/nack do
  nothing), ``observe`` a plain subscribe and ``declare_port`` does nothing, as the base class
  documents for MQTT.
- QoS 0 messages published while disconnected are dropped and counted; QoS 1 and 2 are kept
  and sent after the reconnect, and :meth:`MemoryTransport.flush` waits for them.
- Retained messages live as long as the process: use a fresh name per test.
- :meth:`MemoryBroker.stop`/:meth:`MemoryBroker.start` simulate the broker going away (every
  connection lost; a broker that is down publishes no wills) and coming back (every transport
  reconnects through the lifecycle every transport shares, :mod:`gateway.transport.lifecycle`,
  replays its subscriptions and tells its connect listeners);
  :meth:`MemoryTransport.lose_connection` one client's network going away (its will is
  published). One broker serves one event loop.

Command lines refuse ``memory://`` (:func:`gateway.broker.resolve_broker`): alone in a daemon it
would talk to nobody.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from gateway.broker import BrokerUrl
from gateway.errors import BrokerUrlError, TransportError
from gateway.transport.backoff import Backoff
from gateway.transport.base import (
    ConnectListener,
    Delivery,
    DeliveryHandler,
    Transport,
    TransportStats,
    Will,
)
from gateway.transport.lifecycle import Lifecycle
from gateway.transport.topics import (
    check_filter,
    check_topic,
    shared_subscription_name,
    split_share,
    topic_matches,
)

log = logging.getLogger("gateway.transport.memory")

# In-process, a reconnect costs nothing: retry soon, so tests of a broker restart stay quick.
RECONNECT = Backoff(initial=0.01, maximum=0.1)

# -- the broker --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Subscription:
    name: str  # as subscribed, $share/... included
    pattern: str  # what topics are matched against
    group: str | None
    handler: DeliveryHandler
    qos: int
    no_local: bool
    retain_as_published: bool
    replay_retained: bool


@dataclass
class MemoryBroker:
    """One in-process broker, shared by every :class:`MemoryTransport` of its name."""

    name: str
    retained: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    up: bool = True
    _clients: list[MemoryTransport] = field(default_factory=list)
    _turns: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def clients(self) -> tuple[MemoryTransport, ...]:
        """The transports connected now."""
        return tuple(self._clients)

    def stop(self) -> None:
        """Go away: every connection is lost; reconnect attempts fail until :meth:`start`."""
        self.up = False
        for client in list(self._clients):
            client.lose_connection()

    def start(self) -> None:
        """Come back: transports reconnect at their next attempt (:data:`RECONNECT`)."""
        self.up = True

    async def restart(self, downtime: float = 0.05) -> None:
        """:meth:`stop`, a pause, :meth:`start`: what a broker restart looks like to clients."""
        self.stop()
        await asyncio.sleep(downtime)
        self.start()

    def attach(self, client: MemoryTransport) -> None:
        """Connect ``client``, or refuse while stopped."""
        if not self.up:
            raise TransportError(f"memory broker {self.name!r} is stopped")
        self._clients.append(client)

    def detach(self, client: MemoryTransport) -> None:
        if client in self._clients:
            self._clients.remove(client)

    def route(self, sender: MemoryTransport | None, message: Delivery) -> None:
        """Hand ``message`` to every client subscribed to it, and keep it if retained."""
        if message.retain:
            if message.payload:
                self.retained[message.topic] = (message.payload, message.qos)
            else:  # an empty retained message clears the topic (MQTT 5 3.3.1.3)
                self.retained.pop(message.topic, None)
        for client in self._clients:
            sub = client.subscription_for(message.topic, own=client is sender)
            if sub is not None:
                client.enqueue(sub, _as_delivered(message, sub))
        for client, sub in self._shared_receivers(message.topic):
            client.enqueue(sub, _as_delivered(message, sub))

    def _shared_receivers(self, topic: str) -> list[tuple[MemoryTransport, _Subscription]]:
        """One member of each shared group matching ``topic``, taking turns."""
        groups: dict[tuple[str, str], list[tuple[MemoryTransport, _Subscription]]] = {}
        for client in self._clients:
            for sub in client.shared_subscriptions(topic):
                groups.setdefault((sub.group or "", sub.pattern), []).append((client, sub))
        chosen = []
        for key, members in groups.items():
            turn = self._turns.get(key, 0)
            self._turns[key] = turn + 1
            chosen.append(members[turn % len(members)])
        return chosen

    def retained_for(self, sub: _Subscription) -> list[Delivery]:
        """The retained messages a new subscription gets (shared ones get none, MQTT 5 4.8.2)."""
        if sub.group is not None or not sub.replay_retained:
            return []
        return [
            Delivery(topic, payload, min(qos, sub.qos), retain=True)
            for topic, (payload, qos) in self.retained.items()
            if topic_matches(sub.pattern, topic)
        ]


def _as_delivered(message: Delivery, sub: _Subscription) -> Delivery:
    retain = message.retain and sub.retain_as_published
    return Delivery(message.topic, message.payload, min(message.qos, sub.qos), retain)


_BROKERS: dict[str, MemoryBroker] = {}


def memory_broker(name: str) -> MemoryBroker:
    """The broker of ``memory://<name>``, made on first use; it lives as long as the process.
    Names are host names, so case does not matter."""
    key = name.lower()
    if key not in _BROKERS:
        _BROKERS[key] = MemoryBroker(key)
    return _BROKERS[key]


# -- the transport -----------------------------------------------------------------------------


class MemoryTransport(Transport):
    """A connection to a :class:`MemoryBroker`; see :class:`gateway.transport.base.Transport`."""

    def __init__(self, url: BrokerUrl, *, client_id: str = "", will: Will | None = None) -> None:
        if url.scheme != "memory":
            raise BrokerUrlError(str(url), "not a memory:// URL")
        self.url = url
        self.client_id = client_id
        self.broker = memory_broker(url.host)
        self.stats = TransportStats()
        self._will = will
        self._subs: dict[str, _Subscription] = {}
        self._life = Lifecycle(
            url,
            connect=self._attach,
            replay=self._replay,
            cleanup=self._detach,
            backoff=RECONNECT,
            stats=self.stats,
        )
        self._inbox: deque[tuple[_Subscription, Delivery]] = deque()
        self._outbox: deque[Delivery] = deque()  # QoS>0 published while disconnected
        self._sent = asyncio.Event()  # set whenever the outbox has been emptied
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._paused = False

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._life.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A clean disconnect: no will, and what has not been delivered yet is gone with us.
        await self._life.close()
        await self._detach()

    # -- connection ----------------------------------------------------------------------------

    async def _attach(self) -> None:
        self.broker.attach(self)

    async def _replay(self) -> None:
        for sub in self._subs.values():
            self._replay_retained(sub)
        while self._outbox:
            self.broker.route(self, self._outbox.popleft())
        self._sent.set()

    async def _detach(self) -> None:
        self.broker.detach(self)
        self._inbox.clear()  # not delivered yet: lost with the connection

    def lose_connection(self) -> None:
        """The connection breaks (not a clean disconnect): the broker, if up, publishes the
        will; messages not yet delivered are lost; the transport reconnects as any does."""
        if not self.connected:
            return
        self.broker.detach(self)
        self._inbox.clear()
        if self._will is not None and self.broker.up:
            will = self._will
            self.broker.route(None, Delivery(will.topic, will.payload, will.qos, will.retain))
        self._life.lost()

    @property
    def connected(self) -> bool:
        return self._life.connected

    async def wait_connected(self) -> None:
        await self._life.wait_connected()

    def add_connect_listener(self, listener: ConnectListener) -> None:
        self._life.add_listener(listener)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        check_topic(topic)
        message = Delivery(topic, bytes(payload), qos, retain)
        if self.connected:
            self.broker.route(self, message)
        elif qos > 0:
            self._outbox.append(message)
            self._sent.clear()
        else:
            self.stats.dropped += 1
            return
        self.stats.published += 1

    async def flush(self) -> None:
        # Connected, a publish has reached every subscriber's queue before it returned; only
        # what waits for the reconnect is still to go.
        while self._outbox:
            await self._sent.wait()

    # -- subscribing ---------------------------------------------------------------------------

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
        check_filter(topic)
        group, pattern = split_share(topic)
        if group is not None and no_local:
            raise TransportError(f"{topic!r}: no_local is not allowed on a shared subscription")
        sub = _Subscription(
            topic, pattern, group, handler, qos, no_local, retain_as_published, replay_retained
        )
        self._subs[topic] = sub
        if self.connected:
            self._replay_retained(sub)

    def _replay_retained(self, sub: _Subscription) -> None:
        for delivery in self.broker.retained_for(sub):
            self.enqueue(sub, delivery)

    def shared_subscription(self, topic: str, group: str) -> str:
        return shared_subscription_name(topic, group)

    async def unsubscribe(self, topic: str) -> None:
        self._subs.pop(topic, None)

    @property
    def subscriptions(self) -> list[str]:
        """What this transport is subscribed to, as subscribed: tests wait for a subscriber
        to be in place before publishing, as a broker's SUBACK would tell."""
        return list(self._subs)

    def subscription_for(self, topic: str, *, own: bool) -> _Subscription | None:
        """The one non-shared subscription of ours a message on ``topic`` goes to, if any."""
        matching = [
            sub
            for sub in self._subs.values()
            if sub.group is None and topic_matches(sub.pattern, topic)
        ]
        if own:
            matching = [sub for sub in matching if not sub.no_local]
        exact = [sub for sub in matching if sub.pattern == topic]
        chosen = exact or matching
        return chosen[0] if chosen else None

    def shared_subscriptions(self, topic: str) -> list[_Subscription]:
        return [s for s in self._subs.values() if s.group and topic_matches(s.pattern, topic)]

    # -- delivering ----------------------------------------------------------------------------

    def enqueue(self, sub: _Subscription, delivery: Delivery) -> None:
        """Queue ``delivery`` for ``sub``'s handler; it is called on a later turn of the loop."""
        self._inbox.append((sub, delivery))
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if self._draining or self._paused or not self._inbox or self._loop is None:
            return
        self._draining = True
        self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._draining = False
        # Only what was queued before this turn: a handler that publishes to itself must not
        # keep the loop here forever.
        for _ in range(len(self._inbox)):
            if self._paused:
                break
            sub, delivery = self._inbox.popleft()
            self._deliver(sub, delivery)
        self._schedule_drain()

    def _deliver(self, sub: _Subscription, delivery: Delivery) -> None:
        if self._subs.get(sub.name) is not sub:
            return  # unsubscribed (or subscribed anew) since it was queued
        self.stats.received += 1
        try:
            sub.handler(delivery)
        except Exception:
            log.exception("memory: handler for %r failed", delivery.topic)

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._schedule_drain()
