"""What the .fbp parser found, with source offsets, before it becomes a ``Graph``."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.graph.diagnostics import Path, Problem


@dataclass(slots=True)
class ParsedNode:
    """A node as the parser saw it; ``component`` stays ``""`` if never declared."""

    offset: int
    component: str = ""
    metadata: dict[str, object] | None = None


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


@dataclass(frozen=True, slots=True)
class ParsedConnection:
    """A paired connection: ``src`` is None for an IIP (then ``data`` holds its value)."""

    src: Endpoint | None
    tgt: Endpoint
    data: object
    offset: int


@dataclass(frozen=True, slots=True)
class ParsedExport:
    public: str
    process: str
    port: str
    offset: int
    process_offset: int


@dataclass
class FbpParseResult:
    """Everything the parser found, with positions, before it becomes a ``Graph``."""

    nodes: dict[str, ParsedNode] = field(default_factory=dict)
    connections: list[ParsedConnection] = field(default_factory=list)
    inports: dict[str, ParsedExport] = field(default_factory=dict)
    outports: dict[str, ParsedExport] = field(default_factory=dict)
    properties: dict[str, object] | None = None
    problems: list[Problem] = field(default_factory=list)
    # Text of lines that failed to parse: names in them may be declared there, so the semantic
    # checks do not call them undeclared.
    failed_text: list[str] = field(default_factory=list)

    def positions(self) -> dict[Path, int]:
        """Offsets by key path, for turning semantic problems into file positions."""
        pos: dict[Path, int] = {}
        for name, node in self.nodes.items():
            pos[("processes", name)] = node.offset
        for i, conn in enumerate(self.connections):
            pos[("connections", i)] = conn.offset
            pos[("connections", i, "tgt", "process")] = conn.tgt.offset
            if conn.src is not None:
                pos[("connections", i, "src", "process")] = conn.src.offset
        for kind, exports in (("inports", self.inports), ("outports", self.outports)):
            for pub, exp in exports.items():
                pos[(kind, pub)] = exp.offset
                pos[(kind, pub, "process")] = exp.process_offset
        return pos
