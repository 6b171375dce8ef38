"""FBP JSON graphs (the NoFlo/Flowhub format), loaded tolerantly and saved canonically.

Loading accepts every shape deployed graphs use (protocol.md 3.2): ``inports``/``outports`` as
``[]``, ``{}``, absent or populated; ``environment.type`` or ``.runtime``; groups; connection
metadata; IIP data of any JSON type, including ``0``, ``false`` and ``""`` (an IIP is a
connection with a ``data`` key, never decided by truthiness: protocol.md 3.3).

Saving writes standard FBP JSON with exported ports as objects (the original coordinator wrote
``[]`` and lost them, protocol.md 3.5) in a canonical order: processes and exports sorted by name,
object keys sorted, connections in graph order. So saving, loading and saving again gives the
same bytes, and a diff of two saved graphs shows only what changed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from gateway.common.problems import did_you_mean
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
from gateway.graph.json_positions import KEY, json_positions
from gateway.graph.model import (
    Connection,
    Edge,
    ExportedPort,
    FrozenJson,
    Graph,
    Group,
    Initial,
    JsonValue,
    Metadata,
    PortRef,
    Process,
    Properties,
    freeze,
)

TOP_LEVEL_KEYS = (
    "properties",
    "inports",
    "outports",
    "groups",
    "processes",
    "connections",
    "caseSensitive",
)

# -- saving ---------------------------------------------------------------------------------------


def _plain(value: FrozenJson) -> JsonValue:
    """A frozen value as plain JSON data with its object keys sorted (the canonical order)."""
    if isinstance(value, str | int | float) or value is None:  # bool is an int
        return value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return {k: _plain(value[k]) for k in sorted(value)}


def _meta(metadata: Metadata) -> dict[str, JsonValue]:
    return {"metadata": _plain(metadata)} if metadata else {}


def properties_to_dict(props: Properties) -> dict[str, JsonValue]:
    """The ``properties`` object: ``name``, ``environment``, then every other key, sorted."""
    out: dict[str, JsonValue] = {}
    if props.name is not None:
        out["name"] = props.name
    if props.environment:
        out["environment"] = _plain(props.environment)
    extra = _plain(props.extra)
    assert isinstance(extra, dict)
    out.update(extra)
    return out


def _port_ref(ref: PortRef) -> dict[str, JsonValue]:
    if ref.index is None:
        return {"process": ref.process, "port": ref.port}
    return {"process": ref.process, "port": ref.port, "index": ref.index}


def _connection(conn: Connection) -> dict[str, JsonValue]:
    out: dict[str, JsonValue]
    if isinstance(conn, Edge):
        out = {"src": _port_ref(conn.src), "tgt": _port_ref(conn.tgt)}
    else:
        out = {"data": _plain(conn.data), "tgt": _port_ref(conn.tgt)}
    if conn.metadata:
        out["metadata"] = _plain(conn.metadata)
    return out


def _process(process: Process) -> dict[str, JsonValue]:
    if process.metadata:
        return {"component": process.component, "metadata": _plain(process.metadata)}
    return {"component": process.component}


def _exports(exports: Mapping[str, ExportedPort]) -> dict[str, JsonValue]:
    return {
        public: {"process": exp.process, "port": exp.port, **_meta(exp.metadata)}
        for public, exp in sorted(exports.items())
    }


def _groups(groups: tuple[Group, ...]) -> list[JsonValue]:
    return [{"name": g.name, "nodes": list(g.nodes), **_meta(g.metadata)} for g in groups]


def graph_to_dict(graph: Graph) -> dict[str, JsonValue]:
    """The FBP JSON object for ``graph`` (the shape the reference .fbp parser returns, too)."""
    out: dict[str, JsonValue] = {}
    props = properties_to_dict(graph.properties)
    if props:
        out["properties"] = props
    out["inports"] = _exports(graph.inports)
    out["outports"] = _exports(graph.outports)
    out["groups"] = _groups(graph.groups)
    out["processes"] = {name: _process(p) for name, p in sorted(graph.processes.items())}
    out["connections"] = [_connection(c) for c in graph.connections]
    out["caseSensitive"] = graph.case_sensitive
    return out


def to_json(graph: Graph) -> str:
    """Canonical FBP JSON text: one process, connection or export per line, final newline.

    One item per line keeps a diff of two saved graphs to the items that changed.
    """
    try:
        text = _JsonText(graph, ensure_ascii=False).render()
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (legal in JSON escapes) cannot be written as UTF-8: escape everything.
        text = _JsonText(graph, ensure_ascii=True).render()
    return text


class _JsonText:
    """The text ``to_json`` writes: ``graph_to_dict``'s object, each item encoded on its line.

    The C encoder writes every value (``indent=`` would switch to the much slower Python one).
    Processes and connections, tens of thousands in a large graph, are written from their
    fields instead of going through a dict and one ``encode`` call each, which sets the encoder
    up anew every time and costs more than the line itself. Their strings go through the very
    function ``encode`` uses for strings, their other values through ``encode``, so the text is
    byte for byte what encoding ``graph_to_dict(graph)`` item by item gives.
    """

    def __init__(self, graph: Graph, *, ensure_ascii: bool) -> None:
        self.graph = graph
        self.encode = json.JSONEncoder(ensure_ascii=ensure_ascii, allow_nan=False).encode
        self.string = encode_basestring_ascii if ensure_ascii else encode_basestring

    def value(self, value: object) -> str:
        if type(value) is str:
            return self.string(value)
        return self.encode(value)

    def render(self) -> str:
        graph, encode = self.graph, self.encode
        members: list[tuple[str, str]] = []
        props = properties_to_dict(graph.properties)
        if props:
            members.append(("properties", self.object(props.items())))
        members.append(("inports", self.object(_exports(graph.inports).items())))
        members.append(("outports", self.object(_exports(graph.outports).items())))
        members.append(("groups", _block("[", [encode(g) for g in _groups(graph.groups)], "]")))
        processes = [self.process(n, p) for n, p in sorted(graph.processes.items())]
        members.append(("processes", _block("{", processes, "}")))
        connections = [self.connection(c) for c in graph.connections]
        members.append(("connections", _block("[", connections, "]")))
        members.append(("caseSensitive", encode(graph.case_sensitive)))
        return "{\n" + ",\n".join(f"  {encode(k)}: {body}" for k, body in members) + "\n}\n"

    def object(self, items: Iterable[tuple[str, JsonValue]]) -> str:
        return _block("{", [f"{self.encode(k)}: {self.encode(v)}" for k, v in items], "}")

    def process(self, name: str, process: Process) -> str:
        body = f'{{"component": {self.value(process.component)}'
        if process.metadata:
            body += f', "metadata": {self.encode(_plain(process.metadata))}'
        return f"{self.value(name)}: {body}}}"

    def port_ref(self, ref: PortRef) -> str:
        text = f'{{"process": {self.value(ref.process)}, "port": {self.value(ref.port)}'
        if ref.index is not None:
            text += f', "index": {self.encode(ref.index)}'
        return text + "}"

    def connection(self, conn: Connection) -> str:
        if isinstance(conn, Edge):
            head = f'{{"src": {self.port_ref(conn.src)}'
        else:
            head = f'{{"data": {self.value(_plain(conn.data))}'
        tail = f', "metadata": {self.encode(_plain(conn.metadata))}}}' if conn.metadata else "}"
        return f'{head}, "tgt": {self.port_ref(conn.tgt)}{tail}'


def _block(opener: str, lines: list[str], closer: str) -> str:
    """A top-level member's value: one item per line, or ``{}``/``[]`` when empty."""
    if not lines:
        return opener + closer
    return f"{opener}\n    " + ",\n    ".join(lines) + f"\n  {closer}"


