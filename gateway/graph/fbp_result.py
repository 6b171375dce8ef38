"""What the .fbp parser found, with source offsets, before it becomes a ``Graph``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, cast

from gateway.graph.diagnostics import Path, Problem
from gateway.graph.fbp_tokens import NodeMetadata, parse_node_metadata
from gateway.graph.model import Connection, Edge, FrozenJson, Initial, PortRef


@dataclass(slots=True)
class ParsedNode:
    """A node as the parser saw it; ``component`` stays ``""`` if never declared."""

    offset: int
    component: str = ""
    metadata: NodeMetadata | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A process port at ``offset`` (where the process name starts)."""

    process: str
    port: str
    index: int | None
    offset: int


@dataclass(frozen=True, slots=True)
class Item:
    # One element of the reference's flat edge list: "src", "tgt" or "data".
    kind: str
    endpoint: Endpoint | None
    data: object = None
    offset: int = 0


class ParsedConnection(NamedTuple):
    """A paired connection, already the model's ``Edge`` or ``Initial``, and where it was.

    ``offset`` is where its source (process or IIP) starts, ``src_offset`` and ``tgt_offset``
    where the process names start (``src_offset`` is None for an IIP).
    """

    connection: Connection
    offset: int
    src_offset: int | None
    tgt_offset: int


@dataclass(frozen=True, slots=True)
class ParsedExport:
    public: str
    process: str
    port: str
    offset: int
    process_offset: int


NO_SOURCE = -1  # the src offset of an IIP in ``FbpParseResult.offsets``


@dataclass
class FbpParseResult:
    """Everything the parser found, with positions, before it becomes a ``Graph``.

    Connections are kept as the model's ``Edge``/``Initial`` values with their offsets in a flat
    list of ints beside them, three per connection (where it starts, where its source and its
    target process names start; ``NO_SOURCE`` for an IIP's source): a large graph has tens of
    thousands of connections, and a record object for each would only feed the garbage
    collector. ``connections`` pairs them up when asked.
    """

    nodes: dict[str, ParsedNode] = field(default_factory=dict)
    graph_connections: list[Connection] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    inports: dict[str, ParsedExport] = field(default_factory=dict)
    outports: dict[str, ParsedExport] = field(default_factory=dict)
    properties: dict[str, object] | None = None
    problems: list[Problem] = field(default_factory=list)
    # Text of lines that failed to parse: names in them may be declared there, so the semantic
    # checks do not call them undeclared.
    failed_text: list[str] = field(default_factory=list)

    def add_node(self, name: str, offset: int, component: str, meta: list[str] | None) -> None:
        """The grammar's ``addNode``: a node is kept where first seen, later mentions update it."""
        node = self.nodes.get(name)
        if node is None:
            node = self.nodes[name] = ParsedNode(offset)
        if component:
            node.component = component
        if meta is not None:
            node.metadata = parse_node_metadata(meta)

    def connect(
        self, src: PortRef | None, data: object, offset: int, tgt: PortRef, tgt_offset: int
    ) -> None:
        """A paired connection: from ``src`` (its process name at ``offset``) or, if that is
        None, an IIP of ``data`` (starting at ``offset``), to ``tgt`` (name at ``tgt_offset``)."""
        if src is None:
            # Initial freezes the value itself (the parser's are plain JSON values).
            self.graph_connections.append(Initial(cast(FrozenJson, data), tgt))
            self.offsets += (offset, NO_SOURCE, tgt_offset)
        else:
            self.graph_connections.append(Edge(src, tgt))
            self.offsets += (offset, offset, tgt_offset)

    @property
    def connections(self) -> list[ParsedConnection]:
        """Each connection with its offsets."""
        offsets = self.offsets
        return [
            ParsedConnection(
                conn,
                offsets[3 * i],
                None if offsets[3 * i + 1] == NO_SOURCE else offsets[3 * i + 1],
                offsets[3 * i + 2],
            )
            for i, conn in enumerate(self.graph_connections)
        ]

    def positions(self) -> dict[Path, int]:
        """Offsets by key path, for turning semantic problems into file positions."""
        pos: dict[Path, int] = {}
        for name, node in self.nodes.items():
            pos[("processes", name)] = node.offset
        for i, conn in enumerate(self.connections):
            pos[("connections", i)] = conn.offset
            pos[("connections", i, "tgt", "process")] = conn.tgt_offset
            if conn.src_offset is not None:
                pos[("connections", i, "src", "process")] = conn.src_offset
        for kind, exports in (("inports", self.inports), ("outports", self.outports)):
            for pub, exp in exports.items():
                pos[(kind, pub)] = exp.offset
                pos[(kind, pub, "process")] = exp.process_offset
        return pos
