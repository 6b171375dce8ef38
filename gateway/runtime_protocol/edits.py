"""Graph commands as pure functions: (graph, request) → new graph and the replies it causes.

The behaviour follows fbp-graph, the graph library behind NoFlo and Flowhub, which is what the
fbp-protocol test suite expects (protocol.md 8.2): ``removenode`` first removes the node's edges
(one ``removeedge`` each), IIPs (``removeinitial``) and exported ports, drops it from its groups
(a group left empty is removed), then answers ``removenode``; ``renamenode`` renames the node
in edges, IIPs, exports and groups with one ``renamenode`` reply; ``change*`` merges metadata,
a ``null`` value deleting its key, and the reply carries the full merged metadata.

A request that cannot apply raises ProtocolError for ``graph:error``. Reply payloads here lack
the ``graph`` key, which the core adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import singledispatch
from typing import TypeVar

from gateway.errors import ProtocolError
from gateway.graph.model import (
    Connection,
    Edge,
    ExportedPort,
    FrozenJson,
    Graph,
    Group,
    Initial,
    Metadata,
    PortRef,
    Process,
    freeze_metadata,
    thaw,
)
from gateway.runtime_protocol import replies
from gateway.runtime_protocol import requests as rq
from gateway.runtime_protocol.ids import edge_id
from gateway.runtime_protocol.messages import shown
from gateway.runtime_protocol.replies import Payload

Event = tuple[str, Payload]  # a graph command and its payload (without "graph")
V = TypeVar("V")


@dataclass(frozen=True)
class Edit:
    graph: Graph
    events: tuple[Event, ...]


def merge(old: Metadata, patch: rq.MetadataPatch) -> Metadata:
    """fbp-graph's metadata merge: keys of ``patch`` replace old ones, ``None`` deletes."""
    merged = dict(old)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return freeze_metadata(merged)


def _fail(problem: str) -> ProtocolError:
    return ProtocolError("graph", problem)


def _node(graph: Graph, name: str) -> Process:
    process = graph.processes.get(name)
    if process is None:
        raise _fail(f"node {shown(name)} not found")
    return process


def _renamed(mapping: Mapping[str, V], old: str, new: str) -> dict[str, V]:
    """``mapping`` with key ``old`` renamed to ``new``, keeping the order."""
    return {new if key == old else key: value for key, value in mapping.items()}


def _edge_event(command: str, edge: Edge, *, with_metadata: bool = False) -> Event:
    payload: Payload = {"src": replies.port(edge.src), "tgt": replies.port(edge.tgt)}
    if with_metadata:
        payload["metadata"] = replies.metadata(edge.metadata)
    return command, payload


def _initial_event(command: str, iip: Initial, *, with_metadata: bool = False) -> Event:
    payload: Payload = {"src": {"data": thaw(iip.data)}, "tgt": replies.port(iip.tgt)}
    if with_metadata:
        payload["metadata"] = replies.metadata(iip.metadata)
    return command, payload


def _exports(graph: Graph, d: rq.Direction) -> Mapping[str, ExportedPort]:
    return graph.inports if d is rq.Direction.IN else graph.outports


def _with_exports(graph: Graph, d: rq.Direction, exports: Mapping[str, ExportedPort]) -> Graph:
    if d is rq.Direction.IN:
        return replace(graph, inports=exports)
    return replace(graph, outports=exports)


@singledispatch
def apply(request: rq.GraphEdit, graph: Graph) -> Edit:
    """The edit ``request`` makes to ``graph``."""
    raise TypeError(f"not a graph edit: {request!r}")


# -- nodes ----------------------------------------------------------------------------------------


@apply.register
def _add_node(r: rq.AddNode, g: Graph) -> Edit:
    if r.id in g.processes:
        raise _fail(f"node {shown(r.id)} already exists")
    process = Process(r.component, merge(freeze_metadata(None), r.metadata))
    payload: Payload = {
        "id": r.id,
        "component": r.component,
        "metadata": replies.metadata(process.metadata),
    }
    return Edit(replace(g, processes={**g.processes, r.id: process}), (("addnode", payload),))


