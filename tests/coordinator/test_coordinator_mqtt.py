"""The coordinator wiring real participants on a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.broker import parse_broker_url
from gateway.coordinator.coordinator import Coordinator
from gateway.graph import parse_fbp, parse_json
from gateway.graph.model import Graph
from gateway.mosquitto import Mosquitto
from gateway.participant import Participant, serve
from gateway.participant.definition import define
from gateway.participant.discovery import encode_discovery
from gateway.transport import open_transport
from tests.conftest import Probe
from tests.support.coordinating import coordinating
from tests.support.participants import Relay, source

pytestmark = pytest.mark.integration


def graph(text: str) -> Graph:
    return parse_fbp(text, file="test.fbp")


@contextlib.asynccontextmanager
async def participants(url: str, *group: Participant) -> AsyncIterator[None]:
    task = asyncio.create_task(serve(list(group), url))
    try:
        for p in group:
            async with asyncio.timeout(5):
                while p.stats.announced == 0:
                    await asyncio.sleep(0.01)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wired(coordinator: Coordinator, edges: int) -> None:
    async with asyncio.timeout(5):
        while sum(s.resolved for s in coordinator.edge_states()) < edges:
            await coordinator.wired()
            await asyncio.sleep(0.01)
        await coordinator.wired()


async def test_chain_fan_out_and_fan_in(mosquitto: Mosquitto, probe: Probe) -> None:
    g = graph(
        "s(Source) OUT -> IN a(Relay)\na OUT -> IN b(Relay)\ns OUT -> IN c(Relay)\n"
        "t(Source) OUT -> IN c"
    )
    await probe.watch("b/out")
    await probe.watch("c/out")
    async with coordinating(mosquitto.url, g) as coordinator:
        s, t = source("s"), source("t")
        async with participants(mosquitto.url, s, t, Relay("a"), Relay("b"), Relay("c")):
            await wired(coordinator, 4)
            s.send("out", "x")
            t.send("out", "y")
            assert await probe.next_json("b/out") == "x>a>b"
            got = {json.loads(m) for m in await probe.wait_count("c/out", 2)}
            assert got == {"x>c", "y>c"}


async def test_on_mqtt311_chains_ride_on_echoes_and_cycles_are_cut(
    mosquitto: Mosquitto, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    # Three devices sharing topics: a chain t/a -> t/b -> t/c, and y closing a cycle with x.
    g = graph("a(Dev) OUT -> IN b(Dev)\nb OUT -> IN c(Dev)\nx(Dev) OUT -> IN y(Dev)\ny OUT -> IN x")
    devices = [
        define(n, "Dev", inports=[{"id": "in", "queue": f"t/{n}"}],
               outports=[{"id": "out", "queue": f"t/{n}"}])
        for n in "abcxy"
    ]  # fmt: skip
    for topic in ("t/b", "t/c", "t/y"):
        await probe.watch(topic)
    async with coordinating(f"{mosquitto.url}?protocolVersion=4", g) as coordinator:
        for d in devices:
            probe.transport.publish("fbp", encode_discovery(d))
        await wired(coordinator, 4)
        probe.transport.publish("t/a", b"down the chain")
        probe.transport.publish("t/x", b"round")
        assert await probe.wait_count("t/c", 1) == [b"down the chain"]
        await asyncio.sleep(0.5)
        await probe.watch("t/marker")  # a round trip: anything in flight has arrived
        assert probe.received["t/b"] == [b"down the chain"]
        assert probe.received["t/c"] == [b"down the chain"]
        assert probe.received["t/y"] == []  # its routes are cut: no message circles
    cut = [r.getMessage() for r in caplog.records if "closes a cycle" in r.getMessage()]
    assert len(cut) == 2 and "MQTT 3.1.1" in cut[0]


async def test_participant_that_appears_later_is_wired(mosquitto: Mosquitto, probe: Probe) -> None:
    g = graph("s(Source) OUT -> IN late(Relay)")
    await probe.watch("late/out")
    async with coordinating(mosquitto.url, g) as coordinator:
        s = source("s")
        async with participants(mosquitto.url, s):
            await coordinator.wired()
            assert [st.resolved for st in coordinator.edge_states()] == [False]
            async with participants(mosquitto.url, Relay("late")):
                await wired(coordinator, 1)
                s.send("out", 1)
                assert await probe.next_json("late/out") == "1>late"


async def test_payloads_are_forwarded_byte_for_byte(mosquitto: Mosquitto, probe: Probe) -> None:
    g = graph("dev(Device) OUT -> IN sink(Sink)")
    device = define("dev", "Device", outports=[{"id": "out", "queue": "/diller/18:fe:34/value"}])
    sink = define("sink", "Sink", inports=[{"id": "in", "queue": "sink/in"}])
    await probe.watch("sink/in", qos=1)
    async with coordinating(mosquitto.url, g) as coordinator:
        for d in (device, sink):
            probe.transport.publish("fbp", encode_discovery(d))
        await wired(coordinator, 1)
        payloads = [b"0.00", b"open", b'{"x": 1}', b"\x00\xff\xfe", b"", b"true"]
        for payload in payloads:
            probe.transport.publish("/diller/18:fe:34/value", payload, qos=1)
        assert await probe.wait_count("sink/in", len(payloads)) == payloads


async def test_same_topic_edges_and_cycles_do_not_loop(mosquitto: Mosquitto, probe: Probe) -> None:
    # x and y share topics both ways (a cycle), and a same-topic self loop on x.
    g = graph("x(Dev) OUT -> IN y(Dev)\ny OUT -> IN x\nx OUT -> IN x")
    x = define(
        "x", "Dev", inports=[{"id": "in", "queue": "t/x"}], outports=[{"id": "out", "queue": "t/x"}]
    )
    y = define(
        "y", "Dev", inports=[{"id": "in", "queue": "t/y"}], outports=[{"id": "out", "queue": "t/y"}]
    )
    await probe.watch("t/x")
    await probe.watch("t/y")
    async with coordinating(mosquitto.url, g) as coordinator:
        for d in (x, y):
            probe.transport.publish("fbp", encode_discovery(d))
        await wired(coordinator, 3)
        probe.transport.publish("t/x", b"ping")
        await probe.wait_count("t/y", 1)
        await asyncio.sleep(0.5)
        await probe.watch("t/x")  # a round trip: anything in flight has arrived
        assert probe.received["t/x"] == [b"ping"]
        assert probe.received["t/y"] == [b"ping"]
        assert coordinator.stats.forwarded == 1


async def test_iips_on_appearance_and_again_on_restart(mosquitto: Mosquitto, probe: Probe) -> None:
    g = graph("'0' -> IN echo(Relay)")
    await probe.watch("echo/out")
    async with coordinating(mosquitto.url, g):
        async with participants(mosquitto.url, Relay("echo")):
            assert await probe.wait_count("echo/out", 1) == [b'"0>echo"']
        # The participant restarts: a new id, so it gets its IIP again.
        async with participants(mosquitto.url, Relay("echo")):
            assert await probe.wait_count("echo/out", 2) == [b'"0>echo"'] * 2


async def test_iip_waits_for_its_downstream_roles(mosquitto: Mosquitto, probe: Probe) -> None:
    g = graph("'hello' -> IN first(Relay)\nfirst OUT -> IN second(Relay)")
    await probe.watch("second/out")
    async with coordinating(mosquitto.url, g), participants(mosquitto.url, Relay("first")):
        await asyncio.sleep(0.3)  # "first" is there, "second" is not: the IIP is held
        async with participants(mosquitto.url, Relay("second")):
            got = await probe.wait_count("second/out", 1)
            assert got == [b'"hello>first>second"']


async def test_iip_hold_runs_out(mosquitto: Mosquitto, probe: Probe) -> None:
    g = graph("'hello' -> IN first(Relay)\nfirst OUT -> IN never(Relay)")
    await probe.watch("first/out")
    async with (
        coordinating(mosquitto.url, g, iip_hold=0.5),
        participants(mosquitto.url, Relay("first")),
    ):
        assert await probe.wait_count("first/out", 1) == [b'"hello>first"']


async def test_falsy_json_iips(mosquitto: Mosquitto, probe: Probe) -> None:
    g = parse_json(
        json.dumps(
            {
                "processes": {"e": {"component": "Relay"}},
                "connections": [
                    {"data": 0, "tgt": {"process": "e", "port": "in"}},
                    {"data": False, "tgt": {"process": "e", "port": "in"}},
                    {"data": "", "tgt": {"process": "e", "port": "in"}},
                ],
            }
        ),
        file="falsy.json",
    )
    await probe.watch("e/out")
    async with coordinating(mosquitto.url, g), participants(mosquitto.url, Relay("e")):
        got = [json.loads(m) for m in await probe.wait_count("e/out", 3)]
    assert sorted(got) == sorted(["0>e", "False>e", ">e"])


async def test_expiry_and_return(mosquitto: Mosquitto, probe: Probe) -> None:
    g = graph("'go' -> IN d(Dev)")
    sleepy = define("d", "Dev", inports=["in"], participant_id="d-1")
    await probe.watch("d/in")
    async with coordinating(mosquitto.url, g, expiry=0.3) as coordinator:
        probe.transport.publish("fbp", encode_discovery(sleepy))
        assert await probe.next_json("d/in") == "go"
        async with asyncio.timeout(3):
            while coordinator.registry.live("d"):
                await asyncio.sleep(0.05)
        probe.transport.publish("fbp", encode_discovery(sleepy))  # back again: same id
        assert await probe.next_json("d/in") == "go"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    garbage=st.lists(
        st.binary(max_size=300)
        | st.builds(
            lambda d: json.dumps(d).encode(),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                lambda c: (
                    st.lists(c, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(
                            [
                                "protocol",
                                "command",
                                "payload",
                                "role",
                                "id",
                                "component",
                                "inports",
                                "outports",
                                "queue",
                            ]
                        ),
                        c,
                        max_size=5,
                    )
                ),
                max_leaves=12,
            ),
        ),
        max_size=8,
    )
)
def test_garbage_on_fbp_never_stops_the_coordinator(garbage: list[bytes]) -> None:
    async def scenario() -> None:
        with Mosquitto() as broker:
            url = broker.url
            async with open_transport(parse_broker_url(url), client_id="p") as t:
                await asyncio.wait_for(t.wait_connected(), 5)
                probe = Probe(t)
                await probe.watch("d/in")
                async with coordinating(url, graph("'ok' -> IN d(Dev)")) as coordinator:
                    for junk in garbage:
                        t.publish("fbp", junk)
                    t.publish("fbp", encode_discovery(define("d", "Dev", inports=["in"])))
                    assert await probe.next_json("d/in") == "ok"
                    assert coordinator.stats.discovery_messages >= 1

    logging.getLogger("gateway").setLevel(logging.CRITICAL)
    try:
        asyncio.run(scenario())
    finally:
        logging.getLogger("gateway").setLevel(logging.NOTSET)


def test_no_local_needs_mqtt5() -> None:
    from gateway.errors import TransportError

    transport = open_transport(parse_broker_url("mqtt://127.0.0.1:1?protocolVersion=4"))
    assert not transport.supports_no_local
    with pytest.raises(TransportError, match="needs MQTT 5; this is MQTT 3"):
        asyncio.run(transport.subscribe("a", lambda d: None, no_local=True))


async def test_rewired_when_a_participant_reappears_with_other_topics(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    g = graph("dev(Dev) OUT -> IN sink(Sink)")
    sink = define("sink", "Sink", inports=[{"id": "in", "queue": "sink/in"}])
    old = define("dev", "Dev", outports=[{"id": "out", "queue": "dev/v1"}], participant_id="d")
    new = define("dev", "Dev", outports=[{"id": "out", "queue": "dev/v2"}], participant_id="d")
    await probe.watch("sink/in")
    async with coordinating(mosquitto.url, g) as coordinator:
        for d in (sink, old):
            probe.transport.publish("fbp", encode_discovery(d))
        await wired(coordinator, 1)
        probe.transport.publish("dev/v1", b"1")
        await probe.wait_count("sink/in", 1)
        probe.transport.publish("fbp", encode_discovery(new))  # firmware update: new topic
        async with asyncio.timeout(5):
            while coordinator.edge_states()[0].src_queue != "dev/v2":
                await asyncio.sleep(0.02)
        await coordinator.wired()
        probe.transport.publish("dev/v1", b"stale")  # no longer wired
        probe.transport.publish("dev/v2", b"2")
        assert await probe.wait_count("sink/in", 2) == [b"1", b"2"]


async def test_a_persistent_inport_gets_what_was_sent_while_it_slept(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    """A sleepy board's inport says ``persistent: true``: the coordinator forwards into it at
    QoS 1 even from a QoS 0 source, so its persistent session keeps the message until it wakes.
    Its neighbour without the option gets QoS 0 as sent, which a sleeper would lose."""
    g = graph("s(Source) OUT -> IN sleepy(Board)\ns OUT -> IN awake(Board)")
    boards = {
        role: define(role, "Board", inports=[{"id": "in", "queue": f"{role}/in", **options}])
        for role, options in (("sleepy", {"options": {"persistent": True}}), ("awake", {}))
    }
    got: dict[str, asyncio.Queue[tuple[bytes, int]]] = {r: asyncio.Queue() for r in boards}

    def board(role: str) -> Any:
        url = parse_broker_url(f"{mosquitto.url}?sessionExpiry=600")
        return open_transport(url, client_id=f"board-{role}")

    async def subscribe(transport: Any, role: str) -> None:
        await transport.subscribe(
            f"{role}/in", lambda d: got[role].put_nowait((d.payload, d.qos)), qos=1
        )

    async with coordinating(mosquitto.url, g) as coordinator:
        for role in boards:  # first wake: subscribe at QoS 1, then sleep
            async with board(role) as transport:
                await subscribe(transport, role)
                await asyncio.wait_for(transport.wait_connected(), 5)
        for definition in boards.values():
            probe.transport.publish("fbp", encode_discovery(definition))
        s = source("s")
        async with participants(mosquitto.url, s):
            await wired(coordinator, 2)
            s.send("out", "while asleep")
            await probe.watch("s/out")  # a round trip for the source's message to leave
            async with board("sleepy") as transport:  # second wake
                await subscribe(transport, "sleepy")
                payload, qos = await asyncio.wait_for(got["sleepy"].get(), 5)
                assert (json.loads(payload), qos) == ("while asleep", 1)
            async with board("awake") as transport:
                await subscribe(transport, "awake")
                # What the session kept arrives right after CONNACK, before this comes back.
                transport.publish("awake/in", b"marker", qos=1)
                first, _ = await asyncio.wait_for(got["awake"].get(), 5)
                assert first == b"marker"
