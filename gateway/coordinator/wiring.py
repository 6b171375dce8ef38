"""From graph edges and discovered participants to topics (pure).

Queues are always taken from discovery, never guessed from a naming convention (reference 2.3:
there is no single rule). An edge whose ends are not discovered yet is *pending*; it becomes a
route the moment both ends resolve, and follows them when a participant re-announces with other
topics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.coordinator.registry import Registry
from gateway.coordinator.routing import Route, RouteTable
from gateway.graph.model import Edge, Graph, Initial, PortRef
from gateway.participant.definition import Direction, PortDefinition


@dataclass(frozen=True)
class EdgeState:
    """An edge with the topics its ends resolve to right now (``None``: not discovered)."""

    edge: Edge
    src_queue: str | None
    tgt_queue: str | None

    @property
    def resolved(self) -> bool:
        return self.src_queue is not None and self.tgt_queue is not None

    @property
    def same_topic(self) -> bool:
        """Both ends on one topic: the data is already where it should be; nothing to forward."""
        return self.resolved and self.src_queue == self.tgt_queue

    def route(self) -> Route | None:
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


def resolve_edge(registry: Registry, edge: Edge) -> EdgeState:
    src = find_port(registry, edge.src, Direction.OUT)
    tgt = find_port(registry, edge.tgt, Direction.IN)
    return EdgeState(edge, src.queue if src else None, tgt.queue if tgt else None)


def resolve_edges(registry: Registry, edges: Iterable[Edge]) -> list[EdgeState]:
    return [resolve_edge(registry, edge) for edge in edges]


def route_table(states: Iterable[EdgeState]) -> RouteTable:
    return RouteTable(route for state in states if (route := state.route()) is not None)


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

    @classmethod
    def of(cls, graph: Graph) -> GraphIndex:
        edges = tuple((i, c) for i, c in enumerate(graph.connections) if isinstance(c, Edge))
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
        )

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
