"""The coordinator on a real RabbitMQ: edges are broker bindings, not forwarding."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import parse_broker_url
from gateway.coordinator.amqp_binder import TAP_PREFIX, AmqpBinder
from gateway.coordinator.amqp_bindings import record_queue
from gateway.coordinator.coordinator import Coordinator, CoordinatorOptions
from gateway.coordinator.runtime_environment import CoordinatorEnvironment
from gateway.coordinator.service import CoordinatorService, ServiceConfig, deployment_name
from gateway.graph import parse_fbp
from gateway.graph.model import Edge, Graph, Initial
from gateway.participant import Message, Participant
from gateway.participant.definition import Json
from gateway.runtime_protocol.environment import Listener
from gateway.transport import Transport, open_transport
from tests.interop.support import our_participants as participants
from tests.support.amqp_broker import RabbitMQ
from tests.support.participants import source

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


def unique(name: str) -> str:
    """Role names of one test: the session's broker is shared and its objects are durable."""
    return f"{name}{secrets.token_hex(3)}"


class Repeat(Participant):
    def __init__(self, role: str) -> None:
        super().__init__({"component": "Repeat"}, role)

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", msg.data)
        self.ack(msg)


class Collect(Participant):
    """Remembers what arrives; nacks (dead-letters) the text ``bad`` when ``rejects``."""

    def __init__(self, role: str, *, rejects: bool = False) -> None:
        super().__init__({"component": "Collect", "outports": []}, role)
        self.got: list[Any] = []
        self.rejects = rejects

    def process(self, inport: str, msg: Message) -> None:
        if self.rejects and msg.data == "bad":
            self.nack(msg)
            return
        self.got.append(msg.data)
        self.ack(msg)


@contextlib.asynccontextmanager
async def coordinating(url: str, g: Graph) -> AsyncIterator[Coordinator]:
    transport = open_transport(parse_broker_url(url), client_id="coordinator")
    async with transport:
        coordinator = Coordinator(transport, g, options=CoordinatorOptions(iip_hold=0.5))
        task = asyncio.create_task(coordinator.run())
        try:
            yield coordinator
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def sender(url: str) -> AsyncIterator[Transport]:
    async with open_transport(parse_broker_url(url), client_id="test-sender") as transport:
        async with asyncio.timeout(TIMEOUT):
            await transport.wait_connected()
        yield transport


async def bound(coordinator: Coordinator, count: int, timeout: float = TIMEOUT) -> None:
    """Until the coordinator's binder has made ``count`` bindings."""
    binder = coordinator.binder
    assert isinstance(binder, AmqpBinder)
    async with asyncio.timeout(timeout):
        while len(binder.bound) < count:
            await coordinator.wired()
            await asyncio.sleep(0.02)
        await coordinator.wired()


async def arrived(collector: Collect, count: int) -> list[Any]:
    async with asyncio.timeout(TIMEOUT):
        while len(collector.got) < count:
            await asyncio.sleep(0.02)
    return collector.got


def names(rabbitmq: RabbitMQ, what: str) -> set[str]:
    return {line.split("\t")[0] for line in rabbitmq.ctl(what, "name").splitlines() if line}


async def test_an_edge_is_a_binding_and_works_without_the_coordinator(rabbitmq: RabbitMQ) -> None:
    a, b = unique("a"), unique("b")
    sink = Collect(b)
    g = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)")
    async with participants(rabbitmq.url, Repeat(a), sink):
        async with coordinating(rabbitmq.url, g) as coordinator:
            await bound(coordinator, 1)
        assert (f"{a}/out", f"{b}/in") in rabbitmq.bindings()
        # The coordinator is gone: the broker carries the edge by itself.
        async with sender(rabbitmq.url) as send:
            send.publish(f"{a}/in", b'"through the broker"')
            assert await arrived(sink, 1) == ["through the broker"]


async def test_removing_an_edge_unbinds_it(rabbitmq: RabbitMQ) -> None:
    a, b = unique("a"), unique("b")
    sink = Collect(b)
    g = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)")
    async with (
        participants(rabbitmq.url, Repeat(a), sink),
        coordinating(rabbitmq.url, g) as coordinator,
        sender(rabbitmq.url) as send,
    ):
        await bound(coordinator, 1)
        coordinator.set_graph(parse_fbp(f"{a}(Repeat)\n{b}(Collect)"))
        await coordinator.wired()
        assert (f"{a}/out", f"{b}/in") not in rabbitmq.bindings()
        send.publish(f"{a}/in", b'"dropped"')
        send.publish(f"{b}/in", b'"direct"')
        assert await arrived(sink, 1) == ["direct"]
        await asyncio.sleep(0.3)
        assert sink.got == ["direct"]


