"""The asyncio driver of :class:`~gateway.transport.mqtt.session.Session`: sockets and time.

One ``data_received`` hands every packet that arrived to the session, delivers the messages,
and everything written meanwhile (acknowledgements, the handlers' publishes) leaves in one
``transport.write`` before the call returns: a forwarded message costs no extra loop turn.
Publishes from elsewhere are written once per event-loop turn (``call_soon``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from time import monotonic
from types import TracebackType
from typing import Self, cast

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
    mqtt_client_id,
    mqtt_keepalive,
)
from gateway.transport.lifecycle import Lifecycle
from gateway.transport.mqtt.packets import (
    DO_NOT_SEND_RETAINED,
    MQTT_5,
    MQTT_311,
    SEND_RETAINED,
    MalformedPacketError,
    Publish,
    SubscriptionOptions,
    reason_name,
)
from gateway.transport.mqtt.session import (
    UNSUPPORTED_VERSION,
    Acknowledged,
    Closed,
    Connected,
    RefusedError,
    Session,
)
from gateway.transport.tls import tls_context
from gateway.transport.topics import SHARE_PREFIX, shared_subscription_name, topic_matches

log = logging.getLogger("gateway.transport.mqtt")

CONNECT_TIMEOUT = 10.0  # TCP connect and TLS handshake
CONNACK_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0  # for the DISCONNECT to leave when the context exits
DEFAULT_MAX_QUEUED = 10_000  # QoS>0 messages waiting to be sent, past which they are dropped
DRAIN_POLL = 0.005  # s between checks of the socket buffer in flush()
READ_BUFFER = 65_536  # bytes read at most per event-loop turn and connection
MAX_UNCLAIMED = 1_000  # messages of a resumed session kept for subscriptions still to come


def routing_filter(subscription: str) -> str:
    """The filter a delivery's topic is matched against: a shared subscription's messages
    arrive with their real topic, so ``$share/<group>/<filter>`` routes on ``<filter>``."""
    parts = subscription.split("/", 2)
    return parts[2] if subscription.startswith(SHARE_PREFIX) and len(parts) == 3 else subscription


def url_version(url: BrokerUrl) -> int | None:
    """The URL's ``protocolVersion`` (4: 3.1.1, 5), or None: MQTT 5, 3.1.1 if refused."""
    given = url.options.get("protocolVersion")
    return int(given) if given else None


class Connection(asyncio.BufferedProtocol):
    """One network connection; its bytes go to the owner.

    Buffered: asyncio reads into one buffer per connection. A plain Protocol gets a fresh
    256 KiB bytes object per read, which glibc may serve with mmap, mremap and munmap: three
    system calls per forwarded message (seen with strace, 1.5 us a message)."""

    def __init__(self, owner: MqttTransport) -> None:
        self.owner = owner
        self.view = memoryview(bytearray(READ_BUFFER))
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.write_full = False  # past the transport's high-water mark

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: uvloop's does not subclass asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        # Nagle would hold a small publish until the broker's delayed ACK (protocol.md 4.2).
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

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.owner._on_data(self, bytes(self.view[:nbytes]))  # payloads slice it: bytes

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


