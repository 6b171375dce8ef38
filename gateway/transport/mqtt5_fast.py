"""MQTT 5 transport on our own codec (mqtt5_codec, mqtt5_encoder), driven by an asyncio Protocol.

For forwarders, where every microsecond per message counts: paho builds an MQTT 5 properties
object, an ``MQTTMessage`` and a ``threading.Condition`` per message and makes a syscall per
packet. Here one ``data_received`` decodes every packet that arrived (a few slices each), and
everything published in one event-loop turn leaves in one ``transport.write``.

The public behaviour mirrors :class:`gateway.transport.mqtt.MqttTransport` with ``protocol=5``:
it connects in the background, reconnects with capped jittered backoff and one warning per
failed attempt, replays subscriptions (then calls the connect listeners) after every reconnect,
and resends unacknowledged QoS 1/2 messages with DUP set. It only speaks MQTT 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

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
    call_listeners,
    mqtt_client_id,
    mqtt_keepalive,
)
from gateway.transport.mqtt5_codec import (
    ConnAck,
    Decoder,
    Disconnect,
    Event,
    MalformedPacketError,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    RetainHandling,
    SubAck,
    UnsubAck,
    reason_name,
)
from gateway.transport.mqtt5_encoder import (
    PublishEncoder,
    SubscriptionOptions,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_puback,
    encode_pubcomp,
    encode_pubrec,
    encode_pubrel,
    encode_subscribe,
    encode_unsubscribe,
)
from gateway.transport.reconnect import keep_connected
from gateway.transport.tls import tls_context

__all__ = ["FastMqttTransport", "TransportStats", "Will", "topic_matches"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # TCP connect and TLS handshake
CONNACK_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0  # for the DISCONNECT to leave when the context exits
DEFAULT_MAX_QUEUED = 10_000  # QoS>0 messages waiting to be sent, past which they are dropped
SUBSCRIBE_BATCH = 100  # topic filters per SUBSCRIBE when subscriptions are replayed
DRAIN_POLL = 0.005  # s between checks of the socket buffer in flush()

Subscription = tuple[SubscriptionOptions, DeliveryHandler]


@dataclass(eq=False)
class Outgoing:
    """A QoS 1/2 message until the broker has acknowledged it (PUBACK, or PUBCOMP)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int = 0
    released: bool = False  # QoS 2: PUBREC came, PUBREL sent, waiting for PUBCOMP
    done: bool = False