async def test_iip_reaches_the_inport(rabbitmq: RabbitMQ) -> None:
    b = unique("b")
    sink = Collect(b)
    g = parse_fbp(f"'hello' -> IN {b}(Collect)")
    async with participants(rabbitmq.url, sink), coordinating(rabbitmq.url, g):
        assert await arrived(sink, 1) == ["hello"]


async def test_round_robin_shares_work_and_dead_letters(rabbitmq: RabbitMQ) -> None:
    src, rr, work, dead = unique("src"), unique("rr"), unique("work"), unique("dead")
    g = parse_fbp(
        f"{src}(Source) OUT -> IN {rr}(msgflo/RoundRobin)\n"
        f"{rr} OUT -> IN {work}(Collect)\n"
        f"{rr} DEADLETTER -> IN {dead}(Collect)"
    )
    w1, w2, sink = Collect(work, rejects=True), Collect(work, rejects=True), Collect(dead)
    async with (
        participants(rabbitmq.url, source(src), sink),
        participants(rabbitmq.url, w1),
        participants(rabbitmq.url, w2),
        coordinating(rabbitmq.url, g) as coordinator,
        sender(rabbitmq.url) as send,
    ):
        await bound(coordinator, 2)
        assert (f"dead-{work}/in", f"{dead}/in") in rabbitmq.bindings()
        for i in range(20):
            send.publish(f"{src}/out", json.dumps(i).encode())
        send.publish(f"{src}/out", b'"bad"')
        assert await arrived(sink, 1) == ["bad"]
        async with asyncio.timeout(TIMEOUT):
            while len(w1.got) + len(w2.got) < 20:
                await asyncio.sleep(0.02)
        # One queue, two consumers: each message to one worker, and both got work.
        assert sorted(w1.got + w2.got) == list(range(20))
        assert w1.got and w2.got


async def test_inspection_queue_lives_while_observed(rabbitmq: RabbitMQ) -> None:
    a, b = unique("a"), unique("b")
    seen: list[bytes] = []
    g = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)")
    async with (
        participants(rabbitmq.url, Repeat(a), Collect(b)),
        coordinating(rabbitmq.url, g) as coordinator,
        sender(rabbitmq.url) as send,
    ):
        await bound(coordinator, 1)
        coordinator.observe({f"{a}/out": seen.append})
        await coordinator.wired()
        assert any(n.startswith(TAP_PREFIX) for n in names(rabbitmq, "list_queues"))
        send.publish(f"{a}/in", b'"look"')
        async with asyncio.timeout(TIMEOUT):
            while not seen:
                await asyncio.sleep(0.02)
        assert seen == [b'"look"']
        coordinator.observe({})
        await coordinator.wired()
        assert not any(n.startswith(TAP_PREFIX) for n in names(rabbitmq, "list_queues"))


async def test_no_coordinator_objects_left_after_restarts(rabbitmq: RabbitMQ) -> None:
    a, b = unique("a"), unique("b")
    g = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)")
    async with participants(rabbitmq.url, Repeat(a), Collect(b)):
        pass  # the participants' own objects exist from now on
    queues, exchanges = names(rabbitmq, "list_queues"), names(rabbitmq, "list_exchanges")
    for _ in range(2):
        # AMQP discovery is one shared queue: a coordinator hears of the participants that
        # announce while it is there (or before any coordinator took their announcement).
        async with (
            participants(rabbitmq.url, Repeat(a), Collect(b)),
            coordinating(rabbitmq.url, g) as coordinator,
        ):
            await bound(coordinator, 1)
            coordinator.observe({f"{a}/out": lambda _: None})
            await coordinator.wired()
            assert names(rabbitmq, "list_queues") - queues  # the inspection queue
    # The coordinator closed its connection: its exclusive taps are gone with it.
    async with asyncio.timeout(TIMEOUT):
        while names(rabbitmq, "list_queues") != queues:
            await asyncio.sleep(0.1)
    # The only new exchange is a's outport, declared as a declares it (so that the binding
    # exists before a's first message): the participant's object, not the coordinator's.
    assert names(rabbitmq, "list_exchanges") - exchanges <= {f"{a}/out"}


