"""Incoming FBP runtime protocol frames: text → :class:`Frame` → typed request.

Two steps, so the core can check the secret in between: :func:`parse_frame` reads the envelope
(``{"protocol", "command", "payload", "secret"?}``, fbp-protocol ``shared/input_message``) and
:func:`parse_request` validates the payload of one command against what fbp-protocol 0.7/0.8
defines for it, returning a value from ``requests.py``. Every problem raises
:class:`~gateway.errors.ProtocolError` with one line for the client's ``<protocol>:error``.

The checks are written here rather than loaded from the fbp-protocol schemas: they are the
schemas' ``required`` and ``type`` rules plus the typed metadata keys (``x``/``y``/``route`` are
integers), so that everything stored can be sent back in a reply that validates. Unknown payload
keys are ignored, not refused: the official test suite itself sends ``secret`` and ``baseDir`` in
payloads whose schemas say ``additionalProperties: false``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from gateway.errors import ProtocolError
from gateway.graph.model import FrozenJson, PortRef, freeze
from gateway.runtime_protocol import requests as rq

PROTOCOLS = ("runtime", "graph", "network", "component", "trace")
_SHOWN = 40  # characters of a client's value quoted back in an error


@dataclass(frozen=True)
class Frame:
    """A decoded envelope. ``secrets`` are the offered secrets, kept out of ``payload`` and
    ``repr``."""

    protocol: str
    command: str
    payload: Mapping[str, object]
    secrets: tuple[str, ...] = field(default=(), repr=False)


def shown(value: str) -> str:
    """A client-supplied name, quoted and cut short, for an error message."""
    if len(value) > _SHOWN:
        value = value[:_SHOWN] + "..."
    return json.dumps(value)


def kind(value: object) -> str:
    """The JSON type name of ``value``, for messages like ``must be a string, not number``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _no_constants(name: str) -> object:
    # Python's json accepts NaN and Infinity, which are not JSON and cannot be sent back.
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    # 1e400 would become inf, which json.dumps writes as the non-JSON ``Infinity``.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:_SHOWN]} is out of range")
    return value


def _decode(text: str | bytes) -> object:
    try:
        return json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except RecursionError:
        raise ProtocolError("runtime", "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ProtocolError("runtime", f"invalid JSON: {exc}") from None


def parse_frame(text: str | bytes) -> Frame:
    """Decode one websocket text frame into its envelope (payload not yet validated)."""
    data = _decode(text)
    if not isinstance(data, dict):
        raise ProtocolError("runtime", f"a message must be a JSON object, not {kind(data)}")
    protocol, command = data.get("protocol"), data.get("command")
    if not isinstance(protocol, str):
        raise ProtocolError("runtime", "message.protocol must be a string")
    if protocol not in PROTOCOLS:
        raise ProtocolError("runtime", f"unknown protocol {shown(protocol)}")
    if not isinstance(command, str):
        raise ProtocolError(protocol, "message.command must be a string")
    payload = data.get("payload", {})
    if not isinstance(payload, dict):
        raise ProtocolError(protocol, f"message.payload must be an object, not {kind(payload)}")
    offered = (data.get("secret"), payload.get("secret"))
    secrets = tuple(s for s in offered if isinstance(s, str))
    # The secret goes no further than this: not in the payload, not in a repr or log line.
    rest = {key: value for key, value in payload.items() if key != "secret"}
    return Frame(protocol, command, rest, secrets)


# -- payload fields -------------------------------------------------------------------------------

# Metadata keys with a type in fbp-protocol's shared schema (metadata_node/edge/group).
_META_TYPES: dict[str, dict[str, type]] = {
    "node": {"x": int, "y": int},
    "edge": {"route": int, "schema": str, "secure": bool},
    "group": {"description": str},
}
_TYPE_NAMES = {int: "an integer", str: "a string", bool: "a boolean"}


def _typed(value: FrozenJson, wanted: type) -> FrozenJson | None:
    """``value`` as ``wanted`` (an integral float counts as an integer), or None."""
    if wanted is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, wanted) and not (wanted is int and isinstance(value, bool)):
        return value
    return None


