"""The fbp-protocol 0.9.8 test suite (``fbp-test``, src/WebSocket.coffee) replayed on the core.

Each step sends what the suite sends and checks the messages it would receive the way its
``receive`` helper does: every message valid against its schema (the harness checks that),
no secret anywhere, an ``error`` nobody expected fails, other messages are skipped
(``allowExtraPackets``), and expected payloads compare deeply after dropping ``time``,
``running`` (started) and ``uptime`` (stopped). Reference 8.2 lists the 22 tests.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.runtime_protocol.conftest import Harness

Expect = tuple[str, str, dict[str, Any]]

_DROPPED = {("network", "started"): ("time", "running"), ("network", "stopped"): ("time", "uptime")}


def _comparable(msg: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = copy.deepcopy(msg["payload"])
    for key in _DROPPED.get((msg["protocol"], msg["command"]), ()):
        payload.pop(key, None)
    if msg["command"] == "error":
        payload.pop("stack", None)
    return payload


def receive(messages: list[dict[str, Any]], expects: list[Expect]) -> None:
    """fbp-test's ``receive(expects, done, allowExtraPackets=true)``."""
    pending = list(expects)
    for msg in messages:
        if not pending:
            return
        protocol, command, payload = pending[0]
        assert not (command != "error" and msg["command"] == "error"), msg
        if (msg["protocol"], msg["command"]) != (protocol, command):
            continue
        expected = _comparable({"protocol": protocol, "command": command, "payload": payload})
        assert _comparable(msg) == expected
        pending.pop(0)
    assert not pending, f"never received {pending}; got {messages}"


async def step(h: Harness, protocol: str, command: str, payload: dict[str, Any]) -> None:
    await h.send(protocol, command, payload)
    await h.settle()


async def test_runtime_and_graph_protocol(harness: Harness) -> None:
    h = harness
    # 1-2: the first message after connecting answers getruntime.
    await step(h, "runtime", "getruntime", {})
    first = h.take()[0]
    assert (first["protocol"], first["command"]) == ("runtime", "runtime")
    for capability in ("protocol:graph", "protocol:network", "protocol:component"):
        assert capability in first["payload"]["capabilities"]

    # 3: clear with baseDir (and the secret, sent by the harness) → only id, main, name back.
    clear = {"baseDir": "/somewhere", "id": "foo", "main": True, "name": "Foo graph"}
    await step(h, "graph", "clear", clear)
    receive(h.take(), [("graph", "clear", {"id": "foo", "main": True, "name": "Foo graph"})])
    repeat = {"id": "Repeat1", "component": "core/Repeat", "metadata": {"hello": "World"}}
    drop = {"id": "Drop1", "component": "core/Drop", "metadata": {}}
    await h.send("graph", "addnode", {**repeat, "graph": "foo"})
    await h.send("graph", "addnode", {**drop, "graph": "foo"})
    await h.settle()
    receive(
        h.take(),
        [
            ("graph", "addnode", {**repeat, "graph": "foo"}),
            ("graph", "addnode", {**drop, "graph": "foo"}),
        ],
    )

    # 4: addedge with metadata.
    edge = {"src": {"node": "Repeat1", "port": "out"}, "tgt": {"node": "Drop1", "port": "in"}}
    await step(h, "graph", "addedge", {**edge, "metadata": {"route": 5}, "graph": "foo"})
    receive(h.take(), [("graph", "addedge", {**edge, "metadata": {"route": 5}, "graph": "foo"})])

    # 5-8: changenode merges; {} changes nothing; null deletes.
    changes = [
        ({"sort": 1}, {"sort": 1}),
        ({"tag": "awesome"}, {"sort": 1, "tag": "awesome"}),
        ({}, {"sort": 1, "tag": "awesome"}),
        ({"sort": None, "tag": None}, {}),
    ]
    for sent, merged in changes:
        await step(h, "graph", "changenode", {"id": "Drop1", "metadata": sent, "graph": "foo"})
        receive(
            h.take(), [("graph", "changenode", {"id": "Drop1", "metadata": merged, "graph": "foo"})]
        )

    # 9: addinitial.
    iip = {"src": {"data": "Hello, world!"}, "tgt": {"node": "Repeat1", "port": "in"}}
    await step(h, "graph", "addinitial", {**iip, "metadata": {}, "graph": "foo"})
    receive(h.take(), [("graph", "addinitial", {**iip, "metadata": {}, "graph": "foo"})])

    # 10: removenode sends removeedge for the attached edge first.
    await step(h, "graph", "removenode", {"id": "Drop1", "graph": "foo"})
    receive(
        h.take(),
        [
            ("graph", "removeedge", {**edge, "graph": "foo"}),
            ("graph", "removenode", {"id": "Drop1", "graph": "foo"}),
        ],
    )

    # 11: removeinitial answers with the removed IIP's data.
    await step(h, "graph", "removeinitial", {"tgt": iip["tgt"], "graph": "foo"})
    receive(h.take(), [("graph", "removeinitial", {**iip, "graph": "foo"})])

    # 12: renamenode.
    rename = {"from": "Repeat1", "to": "RepeatRenamed", "graph": "foo"}
    await step(h, "graph", "renamenode", rename)
    receive(h.take(), [("graph", "renamenode", rename)])

    # 13-14: unknown and missing graph.
    await step(
        h,
        "graph",
        "addnode",
        {"id": "Repeat1", "component": "core/Repeat", "graph": "another-graph"},
    )
    receive(h.take(), [("graph", "error", {"message": "Requested graph not found"})])
    await step(h, "graph", "addnode", {"id": "Repeat1", "component": "core/Repeat"})
    receive(h.take(), [("graph", "error", {"message": "No graph specified"})])

    # 15-17: exported ports on the renamed node.
    inport = {"public": "in", "node": "RepeatRenamed", "port": "in", "graph": "foo"}
    await step(h, "graph", "addinport", inport)
    receive(h.take(), [("graph", "addinport", inport)])
    outport = {"public": "out", "node": "RepeatRenamed", "port": "out", "graph": "foo"}
    await step(h, "graph", "addoutport", outport)
    receive(h.take(), [("graph", "addoutport", outport)])
    await step(h, "graph", "removeoutport", {"public": "out", "graph": "foo"})
    receive(h.take(), [("graph", "removeoutport", {"public": "out", "graph": "foo"})])


