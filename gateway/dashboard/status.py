"""The participants as ``/api/status`` shows them (pure): every node of the graph and every
discovered role, with its component, ports, whether it is online and when it was last heard.

The registry keeps times on the coordinator's clock (monotonic); the page wants epoch seconds,
so ``last_seen`` is shifted by the difference of the two clocks taken at the same moment.
"""

from __future__ import annotations

from typing import Any

from gateway.coordinator.registry import Registry, Seen
from gateway.coordinator.wiring import pseudo_roles
from gateway.graph.model import Graph
from gateway.participant.definition import PortDefinition


def participants(
    graph: Graph, registry: Registry, now: float, epoch_now: float
) -> list[dict[str, Any]]:
    """One entry per role, sorted by role. A role's entry comes from its newest live
    participant (else the newest known one); a graph node nobody announced yet has its
    component from the graph, no ports, ``online: false`` and ``last_seen: null``."""
    pseudo = pseudo_roles(graph)
    discovered = {seen.role for seen in registry}
    found = []
    for role in sorted({*(r for r in graph.processes if r not in pseudo), *discovered}):
        known: list[Seen] = registry.known(role)  # live first, newest first
        if not known:
            found.append(_undiscovered(role, graph.processes[role].component))
            continue
        d = known[0].definition
        last_seen = max(s.last_seen for s in known)
        found.append(
            {
                "role": role,
                "component": d.component,
                "icon": d.icon,
                "label": d.label,
                "online": any(s.online(now) for s in known),
                "last_seen": epoch_now - (now - last_seen),
                "inports": [_port(p) for p in d.inports if not p.hidden],
                "outports": [_port(p) for p in d.outports if not p.hidden],
            }
        )
    return found


def _undiscovered(role: str, component: str) -> dict[str, Any]:
    return {
        "role": role,
        "component": component,
        "icon": None,
        "label": "",
        "online": False,
        "last_seen": None,
        "inports": [],
        "outports": [],
    }


def _port(port: PortDefinition) -> dict[str, Any]:
    return {"id": port.id, "type": port.type, "queue": port.queue}