def _detach(g: Graph, name: str) -> tuple[Graph, list[Event]]:
    """``g`` without the connections, exports and group memberships of node ``name``."""
    events: list[Event] = []
    kept: list[Connection] = []
    for conn in g.connections:
        if isinstance(conn, Edge) and name in (conn.src.process, conn.tgt.process):
            events.append(_edge_event("removeedge", conn))
        elif isinstance(conn, Initial) and conn.tgt.process == name:
            events.append(_initial_event("removeinitial", conn))
        else:
            kept.append(conn)
    g = replace(g, connections=tuple(kept))
    for d in rq.Direction:
        gone = [public for public, exp in _exports(g, d).items() if exp.process == name]
        events += [(f"remove{d.value}", {"public": public}) for public in gone]
        kept_exports = {k: v for k, v in _exports(g, d).items() if k not in gone}
        g = _with_exports(g, d, kept_exports)
    groups = [replace(gr, nodes=tuple(n for n in gr.nodes if n != name)) for gr in g.groups]
    events += [("removegroup", {"name": gr.name}) for gr in groups if not gr.nodes]
    return replace(g, groups=tuple(gr for gr in groups if gr.nodes)), events


@apply.register
def _remove_node(r: rq.RemoveNode, g: Graph) -> Edit:
    _node(g, r.id)
    g, events = _detach(g, r.id)
    processes = {k: v for k, v in g.processes.items() if k != r.id}
    events.append(("removenode", {"id": r.id}))
    return Edit(replace(g, processes=processes), tuple(events))


def _rename_ref(ref: PortRef, old: str, new: str) -> PortRef:
    return replace(ref, process=new) if ref.process == old else ref


def _rename_connection(conn: Connection, old: str, new: str) -> Connection:
    if isinstance(conn, Initial):
        return replace(conn, tgt=_rename_ref(conn.tgt, old, new))
    return replace(conn, src=_rename_ref(conn.src, old, new), tgt=_rename_ref(conn.tgt, old, new))


def _rename_exports(
    exports: Mapping[str, ExportedPort], old: str, new: str
) -> dict[str, ExportedPort]:
    return {k: replace(v, process=new) if v.process == old else v for k, v in exports.items()}


@apply.register
def _rename_node(r: rq.RenameNode, g: Graph) -> Edit:
    _node(g, r.old)
    if r.new in g.processes and r.new != r.old:
        raise _fail(f"node {shown(r.new)} already exists")
    renamed = replace(
        g,
        processes=_renamed(g.processes, r.old, r.new),
        connections=tuple(_rename_connection(c, r.old, r.new) for c in g.connections),
        inports=_rename_exports(g.inports, r.old, r.new),
        outports=_rename_exports(g.outports, r.old, r.new),
        groups=tuple(
            replace(gr, nodes=tuple(r.new if n == r.old else n for n in gr.nodes))
            for gr in g.groups
        ),
    )
    return Edit(renamed, (("renamenode", {"from": r.old, "to": r.new}),))


@apply.register
def _change_node(r: rq.ChangeNode, g: Graph) -> Edit:
    process = _node(g, r.id)
    changed = replace(process, metadata=merge(process.metadata, r.metadata))
    payload: Payload = {"id": r.id, "metadata": replies.metadata(changed.metadata)}
    processes = {**g.processes, r.id: changed}
    return Edit(replace(g, processes=processes), (("changenode", payload),))


# -- edges and IIPs -------------------------------------------------------------------------------


def _find_edge(g: Graph, src: PortRef, tgt: PortRef) -> Edge | None:
    return next((e for e in g.edges if e.src == src and e.tgt == tgt), None)


def _edge(g: Graph, src: PortRef, tgt: PortRef) -> Edge:
    edge = _find_edge(g, src, tgt)
    if edge is None:
        raise _fail(f"edge {shown(edge_id(src, tgt))} not found")
    return edge


