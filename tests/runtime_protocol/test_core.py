"""ProtocolCore per protocol: runtime, graph, network and component, with a fake environment."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.errors import GatewayError
from gateway.graph.json_format import parse_json
from gateway.graph.model import Edge, ExportedPort, Graph, Initial, PortRef, Process, freeze
from gateway.runtime_protocol.core import BROADCAST
from gateway.runtime_protocol.replies import CAPABILITIES
from tests.runtime_protocol.conftest import Harness, payloads

MAIN = "default/main"


def repeat_graph() -> Graph:
    return Graph(
        processes={"rep": Process("core/Repeat"), "drop": Process("core/Drop")},
        connections=(Edge(PortRef("rep", "out"), PortRef("drop", "in")),),
        inports={"in": ExportedPort("rep", "in")},
        outports={"out": ExportedPort("rep", "out")},
    )


async def test_getruntime_then_ports(harness: Harness) -> None:
    harness.env._graph = repeat_graph()
    await harness.send("runtime", "getruntime")
    runtime, ports = harness.take()
    assert runtime["payload"] == {
        "type": "msgflo",
        "version": "0.7",
        "capabilities": list(CAPABILITIES),
        "allCapabilities": list(CAPABILITIES),
        "id": "f18a4924-9d4f-414d-a37c-cd24b39bba10",
        "label": "msgflo-gateway",
        "namespace": "gw",
        "graph": MAIN,
    }
    assert "component:setsource" not in CAPABILITIES and "protocol:trace" not in CAPABILITIES
    assert ports["command"] == "ports"
    assert ports["payload"] == {
        "graph": MAIN,
        "inPorts": [
            {
                "id": "in",
                "type": "all",
                "required": False,
                "addressable": False,
                "description": "Packets to forward",
            }
        ],
        "outPorts": [
            {
                "id": "out",
                "type": "all",
                "required": False,
                "addressable": False,
                "description": "Forwarded packets",
            }
        ],
    }


async def test_ports_are_broadcast_when_exports_change(harness: Harness) -> None:
    harness.core.connected("b")
    await harness.send("graph", "addnode", {"id": "n", "component": "unknown/Thing", "graph": MAIN})
    await harness.send("graph", "changenode", {"id": "n", "metadata": {"x": 1}, "graph": MAIN})
    await harness.settle()
    assert payloads(harness.take(), "runtime:ports") == []
    await harness.send(
        "graph", "addinport", {"public": "IN", "node": "n", "port": "in", "graph": MAIN}
    )
    await harness.settle()
    sent = harness.take("b")
    assert [m["command"] for m in sent] == ["addinport", "ports"]
    assert sent[1]["payload"]["inPorts"] == [
        {"id": "IN", "type": "any", "required": False, "addressable": False}
    ]
    await harness.send("graph", "renamenode", {"from": "n", "to": "m", "graph": MAIN})
    await harness.send("graph", "removenode", {"id": "m", "graph": MAIN})
    await harness.settle()
    sent = harness.take()
    assert [m["command"] for m in sent] == [
        "renamenode",
        "ports",
        "removeinport",
        "removenode",
        "ports",
    ]
    assert sent[-1]["payload"] == {"graph": MAIN, "inPorts": [], "outPorts": []}


async def test_runtime_packet_both_ways(harness: Harness) -> None:
    harness.env._graph = repeat_graph()
    await harness.send(
        "runtime", "packet", {"graph": MAIN, "port": "in", "event": "data", "payload": {"n": [1]}}
    )
    await harness.settle()
    assert harness.env.calls[-1] == ("send_packet", ("rep", "in", {"n": [1]}))
    assert payloads(harness.take(), "runtime:packetsent") == [
        {"port": "in", "event": "data", "graph": MAIN, "payload": {"n": [1]}}
    ]
    await harness.send("runtime", "packet", {"graph": MAIN, "port": "in", "event": "connect"})
    await harness.send(
        "runtime", "packet", {"graph": MAIN, "port": "nope", "event": "data", "payload": 1}
    )
    await harness.send(
        "runtime", "packet", {"graph": "other", "port": "in", "event": "data", "payload": 1}
    )
    await harness.settle()
    assert len([c for c in harness.env.calls if c[0] == "send_packet"]) == 1
    assert [m["payload"] for m in harness.take()] == [
        {"port": "in", "event": "connect", "graph": MAIN},
        {"message": 'no exported inport "nope"'},
        {"message": "Requested graph not found"},
    ]
    harness.core.exported_output("out", "déjà")
    assert harness.take() == [
        {
            "protocol": "runtime",
            "command": "packet",
            "payload": {"port": "out", "event": "data", "payload": "déjà", "graph": MAIN},
        }
    ]


async def test_graph_commands_broadcast_and_act_on_the_environment(harness: Harness) -> None:
    harness.core.connected("b")
    await harness.send(
        "graph", "clear", {"id": "g1", "name": "Mine", "library": "gw", "icon": "cog"}
    )
    await harness.send("graph", "addnode", {"id": "n", "component": "core/Drop", "graph": "g1"})
    await harness.send("graph", "addgroup", {"name": "G", "nodes": ["n"], "graph": "g1"})
    await harness.send("graph", "renamegroup", {"from": "G", "to": "H", "graph": "g1"})
    await harness.send(
        "graph", "changegroup", {"name": "H", "metadata": {"description": "d"}, "graph": "g1"}
    )
    await harness.send("graph", "removegroup", {"name": "H", "graph": "g1"})
    await harness.settle()
    to_b = harness.received("b")
    assert [m["command"] for m in to_b] == [
        "clear",
        "ports",
        "addnode",
        "addgroup",
        "renamegroup",
        "changegroup",
        "removegroup",
    ]
    assert to_b[0]["payload"] == {"id": "g1", "name": "Mine", "library": "gw", "icon": "cog"}
    assert harness.sent[0].target is BROADCAST  # no secret: one message for every client
    assert harness.core.graph_id == "g1"
    graphs = [g for name, g in harness.env.calls if name == "change_graph"]
    assert len(graphs) == 6
    assert graphs[0].properties.name == "Mine" and not graphs[0].processes
    assert (
        harness.env.graph.processes == {"n": Process("core/Drop")}
        and harness.env.graph.groups == ()
    )


async def test_graph_errors_go_to_the_requester_only(harness: Harness) -> None:
    harness.core.connected("b")
    await harness.send("graph", "removenode", {"id": "ghost", "graph": MAIN})
    await harness.send("graph", "addnode", {"id": "n", "component": "c", "graph": "elsewhere"})
    await harness.send("graph", "addnode", {"id": "n", "component": "c"})
    await harness.settle()
    # An invalid request is answered at once; the others when their turn in the queue comes.
    assert [m["payload"]["message"] for m in harness.received("a")] == [
        "No graph specified",
        'node "ghost" not found',
        "Requested graph not found",
    ]
    assert harness.received("b") == []
    assert harness.env.calls == []


async def test_a_failing_change_is_reported_and_the_queue_goes_on(harness: Harness) -> None:
    harness.env.fail_next = GatewayError("participant n did not start")
    await harness.send("graph", "addnode", {"id": "n", "component": "c", "graph": MAIN})
    await harness.settle()
    harness.env.fail_next = RuntimeError("bug")
    await harness.send("graph", "addnode", {"id": "n", "component": "c", "graph": MAIN})
    await harness.settle()
    await harness.send("graph", "addnode", {"id": "n", "component": "c", "graph": MAIN})
    await harness.settle()
    assert [(m["command"], m["payload"].get("message")) for m in harness.take()] == [
        ("error", "participant n did not start"),
        ("error", "internal error (see the runtime's log)"),
        ("addnode", None),
    ]


async def test_network_start_status_stop(harness: Harness) -> None:
    harness.env._graph = Graph(
        processes={"Hello": Process("core/Repeat"), "World": Process("core/Drop")},
        connections=(
            Edge(PortRef("Hello", "out", 0), PortRef("World", "in")),
            Initial(freeze([1, "x"]), PortRef("Hello", "in")),
        ),
    )
    await harness.send("network", "getstatus", {"graph": MAIN})
    await harness.send("network", "start", {"graph": MAIN})
    await harness.settle()
    harness.core.idle_changed(True)
    await harness.send("network", "getstatus", {"graph": MAIN})
    harness.core.idle_changed(False)
    await harness.send("network", "stop", {"graph": MAIN})
    await harness.settle()
    await harness.send("network", "getstatus", {"graph": MAIN})
    sent = harness.take()
    assert [f"{m['protocol']}:{m['command']}" for m in sent] == [
        "network:status",
        "network:started",
        "network:data",
        "network:data",
        "network:status",
        "network:stopped",
        "network:status",
    ]
    status, started, iip, data, busy, stopped, idle = (m["payload"] for m in sent)
    assert status == {"running": False, "started": False, "graph": MAIN}
    assert started == {
        "time": "2026-11-28T01:02:04.956Z",
        "running": False,
        "started": True,
        "graph": MAIN,
    }
    assert iip == {
        "id": "DATA -> IN Hello()",
        "tgt": {"node": "Hello", "port": "in"},
        "data": [1, "x"],
        "graph": MAIN,
    }
    assert data["id"] == "Hello() OUT[0] -> IN World()"
    assert data["src"] == {"node": "Hello", "port": "out", "index": 0}
    assert busy == {"running": True, "started": True, "graph": MAIN}
    assert stopped == {
        "time": "2026-11-28T01:02:06.456Z",
        "running": False,
        "started": False,
        "uptime": 1.5,
        "graph": MAIN,
    }
    assert idle == {"running": False, "started": False, "graph": MAIN}
    assert [c[0] for c in harness.env.calls] == ["start_network", "stop_network"]


async def test_network_edges_select_what_each_client_sees(harness: Harness) -> None:
    a_b = Edge(PortRef("A", "out"), PortRef("B", "in"))
    b_c = Edge(PortRef("B", "out"), PortRef("C", "in"))
    harness.core.connected("b")
    selection = {"src": {"node": "A", "port": "out"}, "tgt": {"node": "B", "port": "in"}}
    await harness.send("network", "edges", {"graph": MAIN, "edges": [selection]}, client="b")
    assert payloads(harness.take("b"), "network:edges") == [{"edges": [selection], "graph": MAIN}]
    assert harness.env.calls[-1] == ("watch_edges", [a_b])
    # Not started: only the selecting client gets data, only for its edge.
    harness.core.edge_data(a_b, 1)
    harness.core.edge_data(b_c, 2)
    assert [(s.target, s.message["payload"]["data"]) for s in harness.sent] == [("b", 1)]
    harness.sent.clear()
    # Started: clients without a selection see every edge.
    await harness.send("network", "start", {"graph": MAIN})
    await harness.settle()
    harness.sent.clear()
    harness.core.edge_data(a_b, 3)
    harness.core.edge_data(b_c, 4)
    harness.core.initial_data(Initial(5, PortRef("A", "in")))
    assert [(s.target, s.message["payload"]["data"]) for s in harness.sent] == [
        (BROADCAST, 3),
        ("a", 4),
        ("a", 5),
    ]
    harness.core.disconnected("b")
    assert harness.env.calls[-1] == ("watch_edges", [])


async def test_participant_output_and_errors(harness: Harness) -> None:
    harness.core.participant_output("sensor", "hello")
    harness.core.participant_error("sensor", "exited with status 1")
    assert [m["payload"] for m in harness.take()] == [
        {"message": "sensor: hello", "type": "message"},
        {"message": "sensor: exited with status 1", "graph": MAIN},
    ]


async def test_component_list_and_sources(harness: Harness) -> None:
    harness.env._graph = repeat_graph()
    await harness.send("component", "list")
    sent = harness.take()
    assert [m["command"] for m in sent] == ["component", "component", "componentsready"]
    assert sent[0]["payload"] == {
        "name": "core/Repeat",
        "description": "Forwards what it gets",
        "icon": "forward",
        "subgraph": False,
        "inPorts": [
            {
                "id": "in",
                "type": "all",
                "required": False,
                "addressable": False,
                "description": "Packets to forward",
            }
        ],
        "outPorts": [
            {
                "id": "out",
                "type": "all",
                "required": False,
                "addressable": False,
                "description": "Forwarded packets",
            }
        ],
    }
    assert sent[2]["payload"] == 2
    await harness.send("component", "getsource", {"name": MAIN})
    await harness.send("component", "getsource", {"name": "core/Repeat"})
    await harness.send("component", "getsource", {"name": "core/Nope"})
    await harness.send("component", "source", {"name": "X", "language": "python", "code": ""})
    main, repeat, missing, setsource = harness.take()
    assert {k: v for k, v in main["payload"].items() if k != "code"} == {
        "name": "main",
        "library": "default",
        "language": "json",
    }
    assert parse_json(main["payload"]["code"]) == harness.env.graph
    assert repeat["payload"] == {
        "name": "Repeat",
        "library": "core",
        "language": "python",
        "code": "def on_input",
    }
    assert missing == {
        "protocol": "component",
        "command": "error",
        "payload": {"message": 'component "core/Nope" not found'},
    }
    assert setsource["command"] == "error" and "not supported" in setsource["payload"]["message"]


async def test_getsource_of_the_graph_by_its_id(harness: Harness) -> None:
    await harness.send("graph", "clear", {"id": "bar"})
    await harness.settle()
    harness.take()
    await harness.send("component", "getsource", {"name": "bar"})
    (source,) = harness.take()
    assert source["payload"]["name"] == "bar" and "library" not in source["payload"]
    assert json.loads(source["payload"]["code"])["properties"] == {"name": "bar"}


async def test_unsupported_commands_answer_honestly(harness: Harness) -> None:
    await harness.send("network", "debug", {"enable": True, "graph": MAIN})
    await harness.send("network", "persist")
    await harness.send("trace", "start", {"graph": MAIN})
    sent = harness.take()
    assert [(m["protocol"], m["command"]) for m in sent] == [
        ("network", "error"),
        ("network", "error"),
        ("trace", "error"),
    ]
    assert all("is not supported" in m["payload"]["message"] for m in sent)


async def test_replies_never_reach_disconnected_clients(harness: Harness) -> None:
    harness.env.hold = hold = asyncio.Event()
    await harness.send("graph", "addnode", {"id": "n", "component": "c", "graph": MAIN})
    await harness.send("graph", "addnode", {"id": "n", "component": "c", "graph": MAIN})
    harness.core.disconnected("a")
    hold.set()
    await harness.settle()
    assert harness.sent == []
    assert "n" in harness.env.graph.processes


async def test_a_failed_start_is_an_error_and_leaves_the_network_stopped(harness: Harness) -> None:
    harness.env._graph = Graph(processes={"n": Process("core/Drop")})

    async def failing_start() -> None:
        harness.core.initial_data(Initial(1, PortRef("n", "in")))  # held back, then dropped
        harness.core.exported_output("out", 2)  # not held: not network data
        raise GatewayError("broker unreachable")

    harness.env.start_network = failing_start  # type: ignore[method-assign]
    await harness.send("network", "start", {"graph": MAIN})
    await harness.settle()
    harness.core.idle_changed(True)
    await harness.send("network", "getstatus", {"graph": MAIN})
    sent = harness.take()
    assert [f"{m['protocol']}:{m['command']}" for m in sent] == [
        "runtime:packet",
        "network:error",
        "network:status",
    ]
    assert sent[1]["payload"] == {"message": "broker unreachable"}
    assert sent[2]["payload"] == {"running": False, "started": False, "graph": MAIN}


async def test_clear_keeps_the_runtime_environment_and_announces_lost_ports(
    harness: Harness,
) -> None:
    harness.env._graph = Graph(
        processes={"rep": Process("core/Repeat")},
        inports={"in": ExportedPort("rep", "in")},
        properties=parse_json('{"properties": {"environment": {"type": "msgflo"}}}').properties,
        case_sensitive=True,
    )
    await harness.send("graph", "clear", {"id": MAIN, "name": "fresh"})
    await harness.settle()
    assert [m["command"] for m in harness.take()] == ["clear", "ports"]
    graph = harness.env.graph
    assert graph.properties.runtime == "msgflo" and graph.properties.name == "fresh"
    assert graph.case_sensitive and not graph.processes and not graph.inports


async def test_every_graph_command_through_the_core(harness: Harness) -> None:
    harness.core.connected("b")
    a_out, b_in = {"node": "A", "port": "out"}, {"node": "B", "port": "in"}
    steps: list[tuple[str, dict[str, Any], list[str]]] = [
        ("clear", {"id": "g"}, ["clear", "ports"]),
        ("addnode", {"id": "A", "component": "core/Repeat"}, ["addnode"]),
        ("addnode", {"id": "B", "component": "core/Drop"}, ["addnode"]),
        ("changenode", {"id": "B", "metadata": {"x": 5}}, ["changenode"]),
        ("addedge", {"src": a_out, "tgt": b_in}, ["addedge"]),
        ("changeedge", {"src": a_out, "tgt": b_in, "metadata": {"route": 1}}, ["changeedge"]),
        ("removeedge", {"src": a_out, "tgt": b_in}, ["removeedge"]),
        ("addinitial", {"src": {"data": None}, "tgt": b_in}, ["addinitial"]),
        ("removeinitial", {"tgt": b_in}, ["removeinitial"]),
        ("addinport", {"public": "in", "node": "A", "port": "in"}, ["addinport", "ports"]),
        ("renameinport", {"from": "in", "to": "input"}, ["renameinport", "ports"]),
        ("removeinport", {"public": "input"}, ["removeinport", "ports"]),
        ("addoutport", {"public": "out", "node": "A", "port": "out"}, ["addoutport", "ports"]),
        ("renameoutport", {"from": "out", "to": "output"}, ["renameoutport", "ports"]),
        ("removeoutport", {"public": "output"}, ["removeoutport", "ports"]),
        ("addgroup", {"name": "G", "nodes": ["A", "B"]}, ["addgroup"]),
        ("renamegroup", {"from": "G", "to": "H"}, ["renamegroup"]),
        ("changegroup", {"name": "H", "metadata": {"description": "both"}}, ["changegroup"]),
        ("removegroup", {"name": "H"}, ["removegroup"]),
        ("renamenode", {"from": "A", "to": "Z"}, ["renamenode"]),
        ("removenode", {"id": "Z"}, ["removenode"]),
    ]
    for command, payload, expected in steps:
        await harness.send("graph", command, {**payload, "graph": "g"})
        await harness.settle()
        assert [m["command"] for m in harness.received("b")] == expected, command
        harness.sent.clear()
    assert list(harness.env.graph.processes) == ["B"]
    assert harness.env.graph.processes["B"].metadata == {"x": 5}
