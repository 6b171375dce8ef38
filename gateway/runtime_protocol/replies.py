"""Outgoing FBP runtime protocol messages, built field by field from fbp-protocol's schemas.

Nothing here copies a request payload into a reply: the original coordinator echoed payloads and
so sent the client's ``secret`` and unknown keys such as ``baseDir`` back, which the protocol's
schemas (``additionalProperties: false``) and its test suite reject (protocol.md 8.1, 8.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TypeAlias

from gateway.graph.model import ExportedPort, Graph, JsonValue, Metadata, PortRef, thaw
from gateway.runtime_protocol.environment import (
    ComponentInfo,
    ComponentSource,
    PortInfo,
    RuntimeInfo,
)
from gateway.runtime_protocol.requests import ClearGraph

Payload: TypeAlias = dict[str, JsonValue]
Message: TypeAlias = dict[str, JsonValue]

# What this runtime really does (fbp-protocol ``shared/capabilities``). Not claimed:
# network:persist, component:setsource, protocol:trace (answered with an error), graph:readonly
# (implied by protocol:graph).
CAPABILITIES: tuple[str, ...] = (
    "protocol:runtime",
    "protocol:graph",
    "protocol:component",
    "protocol:network",
    "network:status",
    "network:data",
    "network:control",
    "component:getsource",
)

# runtime:runtime fields a RuntimeInfo.extra entry may set (the schema forbids any others).
_RUNTIME_EXTRA = ("repositoryVersion",)


def message(protocol: str, command: str, payload: JsonValue) -> Message:
    return {"protocol": protocol, "command": command, "payload": payload}


def error(protocol: str, text: str) -> Message:
    """``<protocol>:error`` with the one-line ``message`` every error schema requires."""
    return message(protocol, "error", {"message": text})


def clear(r: ClearGraph) -> Payload:
    """``graph:clear``: ``id`` and the optional fields the request set."""
    out: Payload = {"id": r.id}
    optional = {
        "name": r.name,
        "library": r.library,
        "main": r.main,
        "icon": r.icon,
        "description": r.description,
    }
    out.update({key: value for key, value in optional.items() if value is not None})
    return out


def port(ref: PortRef) -> Payload:
    """A ``shared/port`` object: ``{node, port, index?}``."""
    out: Payload = {"node": ref.process, "port": ref.port}
    if ref.index is not None:
        out["index"] = ref.index
    return out


def metadata(meta: Metadata) -> Payload:
    value = thaw(meta)
    assert isinstance(value, dict)
    return value


def iso_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as JavaScript's ``toISOString`` writes it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def runtime(info: RuntimeInfo, graph_id: str, *, authorized: bool) -> Payload:
    """``runtime:runtime``: without the secret, ``capabilities`` is empty (fbp-protocol 0.8)."""
    out: Payload = {
        "type": info.type,
        "version": info.version,
        "capabilities": list(CAPABILITIES) if authorized else [],
        "allCapabilities": list(CAPABILITIES),
    }
    optional = {
        "id": info.id,
        "label": info.label,
        "namespace": info.namespace,
        "repository": info.repository,
        "graph": graph_id if authorized else "",
    }
    out.update({key: value for key, value in optional.items() if value})
    out.update({k: info.extra[k] for k in _RUNTIME_EXTRA if isinstance(info.extra.get(k), str)})
    return out


def port_definition(public: str, info: PortInfo | None) -> Payload:
    """A ``shared/port_definition`` item for an exported port named ``public``."""
    if info is None:
        return {"id": public, "type": "any", "required": False, "addressable": False}
    out: Payload = {
        "id": public,
        "type": info.type,
        "required": info.required,
        "addressable": info.addressable,
    }
    if info.description:
        out["description"] = info.description
    if info.schema is not None:
        out["schema"] = info.schema
    return out


def _find(ports: Iterable[PortInfo], name: str) -> PortInfo | None:
    # Exact first; .fbp files may have lower-cased the graph's port names (protocol.md 3.1).
    ports = tuple(ports)
    exact = next((p for p in ports if p.id == name), None)
    return exact or next((p for p in ports if p.id.lower() == name.lower()), None)


def _exported(
    graph: Graph,
    exports: Mapping[str, ExportedPort],
    components: Mapping[str, ComponentInfo],
    *,
    inbound: bool,
) -> list[JsonValue]:
    out: list[JsonValue] = []
    for public, exp in exports.items():
        process = graph.processes.get(exp.process)
        component = components.get(process.component) if process else None
        ports = () if component is None else component.inports if inbound else component.outports
        out.append(port_definition(public, _find(ports, exp.port)))
    return out


def ports(graph: Graph, graph_id: str, components: Iterable[ComponentInfo]) -> Payload:
    """``runtime:ports``: the graph's exported ports, typed from their components."""
    by_name = {c.name: c for c in components}
    return {
        "graph": graph_id,
        "inPorts": _exported(graph, graph.inports, by_name, inbound=True),
        "outPorts": _exported(graph, graph.outports, by_name, inbound=False),
    }


def component(info: ComponentInfo) -> Payload:
    """``component:component``."""
    out: Payload = {"name": info.name, "description": info.description}
    if info.icon:
        out["icon"] = info.icon
    out["subgraph"] = info.subgraph
    out["inPorts"] = [port_definition(p.id, p) for p in info.inports]
    out["outPorts"] = [port_definition(p.id, p) for p in info.outports]
    return out


def source(src: ComponentSource) -> Payload:
    """``component:source``; ``name`` without, ``library`` with the library prefix."""
    out: Payload = {"name": src.name, "language": src.language, "code": src.code}
    if src.library:
        out["library"] = src.library
    if src.tests:
        out["tests"] = src.tests
    return out
