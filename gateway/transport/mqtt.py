"""MQTT transport on paho-mqtt 2.x, driven by the asyncio event loop.

paho does the protocol; this module only moves bytes when the loop says the socket is ready:
paho's socket callbacks register the socket with ``loop.add_reader`` / ``add_writer``, and a
housekeeping tick calls ``loop_misc`` for keepalive. No network thread, so participant callbacks
run on the event loop and a message costs no thread hand-off.

The blocking part of paho (DNS, TCP connect, TLS handshake in ``Client.connect``) runs in the
default executor; the socket callbacks it triggers there are marshalled back onto the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

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
from gateway.transport.reconnect import keep_connected
from gateway.transport.tls import tls_context

log = logging.getLogger(__name__)

MAX_TOPIC_BYTES = 65_535

MQTT_311 = 4  # protocol level numbers, as in the CONNECT packet
MQTT_5 = 5
CONNACK_TIMEOUT = 10.0
MISC_INTERVAL = 1.0  # how often paho's keepalive bookkeeping runs
# QoS>0 messages paho holds beyond those in flight: while disconnected, and whenever more
# than MAX_INFLIGHT are unacknowledged; past this, publishes are dropped and counted.
DEFAULT_MAX_QUEUED = 10_000
MAX_INFLIGHT = 100  # paho's default of 20 throttles QoS 1 bursts
READ_BURST = 64  # packets read per readable event, so one event-loop turn serves a burst
SHARE_PREFIX = "$share/"  # MQTT 5 section 4.8.2: $share/<ShareName>/<TopicFilter>


def routing_filter(subscription: str) -> str:
    """The filter a delivery's topic is matched against: a shared subscription's messages
    arrive with their real topic, so ``$share/<group>/<filter>`` routes on ``<filter>``."""
    parts = subscription.split("/", 2)
    return parts[2] if subscription.startswith(SHARE_PREFIX) and len(parts) == 3 else subscription


class MqttTransport(Transport):
    """A self-reconnecting MQTT connection; see :class:`gateway.transport.base.Transport`."""

    def __init__(
        self,
        url: BrokerUrl,
        *,
        client_id: str = "",
        keepalive: int | None = None,
        will: Will | None = None,
        backoff: Backoff | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        protocol: int = MQTT_311,
    ) -> None:
        if not url.is_mqtt:
            raise BrokerUrlError(str(url), "not an MQTT URL")
        if protocol not in (MQTT_311, MQTT_5):
            raise TransportError(f"unsupported MQTT protocol version {protocol}")
        self.url = url
        # ?sessionExpiry=N: a persistent session (MQTT 5 3.1.2.11.2, so MQTT 5 whatever was
        # asked): the broker queues QoS 1 and 2 messages for the subscriptions while the
        # network is away, and forgets the session N seconds after it is. 0: a clean session.
        self.session_expiry = int(url.options.get("sessionExpiry", "0"))
        self.protocol = MQTT_5 if self.session_expiry else protocol
        self.stats = TransportStats()
        self._keepalive = mqtt_keepalive(url, keepalive)
        self._backoff = backoff or Backoff()
        self._client = self._make_client(url, client_id, will, max_queued)
        self._subs: dict[str, tuple[int | SubscribeOptions, DeliveryHandler]] = {}
        self._routes: dict[str, DeliveryHandler] = {}  # routing_filter(subscription) -> handler
        self._subacks: dict[int, asyncio.Future[None]] = {}  # SUBSCRIBE mid -> its SUBACK
        self._listeners: list[ConnectListener] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._fd: int | None = None
        self._paused = False
        self._writing = False  # paho has bytes to write: a write is scheduled or being watched
        self._write_watched = False  # the socket was full: add_writer waits for room
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._connack: asyncio.Future[ReasonCode] | None = None
        self._last_publish: paho.MQTTMessageInfo | None = None
        self._progress = asyncio.Event()  # set on each completed publish, for flush()
        self._flushing = 0  # flush() calls waiting; on_publish is only installed meanwhile
        # QoS>0 messages queued while disconnected: paho sends them after the reconnect, but
        # their MQTTMessageInfo keeps saying "not connected", so their mids are watched instead.
        self._offline: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # -- setup ---------------------------------------------------------------------------------

    def _make_client(
        self, url: BrokerUrl, client_id: str, will: Will | None, max_queued: int
    ) -> paho.Client:
        cid = mqtt_client_id(url, client_id)
        if self.protocol == MQTT_5:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=paho.MQTTv5)
        else:
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cid,
                protocol=paho.MQTTv311,
                clean_session=True,
            )
        if url.username is not None:
            client.username_pw_set(url.username, url.password)
        if url.tls:
            client.tls_set_context(tls_context(url))
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.max_queued_messages_set(max_queued)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.suppress_exceptions = True  # a bug in a handler must not tear down the connection
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_open = self._threadsafe(self._on_socket_open)
        client.on_socket_close = self._threadsafe(self._on_socket_close)
        client.on_socket_register_write = self._threadsafe(self._on_register_write)
        client.on_socket_unregister_write = self._threadsafe(self._on_unregister_write)
        return client

    # -- context manager -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task = asyncio.create_task(self._supervise(), name=f"mqtt {self.url}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        if self.connected:
            self._client.disconnect()  # queues DISCONNECT; written below so the will is not sent
            self._client.loop_write()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._unwatch()

    # -- the reconnect loop --------------------------------------------------------------------

    async def _supervise(self) -> None:
        await keep_connected(
            self.url,
            self._backoff,
            self._connect_once,
            self._run_connected,
            lambda: self._closing,
        )

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost.clear()
        self._connack = loop.create_future()
        host, port = self.url.host, self.url.port
        # paho connects, and does the TLS handshake, with blocking calls: keep them off the loop.
        await loop.run_in_executor(None, self._connect_blocking, host, port)
        try:
            reason = await asyncio.wait_for(self._connack, CONNACK_TIMEOUT)
        except TimeoutError:
            self._drop_socket()
            raise TransportError(f"no answer to CONNECT within {CONNACK_TIMEOUT:.0f} s") from None
        if reason.is_failure:
            self._drop_socket()
            raise TransportError(f"broker refused the connection: {reason}")

    def _connect_blocking(self, host: str, port: int) -> None:
        try:
            if self.session_expiry:
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = self.session_expiry
                self._client.connect(
                    host, port, self._keepalive, clean_start=False, properties=properties
                )
            else:
                self._client.connect(host, port, self._keepalive)
        except BaseException as exc:
            _close_sockets_in(exc.__traceback__)
            raise

    async def _run_connected(self) -> None:
        self.stats.connects += 1
        log.info("mqtt: connected to %s", self.url)
        self._replay_subscriptions()
        self._connected.set()
        call_listeners(self._listeners)
        while not self._lost.is_set():
            self._client.loop_misc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), MISC_INTERVAL)

    def _replay_subscriptions(self) -> None:
        if self._subs:
            topics = [(topic, options) for topic, (options, _) in self._subs.items()]
            self._client.subscribe(topics)  # type: ignore[arg-type]  # paho takes either form

    def _drop_socket(self) -> None:
        self._client.disconnect()
        self._unwatch()

    # -- public API ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        try:
            info = self._client.publish(topic, payload, qos, retain)
        except (ValueError, UnicodeEncodeError) as exc:  # not a topic one can publish to
            raise TransportError(f"cannot publish to {topic!r}: {exc}") from None
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0:
            self._offline.add(info.mid)  # paho sends it after the reconnect
            self._client.on_publish = self._on_publish
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or info.mid in self._offline:
            self.stats.published += 1
            self._last_publish = info
            return
        self.stats.dropped += 1
        if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
            why = paho.error_string(info.rc)
            log.warning(
                "mqtt: dropped message for %r: %s (%d dropped so far)",
                topic,
                why,
                self.stats.dropped,
            )

    async def flush(self) -> None:
        info = self._last_publish
        if info is None or self._sent(info):
            return
        # With on_publish set, paho builds a ReasonCode and a Properties object for every QoS 0
        # message it writes (about a tenth of a Repeat's time): only set it while someone waits.
        self._flushing += 1
        self._client.on_publish = self._on_publish
        try:
            while not self._sent(info):
                self._progress.clear()
                await self._progress.wait()
        finally:
            self._flushing -= 1
            if not self._flushing and not self._offline:
                self._client.on_publish = None

    def _sent(self, info: paho.MQTTMessageInfo) -> bool:
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            return info.mid not in self._offline
        return info.is_published()

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
        if topic.startswith(SHARE_PREFIX) and self.protocol != MQTT_5:
            raise TransportError(f"{topic!r}: shared subscriptions need MQTT 5 (protocol=5)")
        _check_filter(topic)
        options = self._subscribe_options(qos, no_local, retain_as_published, replay_retained)
        self._subs[topic] = (options, handler)
        self._routes[routing_filter(topic)] = handler
        if self.connected:
            rc, mid = self._client.subscribe(*self._subscription(topic, options))
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                # Return once the broker has applied it, so that "wired" means wired.
                acked = asyncio.get_running_loop().create_future()
                self._subacks[mid] = acked
                await acked

    def _subscribe_options(
        self, qos: int, no_local: bool, retain_as_published: bool, replay_retained: bool
    ) -> int | SubscribeOptions:
        if self.protocol == MQTT_5:
            return SubscribeOptions(
                qos=qos,
                noLocal=no_local,
                retainAsPublished=retain_as_published,
                retainHandling=(
                    SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
                    if replay_retained
                    else SubscribeOptions.RETAIN_DO_NOT_SEND
                ),
            )
        if no_local or retain_as_published or not replay_retained:
            raise TransportError("these subscription options need MQTT 5 (protocol=5)")
        return qos

    @staticmethod
    def _subscription(
        topic: str, options: int | SubscribeOptions
    ) -> tuple[str, int] | tuple[str, int, SubscribeOptions]:
        # paho takes QoS positionally for MQTT 3.1.1 and options by keyword for MQTT 5.
        if isinstance(options, int):
            return (topic, options)
        return (topic, 0, options)

    def shared_subscription(self, topic: str, group: str) -> str:
        """``$share/<group>/<topic>`` (MQTT 5): the broker gives each message of ``topic`` to
        one subscriber of ``group``. Needs ``protocol=MQTT_5``; Mosquitto 2 supports it."""
        if self.protocol != MQTT_5:
            raise TransportError(f"sharing {topic!r} needs MQTT 5 (protocol=5)")
        if not group or any(c in group for c in "/+#"):
            raise TransportError(f"{group!r} is not a share name (non-empty, no '/', '+', '#')")
        return f"{SHARE_PREFIX}{group}/{topic}"

    async def unsubscribe(self, topic: str) -> None:
        self._routes.pop(routing_filter(topic), None)
        if self._subs.pop(topic, None) is not None and self.connected:
            self._client.unsubscribe(topic)

    def add_connect_listener(self, listener: ConnectListener) -> None:
        self._listeners.append(listener)

    def pause_reading(self) -> None:
        if not self._paused and self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused and self._fd is not None and self._loop is not None:
            self._loop.add_reader(self._fd, self._on_readable)
        self._paused = False
        self._read_tls_leftovers()

    # -- paho callbacks (on the loop thread unless noted) --------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(reason)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        self._connected.clear()
        self._lost.set()
        # Subscriptions in flight are replayed after the reconnect: nobody should wait on them.
        for acked in self._subacks.values():
            if not acked.done():
                acked.set_result(None)
        self._subacks.clear()

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        acked = self._subacks.pop(mid, None)
        if acked is not None and not acked.done():
            acked.set_result(None)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        self._offline.discard(mid)
        if not self._flushing and not self._offline:
            self._client.on_publish = None
        self._progress.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.stats.received += 1
        topic = message.topic
        handler = self._routes.get(topic) or self._match_wildcard(topic)
        if handler is None:
            return
        delivery = Delivery(topic, bytes(message.payload), message.qos, bool(message.retain))
        try:
            handler(delivery)
        except Exception:
            log.exception("mqtt: handler for %r failed", topic)

    def _match_wildcard(self, topic: str) -> DeliveryHandler | None:
        for pattern, handler in self._routes.items():
            if ("+" in pattern or "#" in pattern) and paho.topic_matches_sub(pattern, topic):
                return handler
        return None

    def _threadsafe(self, fn: Callable[[paho.Client, Any, Any], None]) -> Any:
        """Run a socket callback on the loop, even when paho calls it from the connect thread."""

        def call(client: paho.Client, userdata: Any, sock: Any) -> None:
            loop = self._loop
            if loop is None or threading.get_ident() == self._loop_thread:
                fn(client, userdata, sock)
            else:
                loop.call_soon_threadsafe(fn, client, userdata, sock)

        return call

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._unwatch()
        self._fd = sock.fileno()
        # paho 2.2 leaves Nagle on: a small publish right after a PUBACK then waits for the
        # broker's delayed ACK (~40 ms per QoS 1 message; reference doc 4.2 "TCP_NODELAY").
        with contextlib.suppress(OSError, AttributeError):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._paused:
            self._loop.add_reader(self._fd, self._on_readable)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._unwatch()
        if self._connack is not None and not self._connack.done():
            # Closed before the broker answered (a proxy, or a broker going down): retry after
            # the backoff instead of waiting out CONNACK_TIMEOUT.
            self._connack.set_exception(TransportError("connection closed before CONNACK"))

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # Write once per event-loop turn, everything published meanwhile in one go; wait for the
        # socket (add_writer) only when it is full. Registering a writer for every message cost
        # two epoll_ctl calls and an extra loop turn per message.
        if self._loop is not None and self._fd is not None and not self._writing:
            self._writing = True
            self._loop.call_soon(self._write_pending)

    def _write_pending(self) -> None:
        if not self._writing or self._fd is None or self._loop is None:
            return  # written by a watcher meanwhile, or the socket is gone
        self._client.loop_write()  # calls _on_unregister_write once all is written
        if self._writing and self._fd is not None and not self._write_watched:
            self._loop.add_writer(self._fd, self._client.loop_write)
            self._write_watched = True

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._loop is not None and self._fd is not None and self._write_watched:
            self._loop.remove_writer(self._fd)
        self._writing = False
        self._write_watched = False

    def _on_readable(self) -> None:
        self._read_burst()
        self._read_tls_leftovers()

    def _read_burst(self) -> None:
        # paho reads a single packet per loop_read() at QoS 0: read on while messages keep
        # coming (bounded), unless the runtime paused reading (backpressure).
        for _ in range(READ_BURST):
            received = self.stats.received
            if self._client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            if self._paused or self.stats.received == received:
                return

    def _read_tls_leftovers(self) -> None:
        # Bytes already decrypted inside the SSL object do not make the socket readable
        # again: without this, a TLS record holding several packets could stall until more
        # data arrives.
        sock = self._client.socket()
        if (
            not self._paused
            and self._loop is not None
            and isinstance(sock, ssl.SSLSocket)
            and sock.pending() > 0
        ):
            self._loop.call_soon(self._on_readable)

    def _unwatch(self) -> None:
        # Sockets are forgotten by file descriptor number: paho may have closed the socket object
        # by the time a marshalled callback runs.
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = None
        self._writing = False
        self._write_watched = False


def _close_sockets_in(tb: TracebackType | None) -> None:
    """Close sockets left open in the frames of a failed connect: paho 2.2 does not close the
    socket when the TLS handshake fails, and each retry would leak one until garbage collection."""
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, socket.socket):
                value.close()
        tb = tb.tb_next


def _check_filter(topic: str) -> None:
    """Refuse a topic filter paho would raise on later, at every reconnect (MQTT 5 1.5.4)."""
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise TransportError(f"cannot subscribe to {topic!r}: not UTF-8 ({exc.reason})") from None
    if not 0 < size <= MAX_TOPIC_BYTES or "\x00" in topic:
        raise TransportError(f"cannot subscribe to {topic!r}: not a topic filter")