def _swap(g: Graph, old: Connection, new: Connection | None) -> Graph:
    """``g`` with connection ``old`` replaced by ``new`` (or removed), order kept."""
    kept = (new if c is old else c for c in g.connections)
    return replace(g, connections=tuple(c for c in kept if c is not None))


@apply.register
def _add_edge(r: rq.AddEdge, g: Graph) -> Edit:
    _node(g, r.src.process)
    _node(g, r.tgt.process)
    if _find_edge(g, r.src, r.tgt) is not None:
        raise _fail(f"edge {shown(edge_id(r.src, r.tgt))} already exists")
    edge = Edge(r.src, r.tgt, merge(freeze_metadata(None), r.metadata))
    added = replace(g, connections=(*g.connections, edge))
    return Edit(added, (_edge_event("addedge", edge, with_metadata=True),))


@apply.register
def _remove_edge(r: rq.RemoveEdge, g: Graph) -> Edit:
    edge = _edge(g, r.src, r.tgt)
    return Edit(_swap(g, edge, None), (_edge_event("removeedge", edge),))


@apply.register
def _change_edge(r: rq.ChangeEdge, g: Graph) -> Edit:
    edge = _edge(g, r.src, r.tgt)
    changed = replace(edge, metadata=merge(edge.metadata, r.metadata))
    return Edit(_swap(g, edge, changed), (_edge_event("changeedge", changed, with_metadata=True),))


@apply.register
def _add_initial(r: rq.AddInitial, g: Graph) -> Edit:
    _node(g, r.tgt.process)
    iip = Initial(r.data, r.tgt, merge(freeze_metadata(None), r.metadata))
    added = replace(g, connections=(*g.connections, iip))
    return Edit(added, (_initial_event("addinitial", iip, with_metadata=True),))


def _targets(iip: Initial, tgt: PortRef) -> bool:
    same_port = (iip.tgt.process, iip.tgt.port) == (tgt.process, tgt.port)
    return same_port and (tgt.index is None or iip.tgt.index == tgt.index)


@apply.register
def _remove_initial(r: rq.RemoveInitial, g: Graph) -> Edit:
    gone = [iip for iip in g.initials if _targets(iip, r.tgt)]
    if not gone:
        raise _fail(f"no IIP to {r.tgt.port} of node {shown(r.tgt.process)}")
    kept = tuple(c for c in g.connections if not any(c is iip for iip in gone))
    events = tuple(_initial_event("removeinitial", iip) for iip in gone)
    return Edit(replace(g, connections=kept), events)


# -- exported ports -------------------------------------------------------------------------------


def _export(g: Graph, d: rq.Direction, public: str) -> ExportedPort:
    exp = _exports(g, d).get(public)
    if exp is None:
        raise _fail(f"no exported {d.value} {shown(public)}")
    return exp


@apply.register
def _add_export(r: rq.AddExport, g: Graph) -> Edit:
    _node(g, r.node)
    exp = ExportedPort(r.node, r.port, merge(freeze_metadata(None), r.metadata))
    # Adding an existing public name re-points it, as fbp-graph's addInport does.
    exports = {**_exports(g, r.direction), r.public: exp}
    payload: Payload = {"public": r.public, "node": r.node, "port": r.port}
    if exp.metadata:  # the test suite expects no metadata key when none was given
        payload["metadata"] = replies.metadata(exp.metadata)
    event = (f"add{r.direction.value}", payload)
    return Edit(_with_exports(g, r.direction, exports), (event,))


@apply.register
def _remove_export(r: rq.RemoveExport, g: Graph) -> Edit:
    _export(g, r.direction, r.public)
    exports = {k: v for k, v in _exports(g, r.direction).items() if k != r.public}
    event: Event = (f"remove{r.direction.value}", {"public": r.public})
    return Edit(_with_exports(g, r.direction, exports), (event,))


