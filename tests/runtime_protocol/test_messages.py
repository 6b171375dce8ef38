"""Frames and payloads: valid ones become typed requests, invalid ones one-line ProtocolErrors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ProtocolError
from gateway.graph.model import PortRef
from gateway.runtime_protocol import requests as rq
from gateway.runtime_protocol.messages import Frame, parse_frame, parse_request


def frame(protocol: str, command: str, payload: Any = None, **top: Any) -> str:
    return json.dumps({"protocol": protocol, "command": command, "payload": payload or {}, **top})


def parse(protocol: str, command: str, payload: dict[str, Any]) -> rq.Request:
    return parse_request(parse_frame(frame(protocol, command, payload)))


def problem(protocol: str, command: str, payload: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ProtocolError) as info:
        parse(protocol, command, payload)
    return info.value.protocol, info.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON: Expecting property name enclosed in double quotes"),
        ("[1]", "a message must be a JSON object, not array"),
        ('{"protocol": 1}', "message.protocol must be a string"),
        ('{"protocol": "nope", "command": "x"}', 'unknown protocol "nope"'),
        ('{"protocol": "graph", "command": 5}', "message.command must be a string"),
        ('{"protocol": "graph", "command": "x", "payload": []}', "must be an object, not array"),
        ('{"protocol": "graph", "command": "x", "payload": {"a": NaN}}', "NaN is not a JSON"),
        ('{"protocol": "graph", "command": "x", "payload": {"a": 1e999}}', "out of range"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_invalid_frames(text: str, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame(text)
    assert message in info.value.message
    assert "\n" not in info.value.message


def test_unknown_protocol_names_are_cut_short() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame(frame("x" * 10_000, "y"))
    assert info.value.protocol == "runtime"
    assert len(info.value.message) < 80


def test_frame_secrets_are_taken_out_of_the_payload_and_repr() -> None:
    parsed = parse_frame(
        frame("runtime", "getruntime", {"secret": "pay-load", "a": 1}, secret="top-level")
    )
    assert parsed == Frame("runtime", "getruntime", {"a": 1}, ("top-level", "pay-load"))
    assert "top-level" not in repr(parsed) and "pay-load" not in repr(parsed)
    assert parse_frame(frame("runtime", "getruntime", {"secret": 5}, secret=None)).secrets == ()


def test_a_missing_payload_is_an_empty_one() -> None:
    assert parse_frame('{"protocol":"runtime","command":"getruntime"}').payload == {}


def test_unknown_command_and_unsupported_ones() -> None:
    assert problem("graph", "frobnicate", {}) == ("graph", 'unknown command "graph:frobnicate"')
    unsupported = parse("network", "persist", {})
    assert isinstance(unsupported, rq.Unsupported)
    assert (unsupported.protocol, unsupported.command) == ("network", "persist")
    assert isinstance(parse("component", "source", {}), rq.Unsupported)
    assert isinstance(parse("trace", "start", {"graph": "g"}), rq.Unsupported)


SRC = {"node": "A", "port": "out"}
TGT = {"node": "B", "port": "in", "index": "2"}


@pytest.mark.parametrize(
    ("protocol", "command", "payload", "expected"),
    [
        ("runtime", "getruntime", {}, rq.GetRuntime()),
        (
            "runtime",
            "packet",
            {"graph": "g", "port": "in", "event": "data", "payload": [1]},
            rq.SendPacket("g", "in", "data", (1,)),
        ),
        (
            "runtime",
            "packet",
            {"graph": "g", "port": "in", "event": "connect"},
            rq.SendPacket("g", "in", "connect"),
        ),
        (
            "graph",
            "clear",
            {"id": "foo", "main": True, "name": "Foo", "baseDir": "/x"},
            rq.ClearGraph("foo", name="Foo", main=True),
        ),
        (
            "graph",
            "addnode",
            {"graph": "g", "id": "n", "component": "c", "metadata": {"x": 2.0, "k": None}},
            rq.AddNode("g", "n", "c", {"x": 2, "k": None}),
        ),
        ("graph", "removenode", {"graph": "g", "id": "n"}, rq.RemoveNode("g", "n")),
        (
            "graph",
            "renamenode",
            {"graph": "g", "from": "a", "to": "b"},
            rq.RenameNode("g", "a", "b"),
        ),
        (
            "graph",
            "changenode",
            {"graph": "g", "id": "n", "metadata": {}},
            rq.ChangeNode("g", "n", {}),
        ),
        (
            "graph",
            "addedge",
            {"graph": "g", "src": SRC, "tgt": TGT, "metadata": {"route": 5}},
            rq.AddEdge("g", PortRef("A", "out"), PortRef("B", "in", 2), {"route": 5}),
        ),
        (
            "graph",
            "removeedge",
            {"graph": "g", "src": SRC, "tgt": {"node": "B", "port": "in", "index": 0}},
            rq.RemoveEdge("g", PortRef("A", "out"), PortRef("B", "in", 0)),
        ),
        (
            "graph",
            "changeedge",
            {"graph": "g", "src": SRC, "tgt": SRC, "metadata": {"secure": True}},
            rq.ChangeEdge("g", PortRef("A", "out"), PortRef("A", "out"), {"secure": True}),
        ),
        (
            "graph",
            "addinitial",
            {"graph": "g", "src": {"data": None}, "tgt": SRC},
            rq.AddInitial("g", None, PortRef("A", "out")),
        ),
        (
            "graph",
            "removeinitial",
            {"graph": "g", "tgt": SRC},
            rq.RemoveInitial("g", PortRef("A", "out")),
        ),
        (
            "graph",
            "addoutport",
            {"graph": "g", "public": "o", "node": "A", "port": "out"},
            rq.AddExport("g", rq.Direction.OUT, "o", "A", "out"),
        ),
        (
            "graph",
            "removeinport",
            {"graph": "g", "public": "i"},
            rq.RemoveExport("g", rq.Direction.IN, "i"),
        ),
        (
            "graph",
            "renameoutport",
            {"graph": "g", "from": "a", "to": "b"},
            rq.RenameExport("g", rq.Direction.OUT, "a", "b"),
        ),
        (
            "graph",
            "addgroup",
            {"graph": "g", "name": "G", "nodes": ["A"], "metadata": {"description": "d"}},
            rq.AddGroup("g", "G", ("A",), {"description": "d"}),
        ),
        ("graph", "removegroup", {"graph": "g", "name": "G"}, rq.RemoveGroup("g", "G")),
        (
            "graph",
            "renamegroup",
            {"graph": "g", "from": "G", "to": "H"},
            rq.RenameGroup("g", "G", "H"),
        ),
        (
            "graph",
            "changegroup",
            {"graph": "g", "name": "G", "metadata": {}},
            rq.ChangeGroup("g", "G", {}),
        ),
        ("network", "start", {"graph": "g"}, rq.StartNetwork("g")),
        ("network", "stop", {"graph": "g"}, rq.StopNetwork("g")),
        ("network", "getstatus", {"graph": "g"}, rq.GetStatus("g")),
        (
            "network",
            "edges",
            {"graph": "g", "edges": [{"src": SRC, "tgt": TGT}]},
            rq.WatchEdges("g", ((PortRef("A", "out"), PortRef("B", "in", 2)),)),
        ),
        ("component", "list", {}, rq.ListComponents()),
        ("component", "getsource", {"name": "default/main"}, rq.GetSource("default/main")),
    ],
)
def test_valid_requests(
    protocol: str, command: str, payload: dict[str, Any], expected: rq.Request
) -> None:
    assert parse(protocol, command, {**payload, "secret": "ignored"}) == expected


@pytest.mark.parametrize(
    ("protocol", "command", "payload", "message"),
    [
        ("graph", "addnode", {"id": "n", "component": "c"}, "No graph specified"),
        ("network", "start", {}, "No graph specified"),
        (
            "graph",
            "addnode",
            {"graph": 3, "id": "n", "component": "c"},
            "payload.graph must be a string, not number",
        ),
        (
            "graph",
            "addnode",
            {"graph": "g", "component": "c"},
            "graph:addnode: payload.id is missing",
        ),
        (
            "graph",
            "addnode",
            {"graph": "g", "id": 1, "component": "c"},
            "payload.id must be a string, not number",
        ),
        (
            "graph",
            "addnode",
            {"graph": "g", "id": "n", "component": "c", "metadata": []},
            "must be an object",
        ),
        (
            "graph",
            "addnode",
            {"graph": "g", "id": "n", "component": "c", "metadata": {"x": 1.5}},
            "payload.metadata.x must be an integer",
        ),
        (
            "graph",
            "addedge",
            {"graph": "g", "src": SRC, "tgt": {"node": "B"}},
            "payload.tgt needs string fields",
        ),
        (
            "graph",
            "addedge",
            {"graph": "g", "src": SRC, "tgt": {"node": "B", "port": "in", "index": -1}},
            "index must be a non-negative integer",
        ),
        (
            "graph",
            "addedge",
            {"graph": "g", "src": SRC, "tgt": TGT, "metadata": {"route": "5"}},
            "route must be",
        ),
        (
            "graph",
            "addedge",
            {"graph": "g", "src": SRC, "tgt": TGT, "metadata": {"secure": 1}},
            "secure must be",
        ),
        (
            "graph",
            "addinitial",
            {"graph": "g", "src": {}, "tgt": SRC},
            "payload.src.data is missing",
        ),
        ("graph", "changenode", {"graph": "g", "id": "n"}, "payload.metadata is missing"),
        (
            "graph",
            "addgroup",
            {"graph": "g", "name": "G", "nodes": [1]},
            "payload.nodes[0] must be a string",
        ),
        ("graph", "clear", {"main": True}, "payload.id is missing"),
        ("graph", "clear", {"id": "x", "main": "yes"}, "payload.main must be a boolean"),
        (
            "network",
            "edges",
            {"graph": "g", "edges": [{"src": SRC}]},
            "payload.edges[0].tgt must be an object",
        ),
        ("network", "edges", {"graph": "g", "edges": [1]}, "payload.edges[0] must be an object"),
        (
            "runtime",
            "packet",
            {"graph": "g", "port": "in", "event": "boom"},
            "is not a packet event",
        ),
        (
            "runtime",
            "packet",
            {"graph": "g", "port": "in", "event": "data"},
            "payload.payload is missing",
        ),
        ("component", "getsource", {}, "payload.name is missing"),
    ],
)
def test_invalid_requests(
    protocol: str, command: str, payload: dict[str, Any], message: str
) -> None:
    got_protocol, got = problem(protocol, command, payload)
    assert got_protocol == protocol
    assert message in got
    assert "\n" not in got


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    protocol=st.sampled_from(["runtime", "graph", "network", "component", "trace", "x"]),
    command=st.sampled_from(
        ["addnode", "addedge", "packet", "edges", "start", "clear", "getsource", "y"]
    ),
    payload=st.dictionaries(
        st.sampled_from(
            ["graph", "id", "src", "tgt", "metadata", "edges", "port", "event", "payload", "name"]
        ),
        json_values,
    ),
)
def test_any_payload_parses_or_fails_with_one_line(
    protocol: str, command: str, payload: dict[str, Any]
) -> None:
    try:
        parse(protocol, command, payload)
    except ProtocolError as exc:
        assert exc.message and "\n" not in exc.message
