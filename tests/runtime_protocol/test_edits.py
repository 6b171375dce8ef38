"""Graph commands as pure edits: the new graph and the replies, as fbp-graph would make them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ProtocolError
from gateway.graph.model import (
    Edge,
    ExportedPort,
    Graph,
    Group,
    Initial,
    PortRef,
    Process,
    freeze,
    thaw,
)
from gateway.runtime_protocol import edits
from gateway.runtime_protocol import requests as rq

G = "g"
IN, OUT = rq.Direction.IN, rq.Direction.OUT


def graph() -> Graph:
    return Graph(
        processes={
            "a": Process("core/Repeat"),
            "b": Process("core/Repeat", {"x": 1}),
            "c": Process("core/Drop"),
        },
        connections=(
            Edge(PortRef("a", "out"), PortRef("b", "in")),
            Initial("hi", PortRef("b", "in", 1)),
            Edge(PortRef("b", "out"), PortRef("c", "in"), {"route": 2}),
            Edge(PortRef("a", "out"), PortRef("c", "in")),
        ),
        inports={"start": ExportedPort("b", "in")},
        outports={"done": ExportedPort("b", "out"), "other": ExportedPort("c", "out")},
        groups=(Group("only-b", ("b",)), Group("bc", ("b", "c"))),
    )


def events(edit: edits.Edit) -> list[tuple[str, Any]]:
    return list(edit.events)


def test_removenode_cascades_like_fbp_graph() -> None:
    edit = edits.apply(rq.RemoveNode(G, "b"), graph())
    assert events(edit) == [
        ("removeedge", {"src": {"node": "a", "port": "out"}, "tgt": {"node": "b", "port": "in"}}),
        ("removeinitial", {"src": {"data": "hi"}, "tgt": {"node": "b", "port": "in", "index": 1}}),
        ("removeedge", {"src": {"node": "b", "port": "out"}, "tgt": {"node": "c", "port": "in"}}),
        ("removeinport", {"public": "start"}),
        ("removeoutport", {"public": "done"}),
        ("removegroup", {"name": "only-b"}),
        ("removenode", {"id": "b"}),
    ]
    g = edit.graph
    assert list(g.processes) == ["a", "c"]
    assert g.connections == (Edge(PortRef("a", "out"), PortRef("c", "in")),)
    assert dict(g.inports) == {} and list(g.outports) == ["other"]
    assert g.groups == (Group("bc", ("c",)),)


def test_renamenode_renames_every_reference_and_keeps_order() -> None:
    edit = edits.apply(rq.RenameNode(G, "b", "B2"), graph())
    assert events(edit) == [("renamenode", {"from": "b", "to": "B2"})]
    g = edit.graph
    assert list(g.processes) == ["a", "B2", "c"]
    assert g.processes["B2"] == Process("core/Repeat", {"x": 1})
    assert [c.tgt.process for c in g.connections] == ["B2", "B2", "c", "c"]
    assert g.edges[1].src == PortRef("B2", "out")
    assert g.inports["start"].process == "B2" and g.outports["done"].process == "B2"
    assert g.groups[1].nodes == ("B2", "c")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (rq.RenameNode(G, "nope", "x"), 'node "nope" not found'),
        (rq.RenameNode(G, "a", "b"), 'node "b" already exists'),
        (rq.AddNode(G, "a", "core/Drop"), 'node "a" already exists'),
        (rq.RemoveNode(G, "zz"), 'node "zz" not found'),
        (rq.ChangeNode(G, "zz", {}), 'node "zz" not found'),
        (rq.AddEdge(G, PortRef("a", "out"), PortRef("zz", "in")), 'node "zz" not found'),
        (rq.AddEdge(G, PortRef("a", "out"), PortRef("b", "in")), "already exists"),
        (rq.RemoveEdge(G, PortRef("c", "out"), PortRef("a", "in")), "not found"),
        (rq.ChangeEdge(G, PortRef("b", "out"), PortRef("c", "in", 0), {}), "not found"),
        (rq.AddInitial(G, 1, PortRef("zz", "in")), 'node "zz" not found'),
        (rq.RemoveInitial(G, PortRef("b", "in", 2)), 'no IIP to in of node "b"'),
        (rq.AddExport(G, IN, "x", "zz", "in"), 'node "zz" not found'),
        (rq.RemoveExport(G, IN, "done"), 'no exported inport "done"'),
        (rq.RenameExport(G, OUT, "done", "other"), 'exported outport "other" already exists'),
        (rq.AddGroup(G, "bc", ()), 'group "bc" already exists'),
        (rq.AddGroup(G, "new", ("zz",)), 'node "zz" not found'),
        (rq.RemoveGroup(G, "zz"), 'group "zz" not found'),
        (rq.RenameGroup(G, "bc", "only-b"), 'group "only-b" already exists'),
        (rq.ChangeGroup(G, "zz", {}), 'group "zz" not found'),
    ],
)
def test_edits_that_cannot_apply(request_: rq.GraphEdit, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        edits.apply(request_, graph())
    assert info.value.protocol == "graph"
    assert message in info.value.message


def test_metadata_merges_and_null_deletes_for_nodes_edges_and_groups() -> None:
    g = graph()
    node = edits.apply(rq.ChangeNode(G, "b", {"y": 2, "x": None}), g)
    assert events(node) == [("changenode", {"id": "b", "metadata": {"y": 2}})]
    edge = edits.apply(
        rq.ChangeEdge(G, PortRef("b", "out"), PortRef("c", "in"), {"secure": True}), g
    )
    assert edge.events[0][1]["metadata"] == {"route": 2, "secure": True}
    assert edge.graph.connections[2].metadata == {"route": 2, "secure": True}
    assert len(edge.graph.connections) == 4
    group = edits.apply(rq.ChangeGroup(G, "bc", {"description": "two"}), g)
    assert events(group) == [("changegroup", {"name": "bc", "metadata": {"description": "two"}})]


def test_adds_store_metadata_without_nulls() -> None:
    edit = edits.apply(rq.AddNode(G, "d", "core/Drop", {"x": 1, "gone": None}), graph())
    assert events(edit) == [
        ("addnode", {"id": "d", "component": "core/Drop", "metadata": {"x": 1}})
    ]
    assert list(edit.graph.processes) == ["a", "b", "c", "d"]


def test_edges_and_iips() -> None:
    g = edits.apply(
        rq.AddEdge(G, PortRef("c", "out"), PortRef("a", "in", 0), {"route": 1}), graph()
    ).graph
    assert g.edges[-1] == Edge(PortRef("c", "out"), PortRef("a", "in", 0), {"route": 1})
    removed = edits.apply(rq.RemoveEdge(G, PortRef("a", "out"), PortRef("b", "in")), g)
    assert len(removed.graph.edges) == 3 and removed.graph.initials == g.initials
    added = edits.apply(rq.AddInitial(G, freeze({"k": [1, None]}), PortRef("a", "in")), g)
    assert events(added) == [
        (
            "addinitial",
            {"src": {"data": {"k": [1, None]}}, "tgt": {"node": "a", "port": "in"}, "metadata": {}},
        )
    ]
    # removeinitial without an index removes every IIP to that port; with one, only that one.
    two = edits.apply(rq.AddInitial(G, 0, PortRef("b", "in")), g).graph
    assert len(edits.apply(rq.RemoveInitial(G, PortRef("b", "in")), two).events) == 2
    one = edits.apply(rq.RemoveInitial(G, PortRef("b", "in", 1)), two)
    assert [thaw(i.data) for i in one.graph.initials] == [0]


def test_exported_ports() -> None:
    g = graph()
    repointed = edits.apply(rq.AddExport(G, IN, "start", "a", "in", {"x": 3}), g)
    assert events(repointed) == [
        ("addinport", {"public": "start", "node": "a", "port": "in", "metadata": {"x": 3}})
    ]
    assert repointed.graph.inports["start"] == ExportedPort("a", "in", {"x": 3})
    renamed = edits.apply(rq.RenameExport(G, OUT, "done", "finished"), g)
    assert list(renamed.graph.outports) == ["finished", "other"]
    assert events(renamed) == [("renameoutport", {"from": "done", "to": "finished"})]
    removed = edits.apply(rq.RemoveExport(G, OUT, "other"), g)
    assert list(removed.graph.outports) == ["done"]


def test_groups() -> None:
    g = edits.apply(rq.AddGroup(G, "all", ("a", "b", "c")), graph()).graph
    assert g.groups[-1] == Group("all", ("a", "b", "c"))
    renamed = edits.apply(rq.RenameGroup(G, "all", "every"), g)
    assert [gr.name for gr in renamed.graph.groups] == ["only-b", "bc", "every"]
    removed = edits.apply(rq.RemoveGroup(G, "bc"), g)
    assert [gr.name for gr in removed.graph.groups] == ["only-b", "all"]


meta_values = st.none() | st.integers() | st.text(max_size=3)
metadata = st.dictionaries(st.sampled_from("abcde"), meta_values, max_size=5)


@settings(max_examples=200, deadline=None, database=None)
@given(old=metadata, patch=metadata)
def test_merge_is_dict_update_with_null_deletion(
    old: dict[str, Any], patch: dict[str, Any]
) -> None:
    stored = edits.merge(edits.merge({}, old), patch)
    expected = {k: v for k, v in old.items() if v is not None}
    for key, value in patch.items():
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
    assert dict(stored) == expected


names = st.sampled_from(["a", "b", "c", "d"])
refs = st.builds(PortRef, names, st.sampled_from(["in", "out"]), st.none() | st.just(0))
directions = st.sampled_from([IN, OUT])
any_edit = st.one_of(
    st.builds(rq.AddNode, st.just(G), names, st.just("core/Repeat")),
    st.builds(rq.RemoveNode, st.just(G), names),
    st.builds(rq.RenameNode, st.just(G), names, names),
    st.builds(rq.AddEdge, st.just(G), refs, refs),
    st.builds(rq.RemoveEdge, st.just(G), refs, refs),
    st.builds(rq.AddInitial, st.just(G), st.integers(), refs),
    st.builds(rq.RemoveInitial, st.just(G), refs),
    st.builds(rq.AddExport, st.just(G), directions, names, names, st.just("in")),
    st.builds(rq.RenameExport, st.just(G), directions, names, names),
    st.builds(rq.AddGroup, st.just(G), names, st.lists(names, max_size=2).map(tuple)),
    st.builds(rq.RenameGroup, st.just(G), names, names),
)


def consistent(g: Graph) -> None:
    nodes = set(g.processes)
    for conn in g.connections:
        assert conn.tgt.process in nodes
        if isinstance(conn, Edge):
            assert conn.src.process in nodes
    assert {exp.process for exp in (*g.inports.values(), *g.outports.values())} <= nodes
    assert all(set(gr.nodes) <= nodes for gr in g.groups)
    assert len({gr.name for gr in g.groups}) == len(g.groups)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(any_edit, max_size=25))
def test_any_sequence_of_edits_keeps_the_graph_consistent(requests: list[rq.GraphEdit]) -> None:
    g = Graph()
    for request in requests:
        try:
            g = edits.apply(request, g).graph
        except ProtocolError:
            continue
        consistent(g)
