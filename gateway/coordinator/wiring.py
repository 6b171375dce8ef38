"""From graph edges and discovered participants to topics (pure).

Queues are always taken from discovery, never guessed from a naming convention (protocol.md 2.3:
there is no single rule). An edge whose ends are not discovered yet is *pending*; it becomes a
route the moment both ends resolve, and follows them when a participant re-announces with other
topics.

Pseudo-components (``msgflo/RoundRobin``, ``msgflo/PubSub``; msgflo ``src/common.coffee``
``isParticipant``) are nodes with no participant: the edges through one are collapsed into
direct edges from each of its sources to each of its targets, as msgflo ``graphBindings`` does.
A RoundRobin's ``DEADLETTER`` outport becomes a *dead-letter* edge from each worker's inport to
the dead-letter target (on AMQP: the worker queue's ``dead-<queue>`` exchange bound to it).
"""

from __future__ import annotations

import enum
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.coordinator.registry import Registry
from gateway.coordinator.routing import Route, RouteTable
from gateway.graph.model import Edge, Graph, Initial, PortRef
from gateway.participant.definition import Direction, PortDefinition
from gateway.transport.base import Persistence

ROUND_ROBIN = "msgflo/RoundRobin"
PUB_SUB = "msgflo/PubSub"
PSEUDO_COMPONENTS = frozenset({ROUND_ROBIN, PUB_SUB})
DEADLETTER_PORT = "deadletter"  # msgflo graphBindings compares the port id lower-case


class EdgeKind(enum.Enum):
    """``PUBSUB``: outport -> inport. ``ROUNDROBIN``: the same, collapsed from the edges through
    a ``msgflo/RoundRobin`` (wired alike; named apart, as msgflo-setup prints it).
    ``DEADLETTER``: what an inport's participants reject (AMQP nack) -> another inport; ``src``
    of such an edge is an *inport*."""

    PUBSUB = "pubsub"
    ROUNDROBIN = "roundrobin"
    DEADLETTER = "deadletter"


@dataclass(frozen=True)
class EdgeState:
    """An edge with the topics its ends resolve to right now (``None``: not discovered)."""

    edge: Edge
    src_queue: str | None
    tgt_queue: str | None
    kind: EdgeKind = EdgeKind.PUBSUB
    # The target inport says ``persistent: true``: its messages must wait for it (a sleepy
    # board on a persistent session), which over MQTT takes QoS 1 (docs/coordinator.md).
    tgt_persistent: bool = False

    @property
    def resolved(self) -> bool:
        return self.src_queue is not None and self.tgt_queue is not None

    @property
    def same_topic(self) -> bool:
        """Both ends on one topic: the data is already where it should be; nothing to forward."""
        return self.resolved and self.src_queue == self.tgt_queue

    def route(self) -> Route | None:
        """The MQTT forwarding route; dead-lettering has no MQTT equivalent (protocol.md 4.1)."""
        if self.kind is EdgeKind.DEADLETTER:
            return None
        if self.src_queue is None or self.tgt_queue is None or self.same_topic:
            return None
        return Route(self.src_queue, self.tgt_queue)


def find_port(registry: Registry, ref: PortRef, direction: Direction) -> PortDefinition | None:
    """The discovered port behind a graph port reference.

    Graph ports are matched by id; when that fails, case-insensitively, because .fbp files
    write ``OUT`` and the parser lower-cases it while some devices announce upper-case ids.
    """
    port = registry.port(ref.process, direction, ref.port)
    if port is not None:
        return port
    wanted = ref.port.casefold()
    for seen in registry.known(ref.process):
        ports = seen.definition.inports if direction is Direction.IN else seen.definition.outports
        for candidate in ports:
            if candidate.id.casefold() == wanted and not candidate.hidden:
                return candidate
    return None


def resolve_edge(registry: Registry, edge: Edge, kind: EdgeKind = EdgeKind.PUBSUB) -> EdgeState:
    src_direction = Direction.IN if kind is EdgeKind.DEADLETTER else Direction.OUT
    src = find_port(registry, edge.src, src_direction)
    tgt = find_port(registry, edge.tgt, Direction.IN)
    kept = tgt is not None and tgt.persistence is Persistence.PERSISTENT
    return EdgeState(edge, src.queue if src else None, tgt.queue if tgt else None, kind, kept)


def resolve_edges(registry: Registry, edges: Iterable[Edge]) -> list[EdgeState]:
    return [resolve_edge(registry, edge) for edge in edges]