@apply.register
def _rename_export(r: rq.RenameExport, g: Graph) -> Edit:
    _export(g, r.direction, r.old)
    if r.new in _exports(g, r.direction) and r.new != r.old:
        raise _fail(f"exported {r.direction.value} {shown(r.new)} already exists")
    exports = _renamed(_exports(g, r.direction), r.old, r.new)
    event: Event = (f"rename{r.direction.value}", {"from": r.old, "to": r.new})
    return Edit(_with_exports(g, r.direction, exports), (event,))


# -- groups ---------------------------------------------------------------------------------------


def _group(g: Graph, name: str) -> Group:
    group = next((gr for gr in g.groups if gr.name == name), None)
    if group is None:
        raise _fail(f"group {shown(name)} not found")
    return group


def _with_group(g: Graph, old: Group, new: Group | None) -> Graph:
    groups = (new if gr is old else gr for gr in g.groups)
    return replace(g, groups=tuple(gr for gr in groups if gr is not None))


@apply.register
def _add_group(r: rq.AddGroup, g: Graph) -> Edit:
    if any(gr.name == r.name for gr in g.groups):
        raise _fail(f"group {shown(r.name)} already exists")
    for node in r.nodes:
        _node(g, node)
    group = Group(r.name, r.nodes, merge(freeze_metadata(None), r.metadata))
    payload: Payload = {
        "name": r.name,
        "nodes": list(r.nodes),
        "metadata": replies.metadata(group.metadata),
    }
    return Edit(replace(g, groups=(*g.groups, group)), (("addgroup", payload),))


@apply.register
def _remove_group(r: rq.RemoveGroup, g: Graph) -> Edit:
    group = _group(g, r.name)
    return Edit(_with_group(g, group, None), (("removegroup", {"name": r.name}),))


@apply.register
def _rename_group(r: rq.RenameGroup, g: Graph) -> Edit:
    group = _group(g, r.old)
    if r.new != r.old and any(gr.name == r.new for gr in g.groups):
        raise _fail(f"group {shown(r.new)} already exists")
    renamed = _with_group(g, group, replace(group, name=r.new))
    return Edit(renamed, (("renamegroup", {"from": r.old, "to": r.new}),))


@apply.register
def _change_group(r: rq.ChangeGroup, g: Graph) -> Edit:
    group = _group(g, r.name)
    changed = replace(group, metadata=merge(group.metadata, r.metadata))
    payload: Payload = {"name": r.name, "metadata": replies.metadata(changed.metadata)}
    return Edit(_with_group(g, group, changed), (("changegroup", payload),))


# The request types ``apply`` handles, for the core's dispatch.
EDIT_TYPES: tuple[type, ...] = tuple(t for t in apply.registry if t is not object)


# -- differences ----------------------------------------------------------------------------------


def diff(old: Graph, new: Graph) -> Edit:
    """Edits that turn ``old`` into ``new``, applied one by one, with their events: how a
    change the live system made by itself (a discovered participant becoming a node) reaches
    the clients, as the same ``graph:*`` events those edits give. Properties have no event; a
    renamed node, a node whose component changed and a changed export or group show as
    removed and added again."""
    kept = _Kept(old, new)
    g, events = old, list[Event]()
    for request in (*kept.removals(), *kept.additions()):
        edit = apply(request, g)
        g = edit.graph
        events += edit.events
    return Edit(g, tuple(events))


def _patch(old: Metadata, new: Metadata) -> rq.MetadataPatch:
    """The metadata patch (``None`` deletes a key) that turns ``old`` into ``new``."""
    patch: dict[str, FrozenJson] = {k: None for k in old if k not in new}
    patch.update({k: v for k, v in new.items() if k not in old or old[k] != v})
    return patch


def _iip_port(iip: Initial) -> tuple[str, str]:
    return iip.tgt.process, iip.tgt.port


def _iips_of(g: Graph, port: tuple[str, str]) -> list[tuple[FrozenJson, PortRef]]:
    return [(i.data, i.tgt) for i in g.initials if _iip_port(i) == port]


