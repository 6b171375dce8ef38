"""FBP JSON: every deployed shape loads; saving is canonical, byte-stable and keeps everything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import InvalidGraphError
from gateway.graph import (
    Edge,
    Graph,
    Initial,
    PortRef,
    Process,
    graph_to_dict,
    load_graph,
    parse_json,
    read_json,
    save_graph,
    to_fbp,
    to_json,
)

from .conftest import VALID_JSON


@pytest.mark.parametrize("path", VALID_JSON, ids=lambda p: p.name)
def test_load_save_load_save_is_byte_identical(path: Path, tmp_path: Path) -> None:
    graph = load_graph(path)
    first = tmp_path / "first.json"
    save_graph(graph, first)
    again = load_graph(first)
    assert again == graph
    second = tmp_path / "second.json"
    save_graph(again, second)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("path", VALID_JSON, ids=lambda p: p.name)
def test_saving_keeps_every_value(path: Path) -> None:
    original = json.loads(path.read_text())
    saved = json.loads(to_json(load_graph(path)))
    for key in ("processes", "connections", "groups", "caseSensitive"):
        if original.get(key):
            assert _drop_empty(saved[key]) == _drop_empty(original[key]), key
    for key in ("inports", "outports"):
        assert saved[key] == (original.get(key) or {}), key
    assert saved.get("properties", {}) == original.get("properties", {})


def _drop_empty(value: object) -> object:
    if isinstance(value, dict):
        return {k: _drop_empty(v) for k, v in value.items() if v != {} or k != "metadata"}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def test_roles_with_slash_and_dot_are_kept() -> None:
    graph = load_graph(Path(__file__).parent / "corpus" / "json" / "cflo_style.json")
    assert "bitraf/guestbutton/lab" in graph.processes
    assert "xdk.8c8b83e15a2a" in graph.processes
    assert graph.edges[0].src == PortRef("bitraf/guestbutton/lab", "pressed")
    assert dict(graph.edges[0].metadata) == {"route": 1}
    assert graph.properties.runtime == "msgflo"


def test_falsy_iips_are_iips() -> None:
    graph = load_graph(Path(__file__).parent / "corpus" / "json" / "bitraf_style.json")
    data = [c.data for c in graph.connections if isinstance(c, Initial)]
    assert data == [0, False, "", None, 2]
    assert [type(d) for d in data[:2]] == [int, bool]
    saved = json.loads(to_json(graph))["connections"]
    assert [c["data"] for c in saved if "data" in c] == [0, False, "", None, 2]


@pytest.mark.parametrize(
    ("exports", "expected"),
    [("[]", {}), ("{}", {}), ("null", {}), (None, {})],
    ids=["list", "object", "null", "absent"],
)
def test_empty_export_shapes(exports: str | None, expected: dict[str, object]) -> None:
    body = '"processes": {"a": {"component": "A"}}'
    if exports is not None:
        body += f', "inports": {exports}, "outports": {exports}'
    graph = parse_json("{" + body + "}")
    assert dict(graph.inports) == expected == dict(graph.outports)
    saved = json.loads(to_json(graph))
    assert saved["inports"] == {} and saved["outports"] == {}


def test_environment_runtime_variant() -> None:
    graph = parse_json('{"properties": {"environment": {"runtime": "msgflo"}}}')
    assert graph.properties.runtime == "msgflo"
    assert json.loads(to_json(graph))["properties"] == {"environment": {"runtime": "msgflo"}}


def test_exports_saved_as_objects_with_metadata() -> None:
    graph = load_graph(Path(__file__).parent / "corpus" / "json" / "hello_runtime.json")
    saved = json.loads(to_json(graph))
    assert saved["inports"] == {
        "in": {"process": "repeat", "port": "in", "metadata": {"x": 1, "y": 2}}
    }
    assert saved["outports"] == {"out": {"process": "out", "port": "out"}}


def test_output_is_canonical() -> None:
    a = Graph(
        processes={"b": Process("B", {"z": 1, "a": {"y": 2, "b": 1}}), "a": Process("A")},
        connections=(Edge(PortRef("a", "out"), PortRef("b", "in")),),
    )
    b = Graph(
        processes={"a": Process("A"), "b": Process("B", {"a": {"b": 1, "y": 2}, "z": 1})},
        connections=(Edge(PortRef("a", "out"), PortRef("b", "in")),),
    )
    assert to_json(a) == to_json(b)
    text = to_json(a)
    assert text.endswith("}\n")
    assert list(json.loads(text)["processes"]) == ["a", "b"]
    assert list(json.loads(text)) == [
        "inports",
        "outports",
        "groups",
        "processes",
        "connections",
        "caseSensitive",
    ]


def test_unknown_properties_and_case_sensitivity_survive() -> None:
    graph = load_graph(Path(__file__).parent / "corpus" / "json" / "case_sensitive.json")
    assert graph.case_sensitive
    assert graph.edges[0].tgt == PortRef("Display", "ShowValue", 3)
    saved = json.loads(to_json(graph))
    assert saved["properties"]["description"] == "keeps unknown properties"
    assert saved["properties"]["environment"] == {"host": "gw-1", "type": "msgflo"}
    assert saved["caseSensitive"] is True


def test_unknown_top_level_key_is_a_warning() -> None:
    graph, warnings = read_json('{"processes": {}, "x-editor": "flowhub"}', file="g.json")
    assert graph.processes == {}
    assert [str(w) for w in warnings] == ["g.json:1:19: unknown key 'x-editor' is ignored"]


def test_json_graph_with_slash_roles_cannot_become_fbp() -> None:
    graph = load_graph(Path(__file__).parent / "corpus" / "json" / "cflo_style.json")
    with pytest.raises(InvalidGraphError) as caught:
        to_fbp(graph)
    messages = [e.problem for e in caught.value.problems]
    assert any("'bitraf/guestbutton/lab'" in m for m in messages)
    assert any("'xdk.8c8b83e15a2a'" in m for m in messages)


def test_lossy_fbp_drops_only_metadata() -> None:
    graph = load_graph(Path(__file__).parent / "corpus" / "json" / "bitraf_style.json")
    with pytest.raises(InvalidGraphError):
        to_fbp(graph)  # the group cannot be written
    text = to_fbp(graph, lossy=True)
    assert "\tfalse -> ENABLED counter" in text
    assert "'' -> LABEL counter" in text
    assert "door(dlock13/DoorLock:x=10,y=20)" in text


def test_errors_are_all_reported_with_positions() -> None:
    text = '{\n  "processes": {"a": {"component": "A"}},\n  "connections": [\n'
    text += '    {"src": {"process": "a", "port": "out"}, "tgt": {"process": "b", "port": "in"}},\n'
    text += '    {"data": 1, "tgt": {"process": "c", "port": "in"}}\n  ]\n}\n'
    with pytest.raises(InvalidGraphError) as caught:
        parse_json(text, file="g.json")
    assert [e.headline() for e in caught.value.problems] == [
        "g.json:4:65: edge goes to 'b', which is not a process in this graph",
        "g.json:5:36: IIP goes to 'c', which is not a process in this graph",
    ]


def test_graph_to_dict_matches_reference_shape() -> None:
    graph = Graph(
        processes={"a": Process("A", {"x": 1})},
        connections=(Initial("go", PortRef("a", "in", 0)),),
    )
    assert graph_to_dict(graph) == {
        "inports": {},
        "outports": {},
        "groups": [],
        "processes": {"a": {"component": "A", "metadata": {"x": 1}}},
        "connections": [{"data": "go", "tgt": {"process": "a", "port": "in", "index": 0}}],
        "caseSensitive": False,
    }


def test_empty_and_malformed_connections_are_reported() -> None:
    with pytest.raises(InvalidGraphError) as caught:
        parse_json('{"connections": [{}, null, 5]}', file="g.json")
    assert [e.headline() for e in caught.value.problems] == [
        "g.json:1:18: empty connection (needs 'tgt' and 'src' or 'data')",
        "g.json:1:22: empty connection (needs 'tgt' and 'src' or 'data')",
        "g.json:1:28: expected an object, found a number",
    ]
