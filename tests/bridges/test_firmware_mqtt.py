"""The firmware library's MQTT transport, compiled for the host (ASan + UBSan) with a POSIX-socket
Client (``firmware/test/host``), against a real mosquitto and the coordinator.

The program ``mqtt_participant`` plays one device: inport ``in`` (printed and echoed as
``echo:<payload>`` on outport ``out``), one line on stdout per event (``state connected``,
``received in x``, ``counters ...``). Here: its discovery goes through the gateway's own parser,
a graph edge carries messages both ways, a restarted broker sees it reconnect and announce
again, a sleepy wake cycle gets a message that was sent while it slept (persistent session,
QoS 1), and a scripted broker feeding it malformed, truncated and oversized packets finds it
counting them and reconnecting, never crashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.broker import parse_broker_url
from gateway.coordinator.binder import MqttForwarder
from gateway.graph import parse_fbp
from gateway.mosquitto import Mosquitto, free_port
from gateway.participant.discovery import parse_discovery
from gateway.transport import open_transport
from gateway.transport.base import Persistence
from tests.conftest import Probe
from tests.support.coordinating import coordinating
from tests.support.firmware import Program, build_programs, running_program
from tests.support.participants import Relay, serving, source
from tests.support.wait import until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mqtt_participant`` built with the sanitizers, once for the module."""
    build = tmp_path_factory.mktemp("firmware-mqtt") / "build"
    return build_programs(build, "mqtt_participant") / "mqtt_participant"


def counted(dev: Program) -> dict[str, int]:
    """The device's last ``counters`` line."""
    last = [line for line in dev.lines if line.startswith("counters ")]
    if not last:
        return {}
    return {k: int(v) for k, v in (item.split("=") for item in last[-1].split()[1:])}


@contextlib.asynccontextmanager
async def device(program: Path, port: int, *args: str) -> AsyncIterator[Program]:
    async with running_program(program, "--port", str(port), *args) as running:
        yield running
    assert running.process.returncode in (0, 2), "\n".join(running.lines[-20:])


async def test_discovery_parses_and_an_edge_carries_messages_both_ways(
    program: Path, mosquitto: Mosquitto, probe: Probe
) -> None:
    await probe.watch("fbp")
    await probe.watch("sink/out")
    fbp = "src(Source) OUT -> IN dev(HostDevice)\ndev OUT -> IN sink(Relay)"
    async with coordinating(mosquitto.url, parse_fbp(fbp, file="t.fbp")) as coordinator:
        s, sink = source("src"), Relay("sink")
        async with (
            serving(mosquitto.url, [s, sink]),
            device(program, mosquitto.port, "--role", "dev") as dev,
        ):
            await dev.wait(lambda: dev.has("^state connected"), "the device connected")
            await until(lambda: any(m["payload"]["role"] == "dev" for m in probe.discovery()))
            raw = next(m for m in probe.received["fbp"] if b'"role":"dev"' in m)
            found = parse_discovery(raw, lenient=False)
            assert found.warnings == ()
            d = found.definition
            assert (d.id, d.component) == ("dev-0001", "HostDevice")
            assert [(p.id, p.queue) for p in d.inports] == [("in", "dev/in")]
            assert [(p.id, p.queue) for p in d.outports] == [("out", "dev/out")]
            assert d.extra["discoveryPeriod"] == 60
            async with asyncio.timeout(10):
                while sum(st.resolved for st in coordinator.edge_states()) < 2:
                    await asyncio.sleep(0.02)
            await coordinator.wired()
            s.send("out", "ping")
            await dev.wait(lambda: dev.has('^received in "ping"$'), "the message on the inport")
            got = await probe.wait_count("sink/out", 1)
            relayed = json.loads(got[0])  # the relay shows the bytes it got (not JSON) and itself
            assert 'echo:"ping"' in relayed and relayed.endswith(">sink")


async def test_a_restarted_broker_sees_it_reconnect_and_announce(
    program: Path, mosquitto: Mosquitto
) -> None:
    async with device(program, mosquitto.port, "--role", "dev", "--retry-min", "100") as dev:
        await dev.wait(lambda: dev.has("^state connected"), "connected")
        mosquitto.kill()
        await dev.wait(lambda: counted(dev).get("lost", 0) >= 1, "the loss noticed")
        mosquitto.start()
        async with open_transport(parse_broker_url(mosquitto.url), client_id="p2") as t:
            probe = Probe(t)
            await asyncio.wait_for(t.wait_connected(), 5)
            await probe.watch("fbp")
            await dev.wait(lambda: counted(dev).get("reconnects", 0) >= 1, "reconnected", 30)
            await probe.wait_count("fbp", 1, timeout=10)
            assert b'"id":"dev-0001"' in probe.received["fbp"][0]