# -- loading --------------------------------------------------------------------------------------


class _Loader:
    """Turns a decoded JSON value into a ``Graph``, collecting a problem per bad part."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: Path, message: str, hint: str = "", *, warn: bool = False) -> None:
        severity = Severity.WARNING if warn else Severity.ERROR
        self.problems.append(Problem(message, path, hint=hint, severity=severity))

    def obj(self, value: object, path: Path, *, lists_ok: bool = False) -> Mapping[str, Any]:
        """``value`` as an object; ``None``/absent and (if allowed) ``[]`` count as empty."""
        if isinstance(value, Mapping):
            return value
        if value is None or (lists_ok and value == []):
            return {}
        what = f"{path[-1]} must be" if path and isinstance(path[-1], str) else "expected"
        self.problem(path, f"{what} an object, found {_kind(value)}")
        return {}

    def string(self, value: object, path: Path, what: str) -> str:
        if isinstance(value, str):
            return value
        self.problem(path, f"{what} must be a string, found {_kind(value)}")
        return ""

    def json_value(self, value: object, path: Path) -> FrozenJson:
        for bad_path, problem in _non_finite(value, path):
            self.problem(bad_path, problem)
        return freeze(value)

    def metadata(self, value: object, path: Path) -> dict[str, Any]:
        meta = dict(self.obj(value, path))
        self.json_value(meta, path)
        return meta

    def graph(self, data: object) -> Graph:
        top = self.obj(data, ())
        self.unknown_keys(top)
        case = top.get("caseSensitive", False)
        if not isinstance(case, bool):
            message = f"caseSensitive must be true or false, found {_kind(case)}"
            self.problem(("caseSensitive",), message)
            case = False
        return Graph(
            processes=self.processes(top.get("processes")),
            connections=tuple(self.connections(top.get("connections"))),
            inports=self.exports(top.get("inports"), "inports"),
            outports=self.exports(top.get("outports"), "outports"),
            groups=tuple(self.groups(top.get("groups"))),
            properties=self.properties(top.get("properties")),
            case_sensitive=case,
        )

    def unknown_keys(self, top: Mapping[str, Any]) -> None:
        for key in top:
            if key in TOP_LEVEL_KEYS:
                continue
            hint = did_you_mean(key, TOP_LEVEL_KEYS)
            # A near-miss is a typo that would silently lose data: an error. Anything else is
            # some other tool's extension: ignored, with a warning.
            message = f"unknown key {key!r}" + ("" if hint else " is ignored")
            self.problem((key, KEY), message, hint, warn=not hint)

    def properties(self, value: object) -> Properties:
        props = dict(self.obj(value, ("properties",)))
        self.json_value(props, ("properties",))
        return properties_from_dict(props)

    def processes(self, value: object) -> dict[str, Process]:
        out: dict[str, Process] = {}
        for name, spec in self.obj(value, ("processes",)).items():
            path: Path = ("processes", name)
            body = self.obj(spec, path)
            component = body.get("component", "")
            if not isinstance(component, str):
                self.problem(
                    (*path, "component"), f"component must be a string, found {_kind(component)}"
                )
                component = ""
            out[name] = Process(component, self.metadata(body.get("metadata"), (*path, "metadata")))
        return out

    def connections(self, value: object) -> list[Connection]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(("connections",), f"expected a list, found {_kind(value)}")
            return []
        out = [self.connection(item, ("connections", i)) for i, item in enumerate(value)]
        return [c for c in out if c is not None]

    def connection(self, value: object, path: Path) -> Connection | None:
        body = self.obj(value, path)
        if not body:
            if isinstance(value, Mapping) or value is None:  # a non-object is reported already
                self.problem(path, "empty connection (needs 'tgt' and 'src' or 'data')")
            return None
        tgt = self.port_ref(body.get("tgt"), (*path, "tgt"))
        meta = self.metadata(body.get("metadata"), (*path, "metadata"))
        if "data" in body:  # presence, not truthiness: 0, false and "" are IIPs too
            return Initial(self.json_value(body["data"], (*path, "data")), tgt, meta)
        if "src" not in body:
            self.problem(path, "connection has neither 'src' nor 'data'")
            return None
        return Edge(self.port_ref(body["src"], (*path, "src")), tgt, meta)

    def port_ref(self, value: object, path: Path) -> PortRef:
        body = self.obj(value, path)
        if not body:
            self.problem(path, "missing process and port")
        process = self.string(body.get("process"), (*path, "process"), "process")
        port = self.string(body.get("port"), (*path, "port"), "port")
        index = body.get("index")
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or index < 0
        ):
            self.problem((*path, "index"), f"index must be a whole number >= 0, found {index!r}")
            index = None
        return PortRef(process, port, index)

    def exports(self, value: object, kind: str) -> dict[str, ExportedPort]:
        out: dict[str, ExportedPort] = {}
        for public, spec in self.obj(value, (kind,), lists_ok=True).items():
            path: Path = (kind, public)
            body = self.obj(spec, path)
            process = self.string(body.get("process"), (*path, "process"), "process")
            port = self.string(body.get("port"), (*path, "port"), "port")
            out[public] = ExportedPort(
                process, port, self.metadata(body.get("metadata"), (*path, "metadata"))
            )
        return out

    def groups(self, value: object) -> list[Group]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(("groups",), f"expected a list, found {_kind(value)}")
            return []
        return [self.group(item, ("groups", i)) for i, item in enumerate(value)]

    def group(self, value: object, path: Path) -> Group:
        body = self.obj(value, path)
        name = self.string(body.get("name", ""), (*path, "name"), "group name")
        nodes = body.get("nodes", [])
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            self.problem((*path, "nodes"), "nodes must be a list of process names")
            nodes = []
        return Group(name, tuple(nodes), self.metadata(body.get("metadata"), (*path, "metadata")))


def properties_from_dict(props: Mapping[str, Any]) -> Properties:
    """Split a ``properties`` object into the model's fields (non-string names go to extra)."""
    extra = dict(props)
    name = extra.pop("name") if isinstance(props.get("name"), str) else None
    env = extra.pop("environment") if isinstance(props.get("environment"), Mapping) else {}
    return Properties(name=name, environment=env, extra=extra)


