"""Commands apply one at a time in arrival order; queries never wait for a slow change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

from gateway.graph.model import Graph
from gateway.runtime_protocol.core import ProtocolCore
from tests.runtime_protocol.conftest import INFO, FakeEnvironment, Harness, payloads

MAIN = "default/main"


def completes_at_once(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` and assert it finished without ever suspending."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise AssertionError("handle() waited")


def frame(protocol: str, command: str, **payload: Any) -> str:
    return json.dumps({"protocol": protocol, "command": command, "payload": payload})


async def test_a_slow_change_does_not_hold_up_queries(harness: Harness) -> None:
    harness.env.hold = hold = asyncio.Event()
    harness.core.connected("b")
    await harness.send("graph", "addnode", {"id": "n", "component": "core/Drop", "graph": MAIN})
    await harness.settle()
    assert len(harness.env.calls) == 1  # change_graph is under way, and stuck
    for client in ("a", "b"):
        completes_at_once(harness.core.handle(client, frame("runtime", "getruntime")))
        completes_at_once(harness.core.handle(client, frame("network", "getstatus", graph=MAIN)))
        completes_at_once(harness.core.handle(client, frame("component", "list")))
        completes_at_once(
            harness.core.handle(client, frame("graph", "removenode", id="n", graph=MAIN))
        )
    commands = [m["command"] for m in harness.take("b")]
    assert "addnode" not in commands
    assert (
        commands[:2] == ["runtime", "ports"]
        and "status" in commands
        and "componentsready" in commands
    )
    hold.set()
    await harness.settle()
    # Then the queue: addnode, and both removenodes in arrival order (the second fails).
    sent = harness.take("b")
    assert [m["command"] for m in sent] == ["addnode", "removenode", "error"]
    assert sent[2]["payload"]["message"] == 'node "n" not found'


async def test_commands_see_the_graph_their_predecessors_made(harness: Harness) -> None:
    harness.env.hold = hold = asyncio.Event()
    active = 0
    most = 0
    change_graph = harness.env.change_graph

    async def counting(graph: Graph) -> None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        try:
            await change_graph(graph)
        finally:
            active -= 1

    harness.env.change_graph = counting  # type: ignore[method-assign]
    harness.core.connected("b")
    edge = {"src": {"node": "A", "port": "out"}, "tgt": {"node": "B", "port": "in"}}
    await harness.send("graph", "addnode", {"id": "A", "component": "core/Repeat", "graph": MAIN})
    await harness.send(
        "graph", "addnode", {"id": "B", "component": "core/Drop", "graph": MAIN}, client="b"
    )
    await harness.send("graph", "addedge", {**edge, "graph": MAIN})
    await harness.send(
        "graph",
        "addinitial",
        {"src": {"data": 1}, "tgt": {"node": "A", "port": "in"}, "graph": MAIN},
    )
    await harness.send("network", "start", {"graph": MAIN}, client="b")
    await harness.settle()
    hold.set()
    await harness.settle()
    assert most == 1
    sent = harness.take()
    assert [f"{m['protocol']}:{m['command']}" for m in sent[:5]] == [
        "graph:addnode",
        "graph:addnode",
        "graph:addedge",
        "graph:addinitial",
        "network:started",
    ]
    # network:start came after the changes, so it started the graph they made.
    assert payloads(sent, "network:data")[0]["id"] == "DATA -> IN A()"


async def test_a_clear_renames_the_graph_for_the_commands_queued_behind_it(
    harness: Harness,
) -> None:
    # The fbp-protocol suite sends graph:clear {id: bar} and four commands for "bar" at once.
    harness.env.hold = hold = asyncio.Event()
    await harness.send("graph", "clear", {"id": "bar"})
    await harness.send("graph", "addnode", {"id": "n", "component": "core/Drop", "graph": "bar"})
    await harness.send("network", "getstatus", {"graph": "bar"})  # a query: the old id still
    hold.set()
    await harness.settle()
    assert [m["command"] for m in harness.take()] == ["error", "clear", "ports", "addnode"]


async def test_the_change_queue_is_bounded() -> None:
    sent: list[dict[str, Any]] = []
    env = FakeEnvironment()
    core = ProtocolCore(env, INFO, None, lambda _, m: sent.append(m), max_pending=2)
    core.connected("a")
    for i in range(3):
        completes_at_once(
            core.handle("a", frame("graph", "addnode", id=f"n{i}", component="c", graph=MAIN))
        )
    assert sent == [
        {
            "protocol": "graph",
            "command": "error",
            "payload": {"message": "busy: too many changes pending"},
        }
    ]
    task = asyncio.create_task(core.run())
    for _ in range(20):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert list(env.graph.processes) == ["n0", "n1"]