async def test_a_sleepy_device_gets_what_a_graph_sent_while_it_slept(
    program: Path, mosquitto: Mosquitto, probe: Probe
) -> None:
    """Through the coordinator from a QoS 0 source: the board on a persistent session announces
    its inport ``persistent``, so the coordinator forwards into it at QoS 1 and the broker keeps
    the message until the next wake."""
    await probe.watch("nap/out", qos=1)
    await probe.watch("fbp")
    args = ("--role", "nap", "--persistent", "--sleepy", "--deadline", "20")
    async with (
        coordinating(
            mosquitto.url, parse_fbp("src(Source) OUT -> IN nap(HostDevice)", file="t.fbp")
        ) as coordinator,
        serving(mosquitto.url, [s := source("src")]),
    ):
        async with device(program, mosquitto.port, *args, "--send", "first") as dev:
            await dev.wait(lambda: dev.has("^slept awake_us="), "the first wake cycle")
        assert dev.process.returncode == 0
        assert await probe.wait_count("nap/out", 1) == [b"first"]
        raw = next(m for m in probe.received["fbp"] if b'"role":"nap"' in m)
        inport = parse_discovery(raw, lenient=False).definition.inports[0]
        assert inport.persistence is Persistence.PERSISTENT
        await until(lambda: all(st.resolved for st in coordinator.edge_states()))
        await coordinator.wired()
        s.send("out", "while asleep")  # QoS 0, as participants send by default
        await until(lambda: coordinator.stats.forwarded >= 1)
        assert isinstance(coordinator.binder, MqttForwarder)
        await coordinator.binder.transport.flush()  # the broker has it, for the session
        async with device(program, mosquitto.port, *args) as dev:
            await dev.wait(lambda: dev.has("^slept awake_us="), "the second wake cycle")
        assert dev.has('^received in "while asleep"$')
        # It settled (slept) only once its echo was acknowledged.
        got = await probe.wait_count("nap/out", 2)
        assert got == [b"first", b'echo:"while asleep"']


@pytest.mark.parametrize("queued", [3, 45])
async def test_settled_waits_for_every_message_queued_while_asleep(
    program: Path, mosquitto: Mosquitto, probe: Probe, queued: int
) -> None:
    """settled() has no quiet time: its barrier is the SUBACK (Mosquitto sends a resumed
    session's queued messages right after CONNACK, before it answers the SUBSCRIBE), then a
    PINGREQ after each window of max_inflight_messages (20) acknowledged, since Mosquitto sends
    the rest only as PUBACKs free its window. 3 fit one window: no PINGREQ; 45 need some."""
    args = ("--role", "nap", "--persistent", "--sleepy", "--no-echo", "--deadline", "20")
    async with device(program, mosquitto.port, *args) as dev:
        await dev.wait(lambda: dev.has("^slept awake_us="), "the first wake cycle")
    for i in range(queued):
        probe.transport.publish("nap/in", f"m{i}".encode(), qos=1)
    await probe.watch("marker/after")  # the broker has them queued for the session
    async with device(program, mosquitto.port, *args) as dev:
        await dev.wait(lambda: dev.has("^slept awake_us="), "the second wake cycle")
    received = [line.removeprefix("received in ") for line in dev.lines if "received in" in line]
    assert received == [f"m{i}" for i in range(queued)]  # all of them, in order, before sleeping
    barriers = counted(dev)["barriers"]
    # Fewer than a window: the SUBACK alone. More: at least one PINGREQ (how many depends on
    # how the broker's batches and our PUBACKs interleave).
    assert barriers == 0 if queued < 20 else 1 <= barriers <= queued // 20
    async with device(program, mosquitto.port, *args) as dev:
        await dev.wait(lambda: dev.has("^slept awake_us="), "the third wake cycle")
    assert not dev.has("^received in"), "nothing was left queued, nothing came twice"


# -- a scripted broker ---------------------------------------------------------------------------

CONNACK = b"\x20\x02\x00\x00"


def publish(topic: bytes, payload: bytes, packet_id: int | None = None) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    header = 0x30
    if packet_id is not None:
        header |= 0x02
        body += packet_id.to_bytes(2, "big")
    body += payload
    length, encoded = len(body), b""
    while True:
        digit, length = length % 128, length // 128
        encoded += bytes([digit | (0x80 if length else 0)])
        if not length:
            break
    return bytes([header]) + encoded + body


# What the broker sends after CONNACK, one connection each; the device must drop the
# connection on each malformed one (or on the cut) and connect again for the next.
SCRIPTS = [
    publish(b"dev/in", b"x" * 1000, packet_id=5) + publish(b"dev/in", b"small", packet_id=6),
    b"\x30\xff\xff\xff\xff\x01",  # five remaining-length bytes
    b"\x30\x04\x00\x09ab",  # a topic longer than the packet
    b"\x62\x02\x00\x01",  # PUBREL: a client never gets one at QoS 1
    publish(b"dev/in", b"cut short")[:7],  # then the connection closes mid-packet
    b"\x34\x05\x00\x01t\x00\x01",  # QoS 2
]


async def test_a_scripted_broker_sends_malformed_truncated_and_oversized_packets(
    program: Path,
) -> None:
    received: list[bytes] = []
    served = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            connect = await asyncio.wait_for(reader.read(256), 5)
            assert connect[0] == 0x10
            script = SCRIPTS[served] if served < len(SCRIPTS) else b""
            served += 1
            writer.write(CONNACK + script)
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    while chunk := await reader.read(4096):
                        received.append(chunk)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server, device(program, port, "--role", "dev", "--retry-min", "50") as dev:
        await dev.wait(lambda: served > len(SCRIPTS), "every script served", 30)
        await dev.wait(lambda: counted(dev).get("malformed", 0) >= 4, "malformed counted")
        counters = counted(dev)
        assert counters["oversized"] == 1
        assert counters["malformed"] == 4  # remaining length, topic, PUBREL, QoS 2
        assert counters["connects"] >= len(SCRIPTS)
        assert dev.count("^received in small$") == 1  # the oversized one is not delivered
        wire = b"".join(received)
        assert b"\x40\x02\x00\x05" in wire and b"\x40\x02\x00\x06" in wire  # both PUBACKed
    assert dev.process.returncode == 0
