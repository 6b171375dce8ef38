"""The MQTT client session, sans I/O: bytes and time in, bytes and notices out.

No sockets, no event loop, no clock: the driver (``client.py``) feeds what arrived to
:meth:`Session.receive`, sends what :meth:`Session.data_to_send` returns, calls
:meth:`Session.tick` when :meth:`Session.next_tick` says, and passes the time to each. The
session owns what outlives one connection: subscriptions (replayed after every CONNACK), QoS 1
and 2 messages until acknowledged (resent with DUP, 4.4), packet identifiers, and the protocol
version (MQTT 5, or 3.1.1 when asked or when a broker refuses 5).

:meth:`Session.receive` returns the incoming PUBLISH packets; the driver hands each to
:meth:`Session.accept` when it delivers it, so a QoS 1/2 message is acknowledged only once
taken (a paused reader acknowledges nothing). Control packets become :class:`Notice` objects
in :attr:`Session.notices`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gateway.errors import TransportError
from gateway.transport.base import Will
from gateway.transport.mqtt.packets import (
    DISCONNECT_PACKET,
    MQTT_5,
    MQTT_311,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBREC,
    PUBREL,
    Ack,
    ConnAck,
    Decoder,
    Disconnect,
    MalformedPacketError,
    Publish,
    PublishEncoder,
    SubAck,
    SubscriptionOptions,
    encode_ack,
    encode_connect,
    encode_subscribe,
    encode_unsubscribe,
    reason_name,
)
from gateway.transport.topics import check_filter

UNSUPPORTED_VERSION = 0x84
SUBSCRIBE_BATCH = 100  # topic filters per SUBSCRIBE when subscriptions are replayed


class RefusedError(TransportError):
    """The broker refused the connection; ``reason_code`` in MQTT 5 terms."""

    def __init__(self, reason_code: int) -> None:
        super().__init__(f"broker refused the connection: {reason_name(reason_code)}")
        self.reason_code = reason_code


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


@dataclass(frozen=True)
class Connected:
    session_present: bool


@dataclass(frozen=True)
class Acknowledged:
    """The SUBACK or UNSUBACK for request ``packet_id`` (``topics``) came."""

    packet_id: int
    topics: tuple[str, ...]
    reason_codes: tuple[int, ...]
    subscribe: bool


@dataclass(frozen=True)
class Closed:
    """The session wants the connection closed (a DISCONNECT came, or no PINGRESP)."""

    reason: str


Notice = Connected | Acknowledged | Closed


@dataclass
class Session:
    """One MQTT client session across connections; see the module docstring."""

    client_id: str
    keepalive: int = 60
    username: str | None = None
    password: str | None = None
    will: Will | None = None
    session_expiry: int = 0
    version: int = MQTT_5
    max_queued: int = 10_000  # QoS>0 messages waiting to be sent, past which they are dropped
    subscriptions: dict[str, SubscriptionOptions] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    connected: bool = False
    session_present: bool = False
    out: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self._decoder = Decoder(self.version)
        self._encoder = PublishEncoder(self.version)
        self._inflight: dict[int, Outgoing] = {}  # sent QoS>0 messages by packet id, in order
        self._waiting: deque[Outgoing] = deque()  # QoS>0 messages not sent yet
        self._requests: dict[int, tuple[tuple[str, ...], bool]] = {}  # id -> topics, subscribe
        self._incoming_qos2: set[int] = set()  # PUBREC sent, PUBREL not yet received
        self._receive_maximum = 65_535
        self._next_id = 0
        self._last_sent = 0.0
        self._ping_sent: float | None = None

    # -- connection ----------------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """A new network connection is up: start with CONNECT (3.1)."""
        self.connected = False
        self._decoder = Decoder(self.version)
        self.out.clear()
        self.out += encode_connect(
            self.client_id,
            version=self.version,
            keepalive=self.keepalive,
            username=self.username,
            password=self.password,
            will=self.will,
            session_expiry=self.session_expiry,
        )
        self._last_sent = now
        self._ping_sent = None

    def use_version(self, version: int) -> None:
        """Speak ``version`` from the next :meth:`connect` on."""
        self.version = version
        self._encoder = PublishEncoder(version)

    def connection_lost(self) -> list[int]:
        """The connection is gone: what was written and not sent is lost, QoS>0 messages wait
        for the next connection. Returns the ids of the requests nobody will answer."""
        self.connected = False
        self.out.clear()
        orphans = list(self._requests)
        self._requests.clear()
        return orphans

    def disconnect(self) -> None:
        """A clean goodbye (3.14): the broker then drops the will."""
        if self.connected:
            self.out += DISCONNECT_PACKET
        self.connected = False

    def _on_connack(self, event: ConnAck) -> None:
        if event.reason_code >= 0x80:
            raise RefusedError(event.reason_code)
        self.connected = True
        self.session_present = event.session_present
        self._receive_maximum = event.receive_maximum
        if event.server_keep_alive is not None:
            self.keepalive = event.server_keep_alive  # 3.2.2.3.14: the server's value wins
        if not event.session_present:
            self._incoming_qos2.clear()  # a new session: the broker forgot them too
        self._replay_subscriptions()
        self._resend_unacknowledged()
        self.notices.append(Connected(event.session_present))

    def _replay_subscriptions(self) -> None:
        entries = list(self.subscriptions.items())
        for start in range(0, len(entries), SUBSCRIBE_BATCH):
            self._subscribe_request(entries[start : start + SUBSCRIBE_BATCH])

    def _resend_unacknowledged(self) -> None:
        """4.4: unacknowledged PUBLISH packets again with DUP, and PUBREL for those the broker
        has received, in their original order; then what waited."""
        for packet_id, message in self._inflight.items():
            if message.released:
                self.out += encode_ack(PUBREL, packet_id)
            else:
                self._write_publish(message, dup=True)
        self._send_waiting()

    # -- keep alive (3.1.2.10) -----------------------------------------------------------------

    def next_tick(self) -> float | None:
        """When :meth:`tick` should run next; None when keep alive is off."""
        if not self.keepalive or not self.connected:
            return None
        return (self._ping_sent if self._ping_sent is not None else self._last_sent) + (
            self.keepalive
        )

    def tick(self, now: float) -> None:
        """PINGREQ when nothing went out for a keep alive period; a broker that did not answer
        it within another is dead (:class:`Closed`)."""
        deadline = self.next_tick()
        if deadline is None or now < deadline:
            return
        if self._ping_sent is not None:
            self.notices.append(Closed(f"no PINGRESP within {self.keepalive} s"))
        else:
            self._ping_sent = now
            self.out += PINGREQ

    def data_to_send(self, now: float) -> bytearray:
        """Everything to write, at once; the session forgets it."""
        data, self.out = self.out, bytearray()
        if data:
            self._last_sent = now
        return data

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        """Queue a message; False when it was dropped (QoS 0 while not connected, or too many
        QoS>0 messages waiting). A bad topic raises :class:`TransportError`."""
        if not qos:
            if not self.connected:
                return False
            self._encoder.write(self.out, topic, payload, 0, retain)
            return True
        if len(self._waiting) >= self.max_queued:
            return False
        self._encoder.topic_bytes(topic)  # a bad topic raises here, not at every reconnect
        self._waiting.append(Outgoing(topic, payload, qos, retain))
        self._send_waiting()
        return True

    def outstanding(self) -> list[Outgoing]:
        """QoS>0 messages not yet acknowledged, oldest first."""
        return [*self._inflight.values(), *self._waiting]

    def _send_waiting(self) -> None:
        """Send queued QoS>0 messages while the broker's Receive Maximum allows (3.3.4)."""
        if not self.connected:
            return
        while self._waiting and len(self._inflight) < self._receive_maximum:
            message = self._waiting.popleft()
            message.packet_id = self._new_packet_id()
            self._inflight[message.packet_id] = message
            self._write_publish(message)

    def _write_publish(self, message: Outgoing, *, dup: bool = False) -> None:
        self._encoder.write(
            self.out,
            message.topic,
            message.payload,
            message.qos,
            message.retain,
            packet_id=message.packet_id,
            dup=dup,
        )

    def _new_packet_id(self) -> int:
        for _ in range(65_535):
            self._next_id = self._next_id % 65_535 + 1
            if self._next_id not in self._inflight and self._next_id not in self._requests:
                return self._next_id
        raise TransportError("all 65535 packet identifiers are in use")

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, topic: str, options: SubscriptionOptions) -> int | None:
        """Subscribe now and after every reconnect; the request's packet id when connected."""
        missing = options.needs_v5 if self.version != MQTT_5 else None
        if missing:
            raise TransportError(f"{missing} on {topic!r} needs MQTT 5; this is MQTT 3.1.1")
        check_filter(topic)  # here, not at every reconnect
        self.subscriptions[topic] = options
        return self._subscribe_request([(topic, options)]) if self.connected else None

    def unsubscribe(self, topic: str) -> int | None:
        if self.subscriptions.pop(topic, None) is None or not self.connected:
            return None
        packet_id = self._new_packet_id()
        self._requests[packet_id] = ((topic,), False)
        self.out += encode_unsubscribe(packet_id, [topic], self.version)
        return packet_id

    def _subscribe_request(self, entries: list[tuple[str, SubscriptionOptions]]) -> int:
        packet_id = self._new_packet_id()
        self._requests[packet_id] = (tuple(t for t, _ in entries), True)
        self.out += encode_subscribe(packet_id, entries, self.version)
        return packet_id

    # -- receiving -----------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Publish]:
        """Decode ``data``: the PUBLISH packets in it, to be delivered through :meth:`accept`.
        Control packets are handled here. A malformed packet raises
        :class:`~gateway.transport.mqtt.packets.MalformedPacketError`, a refused CONNECT
        :class:`RefusedError`; the driver then closes the connection."""
        try:
            events, bad = self._decoder.feed(data), None
        except MalformedPacketError as exc:
            events, bad = exc.events, exc
        publishes: list[Publish] = []
        for event in events:
            if type(event) is Publish:
                publishes.append(event)
            elif type(event) is Ack:
                self._on_ack(event)
            else:
                self._on_control(event)
        if bad is not None:
            bad.events = list(publishes)  # the good messages before it, to deliver
            raise bad
        return publishes

    def accept(self, message: Publish) -> bool:
        """4.3.2 and 4.3.3 (method B): acknowledge a QoS 1/2 message as it is delivered;
        False for a QoS 2 message delivered already."""
        packet_id = message.packet_id
        if message.qos == 1:
            self.out += encode_ack(PUBACK, packet_id)
            return True
        self.out += encode_ack(PUBREC, packet_id)
        if packet_id in self._incoming_qos2:
            return False
        self._incoming_qos2.add(packet_id)
        return True

    def _on_ack(self, event: Ack) -> None:
        kind, packet_id = event.kind, event.packet_id
        if kind == PUBREL:
            self._incoming_qos2.discard(packet_id)
            self.out += encode_ack(PUBCOMP, packet_id)
            return
        message = self._inflight.get(packet_id)
        if message is None:
            return
        # PUBREC with a failure reason: the broker refused it and no PUBREL follows (4.3.3).
        if kind == PUBREC and event.reason_code < 0x80:
            message.released = True
            self.out += encode_ack(PUBREL, packet_id)
            return
        del self._inflight[packet_id]
        message.done = True
        self._send_waiting()

    def _on_control(self, event: object) -> None:
        if isinstance(event, ConnAck):
            self._on_connack(event)
        elif isinstance(event, SubAck):
            request = self._requests.pop(event.packet_id, None)
            if request is not None:
                topics, subscribe = request
                self.notices.append(
                    Acknowledged(event.packet_id, topics, event.reason_codes, subscribe)
                )
        elif isinstance(event, Disconnect):
            why = reason_name(event.reason_code)
            if event.reason_string:
                why += f" ({event.reason_string})"
            self.notices.append(Closed(f"the broker disconnected us: {why}"))
        else:  # PINGRESP
            self._ping_sent = None


__all__ = [
    "MQTT_5",
    "MQTT_311",
    "UNSUPPORTED_VERSION",
    "Acknowledged",
    "Closed",
    "Connected",
    "Notice",
    "Outgoing",
    "RefusedError",
    "Session",
]