class EdgeLog(Listener):
    """What the runtime protocol would report as ``network:data``."""

    def __init__(self) -> None:
        self.data: list[tuple[Edge, Json]] = []
        self.exported: list[tuple[str, Json]] = []

    def edge_data(self, edge: Edge, data: Json) -> None:
        self.data.append((edge, data))

    def initial_data(self, initial: Initial) -> None:
        pass

    def exported_output(self, public: str, data: Json) -> None:
        self.exported.append((public, data))

    def participant_output(self, role: str, line: str) -> None:
        pass

    def participant_error(self, role: str, message: str) -> None:
        pass

    def graph_changed(self, old: Graph, new: Graph) -> None:
        pass

    def idle_changed(self, running: bool) -> None:
        pass


async def test_runtime_protocol_inspects_and_removes_edges(rabbitmq: RabbitMQ) -> None:
    a, b = unique("a"), unique("b")
    sink = Collect(b)
    g = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)")
    service = CoordinatorService(ServiceConfig(broker=parse_broker_url(rabbitmq.url)), g)
    environment = CoordinatorEnvironment(service, discovery_wait=1.0)
    log = EdgeLog()
    environment.set_listener(log)
    running = asyncio.create_task(service.run())
    try:
        async with participants(rabbitmq.url, Repeat(a), sink), sender(rabbitmq.url) as send:
            await bound(service.coordinator, 1)
            edge = next(c for c in g.connections if isinstance(c, Edge))
            environment.watch_edges([edge])  # network:edges
            await service.coordinator.wired()
            send.publish(f"{a}/in", b'"seen"')
            assert await arrived(sink, 1) == ["seen"]
            async with asyncio.timeout(TIMEOUT):
                while not log.data:
                    await asyncio.sleep(0.02)
            assert log.data == [(edge, "seen")]
            environment.watch_edges([])
            await environment.change_graph(parse_fbp(f"{a}(Repeat)\n{b}(Collect)"))  # removeedge
            assert (f"{a}/out", f"{b}/in") not in rabbitmq.bindings()
            assert not any(n.startswith(TAP_PREFIX) for n in names(rabbitmq, "list_queues"))
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


@contextlib.asynccontextmanager
async def serving(
    url: str, g: Graph
) -> AsyncIterator[tuple[CoordinatorService, CoordinatorEnvironment, EdgeLog]]:
    """The coordinator service on ``g``, behind the runtime protocol's environment."""
    service = CoordinatorService(ServiceConfig(broker=parse_broker_url(url)), g)
    environment = CoordinatorEnvironment(service, discovery_wait=1.0)
    log = EdgeLog()
    environment.set_listener(log)
    async with running(service):
        yield service, environment, log


@contextlib.asynccontextmanager
async def running(service: CoordinatorService) -> AsyncIterator[Coordinator]:
    """``service.run()`` in the background until the block ends."""
    task = asyncio.create_task(service.run())
    try:
        yield service.coordinator
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def taps_of(rabbitmq: RabbitMQ, exchange: str) -> list[str]:
    return [
        n
        for n in names(rabbitmq, "list_queues")
        if n.startswith(TAP_PREFIX) and n.endswith(f"-{exchange}")
    ]