class Fields:
    """Typed access to one payload; each getter raises a one-line ProtocolError."""

    def __init__(self, frame: Frame) -> None:
        self.protocol = frame.protocol
        self.where = f"{frame.protocol}:{frame.command}"
        self.data = frame.payload

    def fail(self, problem: str) -> ProtocolError:
        return ProtocolError(self.protocol, f"{self.where}: {problem}")

    def _get(self, key: str, wanted: type | tuple[type, ...], name: str) -> object:
        if key not in self.data:
            raise self.fail(f"payload.{key} is missing")
        value = self.data[key]
        if not isinstance(value, wanted):
            raise self.fail(f"payload.{key} must be {name}, not {kind(value)}")
        return value

    def string(self, key: str) -> str:
        value = self._get(key, str, "a string")
        assert isinstance(value, str)
        return value

    def optional_string(self, key: str) -> str | None:
        return self.string(key) if key in self.data else None

    def optional_boolean(self, key: str) -> bool | None:
        if key not in self.data:
            return None
        value = self._get(key, bool, "a boolean")
        assert isinstance(value, bool)
        return value

    def value(self, key: str) -> FrozenJson:
        if key not in self.data:
            raise self.fail(f"payload.{key} is missing")
        return freeze(self.data[key])

    def graph(self) -> str:
        # The exact messages of the fbp-protocol test suite (protocol.md 8.2, tests 13-14).
        value = self.data.get("graph")
        if value is None:
            raise ProtocolError(self.protocol, "No graph specified")
        if not isinstance(value, str):
            raise self.fail(f"payload.graph must be a string, not {kind(value)}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        items = self._get(key, list, "an array")
        assert isinstance(items, list)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self.fail(f"payload.{key}[{i}] must be a string, not {kind(item)}")
        return tuple(items)

    def metadata(self, key: str, family: str, *, required: bool = False) -> rq.MetadataPatch:
        if key not in self.data and not required:
            return {}
        raw = self._get(key, dict, "an object")
        assert isinstance(raw, dict)
        return {str(k): self._meta_value(key, str(k), v, family) for k, v in raw.items()}

    def _meta_value(self, key: str, name: str, value: object, family: str) -> FrozenJson:
        frozen = freeze(value)
        wanted = _META_TYPES[family].get(name)
        if frozen is None or wanted is None:
            return frozen
        typed = _typed(frozen, wanted)
        if typed is None:
            raise self.fail(f"payload.{key}.{name} must be {_TYPE_NAMES[wanted]}")
        return typed

    def port(self, key: str, obj: Mapping[str, object] | None = None) -> PortRef:
        raw = self._get(key, dict, "an object") if obj is None else obj
        assert isinstance(raw, dict)
        node, port = raw.get("node"), raw.get("port")
        if not isinstance(node, str) or not isinstance(port, str):
            raise self.fail(f"payload.{key} needs string fields node and port")
        return PortRef(node, port, self._index(key, raw.get("index")))

    def _index(self, key: str, index: object) -> int | None:
        # fbp-protocol allows a string or a number; the graph model keeps integers.
        if index is None:
            return None
        if isinstance(index, str) and index.isdigit() and index.isascii():
            return int(index)
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            return index
        if isinstance(index, float) and index.is_integer() and index >= 0:
            return int(index)
        raise self.fail(f"payload.{key}.index must be a non-negative integer")

    def iip_data(self, key: str) -> FrozenJson:
        raw = self._get(key, dict, "an object")
        assert isinstance(raw, dict)
        if "data" not in raw:
            raise self.fail(f"payload.{key}.data is missing")
        return freeze(raw["data"])

    def edge_list(self, key: str) -> tuple[rq.EdgeKey, ...]:
        items = self._get(key, list, "an array")
        assert isinstance(items, list)
        edges = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"payload.{key}[{i}] must be an object, not {kind(item)}")
            where = f"{key}[{i}]"
            edges.append((self._sub_port(where, item, "src"), self._sub_port(where, item, "tgt")))
        return tuple(edges)

    def _sub_port(self, where: str, item: Mapping[str, object], end: str) -> PortRef:
        raw = item.get(end)
        if not isinstance(raw, dict):
            raise self.fail(f"payload.{where}.{end} must be an object, not {kind(raw)}")
        return self.port(f"{where}.{end}", raw)


# -- one parser per command -----------------------------------------------------------------------

Parser: TypeAlias = Callable[[Fields], rq.Request]


def _packet(f: Fields) -> rq.Request:
    event = f.string("event")
    if event not in ("connect", "begingroup", "data", "endgroup", "disconnect"):
        raise f.fail(f"payload.event {shown(event)} is not a packet event")
    data = f.value("payload") if event == "data" else None
    return rq.SendPacket(f.graph(), f.string("port"), event, data)


def _clear(f: Fields) -> rq.Request:
    return rq.ClearGraph(
        id=f.string("id"),
        name=f.optional_string("name"),
        library=f.optional_string("library"),
        main=f.optional_boolean("main"),
        icon=f.optional_string("icon"),
        description=f.optional_string("description"),
    )


