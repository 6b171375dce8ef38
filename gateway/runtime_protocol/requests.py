"""Typed FBP runtime protocol requests: what ``messages.py`` turns a valid frame into.

One frozen value per command of fbp-protocol 0.7/0.8 (``runtime``, ``graph``, ``network``,
``component``); past ``messages.parse_request`` the core only sees these, never raw payloads.
Metadata arrives as a *patch*: ``None`` values mean "delete this key" (``graph:changenode`` in
fbp-protocol; adds apply the patch to empty metadata, so a ``null`` there is simply not stored).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from gateway.graph.model import FrozenJson, PortRef

MetadataPatch: TypeAlias = Mapping[str, FrozenJson]
EdgeKey: TypeAlias = tuple[PortRef, PortRef]


class Direction(enum.Enum):
    """Which side of the graph an exported port is on; the value is the command's suffix."""

    IN = "inport"
    OUT = "outport"


# -- runtime --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetRuntime:
    """``runtime:getruntime``."""


@dataclass(frozen=True)
class SendPacket:
    """``runtime:packet`` to the exported inport ``port``; ``data`` only for ``event: data``."""

    graph: str
    port: str
    event: str
    data: FrozenJson = None


# -- graph ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClearGraph:
    """``graph:clear``: replace the graph by an empty one called ``id``."""

    id: str
    name: str | None = None
    library: str | None = None
    main: bool | None = None
    icon: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class AddNode:
    graph: str
    id: str
    component: str
    metadata: MetadataPatch = field(default_factory=dict)


@dataclass(frozen=True)
class RemoveNode:
    graph: str
    id: str


@dataclass(frozen=True)
class RenameNode:
    graph: str
    old: str
    new: str


@dataclass(frozen=True)
class ChangeNode:
    graph: str
    id: str
    metadata: MetadataPatch


@dataclass(frozen=True)
class AddEdge:
    graph: str
    src: PortRef
    tgt: PortRef
    metadata: MetadataPatch = field(default_factory=dict)


@dataclass(frozen=True)
class RemoveEdge:
    graph: str
    src: PortRef
    tgt: PortRef


@dataclass(frozen=True)
class ChangeEdge:
    graph: str
    src: PortRef
    tgt: PortRef
    metadata: MetadataPatch


@dataclass(frozen=True)
class AddInitial:
    graph: str
    data: FrozenJson
    tgt: PortRef
    metadata: MetadataPatch = field(default_factory=dict)


@dataclass(frozen=True)
class RemoveInitial:
    """``graph:removeinitial``: every IIP to ``tgt`` (the index too, when given)."""

    graph: str
    tgt: PortRef


@dataclass(frozen=True)
class AddExport:
    """``graph:addinport`` / ``graph:addoutport``."""

    graph: str
    direction: Direction
    public: str
    node: str
    port: str
    metadata: MetadataPatch = field(default_factory=dict)


@dataclass(frozen=True)
class RemoveExport:
    graph: str
    direction: Direction
    public: str


@dataclass(frozen=True)
class RenameExport:
    graph: str
    direction: Direction
    old: str
    new: str


@dataclass(frozen=True)
class AddGroup:
    graph: str
    name: str
    nodes: tuple[str, ...]
    metadata: MetadataPatch = field(default_factory=dict)


@dataclass(frozen=True)
class RemoveGroup:
    graph: str
    name: str


@dataclass(frozen=True)
class RenameGroup:
    graph: str
    old: str
    new: str


@dataclass(frozen=True)
class ChangeGroup:
    graph: str
    name: str
    metadata: MetadataPatch


GraphEdit: TypeAlias = (
    AddNode
    | RemoveNode
    | RenameNode
    | ChangeNode
    | AddEdge
    | RemoveEdge
    | ChangeEdge
    | AddInitial
    | RemoveInitial
    | AddExport
    | RemoveExport
    | RenameExport
    | AddGroup
    | RemoveGroup
    | RenameGroup
    | ChangeGroup
)

# -- network --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartNetwork:
    graph: str


@dataclass(frozen=True)
class StopNetwork:
    graph: str


@dataclass(frozen=True)
class GetStatus:
    graph: str


@dataclass(frozen=True)
class WatchEdges:
    """``network:edges``: the edges this client wants ``network:data`` for."""

    graph: str
    edges: tuple[EdgeKey, ...]


# -- component ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListComponents:
    """``component:list``."""


@dataclass(frozen=True)
class GetSource:
    """``component:getsource``; ``name`` includes the library prefix (``default/main``)."""

    name: str


# -- everything the runtime knows but does not do -------------------------------------------------


@dataclass(frozen=True)
class Unsupported:
    """A known command this runtime does not implement; answered with ``<protocol>:error``."""

    protocol: str
    command: str
    reason: str


Request: TypeAlias = (
    GetRuntime
    | SendPacket
    | ClearGraph
    | GraphEdit
    | StartNetwork
    | StopNetwork
    | GetStatus
    | WatchEdges
    | ListComponents
    | GetSource
    | Unsupported
)
