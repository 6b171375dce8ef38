"""From graph edges and discovered participants to topics (pure).

Queues are always taken from discovery, never guessed from a naming convention (reference 2.3:
there is no single rule). An edge whose ends are not discovered yet is *pending*; it becomes a
route the moment both ends resolve, and follows them when a participant re-announces with other
topics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.coordinator.registry import Registry
from gateway.coordinator.routing import Route, RouteTable
from gateway.graph.model import Edge, Initial, PortRef
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