@dataclass(eq=False)
class Request:
    """A SUBSCRIBE or UNSUBSCRIBE waiting for its acknowledgement."""

    topics: list[str]
    future: asyncio.Future[tuple[int, ...]]
    subscribe: bool = True


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching (4.7): ``+`` one level, ``#`` the rest; a leading wildcard
    does not match topics starting with ``$``."""
    if topic.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    levels = topic.split("/")
    filters = pattern.split("/")
    for index, level in enumerate(filters):
        if level == "#":
            return True
        if index >= len(levels) or (level != "+" and level != levels[index]):
            return False
    return len(levels) == len(filters)


def _subscribe_packet(batch: list[tuple[str, SubscriptionOptions]], packet_id: int) -> bytes:
    return encode_subscribe(packet_id, batch)


class Connection(asyncio.Protocol):
    """One network connection: bytes in go through the decoder to the transport's handlers.

    While reading is paused, decoded PUBLISH packets wait in the owner's backlog (acknowledged
    only once handled); control packets are handled at once."""

    def __init__(self, owner: FastMqttTransport) -> None:
        self.owner = owner
        self.decoder = Decoder()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.write_full = False  # past the transport's high-water mark

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: uvloop's does not subclass asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        # Nagle would hold a small publish until the broker's delayed ACK (reference doc 4.2).
        with contextlib.suppress(OSError, AttributeError):
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.apply_reading()

    def pause_writing(self) -> None:
        self.write_full = True
        self.apply_reading()

    def resume_writing(self) -> None:
        self.write_full = False
        self.apply_reading()

    def apply_reading(self) -> None:
        """Read unless the owner paused reading or the broker is not taking our writes: a
        forwarder that cannot write must not read (its buffer would grow without bound); the
        broker then queues, and drops QoS 0 messages past its own limit."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        # Until the broker has accepted us, read anyway: the CONNACK must come in.
        if (self.owner._paused and self.owner._live is self) or self.write_full:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        # What the handlers publish leaves in one write right after them, not in another
        # event-loop turn (which would cost an extra epoll call per burst).
        owner._flush_scheduled = True
        try:
            owner._handle(self, self.decoder.feed(data))
        except MalformedPacketError as exc:
            log.warning("mqtt: malformed packet from %s: %s; closing", owner.url, exc)
            owner._handle(self, exc.events)  # the good packets before it
            self.abort()
        finally:
            owner._flush_out()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.owner._on_lost(self)

    def write(self, data: bytes | bytearray) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class FastMqttTransport(Transport):
    """A self-reconnecting MQTT 5 connection; see :class:`gateway.transport.base.Transport`."""

    def __init__(
        self,
        url: BrokerUrl,
        *,
        client_id: str = "",
        keepalive: int | None = None,
        will: Will | None = None,
        backoff: Backoff | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        session_expiry: int = 0,
    ) -> None:
        """``session_expiry`` above 0 asks for a persistent session (see ``encode_connect``):
        QoS 1 and 2 messages for the subscriptions wait in the broker while this client is
        away, and arrive right after the next CONNACK, so subscribe before connecting."""
        if not url.is_mqtt:
            raise BrokerUrlError(str(url), "not an MQTT URL")
        self.url = url
        self.stats = TransportStats()
        self.client_id = mqtt_client_id(url, client_id)
        self.keepalive = mqtt_keepalive(url, keepalive)
        self._will = will
        self._session_expiry = session_expiry
        self._session_present = False
        self._ssl = tls_context(url)
        self._backoff = backoff or Backoff()
        self._max_queued = max_queued
        self._encoder = PublishEncoder()
        self._out = bytearray()  # packets written this event-loop turn
        self._flush_scheduled = False
        self._conn: Connection | None = None  # the network connection, CONNACK or not
        self._live: Connection | None = None  # the same once the broker accepted us
        self._connack: asyncio.Future[ConnAck] | None = None
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._subs: dict[str, Subscription] = {}
        self._wildcards: dict[str, Subscription] = {}
        self._requests: dict[int, Request] = {}
        self._inflight: dict[int, Outgoing] = {}  # sent QoS>0 messages by packet id, in order
        self._waiting: deque[Outgoing] = deque()  # QoS>0 messages not sent yet
        self._receive_maximum = 65_535
        self._incoming_qos2: set[int] = set()  # PUBREC sent, PUBREL not yet received
        self._next_id = 0
        self._listeners: list[ConnectListener] = []
        self._paused = False
        self._backlog: deque[Publish] = deque()  # arrived while paused, handled on resume
        self._progress = asyncio.Event()  # set whenever a QoS>0 message is acknowledged
        self._last_sent = 0.0
        self._ping_sent: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._control: dict[type[Any], Callable[[Any], None]] = {
            ConnAck: self._on_connack,
            SubAck: self._on_suback,
            UnsubAck: self._on_suback,
            PubAck: self._on_puback,
            PubRec: self._on_pubrec,
            PubRel: self._on_pubrel,
            PubComp: self._on_puback,
            PingResp: self._on_pingresp,
            Disconnect: self._on_disconnect,
        }

    # -- context manager -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._supervise(), name=f"mqtt {self.url}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        conn = self._conn
        if conn is not None:
            if self._live is conn:
                self._out += encode_disconnect()  # a clean exit: the broker drops the will
                self._flush_out()
            if conn.transport is not None:
                conn.transport.close()  # writes what is buffered first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(conn.closed), CLOSE_TIMEOUT)
            conn.abort()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- the reconnect loop --------------------------------------------------------------------

    async def _supervise(self) -> None:
        await keep_connected(
            self.url,
            self._backoff,
            self._connect_once,
            self._stay_connected,
            lambda: self._closing,
        )

    async def _stay_connected(self) -> None:
        try:
            await self._run_connected()
        finally:
            self._live = None

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost.clear()
        self._connack = loop.create_future()
        host = self.url.host
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, conn = await loop.create_connection(
                lambda: Connection(self),
                host,
                self.url.port,
                ssl=self._ssl,
                server_hostname=host if self._ssl else None,
            )
        self._conn = conn
        conn.write(self._connect_packet())
        try:
            connack = await asyncio.wait_for(self._connack, CONNACK_TIMEOUT)
        except TimeoutError:
            conn.abort()
            raise TransportError(f"no answer to CONNECT within {CONNACK_TIMEOUT:.0f} s") from None
        if connack.reason_code >= 0x80:
            conn.abort()
            raise TransportError(
                f"broker refused the connection: {reason_name(connack.reason_code)}"
            )
        if self._conn is not conn:
            raise TransportError("connection closed right after CONNACK")
        self._receive_maximum = connack.receive_maximum
        self._session_present = connack.session_present
        if connack.server_keep_alive is not None:
            self.keepalive = connack.server_keep_alive  # 3.2.2.3.14: the server's value wins
        self._live = conn
        conn.apply_reading()

    def _connect_packet(self) -> bytes:
        return encode_connect(
            self.client_id,
            keepalive=self.keepalive,
            username=self.url.username,
            password=self.url.password,
            will=self._will,
            session_expiry=self._session_expiry,
        )

    async def _run_connected(self) -> None:
        self.stats.connects += 1
        log.info(
            "mqtt: connected to %s%s",
            self.url,
            " (session resumed)" if self._session_present else "",
        )
        if not self._session_present:
            self._incoming_qos2.clear()  # a new session: the broker forgot them too
        self._ping_sent = None
        self._last_sent = time.monotonic()
        self._replay_subscriptions()
        self._resend_unacknowledged()
        self._connected.set()
        call_listeners(self._listeners)
        tick = max(0.1, min(1.0, self.keepalive / 2)) if self.keepalive else 1.0
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), tick)
            self._keep_alive()

    def _keep_alive(self) -> None:
        """3.1.2.10: send PINGREQ when nothing else went out for a keep alive period, and give
        up on a broker that does not answer it within another."""
        conn = self._live
        if conn is None or not self.keepalive:
            return
        now = time.monotonic()
        if self._ping_sent is not None:
            if now - self._ping_sent > self.keepalive:
                log.warning("mqtt: no PINGRESP from %s within %d s", self.url, self.keepalive)
                conn.abort()
        elif now - self._last_sent >= self.keepalive:
            self._ping_sent = now
            self._out += encode_pingreq()
            self._flush_out()

    def _replay_subscriptions(self) -> None:
        entries = [(topic, options) for topic, (options, _) in self._subs.items()]
        for start in range(0, len(entries), SUBSCRIBE_BATCH):
            batch = entries[start : start + SUBSCRIBE_BATCH]
            self._request([t for t, _ in batch], functools.partial(_subscribe_packet, batch))

    def _resend_unacknowledged(self) -> None:
        for packet_id, message in self._inflight.items():
            if message.released:
                self._out += encode_pubrel(packet_id)
            else:
                self._write_publish(message, dup=True)
        self._send_waiting()

    def _on_lost(self, conn: Connection) -> None:
        if conn is not self._conn:
            return
        self._conn = self._live = None
        self._out.clear()
        self._backlog.clear()
        self._connected.clear()
        self._lost.set()
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(TransportError("connection closed before CONNACK"))
        # Subscriptions in flight are replayed after the reconnect: nobody should wait on them.
        for request in self._requests.values():
            if not request.future.done():
                request.future.set_result(())
        self._requests.clear()

    # -- public API ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        if qos:
            self._publish_acknowledged(Outgoing(topic, payload, qos, retain))
            return
        if self._live is None:
            self._drop(topic, "not connected")
            return
        self._encoder.write(self._out, topic, payload, retain=retain)
        self.stats.published += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_out)

    def _publish_acknowledged(self, message: Outgoing) -> None:
        if len(self._waiting) >= self._max_queued:
            self._drop(message.topic, "too many messages queued")
            return
        self._encoder.topic_bytes(message.topic)  # a bad topic raises here, not later
        self.stats.published += 1  # while disconnected: sent after the reconnect
        self._waiting.append(message)
        self._send_waiting()

    def _send_waiting(self) -> None:
        """Send queued QoS>0 messages while the broker's Receive Maximum allows (3.3.4)."""
        if self._live is None:
            return
        while self._waiting and len(self._inflight) < self._receive_maximum:
            message = self._waiting.popleft()
            message.packet_id = self._new_packet_id()
            self._inflight[message.packet_id] = message
            self._write_publish(message)

    def _write_publish(self, message: Outgoing, *, dup: bool = False) -> None:
        self._encoder.write(
            self._out,
            message.topic,
            message.payload,
            qos=message.qos,
            retain=message.retain,
            packet_id=message.packet_id,
            dup=dup,
        )
        self._schedule_flush()

    def _drop(self, topic: str, why: str) -> None:
        self.stats.dropped += 1
        if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
            log.warning(
                "mqtt: dropped message for %r: %s (%d dropped so far)",
                topic,
                why,
                self.stats.dropped,
            )

    async def flush(self) -> None:
        outstanding = [*self._inflight.values(), *self._waiting]
        self._flush_out()
        done = 0
        while done < len(outstanding):
            if outstanding[done].done:
                done += 1
                continue
            self._progress.clear()
            await self._progress.wait()
        conn = self._conn
        while conn is not None and conn is self._conn and conn.transport is not None:
            if not conn.transport.get_write_buffer_size():
                return
            await asyncio.sleep(DRAIN_POLL)  # asyncio tells only when past the high-water mark

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
        handling = (
            RetainHandling.SEND_ON_SUBSCRIBE if replay_retained else RetainHandling.DO_NOT_SEND
        )
        options = SubscriptionOptions(qos, no_local, retain_as_published, handling)
        self._subs[topic] = (options, handler)
        if "+" in topic or "#" in topic:
            self._wildcards[topic] = (options, handler)
        if self._live is not None:
            # Return once the broker has applied it, so that "wired" means wired.
            await self._request([topic], lambda pid: encode_subscribe(pid, [(topic, options)]))

    async def unsubscribe(self, topic: str) -> None:
        self._wildcards.pop(topic, None)
        if self._subs.pop(topic, None) is not None and self._live is not None:
            await self._request([topic], lambda pid: encode_unsubscribe(pid, [topic]), False)

    def _request(
        self, topics: list[str], build: Callable[[int], bytes], subscribe: bool = True
    ) -> asyncio.Future[tuple[int, ...]]:
        packet_id = self._new_packet_id()
        future = asyncio.get_running_loop().create_future()
        self._requests[packet_id] = Request(topics, future, subscribe)
        self._out += build(packet_id)
        self._schedule_flush()
        return future

    def add_connect_listener(self, listener: ConnectListener) -> None:
        self._listeners.append(listener)

    def pause_reading(self) -> None:
        self._paused = True
        if self._conn is not None:
            self._conn.apply_reading()

    def resume_reading(self) -> None:
        self._paused = False
        if self._conn is not None:
            self._conn.apply_reading()
        if self._backlog and self._conn is not None:
            asyncio.get_running_loop().call_soon(self._handle_backlog, self._conn)

    # -- writing -------------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_out)

    def _flush_out(self) -> None:
        """Everything written this loop turn leaves in one ``transport.write``."""
        self._flush_scheduled = False
        if not self._out or self._conn is None:
            return
        data, self._out = self._out, bytearray()  # the transport may keep a reference
        self._conn.write(data)
        self._last_sent = time.monotonic()

    def _new_packet_id(self) -> int:
        for _ in range(65_535):
            self._next_id = self._next_id % 65_535 + 1
            if self._next_id not in self._inflight and self._next_id not in self._requests:
                return self._next_id
        raise TransportError("all 65535 packet identifiers are in use")

    # -- reading -------------------------------------------------------------------------------

    def _handle(self, conn: Connection, events: Iterable[Event]) -> None:
        if conn is not self._conn:
            return
        for event in events:
            if type(event) is Publish:
                if self._paused or self._backlog:
                    self._backlog.append(event)  # paused, or resumed and the backlog not done
                else:
                    self._on_publish(event)
            else:
                self._control[type(event)](event)

    def _handle_backlog(self, conn: Connection) -> None:
        events = list(self._backlog)
        self._backlog.clear()
        self._handle(conn, events)

    def _on_publish(self, message: Publish) -> None:
        self.stats.received += 1
        topic = message.topic
        if message.qos and not self._acknowledge(message):
            return  # a QoS 2 duplicate: delivered already
        entry = self._subs.get(topic)
        if entry is None:
            entry = self._match_wildcard(topic)
            if entry is None:
                return
        try:
            entry[1](Delivery(topic, message.payload, message.qos, message.retain))
        except Exception:
            log.exception("mqtt: handler for %r failed", topic)

    def _acknowledge(self, message: Publish) -> bool:
        """4.3.2 and 4.3.3 (method B): whether to deliver a QoS 1/2 message."""
        packet_id = message.packet_id
        if message.qos == 1:
            self._out += encode_puback(packet_id)
            self._schedule_flush()
            return True
        self._out += encode_pubrec(packet_id)
        self._schedule_flush()
        if packet_id in self._incoming_qos2:
            return False
        self._incoming_qos2.add(packet_id)
        return True

    def _match_wildcard(self, topic: str) -> Subscription | None:
        for pattern, entry in self._wildcards.items():
            if topic_matches(pattern, topic):
                return entry
        return None

    def _on_connack(self, event: ConnAck) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(event)

    def _on_suback(self, event: SubAck | UnsubAck) -> None:
        request = self._requests.pop(event.packet_id, None)
        if request is None:
            return
        if request.subscribe:
            for topic, code in zip(request.topics, event.reason_codes, strict=False):
                if code >= 0x80:
                    log.warning(
                        "mqtt: broker refused subscription to %r: %s", topic, reason_name(code)
                    )
        if not request.future.done():
            request.future.set_result(event.reason_codes)

    def _on_puback(self, event: PubAck | PubComp) -> None:
        message = self._inflight.pop(event.packet_id, None)
        if message is not None:
            message.done = True
            self._progress.set()
            self._send_waiting()

    def _on_pubrec(self, event: PubRec) -> None:
        message = self._inflight.get(event.packet_id)
        if event.reason_code >= 0x80:  # 4.3.3: the broker refused it; no PUBREL follows
            if message is not None:
                self._on_puback(PubComp(event.packet_id))
            return
        if message is not None:
            message.released = True
        self._out += encode_pubrel(event.packet_id)
        self._schedule_flush()

    def _on_pubrel(self, event: PubRel) -> None:
        self._incoming_qos2.discard(event.packet_id)
        self._out += encode_pubcomp(event.packet_id)
        self._schedule_flush()

    def _on_pingresp(self, event: PingResp) -> None:
        self._ping_sent = None

    def _on_disconnect(self, event: Disconnect) -> None:
        why = reason_name(event.reason_code)
        if event.reason_string:
            why += f" ({event.reason_string})"
        log.warning("mqtt: %s disconnected us: %s", self.url, why)
        if self._conn is not None:
            self._conn.abort()