class MqttTransport(Transport):
    """A self-reconnecting MQTT 5 or 3.1.1 connection; see :class:`Transport`.

    ``session_expiry`` (else the URL's ``sessionExpiry``) above 0 asks for a persistent
    session: QoS 1 and 2 messages for the subscriptions wait in the broker while this client is
    away and arrive right after the next CONNACK, so subscribe before connecting.
    """

    def __init__(
        self,
        url: BrokerUrl,
        *,
        client_id: str = "",
        keepalive: int | None = None,
        will: Will | None = None,
        backoff: Backoff | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        session_expiry: int | None = None,
    ) -> None:
        if not url.is_mqtt:
            raise BrokerUrlError(str(url), "not an MQTT URL")
        self.url = url
        self.stats = TransportStats()
        self._forced_version = url_version(url)
        if session_expiry is None:
            session_expiry = int(url.options.get("sessionExpiry", "0"))
        self._session = Session(
            mqtt_client_id(url, client_id, persistent=session_expiry > 0),
            keepalive=mqtt_keepalive(url, keepalive),
            username=url.username,
            password=url.password,
            will=will,
            session_expiry=session_expiry,
            version=self._forced_version or MQTT_5,
            max_queued=max_queued,
        )
        self._ssl = tls_context(url)
        self._life = Lifecycle(url, connect=self._connect_once, backoff=backoff, stats=self.stats)
        self._flush_scheduled = False
        self._conn: Connection | None = None  # the network connection, CONNACK or not
        self._live: Connection | None = None  # the same once the broker accepted us
        self._connack: asyncio.Future[None] | None = None
        self._handlers: dict[str, tuple[DeliveryHandler, bool]] = {}  # by subscription
        self._routes: dict[str, DeliveryHandler] = {}  # by routing_filter(subscription)
        self._wildcards: dict[str, DeliveryHandler] = {}  # the routes with + or #
        self._requests: dict[int, asyncio.Future[None]] = {}
        self._paused = False
        self._backlog: deque[Publish] = deque()  # arrived while paused, handled on resume
        self._waiting: deque[Publish] = deque()  # a resumed session's, not subscribed yet
        self._progress = asyncio.Event()  # set when a QoS>0 message may have been acknowledged
        self._flushing = 0  # flush() calls waiting for acknowledgements
        self._tick: asyncio.TimerHandle | None = None

    @property
    def client_id(self) -> str:
        return self._session.client_id

    @property
    def keepalive(self) -> int:
        return self._session.keepalive

    @property
    def version(self) -> int:
        """The protocol level spoken: 5, or 4 (3.1.1) when asked or the broker refused 5."""
        return self._session.version

    @property
    def supports_no_local(self) -> bool:
        return self._session.version == MQTT_5

    # -- context manager -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._life.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._life.closing = True  # the connection's end below is no loss to recover from
        conn = self._conn
        if conn is not None:
            self._session.disconnect()  # a clean exit: the broker drops the will
            self._flush_out()
            if conn.transport is not None:
                conn.transport.close()  # writes what is buffered first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(conn.closed), CLOSE_TIMEOUT)
            conn.abort()
        await self._life.close()

    # -- connecting (the reconnect loop is the Lifecycle's) -------------------------------------

    async def _connect_once(self) -> None:
        """Connect and wait for CONNACK; the session has then replayed the subscriptions and
        the unacknowledged messages, so the Lifecycle may tell the connect listeners."""
        while True:
            conn, connack = await self._open()
            try:
                await asyncio.wait_for(connack, CONNACK_TIMEOUT)
                break
            except TimeoutError:
                conn.abort()
                raise TransportError(f"no CONNACK within {CONNACK_TIMEOUT:.0f} s") from None
            except RefusedError as exc:
                conn.abort()
                if not self._fall_back(exc):
                    raise
        if self._conn is not conn:
            raise TransportError("connection closed right after CONNACK")
        self._live = conn
        conn.apply_reading()
        self._arm_tick()
        if self._session.session_present:
            log.info("mqtt: session resumed on %s", self.url)

    async def _open(self) -> tuple[Connection, asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
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
        # Made only now: a connection refused a moment ago may still report its end.
        self._connack = connack = loop.create_future()
        self._session.connect(monotonic())
        self._flush_out()
        return conn, connack

    def _fall_back(self, refused: RefusedError) -> bool:
        """Whether to try again at once in 3.1.1: the broker refused MQTT 5 and the URL did
        not ask for a version. It stays 3.1.1 for this transport's later connects."""
        if refused.reason_code != UNSUPPORTED_VERSION or self._forced_version is not None:
            return False  # a refusal for another reason, or a version the URL asked for
        if self._session.version == MQTT_311:
            return False  # refused 3.1.1 too
        lost = [t for t, o in self._session.subscriptions.items() if o.needs_v5]
        log.warning(
            "mqtt: %s does not speak MQTT 5; using 3.1.1 from now on%s",
            self.url,
            f" (subscriptions lose their MQTT 5 options: {', '.join(lost)})" if lost else "",
        )
        self._session.use_version(MQTT_311)
        for topic, (handler, replay) in self._handlers.items():
            self._route(topic, handler, replay)
        return True

    def _on_lost(self, conn: Connection) -> None:
        if conn is not self._conn:
            return
        if self._live is conn:
            self._life.lost()  # before CONNACK, the failed connect says so
        self._conn = self._live = None
        self._backlog.clear()  # unacknowledged: the broker sends them again (persistent)
        if self._tick is not None:
            self._tick.cancel()
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(TransportError("connection closed before CONNACK"))
        # Subscriptions in flight are replayed after the reconnect: nobody should wait on them.
        for packet_id in self._session.connection_lost():
            self._answer(packet_id)

    # -- keep alive ----------------------------------------------------------------------------

    def _arm_tick(self) -> None:
        deadline = self._session.next_tick()
        if deadline is not None:
            delay = max(0.0, deadline - monotonic())
            self._tick = asyncio.get_running_loop().call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        if self._live is None:
            return
        self._session.tick(monotonic())
        self._handle_notices()
        self._flush_out()
        self._arm_tick()

    # -- public API ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._life.connected

    async def wait_connected(self) -> None:
        await self._life.wait_connected()

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        if not self._session.publish(topic, payload, qos, retain):
            self._drop(topic, "too many messages queued" if qos else "not connected")
            return
        self.stats.published += 1  # QoS>0 while disconnected: sent after the reconnect
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_out)

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
        outstanding = self._session.outstanding()
        self._flush_out()
        self._flushing += 1
        try:
            for message in outstanding:
                while not message.done:
                    self._progress.clear()
                    await self._progress.wait()
        finally:
            self._flushing -= 1
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
        if topic.startswith(SHARE_PREFIX) and self.version != MQTT_5:
            raise TransportError(f"{topic!r}: shared subscriptions need MQTT 5; this is 3.1.1")
        handling = SEND_RETAINED if replay_retained else DO_NOT_SEND_RETAINED
        options = SubscriptionOptions(qos, no_local, retain_as_published, handling)
        packet_id = self._session.subscribe(topic, options)
        self._route(topic, handler, replay_retained)
        if packet_id is not None:
            await self._request(packet_id)  # return once applied: "wired" means wired

    def _route(self, topic: str, handler: DeliveryHandler, replay_retained: bool) -> None:
        self._handlers[topic] = (handler, replay_retained)
        if not replay_retained and self.version == MQTT_311:
            # 3.1.1 cannot ask the broker not to send retained messages, but marks exactly
            # those with RETAIN (3.1.1 3.3.1.3), so they are left out here.
            def fresh_only(delivery: Delivery, handler: DeliveryHandler = handler) -> None:
                if not delivery.retain:
                    handler(delivery)

            handler = fresh_only
        route = routing_filter(topic)
        self._routes[route] = handler
        if "+" in route or "#" in route:
            self._wildcards[route] = handler
        if self._waiting:
            self._claim(route)

    def shared_subscription(self, topic: str, group: str) -> str:
        """``$share/<group>/<topic>`` (4.8.2): the broker gives each message of ``topic`` to
        one subscriber of ``group``. MQTT 5 only; Mosquitto 2 supports it."""
        if self.version != MQTT_5:
            raise TransportError(f"sharing {topic!r} needs MQTT 5; this is 3.1.1")
        return shared_subscription_name(topic, group)

    async def unsubscribe(self, topic: str) -> None:
        if self._handlers.pop(topic, None) is not None:
            route = routing_filter(topic)
            self._routes.pop(route, None)
            self._wildcards.pop(route, None)
        packet_id = self._session.unsubscribe(topic)
        if packet_id is not None:
            await self._request(packet_id)

    async def _request(self, packet_id: int) -> None:
        future = self._requests[packet_id] = asyncio.get_running_loop().create_future()
        self._schedule_flush()
        await future

    def _answer(self, packet_id: int) -> None:
        future = self._requests.pop(packet_id, None)
        if future is not None and not future.done():
            future.set_result(None)

    def add_connect_listener(self, listener: ConnectListener) -> None:
        self._life.add_listener(listener)

    def pause_reading(self) -> None:
        self._paused = True
        if self._conn is not None:
            self._conn.apply_reading()

    def resume_reading(self) -> None:
        self._paused = False
        if self._conn is not None:
            self._conn.apply_reading()
            if self._backlog:
                asyncio.get_running_loop().call_soon(self._deliver_backlog, self._conn)

    # -- writing -------------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_out)

    def _flush_out(self) -> None:
        """Everything written since the last call leaves in one ``transport.write``."""
        self._flush_scheduled = False
        conn = self._conn
        if conn is not None and self._session.out:
            conn.write(self._session.data_to_send(monotonic()))

    # -- reading -------------------------------------------------------------------------------

    def _on_data(self, conn: Connection, data: bytes) -> None:
        if conn is not self._conn:
            return
        # What the handlers publish leaves in one write right after them, not in another
        # event-loop turn (which would cost an extra epoll call per burst).
        self._flush_scheduled = True
        session = self._session
        try:
            messages = session.receive(data)
        except (MalformedPacketError, RefusedError) as exc:
            messages = self._on_bad_input(conn, exc)
        if session.notices:
            self._handle_notices()
        if self._flushing:
            self._progress.set()
        if self._paused or self._backlog:
            self._backlog.extend(messages)  # paused, or resumed and the backlog not done
        else:
            for message in messages:  # inline: this is the forwarding hot path
                self._deliver(message)
        self._flush_out()

    def _on_bad_input(
        self, conn: Connection, exc: MalformedPacketError | RefusedError
    ) -> list[Publish]:
        """The connection ends; a malformed packet's good predecessors are delivered."""
        if isinstance(exc, RefusedError):
            if self._connack is not None and not self._connack.done():
                self._connack.set_exception(exc)
            return []
        log.warning("mqtt: malformed packet from %s: %s; closing", self.url, exc)
        conn.abort()
        return cast(list[Publish], exc.events)

    def _deliver_backlog(self, conn: Connection) -> None:
        """After a resume, in order; a handler that pauses again leaves the rest waiting."""
        if conn is not self._conn:
            return
        backlog = self._backlog
        while backlog and not self._paused:
            self._deliver(backlog.popleft())
        self._flush_out()

    def _deliver(self, message: Publish) -> None:
        self.stats.received += 1
        if message.qos and not self._session.accept(message):
            return  # a QoS 2 duplicate: delivered already
        topic = message.topic
        handler = self._routes.get(topic) or self._match_wildcard(topic)
        if handler is None:
            self._unclaimed(message)
            return
        try:
            handler(Delivery(topic, message.payload, message.qos, message.retain))
        except Exception:
            log.exception("mqtt: handler for %r failed", topic)

    def _unclaimed(self, message: Publish) -> None:
        """A resumed session's messages arrive right after CONNACK, before a restarted
        program has subscribed again: keep a bounded number for the subscribe to come."""
        if self._session.session_expiry and len(self._waiting) < MAX_UNCLAIMED:
            self._waiting.append(message)

    def _claim(self, route: str) -> None:
        """Deliver what waited for the subscription just routed, in order."""
        claimed = [m for m in self._waiting if topic_matches(route, m.topic)]
        if not claimed:
            return
        self._waiting = deque(m for m in self._waiting if m not in claimed)
        for message in claimed:
            self.stats.received -= 1  # counted once, when it arrived
            if self._paused or self._backlog:
                self._backlog.append(message)
            else:
                self._deliver(message)

    def _match_wildcard(self, topic: str) -> DeliveryHandler | None:
        for pattern, handler in self._wildcards.items():
            if topic_matches(pattern, topic):
                return handler
        return None

    def _handle_notices(self) -> None:
        notices, self._session.notices = self._session.notices, []
        for notice in notices:
            if isinstance(notice, Connected):
                if self._connack is not None and not self._connack.done():
                    self._connack.set_result(None)
            elif isinstance(notice, Acknowledged):
                self._acknowledged(notice)
            elif isinstance(notice, Closed):
                log.warning("mqtt: %s: %s; closing", self.url, notice.reason)
                if self._conn is not None:
                    self._conn.abort()

    def _acknowledged(self, notice: Acknowledged) -> None:
        if notice.subscribe:
            for topic, code in zip(notice.topics, notice.reason_codes, strict=False):
                if code >= 0x80:
                    log.warning(
                        "mqtt: broker refused subscription to %r: %s", topic, reason_name(code)
                    )
        self._answer(notice.packet_id)


__all__ = ["MqttTransport", "routing_filter", "topic_matches"]