def _export_parsers(d: rq.Direction) -> dict[str, Parser]:
    def add(f: Fields) -> rq.Request:
        public, node, port = f.string("public"), f.string("node"), f.string("port")
        return rq.AddExport(f.graph(), d, public, node, port, f.metadata("metadata", "node"))

    def remove(f: Fields) -> rq.Request:
        return rq.RemoveExport(f.graph(), d, f.string("public"))

    def rename(f: Fields) -> rq.Request:
        return rq.RenameExport(f.graph(), d, f.string("from"), f.string("to"))

    return {f"add{d.value}": add, f"remove{d.value}": remove, f"rename{d.value}": rename}


_GRAPH: dict[str, Parser] = {
    "clear": _clear,
    "addnode": lambda f: rq.AddNode(
        f.graph(), f.string("id"), f.string("component"), f.metadata("metadata", "node")
    ),
    "removenode": lambda f: rq.RemoveNode(f.graph(), f.string("id")),
    "renamenode": lambda f: rq.RenameNode(f.graph(), f.string("from"), f.string("to")),
    "changenode": lambda f: rq.ChangeNode(
        f.graph(), f.string("id"), f.metadata("metadata", "node", required=True)
    ),
    "addedge": lambda f: rq.AddEdge(
        f.graph(), f.port("src"), f.port("tgt"), f.metadata("metadata", "edge")
    ),
    "removeedge": lambda f: rq.RemoveEdge(f.graph(), f.port("src"), f.port("tgt")),
    "changeedge": lambda f: rq.ChangeEdge(
        f.graph(), f.port("src"), f.port("tgt"), f.metadata("metadata", "edge", required=True)
    ),
    "addinitial": lambda f: rq.AddInitial(
        f.graph(), f.iip_data("src"), f.port("tgt"), f.metadata("metadata", "edge")
    ),
    "removeinitial": lambda f: rq.RemoveInitial(f.graph(), f.port("tgt")),
    **_export_parsers(rq.Direction.IN),
    **_export_parsers(rq.Direction.OUT),
    "addgroup": lambda f: rq.AddGroup(
        f.graph(), f.string("name"), f.strings("nodes"), f.metadata("metadata", "group")
    ),
    "removegroup": lambda f: rq.RemoveGroup(f.graph(), f.string("name")),
    "renamegroup": lambda f: rq.RenameGroup(f.graph(), f.string("from"), f.string("to")),
    "changegroup": lambda f: rq.ChangeGroup(
        f.graph(), f.string("name"), f.metadata("metadata", "group", required=True)
    ),
}

_NETWORK: dict[str, Parser] = {
    "start": lambda f: rq.StartNetwork(f.graph()),
    "stop": lambda f: rq.StopNetwork(f.graph()),
    "getstatus": lambda f: rq.GetStatus(f.graph()),
    "edges": lambda f: rq.WatchEdges(f.graph(), f.edge_list("edges")),
}

_PARSERS: dict[str, dict[str, Parser]] = {
    "runtime": {"getruntime": lambda f: rq.GetRuntime(), "packet": _packet},
    "graph": _GRAPH,
    "network": _NETWORK,
    "component": {
        "list": lambda f: rq.ListComponents(),
        "getsource": lambda f: rq.GetSource(f.string("name")),
    },
    "trace": {},
}

# Commands fbp-protocol defines that this runtime answers with an honest error.
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("network", "debug"): "edge data is sent while the network is started, "
    "and for edges selected with network:edges",
    ("network", "persist"): "the coordinator saves its graph itself (--auto-save)",
    ("component", "source"): "components are participants; they cannot be sent as source",
    ("trace", "start"): "flowtraces are not recorded",
    ("trace", "stop"): "flowtraces are not recorded",
    ("trace", "clear"): "flowtraces are not recorded",
    ("trace", "dump"): "flowtraces are not recorded",
}


def parse_request(frame: Frame) -> rq.Request:
    """The typed request for ``frame``; ProtocolError if the command or payload is invalid."""
    parser = _PARSERS[frame.protocol].get(frame.command)
    if parser is not None:
        return parser(Fields(frame))
    reason = UNSUPPORTED.get((frame.protocol, frame.command))
    if reason is not None:
        return rq.Unsupported(frame.protocol, frame.command, reason)
    where = shown(f"{frame.protocol}:{frame.command}")
    raise ProtocolError(frame.protocol, f"unknown command {where}")
