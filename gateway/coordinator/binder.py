"""How the coordinator makes resolved edges real on a broker: one small interface, one
implementation per kind of broker, chosen by the transport (so by the URL scheme).

- MQTT (:class:`MqttForwarder`): the broker cannot route between topics, so the coordinator
  subscribes to each source topic and republishes (protocol.md 4.1, fixed as ``routing.py`` says).
- AMQP (:class:`gateway.coordinator.amqp_binder.AmqpBinder`): each edge is a broker-side
  binding and the coordinator is not in the data path (protocol.md 4.2).

The coordinator keeps all graph logic (discovery, pending edges, IIPs); a binder only turns the
current set of resolved edges and observed outports into broker state, and is told the whole
set each time, so it can diff against what it did before.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from gateway.coordinator.routing import RouteTable
from gateway.coordinator.wiring import EdgeState, route_table
from gateway.participant.discovery import DISCOVERY_TOPIC
from gateway.transport.base import Delivery, DeliveryHandler, Transport

DataFn = Callable[[str, bytes], None]  # (source queue, payload) of observed data

log = logging.getLogger(__name__)


class Binder(abc.ABC):
    """Broker-specific wiring of edges, edge observation (inspection) and publishing.

    ``on_reconnect`` (set by the coordinator) is called when the binder lost what it had
    set up and needs :meth:`apply` again.
    """

    on_reconnect: Callable[[], None] | None = None
    # Whether :meth:`apply` works before the broker connection is up (it only records).
    wires_offline = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(  # noqa: B027 - MQTT forwarding creates nothing of its own
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Remove what the binder created for itself (never the graph's bindings)."""

    @abc.abstractmethod
    async def subscribe_discovery(self, handler: DeliveryHandler) -> None:
        """Deliver discovery messages (``fbp``) to ``handler``."""

    @abc.abstractmethod
    async def apply(self, states: Sequence[EdgeState], observed: frozenset[str]) -> bool:
        """Make the broker carry exactly the resolved edges in ``states``, and hand data
        published on the ``observed`` outport queues to ``on_data``. Returns False when part
        of it failed and should be tried again later."""

    @abc.abstractmethod
    def publish(self, queue: str, payload: bytes, *, qos: int = 0) -> None:
        """Publish to an inport queue as the coordinator (IIPs, ``runtime:packet``), so that
        it also reaches whatever is wired from that queue."""


@dataclass
class ForwardStats:
    forwarded: int = 0


class MqttForwarder(Binder):
    """MQTT edges forwarded by the coordinator, byte-for-byte, with MQTT 5 "no local".

    On an MQTT 3.1.1 connection (no "no local", no "retain as published") it forwards as the
    original did, see ``routing.py``; a retained message that arrives live is forwarded
    without its retain flag there, since the broker clears it (3.1.1 3.3.1.3).
    """

    wires_offline = True  # subscriptions made while disconnected are sent at connect

    def __init__(
        self,
        transport: Transport,
        on_data: DataFn,
        *,
        qos: int = 2,
        replay_retained: bool = False,
        stats: ForwardStats | None = None,
    ) -> None:
        self.transport = transport
        self.table = RouteTable()
        self.stats = stats or ForwardStats()
        self._on_data = on_data
        self._qos = qos  # subscribe at QoS 2 so each message keeps the QoS it was sent with
        self._replay = replay_retained
        self._subscribed: frozenset[str] = frozenset()
        self._observed: frozenset[str] = frozenset()
        self._kept: frozenset[str] = frozenset()  # persistent inports: forwarded at QoS >= 1
        self._echoes = not transport.supports_no_local
        self._cut: frozenset[object] = frozenset()
        transport.add_connect_listener(self._check_protocol)

    def _check_protocol(self) -> None:
        """A broker that refused MQTT 5 made the connection 3.1.1: subscribe again."""
        if self._echoes != (not self.transport.supports_no_local):
            self._echoes = not self._echoes
            self._subscribed = frozenset()
            if self.on_reconnect is not None:
                self.on_reconnect()

    async def subscribe_discovery(self, handler: DeliveryHandler) -> None:
        await self.transport.subscribe(DISCOVERY_TOPIC, handler, qos=0)

    async def apply(self, states: Sequence[EdgeState], observed: frozenset[str]) -> bool:
        self.table = route_table(states, echoes=self._echoes)
        if self.table.cut != self._cut:
            self._cut = self.table.cut
            for route in sorted(self.table.cut):
                log.warning(
                    "not forwarding %s -> %s: it closes a cycle of topics, which MQTT 3.1.1 "
                    "would carry round forever (no 'no local'; use MQTT 5)",
                    route.src,
                    route.tgt,
                )
        self._observed = observed
        self._kept = frozenset(s.tgt_queue for s in states if s.tgt_persistent and s.tgt_queue)
        wanted = self.table.sources | observed
        for topic in sorted(wanted - self._subscribed):
            await self.transport.subscribe(
                topic,
                self._deliver,
                qos=self._qos,
                no_local=not self._echoes,
                retain_as_published=not self._echoes,
                replay_retained=self._replay,
            )
        for topic in sorted(self._subscribed - wanted):
            await self.transport.unsubscribe(topic)
        self._subscribed = wanted
        return True

    def _deliver(self, delivery: Delivery) -> None:
        for topic in self.table.targets(delivery.topic):
            qos = max(delivery.qos, 1) if topic in self._kept else delivery.qos
            self.transport.publish(topic, delivery.payload, qos=qos, retain=delivery.retain)
            self.stats.forwarded += 1
        if delivery.topic in self._observed:
            self._on_data(delivery.topic, delivery.payload)

    def publish(self, queue: str, payload: bytes, *, qos: int = 0) -> None:
        # The broker does not echo our own messages back to the forwarder (no local); on
        # 3.1.1 it does, and the echo carries the message on.
        self.transport.publish(queue, payload, qos=max(qos, 1) if queue in self._kept else qos)
        if self._echoes:
            return
        for target in self.table.targets(queue):
            kept = max(qos, 1) if target in self._kept else qos
            self.transport.publish(target, payload, qos=kept)