async def unbound(rabbitmq: RabbitMQ, binding: tuple[str, str]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while binding in rabbitmq.bindings():
            await asyncio.sleep(0.1)


async def reported(log: EdgeLog, count: int) -> list[tuple[Edge, Json]]:
    async with asyncio.timeout(TIMEOUT):
        while len(log.data) < count:
            await asyncio.sleep(0.02)
    return log.data


async def test_exported_ports_leave_no_queue_behind(rabbitmq: RabbitMQ) -> None:
    a, b = unique("a"), unique("b")
    g = parse_fbp(f"INPORT={a}.IN:INPUT\nOUTPORT={b}.OUT:OUTPUT\n{a}(Repeat) OUT -> IN {b}(Repeat)")
    async with participants(rabbitmq.url, Repeat(a), Repeat(b)):
        queues, exchanges = names(rabbitmq, "list_queues"), names(rabbitmq, "list_exchanges")
        async with serving(rabbitmq.url, g) as (service, environment, log):
            await bound(service.coordinator, 1)
            assert len(taps_of(rabbitmq, f"{b}/out")) == 1  # the exported outport's reader
            exported = g.inports["input"]
            environment.send_packet(exported.process, exported.port, {"n": 1})  # runtime:packet
            async with asyncio.timeout(TIMEOUT):
                while not log.exported:
                    await asyncio.sleep(0.02)
            assert log.exported == [("output", {"n": 1})]
        # The service is gone: no msgflo-export-<n> or any other queue of its own is left.
        async with asyncio.timeout(TIMEOUT):
            while names(rabbitmq, "list_queues") != queues:
                await asyncio.sleep(0.1)
        # New exchanges: only the participants' outports, declared when they first publish.
        assert names(rabbitmq, "list_exchanges") - exchanges <= {f"{a}/out", f"{b}/out"}


async def test_the_coordinator_survives_a_broker_restart(rabbitmq: RabbitMQ) -> None:
    # Last in this file: restarting the session's broker makes everyone reconnect.
    a, b, c = unique("a"), unique("b"), unique("c")
    sink, other = Collect(b), Collect(c)
    both = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)\n{a} OUT -> IN {c}(Collect)")
    to_b = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)\n{c}(Collect)")
    edge_to_b = next(e for e in to_b.connections if isinstance(e, Edge))
    group = [Repeat(a), sink, other]
    async with (
        participants(rabbitmq.url, *group),
        serving(rabbitmq.url, both) as (service, environment, log),
    ):
        await bound(service.coordinator, 2)
        announced = [p.stats.announced for p in group]
        # An edge removed while the broker is away is unbound once it is back.
        await asyncio.to_thread(rabbitmq.stop)
        await environment.change_graph(to_b)
        await rabbitmq.restart_async()
        await unbound(rabbitmq, (f"{a}/out", f"{c}/in"))
        # The participants come back after their reconnect backoff, which grew while the
        # broker was away (to 30 s at most): wait for that, not for a time tuned to a machine.
        async with asyncio.timeout(90):
            while any(p.stats.announced <= n for p, n in zip(group, announced, strict=True)):
                await asyncio.sleep(0.1)
        # (a) The durable binding carries data once the participants are back.
        async with sender(rabbitmq.url) as send:
            send.publish(f"{a}/in", b'"after the restart"')
            assert await arrived(sink, 1) == ["after the restart"]
        # (b) The binder follows graph changes after the restart.
        await environment.change_graph(both)
        await bound(service.coordinator, 2)
        assert {(f"{a}/out", f"{b}/in"), (f"{a}/out", f"{c}/in")} <= rabbitmq.bindings()
        # (c) Inspection works, with one tap queue: the one from before died with the broker.
        environment.watch_edges([edge_to_b])
        await service.coordinator.wired()
        assert len(taps_of(rabbitmq, f"{a}/out")) == 1
        async with sender(rabbitmq.url) as send:
            send.publish(f"{a}/in", b'"watched"')
            assert await arrived(sink, 2) == ["after the restart", "watched"]
            assert await reported(log, 1) == [(edge_to_b, "watched")]


class TransientRepeat(Participant):
    """A Repeat whose ports are ``persistent: false``: non-durable objects, as msgflo-nodejs."""

    def __init__(self, role: str) -> None:
        transient = {"persistent": False}
        super().__init__(
            {
                "component": "Repeat",
                "inports": [{"id": "in", "options": transient}],
                "outports": [{"id": "out", "options": transient}],
            },
            role,
        )

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", msg.data)
        self.ack(msg)


async def test_wires_and_inspects_ports_declared_transient(rabbitmq: RabbitMQ) -> None:
    """The coordinator binds and taps a ``persistent: false`` outport as declared, instead of
    declaring it durable (which RabbitMQ would refuse, to it or to the participant)."""
    a, b = unique("transient-a"), unique("b")
    sink = Collect(b)
    seen: list[bytes] = []
    g = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)")
    async with (
        coordinating(rabbitmq.url, g) as coordinator,
        participants(rabbitmq.url, TransientRepeat(a), sink),
        sender(rabbitmq.url) as send,
    ):
        await bound(coordinator, 1)
        coordinator.observe({f"{a}/out": seen.append})
        await coordinator.wired()
        send.publish(f"{a}/in", b'"light"')
        assert await arrived(sink, 1) == ["light"]
        async with asyncio.timeout(TIMEOUT):
            while not seen:
                await asyncio.sleep(0.02)
        exchanges = rabbitmq.ctl("list_exchanges", "name", "durable", "auto_delete")
    assert seen == [b'"light"']
    assert f"{a}/out\tfalse\ttrue" in exchanges.splitlines()


