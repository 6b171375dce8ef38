""".fbp text to ``Graph`` and back.

Reading runs the exact parser (``fbp_parser``) and then the shared semantic checks, reporting
every problem with ``file:line:col``. Writing produces .fbp that the reference parser reads back
to the same graph; anything .fbp cannot express (edge metadata, groups, roles with ``/`` or
``.``, protocol.md 3.1) is refused with one problem per item, or dropped with a warning when the
caller asks for a lossy conversion.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace

from gateway.errors import GraphError
from gateway.graph.checks import check_graph
from gateway.graph.diagnostics import (
    Path,
    Problem,
    Severity,
    SourceText,
    nesting_guard,
    path_locator,
    raise_for,
    split,
)
from gateway.graph.fbp_parser import parse_fbp_text
from gateway.graph.fbp_result import FbpParseResult
from gateway.graph.json_format import properties_from_dict
from gateway.graph.model import (
    Connection,
    ExportedPort,
    FrozenJson,
    Graph,
    Initial,
    Metadata,
    PortRef,
    Process,
    thaw,
)

# -- reading --------------------------------------------------------------------------------------


def result_to_graph(result: FbpParseResult, *, case_sensitive: bool = False) -> Graph:
    return Graph(
        # Process freezes the metadata itself: one copy, not two.
        processes={
            n: Process(p.component) if p.metadata is None else Process(p.component, p.metadata)
            for n, p in result.nodes.items()
        },
        connections=tuple(result.graph_connections),
        inports={k: ExportedPort(e.process, e.port) for k, e in result.inports.items()},
        outports={k: ExportedPort(e.process, e.port) for k, e in result.outports.items()},
        properties=properties_from_dict(result.properties or {}),
        case_sensitive=case_sensitive,
    )


_JSON_WORDS = ("true", "false", "null")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def _named_process(graph: Graph, path: Path) -> str | None:
    """The process name a missing-process problem is about."""
    if path[0] == "connections" and isinstance(path[1], int):
        conn = graph.connections[path[1]]
        return (
            conn.tgt.process if path[2] == "tgt" or isinstance(conn, Initial) else conn.src.process
        )
    if path[0] in ("inports", "outports"):
        exports = graph.inports if path[0] == "inports" else graph.outports
        return exports[str(path[1])].process
    return None


def _semantic(graph: Graph, result: FbpParseResult) -> list[Problem]:
    # Names on lines that failed to parse may well be declared there; calling them undeclared
    # would bury the real (syntax) error under follow-on noise.
    unsure = {m for text in result.failed_text for m in _IDENTIFIER.findall(text)}
    kept = []
    for problem in check_graph(graph):
        name = _named_process(graph, problem.path) if problem.path[0] != "processes" else None
        if name in unsure:
            continue
        kept.append(_keyword_hint(problem, name))
    return kept


def _keyword_hint(problem: Problem, name: str | None) -> Problem:
    """Explain an "undeclared true/false/null": the author meant a JSON IIP."""
    if name not in _JSON_WORDS or problem.hint:
        return problem
    hint = f"a bare {name} is a process name in .fbp; a tab before it makes it JSON"
    return replace(problem, hint=hint)


def read_fbp(
    text: str, *, file: str = "", case_sensitive: bool = False
) -> tuple[Graph, tuple[GraphError, ...]]:
    """Load .fbp text. Raises ``InvalidGraphError`` with every error; returns the warnings."""
    with nesting_guard(file):
        return _read_fbp(text, file, case_sensitive)


def _read_fbp(text: str, file: str, case_sensitive: bool) -> tuple[Graph, tuple[GraphError, ...]]:
    result = parse_fbp_text(text, case_sensitive=case_sensitive)
    graph = result_to_graph(result, case_sensitive=case_sensitive)
    problems = [*result.problems, *_semantic(graph, result)]
    if not problems:
        return graph, ()
    errors, warnings = split(problems)
    source = SourceText(text, file)
    locate = path_locator(result.positions())
    raise_for(source.errors(errors, locate))
    return graph, source.errors(warnings, locate)


def parse_fbp(text: str, *, file: str = "", case_sensitive: bool = False) -> Graph:
    """Load .fbp text into a ``Graph``; raises ``InvalidGraphError`` listing every error.

    Port names are lower-cased unless ``case_sensitive`` (the reference parser's default).
    """
    return read_fbp(text, file=file, case_sensitive=case_sensitive)[0]


# -- writing --------------------------------------------------------------------------------------

# What the reference grammar accepts in each position (fbp.peg rules in parentheses).
_NODE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_\-]*")  # nodeName
_PORT_NAME = re.compile(r"[a-zA-Z_][a-zA-Z.0-9_]*")  # portName
_COMPONENT = re.compile(r"[a-zA-Z/\-0-9_]+")  # component
_META_WORD = re.compile(r"[a-zA-Z/_0-9]*")  # compMeta, minus its separators "=" and ","
_ANNOTATION_KEY = re.compile(r"[a-zA-Z0-9\-_]+")  # annotation key
_ANNOTATION_VALUE = re.compile(r"[a-zA-Z0-9\-_.][a-zA-Z0-9\-_ .]*")  # value after "__"
_CONTROL = re.compile(r"[\x00-\x1f\u2028\u2029]")
_JS_SAFE_INT = 2**53


class _Writer:
    def __init__(self, graph: Graph, *, lossy: bool) -> None:
        self.graph = graph
        self.lossy = lossy
        self.problems: list[Problem] = []
        self.bad_names: set[str] = set()
        # Names, components and ports already found writable (a large graph repeats them
        # thousands of times), ports with the text they are written as.
        self.good_names: set[str] = set()
        self.good_components: set[str] = set()
        self.good_ports: dict[str, str] = {}

    def cannot(self, path: Path, what: str, *, droppable: bool = False) -> None:
        if droppable and self.lossy:
            self.problems.append(Problem(f"dropped: {what}", path, severity=Severity.WARNING))
        else:
            hint = "a lossy conversion leaves it out" if droppable else ""
            self.problems.append(Problem(f"cannot be written as .fbp: {what}", path, hint=hint))

    def name(self, name: str, path: Path, key: str = "") -> str:
        """``name`` as written; reports it (at ``path`` + ``key``) if .fbp cannot hold it."""
        if name in self.good_names:
            return name
        if _NODE_NAME.fullmatch(name):
            self.good_names.add(name)
        elif name not in self.bad_names:
            # Each bad name once (where it is first met), not again for every edge using it.
            self.bad_names.add(name)
            where = (*path, key) if key else path
            self.cannot(where, f"process name {name!r} (only letters, digits, '_' and '-')")
        return name

    def port(self, port: str, path: Path, key: str = "") -> str:
        written = self.good_ports.get(port)
        if written is not None:
            return written
        where = (*path, key) if key else path
        if not _PORT_NAME.fullmatch(port):
            self.cannot(where, f"port name {port!r} (only letters, digits, '_' and '.')")
            return port
        if self.graph.case_sensitive:
            self.good_ports[port] = port
            return port
        if port != port.lower():
            self.cannot(where, f"upper-case port {port!r} in a case-insensitive graph")
        else:
            self.good_ports[port] = port.upper()
        return port.upper()

    def port_ref(self, ref: PortRef, path: Path) -> tuple[str, str]:
        port = self.port(ref.port, path, "port")
        if ref.index is not None:
            if ref.index > _JS_SAFE_INT:
                self.cannot((*path, "index"), f"index {ref.index} (too large)")
            port += f"[{ref.index}]"
        return self.name(ref.process, path, "process"), port

    def write(self) -> str:
        lines = [*self.annotations(), *self.exports()]
        declarations = [self.declaration(n, p) for n, p in sorted(self.graph.processes.items())]
        connections = [self.connection(i, c) for i, c in enumerate(self.graph.connections)]
        for i, group in enumerate(self.graph.groups):
            self.cannot(("groups", i), f"group {group.name!r}", droppable=True)
        blocks = [block for block in (lines, declarations, connections) if block]
        return "\n\n".join("\n".join(block) for block in blocks) + "\n" if blocks else ""

    def annotations(self) -> Iterator[str]:
        props = self.graph.properties
        if props.environment:
            runtime = props.environment.get("type")
            if len(props.environment) == 1 and isinstance(runtime, str):
                yield self.annotation("runtime", runtime, ("properties", "environment"))
            else:
                self.cannot(("properties", "environment"), "an environment other than {type: ...}")
        if props.name is not None:
            yield self.annotation("name", props.name, ("properties", "name"))
        for key, value in sorted(props.extra.items()):
            if key == "runtime" or not isinstance(value, str):
                self.cannot(("properties", key), f"property {key!r}")
                continue
            yield self.annotation(key, value, ("properties", key))

    def annotation(self, key: str, value: str, path: Path) -> str:
        if not (_ANNOTATION_KEY.fullmatch(key) and _ANNOTATION_VALUE.fullmatch(value)):
            self.cannot(
                path,
                f"property {key}={value!r} (annotations allow letters, digits, ' ', '.', '_', '-')",
            )
        return f"# @{key} {value}"

    def exports(self) -> Iterator[str]:
        for keyword, kind, exports in (
            ("INPORT", "inports", self.graph.inports),
            ("OUTPORT", "outports", self.graph.outports),
        ):
            for public, exp in sorted(exports.items()):
                yield self.export(keyword, (kind, public), public, exp)

    def export(self, keyword: str, path: Path, public: str, exp: ExportedPort) -> str:
        if exp.metadata:
            self.cannot((*path, "metadata"), "metadata of an exported port", droppable=True)
        node = self.name(exp.process, path, "process")
        port = self.port(exp.port, path, "port")
        return f"{keyword}={node}.{port}:{self.port(public, path)}"

    def declaration(self, name: str, process: Process) -> str:
        path: Path = ("processes", name)
        self.name(name, path)
        component = process.component
        if component not in self.good_components:
            if _COMPONENT.fullmatch(component):
                self.good_components.add(component)
            else:
                self.cannot((*path, "component"), f"component {component!r}")
        meta = self.metadata(process.metadata, (*path, "metadata"))
        return f"{name}({process.component}{':' + meta if meta else ''})"

    def metadata(self, metadata: Metadata, path: Path) -> str:
        if not metadata:
            return ""
        items = []
        for key, value in sorted(metadata.items()):
            text = _meta_text(key, value)
            if text is None:
                self.cannot((*path, key), f"metadata {key}={value!r}", droppable=True)
            else:
                items.append(f"{key}={text}")
        return ",".join(items)

    def connection(self, i: int, conn: Connection) -> str:
        if conn.metadata:
            self.cannot(("connections", i, "metadata"), "connection metadata", droppable=True)
        tgt_node, tgt_port = self.port_ref(conn.tgt, ("connections", i, "tgt"))
        if isinstance(conn, Initial):
            return f"{self.iip(conn.data, ('connections', i, 'data'))} -> {tgt_port} {tgt_node}"
        src_node, src_port = self.port_ref(conn.src, ("connections", i, "src"))
        return f"{src_node} {src_port} -> {tgt_port} {tgt_node}"

    def iip(self, data: FrozenJson, path: Path) -> str:
        if isinstance(data, str) and not _CONTROL.search(data) and not data.endswith("\\"):
            # Inside quotes only \' is an escape; every other backslash is literal.
            return "'" + data.replace("'", "\\'") + "'"
        if not _json_safe(data):
            self.cannot(path, f"IIP {data!r} (not a JSON number .fbp can hold)")
        text = json.dumps(thaw(data), ensure_ascii=False, sort_keys=True)
        # The grammar reads bare true/false/null as process names; JSON whitespace before them
        # makes the JSON alternative match instead, so a tab keeps them JSON values.
        return "\t" + text if data is None or isinstance(data, bool) else text


def _meta_text(key: str, value: FrozenJson) -> str | None:
    """How ``key=value`` is written in ``(Comp:...)`` so that it reads back the same, if it can."""
    if not key or not _META_WORD.fullmatch(key):
        return None
    if key in ("x", "y"):
        # Read back with parseFloat: whole numbers >= 0 survive; "x=" reads back as null.
        if value is None:
            return ""
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _JS_SAFE_INT
        return str(value) if ok else None
    if isinstance(value, str) and _META_WORD.fullmatch(value):
        return value
    return None


def _json_safe(data: FrozenJson) -> bool:
    if isinstance(data, bool) or data is None or isinstance(data, str):
        return True
    if isinstance(data, int):
        return abs(data) <= _JS_SAFE_INT
    if isinstance(data, float):
        return math.isfinite(data)
    if isinstance(data, Mapping):
        return all(_json_safe(v) for v in data.values())
    return all(_json_safe(v) for v in data)


def fbp_with_warnings(
    graph: Graph, *, lossy: bool = False, file: str = ""
) -> tuple[str, tuple[GraphError, ...]]:
    """``to_fbp`` that also returns what a lossy conversion dropped, as warnings.

    Problems name the graph element by key path (``connections[3].metadata``); ``file`` is the
    graph's origin, for the messages.
    """
    writer = _Writer(graph, lossy=lossy)
    text = writer.write()
    errors, warnings = split(writer.problems)
    source = SourceText("", file)
    raise_for(source.errors(errors))
    return text, source.errors(warnings)


def to_fbp(graph: Graph, *, lossy: bool = False) -> str:
    """.fbp text for ``graph``; raises ``InvalidGraphError`` listing everything .fbp cannot say.

    With ``lossy`` metadata and groups that .fbp cannot express are left out instead.
    Read the result with the same ``case_sensitive`` the graph has.
    """
    return fbp_with_warnings(graph, lossy=lossy)[0]
