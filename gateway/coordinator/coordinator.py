"""The coordinator: discovers participants, wires the graph on the broker, sends IIPs.

It never waits for anyone: a graph loads at once, edges whose participants are not discovered
yet are pending and get wired the moment they are, and a participant that comes back (a new id,
or an id that had expired) gets its IIPs again. Discovery handling never raises: bad messages
are logged once with their topic, reason and an excerpt, counted, and dropped.

How resolved edges become real is the binder's business (``binder.py``): on MQTT the
coordinator forwards each message byte-for-byte, with its QoS and retain flag, to every topic
reachable from its source topic (protocol.md 4.1, fixed; see ``routing.py``); on AMQP each edge
is a broker-side binding and the coordinator is not in the data path (protocol.md 4.2).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gateway.coordinator.binder import Binder, ForwardStats, MqttForwarder
from gateway.coordinator.registry import Change, Registry, RegistryEvent
from gateway.coordinator.wiring import (
    EdgeState,
    GraphIndex,
    find_port,
    iip_queue,
    resolve_edge,
)
from gateway.errors import DiscoveryError, TransportError
from gateway.graph.model import Edge, Graph, Initial, PortRef, thaw
from gateway.participant.definition import Direction, ParticipantDefinition
from gateway.participant.discovery import Discovered, parse_discovery
from gateway.transport.base import Delivery, Transport

log = logging.getLogger(__name__)

EXCERPT = 120  # bytes of a bad payload shown in the log
MAX_REMEMBERED_REJECTS = 1000  # distinct bad messages logged once each
PARSED_CACHE_BYTES = 4 * 1024 * 1024  # discovery messages whose parse is remembered
RETRY_WIRING = 1.0  # seconds before wiring that the broker refused is tried again
WEB_ROLE = re.compile(r"(web-[0-9a-f]{8})")  # a dashboard page's prefix (docs/dashboard.md)


class RetainedPolicy(enum.Enum):
    """What to do with retained messages the broker replays when the coordinator subscribes."""

    SKIP = "skip"  # the default: a replayed "pressed" must not act again after every restart
    FORWARD = "forward"  # propagate retained state (e.g. a device's last value) on start


@dataclass
class CoordinatorStats(ForwardStats):
    discovery_messages: int = 0
    discovery_rejected: int = 0
    iips_sent: int = 0
    rewires: int = 0


@dataclass(frozen=True)
class CoordinatorOptions:
    expiry: float = 600.0
    retained: RetainedPolicy = RetainedPolicy.SKIP
    # After a graph is loaded, an IIP waits until the roles downstream of its target are
    # discovered (so what it sets off is not lost on unwired edges), but never longer than this.
    iip_hold: float = 45.0
    forward_qos: int = 2  # subscribe at QoS 2 so each message keeps the QoS it was sent with
    # The deployment's name (the graph's): on AMQP it keys the broker-side record of the
    # bindings made, so a restart on an edited graph removes the edges it no longer has.
    # None: no record (an embedded coordinator whose bindings someone else cleans up).
    deployment: str | None = None
    # Strict discovery (the appliance's default): a role's ports must use queues under
    # "<role>/", the topics the broker lets only that role's user read and write. A
    # subscriber cannot tell who published an announcement, so this is what keeps one
    # device from pointing another role's ports at topics it controls. See docs/security.md.
    strict: bool = False


@dataclass
class _Wiring:
    states: dict[int, EdgeState] = field(default_factory=dict)  # by edge index in the graph


class Coordinator:
    """Wires ``graph`` on ``transport``; run it with :meth:`run` (until cancelled).

    ``binder`` makes edges real on the broker; by default the one for the transport's kind
    (MQTT forwarding, AMQP bindings), see :func:`binder_for`.
    """

    def __init__(
        self,
        transport: Transport,
        graph: Graph,
        *,
        options: CoordinatorOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        binder: Binder | None = None,
    ) -> None:
        self.transport = transport
        self.options = options or CoordinatorOptions()
        self.registry = Registry(self.options.expiry)
        self.stats = CoordinatorStats()
        self._clock = clock
        self._graph = graph
        self._index = GraphIndex.of(graph)
        self._wiring = _Wiring()
        self._dirty_roles: set[str] | None = None  # None: everything
        self._dirty = asyncio.Event()
        self._dirty.set()
        self._clean = asyncio.Event()  # set while everything seen so far is wired
        # Set once the broker has acknowledged the discovery subscription: from then on no
        # participant's announcement is missed ("msgflo started on" waits for it).
        self.listening = asyncio.Event()
        self._rejects_seen: set[tuple[str, str]] = set()
        self._parsed: dict[bytes, Discovered] = {}  # oldest first
        self._parsed_bytes = 0
        self._listeners: list[Callable[[RegistryEvent], None]] = []
        self._held_iips: list[Initial] = []
        self._observers: dict[str, Callable[[bytes], None]] = {}
        self.binder = binder or binder_for(transport, self._observed, self.options, self.stats)
        self.binder.on_reconnect = self._rewire_all
        self._retry: asyncio.TimerHandle | None = None
        # The expiry loop sleeps until the earliest deadline it knew of; an announcement with
        # a shorter period (a page closing its virtual devices) wakes it to look again.
        self._expiry_check_at = float("inf")
        self._expiry_sooner = asyncio.Event()
        self.on_iip: Callable[[Initial], None] | None = None
        self._hold_until = clock() + self.options.iip_hold
        self._hold_timer: asyncio.TimerHandle | None = None

    # -- running -------------------------------------------------------------------------------

    async def restore(self, definitions: Iterable[ParticipantDefinition]) -> None:
        """Before :meth:`run`: take these participants as discovered (a restart's saved
        registry) and, where the binder can, wire them before the connection exists, so
        that what a persistent session replays at connect is forwarded, not dropped."""
        now = self._clock()
        for definition in definitions:
            try:
                event = self.registry.observe(definition, now)
            except DiscoveryError as exc:
                log.warning("saved participant %s not restored: %s", definition.id, exc.reason)
                continue
            if event is not None:
                self._notify(event)
        if self.binder.wires_offline:
            self._dirty.clear()
            await self._apply()
            self._dirty.set()

    async def run(self) -> None:
        async with self.binder:
            await self.binder.subscribe_discovery(self._on_discovery)
            self._start_hold()
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._confirm_listening())
                    tasks.create_task(self._wire_forever())
                    tasks.create_task(self._expire_forever())
            finally:
                if self._retry is not None:
                    self._retry.cancel()

    async def _confirm_listening(self) -> None:
        """Set :attr:`listening`. Subscribed while still connecting, the subscription went out
        after CONNACK without anyone waiting for its SUBACK: subscribing again once connected
        returns with it (a retained announcement may then arrive twice, which is harmless)."""
        if not self.transport.connected:
            await self.transport.wait_connected()
            await self.binder.subscribe_discovery(self._on_discovery)
        self.listening.set()

    async def _wire_forever(self) -> None:
        # One writer of the wiring; a burst of discovery messages is wired in one pass.
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._apply()
            self._release_iips()
            if not self._dirty.is_set():
                self._clean.set()

    async def _expire_forever(self) -> None:
        while True:
            deadline = self.registry.next_expiry()
            delay = 1.0 if deadline is None else max(0.05, deadline - self._clock() + 0.01)
            delay = min(delay, 60.0)
            self._expiry_check_at = self._clock() + delay
            self._expiry_sooner.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._expiry_sooner.wait()
                continue  # a sooner deadline: sleep until it instead
            except TimeoutError:
                pass
            for event in self.registry.expire(self._clock()):
                log.info(
                    "participant %s (%s) gone: not heard from in %.0f s",
                    event.participant.id,
                    event.participant.role,
                    event.participant.timeout,
                )
                self._notify(event)

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def expiry_check_at(self) -> float:
        """When (on :meth:`now`'s clock) the expiry loop looks next, unless woken sooner."""
        return self._expiry_check_at

    def now(self) -> float:
        """The coordinator's clock, on which the registry's times are."""
        return self._clock()

    def set_graph(self, graph: Graph) -> None:
        """Replace the graph: rewire everything and send the IIPs the old graph did not have.

        An IIP both graphs have was sent already: a node added for a participant that was
        discovered, or an edge drawn in Flowhub, must not deliver every IIP again.
        """
        held = Counter(_iip_key(i) for i in self._held_iips)
        sent = Counter(_iip_key(i) for i in self._index.initials) - held
        self._held_iips = []
        self._graph = graph
        self._index = GraphIndex.of(graph)
        self._wiring.states.clear()
        self._dirty_roles = None
        self._clean.clear()
        self._dirty.set()
        for initial in self._initials():
            key = _iip_key(initial)
            if sent[key] > 0:
                sent[key] -= 1
            else:
                self._held_iips.append(initial)
        self._start_hold()

    def forget(self, role: str) -> None:
        """Drop every participant of ``role`` from the registry (its process was stopped): it
        would otherwise count as live, and keep its wiring, until it expired."""
        for seen in self.registry.known(role):
            self.registry.remove(seen.id)
        self._mark_dirty(role)

    def add_listener(self, listener: Callable[[RegistryEvent], None]) -> None:
        self._listeners.append(listener)

    def edge_states(self) -> list[EdgeState]:
        return [self._wiring.states[i] for i in sorted(self._wiring.states)]

    # -- discovery -----------------------------------------------------------------------------

    def _on_discovery(self, delivery: Delivery) -> None:
        self.stats.discovery_messages += 1
        try:
            found = self._parse(delivery.payload)
            if self.options.strict:
                check_own_queues(found.definition)
            self._warn_if_ports_move(found.definition)
            now = self._clock()
            event = self.registry.observe(found.definition, now)
        except DiscoveryError as exc:
            self._reject(delivery, exc.reason)
            return
        if now + self.registry.timeout_for(found.definition) < self._expiry_check_at:
            self._expiry_sooner.set()
        if event is not None:
            self._notify(event)

    def _warn_if_ports_move(self, definition: ParticipantDefinition) -> None:
        """A new id that gives a role's port another queue than its live participant does:
        a device replaced, or someone announcing for the role (which wins until the real
        participant announces again), so it is worth a line."""
        if self.registry.get(definition.id) is not None:
            return
        for seen in self.registry.live(definition.role):
            moved = _moved_ports(seen.definition, definition)
            if moved:
                log.warning(
                    "participant %s announces role %s with %s; %s announced %s",
                    definition.id,
                    definition.role,
                    ", ".join(f"{p} on {new!r}" for p, _, new in moved),
                    seen.id,
                    ", ".join(f"{p} on {old!r}" for p, old, _ in moved),
                )
                return

    def _parse(self, payload: bytes) -> Discovered:
        # Participants re-announce the same bytes every 27 s: a thousand of them would keep
        # the coordinator parsing JSON all day. Seen bytes are looked up instead; the cache is
        # bounded in bytes, since every message may be up to MAX_DISCOVERY_BYTES long.
        found = self._parsed.get(payload)
        if found is not None:
            return found
        found = parse_discovery(payload)
        for warning in found.warnings:
            log.debug("discovery from %s: %s", found.definition.role, warning)
        while self._parsed and self._parsed_bytes + len(payload) > PARSED_CACHE_BYTES:
            oldest = next(iter(self._parsed))
            self._parsed_bytes -= len(oldest)
            del self._parsed[oldest]
        self._parsed[payload] = found
        self._parsed_bytes += len(payload)
        return found

    def _reject(self, delivery: Delivery, reason: str) -> None:
        self.stats.discovery_rejected += 1
        excerpt = delivery.payload[:EXCERPT].decode("utf-8", errors="replace")
        key = (reason, excerpt)
        if key in self._rejects_seen:
            return
        if len(self._rejects_seen) >= MAX_REMEMBERED_REJECTS:
            # A flood of distinct bad messages: a line now and then, not one each.
            if self.stats.discovery_rejected % MAX_REMEMBERED_REJECTS == 0:
                log.warning(
                    "discovery: %d messages rejected so far; the latest on %r: %s",
                    self.stats.discovery_rejected,
                    delivery.topic,
                    reason,
                )
            return
        self._rejects_seen.add(key)
        log.warning(
            "discovery on %r rejected: %s; payload %r (%d rejected so far)",
            delivery.topic,
            reason,
            excerpt,
            self.stats.discovery_rejected,
        )

    def _notify(self, event: RegistryEvent) -> None:
        seen = event.participant
        if event.change is not Change.GONE:
            log.info(
                "participant %s (%s, %s) %s",
                seen.id,
                seen.role,
                seen.definition.component,
                event.change.value,
            )
        self._mark_dirty(seen.role)
        if event.change in (Change.ADDED, Change.RETURNED):
            # Sent once this change is wired (see _release_iips). Compared by identity: the
            # IIPs 0 and false are equal in Python but are two IIPs.
            held = {id(i) for i in self._held_iips}
            self._held_iips += [i for i in self._initials(seen.role) if id(i) not in held]
        for listener in self._listeners:
            listener(event)

    # -- wiring --------------------------------------------------------------------------------

    def _mark_dirty(self, role: str) -> None:
        if self._dirty_roles is not None:
            self._dirty_roles.add(role)
        self._clean.clear()
        self._dirty.set()

    async def wired(self) -> None:
        """Wait until every change seen so far is wired (for tests and the protocol)."""
        await self._clean.wait()

    @property
    def retrying(self) -> bool:
        """Part of the last wiring the broker refused; it is tried again in a moment. (After
        :meth:`wired`, False means the broker carries every resolved edge.)"""
        return self._retry is not None

    def observe(self, observers: dict[str, Callable[[bytes], None]]) -> None:
        """Hand every message published on these topics (by others: no local) to their
        observer, replacing the previous set: edge inspection and exported outports."""
        self._observers = dict(observers)
        self._clean.clear()
        self._dirty.set()

    def queue_of(self, role: str, port: str, direction: Direction) -> str | None:
        """The topic of a discovered port, matched as graph ports are."""
        found = find_port(self.registry, PortRef(role, port), direction)
        return found.queue if found else None

    async def _apply(self) -> None:
        dirty, self._dirty_roles = self._dirty_roles, set()
        if dirty is None:
            touched: Iterable[tuple[int, Edge]] = self._index.edges
        else:
            touched = (e for role in dirty for e in self._index.edges_by_role.get(role, ()))
        for index, edge in touched:
            kind = self._index.kind(index)
            self._wiring.states[index] = resolve_edge(self.registry, edge, kind)
        self.stats.rewires += 1
        complete = await self.binder.apply(self.edge_states(), frozenset(self._observers))
        if not complete and self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(RETRY_WIRING, self._rewire_all)

    def _rewire_all(self) -> None:
        self._retry = None
        self._dirty_roles = None
        self._clean.clear()
        self._dirty.set()

    def _initials(self, role: str | None = None) -> list[Initial]:
        if role is None:
            return list(self._index.initials)
        return list(self._index.initials_by_role.get(role, ()))

    # -- data ----------------------------------------------------------------------------------

    def _observed(self, topic: str, payload: bytes) -> None:
        observer = self._observers.get(topic)
        if observer is not None:
            observer(payload)

    def publish(self, topic: str, payload: bytes, *, qos: int = 0) -> None:
        """Publish as the coordinator: to ``topic`` and everything wired from it."""
        self.binder.publish(topic, payload, qos=qos)

    def sendable_iips(self) -> list[tuple[Initial, str]]:
        """The graph's IIPs whose target is discovered, with the topic each goes to."""
        found = ((i, iip_queue(self.registry, i)) for i in self._initials())
        return [(initial, queue) for initial, queue in found if queue is not None]

    def resend_iips(self, *, notify: bool = True) -> None:
        """Send every IIP of the graph again now, to the targets that are discovered."""
        for initial, queue in self.sendable_iips():
            self._send_iip(initial, queue, notify=notify)

    def _start_hold(self) -> None:
        self._hold_until = self._clock() + self.options.iip_hold
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        loop = asyncio.get_running_loop()
        self._hold_timer = loop.call_later(self.options.iip_hold, self._release_iips)

    def _release_iips(self) -> None:
        """Send the held IIPs whose target is discovered and whose downstream roles are too
        (or whose hold has run out); the others stay held."""
        if not self._held_iips:
            return
        expired = self._clock() >= self._hold_until
        still_held = []
        for initial in self._held_iips:
            queue = iip_queue(self.registry, initial)
            if queue is None or not (expired or self._downstream_known(initial.tgt.process)):
                still_held.append(initial)
                continue
            self._send_iip(initial, queue)
        self._held_iips = still_held

    def _downstream_known(self, role: str) -> bool:
        return all(self.registry.known(r) for r in self._index.roles_downstream(role))

    def _send_iip(self, initial: Initial, queue: str, *, notify: bool = True) -> None:
        self.publish(queue, json.dumps(thaw(initial.data)).encode("utf-8"), qos=1)
        self.stats.iips_sent += 1
        if notify and self.on_iip is not None:
            self.on_iip(initial)
        log.info(
            "IIP %s -> %s %s (%s)",
            json.dumps(thaw(initial.data))[:60],
            initial.tgt.port,
            initial.tgt.process,
            queue,
        )


def check_own_queues(definition: ParticipantDefinition) -> None:
    """Strict discovery: every announced queue is under ``<role>/`` (raises DiscoveryError).
    A dashboard page's virtual device (role ``web-<8 hex>...``) uses ``web/web-<8 hex>/``
    instead: the topics of the broker's ``web`` user, which every page shares."""
    page = WEB_ROLE.match(definition.role)
    prefix = f"web/{page.group(1)}/" if page else definition.role + "/"
    for port in (*definition.inports, *definition.outports):
        if not port.hidden and not port.queue.startswith(prefix):
            raise DiscoveryError(
                f"role {definition.role!r} announced {port.id} on {port.queue!r}, outside "
                f"{prefix!r} (strict discovery)"
            )


def _moved_ports(
    old: ParticipantDefinition, new: ParticipantDefinition
) -> list[tuple[str, str, str]]:
    """(port, old queue, new queue) of the ports both declare with different queues."""
    moved = []
    for direction in Direction:
        for port in new.inports if direction is Direction.IN else new.outports:
            before = old.port(direction, port.id)
            if before is not None and before.queue != port.queue:
                moved.append((port.id, before.queue, port.queue))
    return moved


def _iip_key(initial: Initial) -> tuple[PortRef, str]:
    # By JSON text, not by value: the IIPs 0 and false are equal in Python but are two IIPs.
    return initial.tgt, json.dumps(thaw(initial.data), sort_keys=True)


def binder_for(
    transport: Transport,
    on_data: Callable[[str, bytes], None],
    options: CoordinatorOptions,
    stats: ForwardStats,
) -> Binder:
    """The binder for the transport's broker: AMQP bindings for ``amqp(s)://``, else MQTT
    forwarding."""
    if transport.url.scheme in ("amqp", "amqps"):
        # Imported here so that an MQTT-only gateway never imports aio-pika.
        from gateway.coordinator.amqp_binder import AmqpBinder
        from gateway.transport.amqp import AmqpTransport

        if not isinstance(transport, AmqpTransport):
            raise TransportError(f"{transport.url}: the AMQP binder needs an AMQP transport")
        return AmqpBinder(transport, on_data, record=options.deployment)
    replay = options.retained is RetainedPolicy.FORWARD
    return MqttForwarder(
        transport, on_data, qos=options.forward_qos, replay_retained=replay, stats=stats
    )
