"""Graph changes the live system makes by itself (a discovered participant becoming a node):
``edits.diff`` turns them into the events of the edits that would make them, and the core
broadcasts those like an edit's own (``Listener.graph_changed``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.graph import parse_fbp
from gateway.graph.model import Edge, ExportedPort, Graph, Group, Initial, PortRef, Process
from gateway.runtime_protocol import edits
from tests.runtime_protocol.conftest import SECRET, Harness

MAIN = "default/main"
DEMO = parse_fbp(
    "INPORT=rep.IN:IN\n"
    "OUTPORT=drop.OUT:OUT\n"
    "'hello' -> IN rep(core/Repeat) OUT -> IN drop(core/Drop)\n"
    "5 -> LIMIT drop\n"
)


def commands(events: tuple[edits.Event, ...]) -> list[str]:
    return [command for command, _ in events]


def content(g: Graph) -> tuple[Any, ...]:
    """What the events describe, order aside: nodes, edges, IIPs, exports and groups."""
    return (
        dict(g.processes),
        {(e.src, e.tgt): e.metadata for e in g.edges},
        Counter((i.tgt, repr(i.data)) for i in g.initials),
        dict(g.inports),
        dict(g.outports),
        {gr.name: (gr.nodes, gr.metadata) for gr in g.groups},
    )


def with_node(g: Graph, role: str, process: Process) -> Graph:
    return replace(g, processes={**g.processes, role: process})


def test_no_change_no_events() -> None:
    assert edits.diff(DEMO, DEMO).events == ()


def test_a_discovered_node_is_an_addnode() -> None:
    new = with_node(DEMO, "sensor", Process("test/Sensor", {"label": "kitchen"}))
    edit = edits.diff(DEMO, new)
    assert edit.events == (
        ("addnode", {"id": "sensor", "component": "test/Sensor", "metadata": {"label": "kitchen"}}),
    )
    assert content(edit.graph) == content(new)


def test_a_node_gone_takes_its_connections_and_exports_first() -> None:
    new = parse_fbp("'hello' -> IN rep(core/Repeat)\nINPORT=rep.IN:IN")
    edit = edits.diff(DEMO, new)
    assert commands(edit.events) == ["removeoutport", "removeedge", "removeinitial", "removenode"]
    assert edit.events[-1] == ("removenode", {"id": "drop"})
    assert content(edit.graph) == content(new)


def test_a_changed_component_is_the_node_removed_and_added_with_its_edges() -> None:
    new = with_node(DEMO, "drop", Process("core/Other"))
    edit = edits.diff(DEMO, new)
    assert commands(edit.events) == [
        "removeoutport",
        "removeedge",
        "removeinitial",
        "removenode",
        "addnode",
        "addedge",
        "addinitial",
        "addoutport",
    ]
    assert content(edit.graph) == content(new)


def test_metadata_changes_are_merges_that_delete_with_null() -> None:
    old = with_node(DEMO, "rep", Process("core/Repeat", {"x": 1, "y": 2}))
    new = with_node(DEMO, "rep", Process("core/Repeat", {"y": 3}))
    edge = DEMO.edges[0]
    new = replace(new, connections=(*new.initials, replace(edge, metadata={"route": 4})))
    edit = edits.diff(old, new)
    assert edit.events == (
        ("changenode", {"id": "rep", "metadata": {"y": 3}}),
        ("changeedge", {"src": {"node": "rep", "port": "out"},
                        "tgt": {"node": "drop", "port": "in"},
                        "metadata": {"route": 4}}),
    )  # fmt: skip
    assert content(edit.graph) == content(new)


def test_iips_of_a_port_that_changed_are_replaced_together() -> None:
    tgt = PortRef("drop", "limit")
    old = replace(DEMO, connections=(*DEMO.connections, Initial(6, tgt)))
    new = replace(
        DEMO, connections=(*DEMO.edges, Initial("hello", PortRef("rep", "in")), Initial(7, tgt))
    )
    edit = edits.diff(old, new)
    limit = {"node": "drop", "port": "limit"}
    assert edit.events == (
        ("removeinitial", {"src": {"data": 5}, "tgt": limit}),
        ("removeinitial", {"src": {"data": 6}, "tgt": limit}),
        ("addinitial", {"src": {"data": 7}, "tgt": limit, "metadata": {}}),
    )
    assert content(edit.graph) == content(new)


def test_exports_and_groups() -> None:
    old = replace(DEMO, groups=(Group("g", ("rep", "drop")),))
    new = replace(
        DEMO,
        inports={"IN": ExportedPort("drop", "in")},
        groups=(Group("g", ("rep",)), Group("h", ("drop",))),
    )
    edit = edits.diff(old, new)
    assert commands(edit.events) == [
        "removeinport",
        "removegroup",
        "addinport",
        "addgroup",
        "addgroup",
    ]
    assert content(edit.graph) == content(new)


@pytest.mark.parametrize(
    "new",
    [
        Graph(),
        parse_fbp("a(x/A) OUT -> IN b(x/B)\n1 -> IN a"),
        with_node(DEMO, "rep", Process("core/Repeat", {"x": (1, {"y": None})})),
        replace(DEMO, connections=(Edge(PortRef("drop", "out"), PortRef("rep", "in"), {"z": 1}),)),
    ],
)
def test_the_events_rebuild_the_new_graph(new: Graph) -> None:
    for old, to in ((DEMO, new), (new, DEMO)):
        assert content(edits.diff(old, to).graph) == content(to)


# -- the core ----------------------------------------------------------------------------------


async def test_a_change_by_itself_is_broadcast_like_an_edit(harness: Harness) -> None:
    harness.core.connected("b")
    harness.env.change_by_itself(with_node(Graph(), "sensor", Process("test/Sensor")))
    for client in ("a", "b"):
        assert harness.received(client) == [
            {
                "protocol": "graph",
                "command": "addnode",
                "payload": {
                    "id": "sensor",
                    "component": "test/Sensor",
                    "metadata": {},
                    "graph": MAIN,
                },
            }
        ]


async def test_exports_changed_by_itself_send_the_ports(harness: Harness) -> None:
    harness.env.change_by_itself(DEMO)
    sent = harness.take()
    assert [m["command"] for m in sent][-3:] == ["addinport", "addoutport", "ports"]


async def test_only_authorized_clients_hear_of_it(secured: Harness) -> None:
    secured.core.connected("stranger")
    await secured.send("runtime", "getruntime", client="a", secret=SECRET)
    secured.sent.clear()
    secured.env.change_by_itself(with_node(Graph(), "sensor", Process("test/Sensor")))
    assert [s.target for s in secured.sent] == ["a"]


async def test_a_change_during_an_edit_follows_its_events(harness: Harness) -> None:
    """A participant announced while an edit waits for the one it started: the edit's own
    events first, then the change, as a difference from the graph the edit told of."""
    env = harness.env

    async def change_graph(graph: Graph) -> None:
        env._graph = graph  # as the coordinator: the new graph runs, then its participants start
        await asyncio.sleep(0)
        env.change_by_itself(with_node(graph, "sensor", Process("test/Sensor")))
        assert harness.sent == []

    env.change_graph = change_graph  # type: ignore[method-assign]
    await harness.send("graph", "addnode", {"id": "rep", "component": "core/Repeat", "graph": MAIN})
    await harness.settle()
    sent = harness.take()
    assert [(m["command"], m["payload"]["id"]) for m in sent] == [
        ("addnode", "rep"),
        ("addnode", "sensor"),
    ]


async def test_a_change_during_a_failed_edit_is_still_told(harness: Harness) -> None:
    harness.env.hold = hold = asyncio.Event()
    harness.env.fail_next = GatewayError("could not start it")
    await harness.send("graph", "addnode", {"id": "rep", "component": "core/Repeat", "graph": MAIN})
    await harness.settle()
    harness.env.change_by_itself(with_node(Graph(), "sensor", Process("test/Sensor")))
    hold.set()
    await harness.settle()
    sent = harness.take()
    assert [m["command"] for m in sent] == ["addnode", "error"]
    assert sent[0]["payload"]["id"] == "sensor"
    assert sent[1]["payload"] == {"message": "could not start it"}
