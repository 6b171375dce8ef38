"""The coordinator on the in-process memory:// broker: discovery, wiring, forwarding along an
edge, a graph change and a participant gone, without starting a broker."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from gateway.broker import parse_broker_url
from gateway.coordinator.coordinator import Coordinator, CoordinatorOptions
from gateway.graph import parse_fbp
from gateway.graph.model import Graph
from gateway.participant.definition import ParticipantDefinition, define
from gateway.participant.discovery import encode_discovery
from gateway.transport import open_transport
from gateway.transport.memory import MemoryTransport
from tests.support.inbox import watch
from tests.support.participants import Relay, serving, source
from tests.support.tasks import background
from tests.support.wait import until


@contextlib.asynccontextmanager
async def coordinating(url: str, g: Graph, **options: Any) -> AsyncIterator[Coordinator]:
    async with open_transport(parse_broker_url(url), client_id="coordinator") as transport:
        assert isinstance(transport, MemoryTransport)
        coordinator = Coordinator(transport, g, options=CoordinatorOptions(**options))
        async with background(coordinator.run()):
            await until(lambda: "fbp" in transport.subscriptions, what="the coordinator to listen")
            yield coordinator


def resolved(coordinator: Coordinator) -> int:
    return sum(state.resolved for state in coordinator.edge_states())


async def test_discovered_participants_are_wired_and_messages_forwarded(
    memory_url: str, memory_client: MemoryTransport
) -> None:
    g = parse_fbp("s(Source) OUT -> IN a(Relay)\na OUT -> IN b(Relay)", file="g.fbp")
    [b_out] = await watch(memory_client, "b/out")
    async with coordinating(memory_url, g) as coordinator:
        s = source("s")
        async with serving(memory_url, [s, Relay("a"), Relay("b")]):
            await until(lambda: resolved(coordinator) == 2, what="both edges wired")
            await coordinator.wired()
            s.send("out", "x")
            assert [json.loads(m) for m in await b_out.wait_count(1)] == ["x>a>b"]


async def test_a_graph_change_rewires(memory_url: str, memory_client: MemoryTransport) -> None:
    a_out, b_out = await watch(memory_client, "a/out", "b/out")
    async with coordinating(
        memory_url, parse_fbp("s(Source) OUT -> IN a(Relay)", file="g.fbp")
    ) as c:
        s = source("s")
        async with serving(memory_url, [s, Relay("a"), Relay("b")]):
            await until(lambda: resolved(c) == 1, what="s -> a wired")
            await c.wired()
            s.send("out", 1)
            await a_out.wait_count(1)
            c.set_graph(parse_fbp("s(Source) OUT -> IN b(Relay)", file="g.fbp"))
            await until(lambda: [e.edge.tgt.process for e in c.edge_states()] == ["b"])
            await until(lambda: resolved(c) == 1, what="s -> b wired")
            await c.wired()
            s.send("out", 2)
            assert [json.loads(m) for m in await b_out.wait_count(1)] == ["2>b"]
    assert [json.loads(m) for m in a_out.got] == ["1>a"]


async def test_a_participant_gone_quiet_keeps_its_wiring_and_gets_its_iip_when_back(
    memory_url: str, memory_client: MemoryTransport
) -> None:
    g = parse_fbp("'go' -> IN d(Dev)\nd OUT -> IN sink(Sink)", file="g.fbp")
    dev = define("d", "Dev", inports=["in"], outports=["out"], participant_id="d-1")
    sink = define("sink", "Sink", inports=["in"], participant_id="sink-1")
    d_in, sink_in = await watch(memory_client, "d/in", "sink/in")
    async with coordinating(memory_url, g, expiry=0.3) as coordinator:
        memory_client.publish("fbp", encode_discovery(sink))
        memory_client.publish("fbp", encode_discovery(dev))
        assert await d_in.wait_count(1) == [b'"go"']  # the IIP, once d was discovered
        await until(lambda: not coordinator.registry.live("d"), what="d to expire")
        # A device that went quiet keeps its wiring until something newer says otherwise.
        await coordinator.wired()
        memory_client.publish("d/out", b"still")
        assert await sink_in.wait_count(1) == [b"still"]
        memory_client.publish("fbp", encode_discovery(dev))  # back again: the same id
        assert (await d_in.wait_count(2))[1] == b'"go"'


async def test_a_participant_forgotten_is_unwired(
    memory_url: str, memory_client: MemoryTransport
) -> None:
    g = parse_fbp("d(Dev) OUT -> IN sink(Sink)\ne(Dev) OUT -> IN sink", file="g.fbp")
    [sink_in] = await watch(memory_client, "sink/in")
    async with coordinating(memory_url, g) as coordinator:
        for role in ("d", "e"):
            memory_client.publish("fbp", encode_discovery(define(role, "Dev", outports=["out"])))
        memory_client.publish("fbp", encode_discovery(define("sink", "Sink", inports=["in"])))
        await until(lambda: resolved(coordinator) == 2, what="both edges wired")
        coordinator.forget("d")  # its process was stopped
        await until(lambda: resolved(coordinator) == 1, what="d -> sink unwired")
        await coordinator.wired()
        memory_client.publish("d/out", b"after")
        # The same way through the coordinator, after "after": were d wired, it came first.
        memory_client.publish("e/out", b"marker")
        assert await sink_in.wait_count(1) == [b"marker"]


async def test_an_announcement_with_a_shorter_period_expires_on_its_own_time(
    memory_url: str, memory_client: MemoryTransport
) -> None:
    # A page closing its virtual devices announces them once more with a short period. The
    # expiry loop was asleep until the long deadline (60 s here) and must look again sooner.
    dev = define("d", "Dev", outports=["out"], participant_id="d-1")
    async with coordinating(memory_url, Graph()) as coordinator:
        memory_client.publish("fbp", encode_discovery(with_period(dev, 60)))
        await until(lambda: bool(coordinator.registry.live("d")), what="d discovered")
        long_sleep = coordinator.now() + 30
        await until(lambda: coordinator.expiry_check_at > long_sleep, what="the loop asleep")
        memory_client.publish("fbp", encode_discovery(with_period(dev, 0.1)))
        await until(lambda: not coordinator.registry.live("d"), timeout=10, what="d to expire")


def with_period(definition: ParticipantDefinition, period: float) -> ParticipantDefinition:
    return replace(definition, extra={**definition.extra, "discoveryPeriod": period})