@contextlib.asynccontextmanager
async def service_on(url: str, fbp: str, graph_file: str) -> AsyncIterator[Coordinator]:
    """CoordinatorService on ``fbp`` loaded from ``graph_file`` (``msgflo --graph FILE``)."""
    config = ServiceConfig(broker=parse_broker_url(url), graph_path=Path(graph_file))
    async with running(CoordinatorService(config, parse_fbp(fbp))) as coordinator:
        yield coordinator


def record_of(graph_file: str) -> str:
    """The record queue of the coordinator of an unnamed graph in ``graph_file``."""
    config = ServiceConfig(broker=parse_broker_url("amqp://x"), graph_path=Path(graph_file))
    deployment = deployment_name(config, Graph())
    assert deployment is not None
    return record_queue(deployment)


async def test_a_restart_on_an_edited_graph_removes_the_edges_it_dropped(
    rabbitmq: RabbitMQ,
) -> None:
    """Bindings are durable and outlive the coordinator; its record on the broker lets the
    next coordinator of the deployment unbind what the edited graph no longer has, and leaves
    another deployment's bindings alone."""
    a, b, c, d = unique("a"), unique("b"), unique("c"), unique("d")
    mine, theirs = f"{unique('deployment')}.fbp", f"{unique('elsewhere')}/main.fbp"

    def group() -> list[Participant]:
        # Started anew with each coordinator: AMQP discovery is a queue, and a coordinator
        # consumes the announcements it hears.
        return [Repeat(a), Collect(b), Collect(c), Collect(d)]

    other = f"{a}(Repeat) OUT -> IN {d}(Collect)"
    async with participants(rabbitmq.url, *group()), service_on(rabbitmq.url, other, theirs) as x:
        await bound(x, 1)
    both = f"{a}(Repeat) OUT -> IN {b}(Collect)\n{a} OUT -> IN {c}(Collect)"
    async with participants(rabbitmq.url, *group()), service_on(rabbitmq.url, both, mine) as y:
        await bound(y, 2)
    assert {(f"{a}/out", f"{b}/in"), (f"{a}/out", f"{c}/in")} <= rabbitmq.bindings()
    # The graph file was edited: a -> c is gone.
    edited = f"{a}(Repeat) OUT -> IN {b}(Collect)\n{c}(Collect)"
    async with participants(rabbitmq.url, *group()), service_on(rabbitmq.url, edited, mine) as z:
        await bound(z, 1)
        async with asyncio.timeout(TIMEOUT):
            while (f"{a}/out", f"{c}/in") in rabbitmq.bindings():
                await asyncio.sleep(0.1)
    found = rabbitmq.bindings()
    assert (f"{a}/out", f"{b}/in") in found
    assert (f"{a}/out", f"{d}/in") in found  # the other deployment's edge
    records = rabbitmq.ctl("list_queues", "name", "messages", "durable").splitlines()
    assert f"{record_of(mine)}\t1\ttrue" in records
    assert f"{record_of(theirs)}\t1\ttrue" in records


async def test_the_binder_shares_the_coordinators_connection(rabbitmq: RabbitMQ) -> None:
    """One connection per coordinator: bindings, taps and discovery run on channels of the
    transport's connection, and come back with it after the broker drops it."""
    a, b = unique("a"), unique("b")
    sink = Collect(b)
    g = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)")

    def coordinator_connections() -> list[str]:
        lines = rabbitmq.ctl("list_connections", "client_properties").splitlines()
        return [line for line in lines if '"coordinator"' in line]

    async with (
        participants(rabbitmq.url, Repeat(a), sink),
        coordinating(rabbitmq.url, g) as coordinator,
        sender(rabbitmq.url) as send,
    ):
        await bound(coordinator, 1)
        assert len(coordinator_connections()) == 1
        rabbitmq.ctl("close_all_connections", "test: dropped by the broker")
        binder = coordinator.binder
        assert isinstance(binder, AmqpBinder)
        async with asyncio.timeout(TIMEOUT):
            while not (coordinator.transport.connected and binder.bound):
                await asyncio.sleep(0.05)
        assert len(coordinator_connections()) == 1
        send.publish(f"{a}/in", b'"after the drop"')
        assert "after the drop" in await arrived(sink, 1)