class _Kept:
    """What ``old`` and ``new`` share, and the requests for the rest: removals first
    (exports, groups, connections, then nodes, so that none finds its item gone), then
    additions (nodes first, so that every connection finds its ends)."""

    def __init__(self, old: Graph, new: Graph) -> None:
        self.old, self.new = old, new
        # A node stays if its component does; everything attached to one that does not is
        # removed with it and added again.
        self.nodes = {
            r
            for r, p in old.processes.items()
            if r in new.processes and new.processes[r].component == p.component
        }
        self.edges = {
            (e.src, e.tgt)
            for e in old.edges
            if {e.src.process, e.tgt.process} <= self.nodes and _find_edge(new, e.src, e.tgt)
        }
        # IIPs have no identity of their own and one removeinitial takes every IIP of a port:
        # a port whose IIPs differ at all has them all removed and added again.
        ports = {_iip_port(i) for i in (*old.initials, *new.initials)}
        self.iip_ports = {
            p for p in ports if p[0] in self.nodes and _iips_of(old, p) == _iips_of(new, p)
        }
        self.exports = {
            (d, public)
            for d in rq.Direction
            for public, exp in _exports(old, d).items()
            if exp.process in self.nodes and _exports(new, d).get(public) == exp
        }
        self.groups = {
            gr.name for gr in old.groups if gr in new.groups and set(gr.nodes) <= self.nodes
        }

    def removals(self) -> list[rq.GraphEdit]:
        old = self.old
        out: list[rq.GraphEdit] = [
            rq.RemoveExport("", d, public)
            for d in rq.Direction
            for public in _exports(old, d)
            if (d, public) not in self.exports
        ]
        out += [rq.RemoveGroup("", gr.name) for gr in old.groups if gr.name not in self.groups]
        out += [
            rq.RemoveEdge("", e.src, e.tgt) for e in old.edges if (e.src, e.tgt) not in self.edges
        ]
        iip_ports = dict.fromkeys(
            _iip_port(i) for i in old.initials if _iip_port(i) not in self.iip_ports
        )
        out += [rq.RemoveInitial("", PortRef(node, port)) for node, port in iip_ports]
        out += [rq.RemoveNode("", role) for role in old.processes if role not in self.nodes]
        return out

    def additions(self) -> list[rq.GraphEdit]:
        out = self._nodes_added()
        out += self._edges_added()
        new = self.new
        out += [
            rq.AddInitial("", i.data, i.tgt, i.metadata)
            for i in new.initials
            if _iip_port(i) not in self.iip_ports
        ]
        out += [
            rq.AddExport("", d, public, exp.process, exp.port, exp.metadata)
            for d in rq.Direction
            for public, exp in _exports(new, d).items()
            if (d, public) not in self.exports
        ]
        out += [
            rq.AddGroup("", gr.name, gr.nodes, gr.metadata)
            for gr in new.groups
            if gr.name not in self.groups
        ]
        return out

    def _nodes_added(self) -> list[rq.GraphEdit]:
        out: list[rq.GraphEdit] = []
        for role, p in self.new.processes.items():
            if role not in self.nodes:
                out.append(rq.AddNode("", role, p.component, p.metadata))
                continue
            before = self.old.processes[role].metadata
            if p.metadata != before:
                out.append(rq.ChangeNode("", role, _patch(before, p.metadata)))
        return out

    def _edges_added(self) -> list[rq.GraphEdit]:
        out: list[rq.GraphEdit] = []
        for e in self.new.edges:
            before = _find_edge(self.old, e.src, e.tgt)
            if before is None or (e.src, e.tgt) not in self.edges:
                out.append(rq.AddEdge("", e.src, e.tgt, e.metadata))
            elif before.metadata != e.metadata:
                out.append(rq.ChangeEdge("", e.src, e.tgt, _patch(before.metadata, e.metadata)))
        return out
