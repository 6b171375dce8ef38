"""The coordinator on the in-process memory:// broker: discovery, wiring, forwarding along an
edge, a graph change and a participant gone, without starting a broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.broker import parse_broker_url
from gateway.coordinator.coordinator import Coordinator, CoordinatorOptions
from gateway.graph import parse_fbp
from gateway.graph.model import Graph
from gateway.participant import Message, Participant, serve
from gateway.participant.definition import define
from gateway.participant.discovery import encode_discovery
from gateway.transport import open_transport
from gateway.transport.base import Transport
from gateway.transport.memory import MemoryTransport
from tests.support.inbox import Inbox
from tests.support.wait import until


@pytest.fixture
def url() -> str:
    return f"memory://coordinator-{secrets.token_hex(4)}"


@pytest.fixture
async def watcher(url: str) -> AsyncIterator[Transport]:
    """A plain client of the broker, to watch topics and publish."""
    async with open_transport(parse_broker_url(url), client_id="watcher") as transport:
        await asyncio.wait_for(transport.wait_connected(), 1)
        yield transport


@contextlib.asynccontextmanager
async def coordinating(url: str, g: Graph, **options: Any) -> AsyncIterator[Coordinator]:
    async with open_transport(parse_broker_url(url), client_id="coordinator") as transport:
        assert isinstance(transport, MemoryTransport)
        coordinator = Coordinator(transport, g, options=CoordinatorOptions(**options))
        task = asyncio.create_task(coordinator.run())
        await until(lambda: "fbp" in transport.subscriptions, what="the coordinator to listen")
        try:
            yield coordinator
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def running(url: str, *group: Participant) -> AsyncIterator[None]:
    task = asyncio.create_task(serve(list(group), parse_broker_url(url)))
    try:
        await until(lambda: all(p.stats.announced for p in group), what="the announcements")
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Relay(Participant):
    """Passes input on, suffixed with its role: shows the path a message took."""

    def __init__(self, role: str) -> None:
        super().__init__({"component": "Relay"}, role)

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", f"{msg.data}>{self.role}")


def source(role: str) -> Participant:
    return Participant({"component": "Source", "inports": [], "outports": [{"id": "out"}]}, role)


def resolved(coordinator: Coordinator) -> int:
    return sum(state.resolved for state in coordinator.edge_states())


async def watch(transport: Transport, *topics: str) -> dict[str, Inbox]:
    inboxes = {topic: Inbox() for topic in topics}
    for topic, inbox in inboxes.items():
        await transport.subscribe(topic, inbox)
    return inboxes


async def test_discovered_participants_are_wired_and_messages_forwarded(
    url: str, watcher: Transport
) -> None:
    g = parse_fbp("s(Source) OUT -> IN a(Relay)\na OUT -> IN b(Relay)", file="g.fbp")
    seen = await watch(watcher, "b/out")
    async with coordinating(url, g) as coordinator:
        s = source("s")
        async with running(url, s, Relay("a"), Relay("b")):
            await until(lambda: resolved(coordinator) == 2, what="both edges wired")
            await coordinator.wired()
            s.send("out", "x")
            assert [json.loads(m) for m in await seen["b/out"].wait_count(1)] == ["x>a>b"]


async def test_a_graph_change_rewires(url: str, watcher: Transport) -> None:
    seen = await watch(watcher, "a/out", "b/out")
    async with coordinating(url, parse_fbp("s(Source) OUT -> IN a(Relay)", file="g.fbp")) as c:
        s = source("s")
        async with running(url, s, Relay("a"), Relay("b")):
            await until(lambda: resolved(c) == 1, what="s -> a wired")
            await c.wired()
            s.send("out", 1)
            await seen["a/out"].wait_count(1)
            c.set_graph(parse_fbp("s(Source) OUT -> IN b(Relay)", file="g.fbp"))
            await until(lambda: [e.edge.tgt.process for e in c.edge_states()] == ["b"])
            await until(lambda: resolved(c) == 1, what="s -> b wired")
            await c.wired()
            s.send("out", 2)
            assert [json.loads(m) for m in await seen["b/out"].wait_count(1)] == ["2>b"]
    assert [json.loads(m) for m in seen["a/out"].got] == ["1>a"]


async def test_a_participant_gone_quiet_keeps_its_wiring_and_gets_its_iip_when_back(
    url: str, watcher: Transport
) -> None:
    g = parse_fbp("'go' -> IN d(Dev)\nd OUT -> IN sink(Sink)", file="g.fbp")
    dev = define("d", "Dev", inports=["in"], outports=["out"], participant_id="d-1")
    sink = define("sink", "Sink", inports=["in"], participant_id="sink-1")
    seen = await watch(watcher, "d/in", "sink/in")
    async with coordinating(url, g, expiry=0.3) as coordinator:
        watcher.publish("fbp", encode_discovery(sink))
        watcher.publish("fbp", encode_discovery(dev))
        assert await seen["d/in"].wait_count(1) == [b'"go"']  # the IIP, once d was discovered
        await until(lambda: not coordinator.registry.live("d"), what="d to expire")
        # A device that went quiet keeps its wiring until something newer says otherwise.
        await coordinator.wired()
        watcher.publish("d/out", b"still")
        assert await seen["sink/in"].wait_count(1) == [b"still"]
        watcher.publish("fbp", encode_discovery(dev))  # back again: the same id
        assert (await seen["d/in"].wait_count(2))[1] == b'"go"'


async def test_a_participant_forgotten_is_unwired(url: str, watcher: Transport) -> None:
    g = parse_fbp("d(Dev) OUT -> IN sink(Sink)\ne(Dev) OUT -> IN sink", file="g.fbp")
    seen = await watch(watcher, "sink/in")
    async with coordinating(url, g) as coordinator:
        for role in ("d", "e"):
            watcher.publish("fbp", encode_discovery(define(role, "Dev", outports=["out"])))
        watcher.publish("fbp", encode_discovery(define("sink", "Sink", inports=["in"])))
        await until(lambda: resolved(coordinator) == 2, what="both edges wired")
        coordinator.forget("d")  # its process was stopped
        await until(lambda: resolved(coordinator) == 1, what="d -> sink unwired")
        await coordinator.wired()
        watcher.publish("d/out", b"after")
        # The same way through the coordinator, after "after": were d wired, it came first.
        watcher.publish("e/out", b"marker")
        assert await seen["sink/in"].wait_count(1) == [b"marker"]
