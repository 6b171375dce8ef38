"""MQTT routing: which topics the coordinator forwards where (pure).

The original coordinator subscribes to each edge's source topic and republishes to its target,
and relies on receiving its own republished messages to follow chains of topics (protocol.md 4.1).
That same echo makes it ping-pong forever when topics form a cycle. Here the coordinator
subscribes with MQTT 5 "no local" (it never receives what it published itself) and instead
delivers each message directly to every topic *reachable* from its source topic: chains still
reach their end, and a cycle is walked at most once, because each topic is visited once.

Edges whose source and target resolve to the same topic are not routes at all: the data is
already there (15 of 99 edges in one real deployment are like that).

MQTT 3.1.1 has no "no local": there the coordinator works as the original, each message to its
direct targets only and its own echo carrying it on (``echoes=True``), and a route on a cycle
of topics is left out (:attr:`RouteTable.cut`), since that echo would circle forever.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Route:
    """Forward everything published on ``src`` to ``tgt`` (two distinct topics)."""

    src: str
    tgt: str


class RouteTable:
    """An immutable set of routes with each source topic's precomputed delivery list."""

    def __init__(self, routes: Iterable[Route] = (), *, echoes: bool = False) -> None:
        self.routes = frozenset(r for r in routes if r.src != r.tgt)
        direct: dict[str, set[str]] = defaultdict(set)
        for route in self.routes:
            direct[route.src].add(route.tgt)
        self.cut: frozenset[Route] = frozenset()
        if echoes:
            self.cut = frozenset(r for r in self.routes if r.src in _reachable(r.tgt, direct))
            for route in self.cut:
                direct[route.src].discard(route.tgt)
            self._targets: Mapping[str, tuple[str, ...]] = {
                src: tuple(sorted(tgts)) for src, tgts in direct.items() if tgts
            }
        else:
            self._targets = {src: _reachable(src, direct) for src in direct}

    @property
    def sources(self) -> frozenset[str]:
        """Topics to subscribe to."""
        return frozenset(self._targets)

    def targets(self, topic: str) -> tuple[str, ...]:
        """Every topic a message published on ``topic`` must be delivered to (not ``topic``)."""
        return self._targets.get(topic, ())

    def __len__(self) -> int:
        return len(self.routes)


def _reachable(start: str, direct: Mapping[str, set[str]]) -> tuple[str, ...]:
    """Topics reachable from ``start``, breadth first (nearest first), ``start`` excluded."""
    seen = {start}
    order: list[str] = []
    queue = deque(sorted(direct.get(start, ())))
    while queue:
        topic = queue.popleft()
        if topic in seen:
            continue
        seen.add(topic)
        order.append(topic)
        queue.extend(sorted(direct.get(topic, ())))
    return tuple(order)