async def test_network_and_component_protocol(harness: Harness) -> None:
    h = harness
    await step(h, "runtime", "getruntime", {})
    h.take()
    # The suite's before(): five commands, then five messages of any kind.
    await h.send("graph", "clear", {"baseDir": "/x", "id": "bar", "main": True})
    await h.send(
        "graph",
        "addnode",
        {"id": "Hello", "component": "core/Repeat", "metadata": {}, "graph": "bar"},
    )
    await h.send(
        "graph",
        "addnode",
        {"id": "World", "component": "core/Drop", "metadata": {}, "graph": "bar"},
    )
    edge = {"src": {"node": "Hello", "port": "out"}, "tgt": {"node": "World", "port": "in"}}
    await h.send("graph", "addedge", {**edge, "graph": "bar"})
    iip_tgt = {"node": "Hello", "port": "in"}
    await h.send(
        "graph", "addinitial", {"src": {"data": "Hello, world!"}, "tgt": iip_tgt, "graph": "bar"}
    )
    await h.settle()
    before = h.take()
    assert len(before) >= 5
    assert all(m["command"] != "error" for m in before)

    # 18: started, then the IIP delivery, then the edge's data.
    await step(h, "network", "start", {"graph": "bar"})
    receive(
        h.take(),
        [
            ("network", "started", {"graph": "bar", "started": True, "running": True, "time": "x"}),
            (
                "network",
                "data",
                {
                    "id": "DATA -> IN Hello()",
                    "graph": "bar",
                    "tgt": iip_tgt,
                    "data": "Hello, world!",
                },
            ),
            (
                "network",
                "data",
                {
                    "id": "Hello() OUT -> IN World()",
                    "graph": "bar",
                    **edge,
                    "data": "Hello, world!",
                },
            ),
        ],
    )
    # 19: started, nothing in flight.
    await step(h, "network", "getstatus", {"graph": "bar"})
    receive(h.take(), [("network", "status", {"graph": "bar", "running": False, "started": True})])
    # 20-21: stopped.
    await step(h, "network", "stop", {"graph": "bar"})
    receive(
        h.take(), [("network", "stopped", {"graph": "bar", "running": False, "started": False})]
    )
    await step(h, "network", "getstatus", {"graph": "bar"})
    receive(h.take(), [("network", "status", {"graph": "bar", "running": False, "started": False})])

    # 22: component:list includes <collection>/Repeat.
    await step(h, "component", "list", {})
    names = [m["payload"]["name"] for m in h.take() if m["command"] == "component"]
    assert "core/Repeat" in names