class _LongInteger(float):
    """An integer with more digits than Python converts (``sys.get_int_max_str_digits()``),
    standing in as an infinite float: every value is checked for those, so the loader reports
    it at its key path, with the file's line and column, like any other bad value."""

    digits: int

    def __new__(cls, text: str) -> _LongInteger:
        number = super().__new__(cls, "-inf" if text.startswith("-") else "inf")
        number.digits = len(text.lstrip("-"))
        return number

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def _long_int(text: str) -> int | float:
    limit = sys.get_int_max_str_digits()
    return _LongInteger(text) if limit and len(text.lstrip("-")) > limit else int(text)


def _non_finite(value: object, path: Path) -> Iterator[tuple[Path, str]]:
    """(path, problem) for each number in ``value`` that cannot be written back as JSON."""
    if isinstance(value, _LongInteger):
        limit = sys.get_int_max_str_digits()
        yield path, f"{value!r} is too long (at most {limit} digits)"
    elif isinstance(value, float) and not math.isfinite(value):
        bad = repr(value).replace("inf", "Infinity").replace("nan", "NaN")
        yield path, f"{bad} is not valid JSON (use null or a string)"
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _non_finite(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_finite(v, (*path, i))


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for typ, name in names.items():
        if isinstance(value, typ):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _duplicate_message(path: Path) -> str:
    kinds = {"processes": "process", "inports": "exported inport", "outports": "exported outport"}
    if len(path) == 2 and path[0] in kinds:
        return f"{kinds[str(path[0])]} {path[1]!r} is defined twice (the last one would win)"
    return f"key {path[-1]!r} appears twice in this object (the last one would win)"


def graph_from_dict(data: object) -> tuple[Graph, list[Problem]]:
    """A graph from decoded JSON and every problem found (format and semantic checks)."""
    loader = _Loader()
    graph = loader.graph(data)
    # A part the loader already rejected (a non-string component, say) is not reported again
    # by the semantic checks ("has no component").
    seen = {p.path for p in loader.problems}
    return graph, loader.problems + [p for p in check_graph(graph) if p.path not in seen]


def _decode_error(source: SourceText, exc: json.JSONDecodeError) -> GraphError:
    before = source.text[: exc.pos].rstrip()
    here = source.text[exc.pos : exc.pos + 1]
    hint, offset = "", exc.pos
    if before.endswith(",") and (here in "]}" or exc.msg.startswith("Expecting property name")):
        hint, offset = "remove the trailing comma", len(before) - 1
    elif here == "'":
        hint = "JSON strings need double quotes"
    elif exc.msg.startswith("Expecting ',' delimiter"):
        hint = "a ',' is missing before this, or a string is not closed"
    problem = Problem(f"invalid JSON: {exc.msg}", offset=offset, hint=hint)
    return source.error(problem)


def read_json(text: str, *, file: str = "") -> tuple[Graph, tuple[GraphError, ...]]:
    """Load FBP JSON text. Raises ``InvalidGraphError`` with every error; returns the warnings."""
    with nesting_guard(file):
        return _read_json(text, file)


def _decode(text: str, pairs: Callable[[list[tuple[str, Any]]], dict[str, Any]]) -> object:
    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer of more digits than int() converts: find it, slowly
        return json.loads(text, object_pairs_hook=pairs, parse_int=_long_int)


def _read_json(text: str, file: str) -> tuple[Graph, tuple[GraphError, ...]]:
    source = SourceText(text, file)
    duplicates: list[bool] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in items}) != len(items):
            duplicates.append(True)
        return dict(items)

    try:
        data = _decode(text, pairs)
    except json.JSONDecodeError as exc:
        raise_for((_decode_error(source, exc),))
        raise  # unreachable: raise_for raised
    graph, problems = graph_from_dict(data)
    if not problems and not duplicates:
        return graph, ()
    positions, repeated = json_positions(text)
    problems += [Problem(_duplicate_message(p), p) for p in repeated]
    errors, warnings = split(problems)
    locate = path_locator(positions)
    raise_for(source.errors(errors, locate))
    return graph, source.errors(warnings, locate)


def parse_json(text: str, *, file: str = "") -> Graph:
    """Load FBP JSON text into a ``Graph``; raises ``InvalidGraphError`` listing every error."""
    return read_json(text, file=file)[0]