def route_table(states: Iterable[EdgeState], *, echoes: bool = False) -> RouteTable:
    routes = (route for state in states if (route := state.route()) is not None)
    return RouteTable(routes, echoes=echoes)


def iip_queue(registry: Registry, initial: Initial) -> str | None:
    """The topic an IIP goes to, once its target is discovered."""
    port = find_port(registry, initial.tgt, Direction.IN)
    return port.queue if port else None


@dataclass(frozen=True)
class GraphIndex:
    """A graph's edges and IIPs by role, built once per graph so that a discovery message
    touches only its own role's edges (not every edge of a 1,000-node graph)."""

    edges: tuple[tuple[int, Edge], ...]
    edges_by_role: Mapping[str, tuple[tuple[int, Edge], ...]]
    initials: tuple[Initial, ...]
    initials_by_role: Mapping[str, tuple[Initial, ...]]
    downstream: Mapping[str, frozenset[str]]
    kinds: Mapping[int, EdgeKind] = field(default_factory=dict)  # absent: PUBSUB

    @classmethod
    def of(cls, graph: Graph) -> GraphIndex:
        pseudo = pseudo_roles(graph)
        plain = [c for c in graph.connections if isinstance(c, Edge)]
        real = [e for e in plain if e.src.process not in pseudo and e.tgt.process not in pseudo]
        collapsed, collapsed_kinds = _collapse(plain, graph)
        edges = tuple(enumerate([*real, *collapsed]))
        kinds = {len(real) + i: kind for i, kind in collapsed_kinds.items()}
        by_role: dict[str, list[tuple[int, Edge]]] = defaultdict(list)
        downstream: dict[str, set[str]] = defaultdict(set)
        for item in edges:
            edge = item[1]
            by_role[edge.src.process].append(item)
            if edge.tgt.process != edge.src.process:
                by_role[edge.tgt.process].append(item)
            downstream[edge.src.process].add(edge.tgt.process)
        initials = tuple(c for c in graph.connections if isinstance(c, Initial))
        iips: dict[str, list[Initial]] = defaultdict(list)
        for initial in initials:
            iips[initial.tgt.process].append(initial)
        return cls(
            edges=edges,
            edges_by_role={role: tuple(items) for role, items in by_role.items()},
            initials=initials,
            initials_by_role={role: tuple(items) for role, items in iips.items()},
            downstream={role: frozenset(roles) for role, roles in downstream.items()},
            kinds=kinds,
        )

    def kind(self, index: int) -> EdgeKind:
        return self.kinds.get(index, EdgeKind.PUBSUB)

    def roles_downstream(self, role: str) -> set[str]:
        """Every role reachable from ``role`` along edges (``role`` itself excluded)."""
        seen, todo = {role}, [role]
        while todo:
            for target in self.downstream.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        seen.discard(role)
        return seen


def pseudo_roles(graph: Graph) -> frozenset[str]:
    """Nodes that are no participant: nothing to start, discover or wait for."""
    return frozenset(r for r, p in graph.processes.items() if p.component in PSEUDO_COMPONENTS)


def _collapse(edges: list[Edge], graph: Graph) -> tuple[list[Edge], dict[int, EdgeKind]]:
    """The direct edges that stand for the edges through pseudo-components, and the kind of
    each one that is not PUBSUB (by position). A pseudo-component wired to another is not
    followed."""
    pseudo = pseudo_roles(graph)
    found: list[Edge] = []
    kinds: dict[int, EdgeKind] = {}

    def add(edge: Edge, kind: EdgeKind) -> None:
        if kind is not EdgeKind.PUBSUB:
            kinds[len(found)] = kind
        found.append(edge)

    for role in sorted(pseudo):
        into = [e.src for e in edges if e.tgt.process == role and e.src.process not in pseudo]
        out = [e for e in edges if e.src.process == role and e.tgt.process not in pseudo]
        workers = [e.tgt for e in out if e.src.port.casefold() != DEADLETTER_PORT]
        sinks = [e.tgt for e in out if e.src.port.casefold() == DEADLETTER_PORT]
        robin = graph.processes[role].component == ROUND_ROBIN
        for src, tgt in itertools.product(into, workers):
            add(Edge(src, tgt), EdgeKind.ROUNDROBIN if robin else EdgeKind.PUBSUB)
        for worker, sink in itertools.product(workers, sinks):
            add(Edge(worker, sink), EdgeKind.DEADLETTER)
    return found, kinds
