"""The project's MQTT client against a real mosquitto, in both protocol versions (and, for what
a good broker never does, a byte-scripted fake broker on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.broker import BrokerUrl, parse_broker_url
from gateway.errors import TransportError
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from gateway.transport.backoff import Backoff
from gateway.transport.base import Delivery, Will
from gateway.transport.mqtt import MqttTransport, topic_matches
from gateway.transport.mqtt.packets import encode_publish
from tests.conftest import Probe
from tests.support.certs import Pki
from tests.support.inbox import Inbox
from tests.support.wait import until

pytestmark = pytest.mark.integration

QUICK = Backoff(initial=0.1, maximum=0.5)


@contextlib.asynccontextmanager
async def fast(url: str | BrokerUrl, **options: object) -> AsyncIterator[MqttTransport]:
    parsed = parse_broker_url(url) if isinstance(url, str) else url
    async with MqttTransport(parsed, **options) as transport:  # type: ignore[arg-type]
        await asyncio.wait_for(transport.wait_connected(), 5)
        yield transport


async def round_trip(transport: MqttTransport, topic: str = "marker") -> None:
    """Publish to ourselves and wait for it: the broker has handled everything sent before."""
    inbox = Inbox()
    await transport.subscribe(topic, inbox)
    transport.publish(topic, b"m")
    await inbox.wait_deliveries(1)
    await transport.unsubscribe(topic)


# -- publish and subscribe ---------------------------------------------------------------------


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publish_subscribe_in_order(mosquitto: Mosquitto, qos: int) -> None:
    inbox = Inbox()
    async with fast(mosquitto.url, client_id="sub") as sub, fast(mosquitto.url) as pub:
        await sub.subscribe("data/x", inbox, qos=2)
        for n in range(3000):
            pub.publish("data/x", str(n).encode(), qos=qos)
        await asyncio.wait_for(pub.flush(), 10)
        got = await inbox.wait_deliveries(3000, timeout=20)
    assert [int(d.payload) for d in got] == list(range(3000))
    assert {d.qos for d in got} == {qos}
    assert pub.stats.published == 3000 and pub.stats.dropped == 0


async def test_interoperates_with_paho(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("to/probe", qos=1)
    inbox = Inbox()
    async with fast(mosquitto.url) as transport:
        await transport.subscribe("to/fast", inbox, qos=1)
        transport.publish("to/probe", b"\x00binary\xff", qos=1)
        probe.transport.publish("to/fast", "ünïcode".encode(), qos=1)
        assert await probe.wait_count("to/probe", 1) == [b"\x00binary\xff"]
        first = (await inbox.wait_deliveries(1))[0]
        assert first == Delivery("to/fast", "ünïcode".encode(), 1, False)


async def test_large_payload(mosquitto: Mosquitto) -> None:
    inbox = Inbox()
    payload = bytes(range(256)) * 4000  # about 1 MB: a four byte remaining length
    async with fast(mosquitto.url) as transport:
        await transport.subscribe("big", inbox)
        transport.publish("big", payload, qos=1)
        assert (await inbox.wait_deliveries(1))[0].payload == payload


async def test_no_local_suppresses_our_own_messages(mosquitto: Mosquitto, probe: Probe) -> None:
    mine, everyone = Inbox(), Inbox()
    async with fast(mosquitto.url) as transport, fast(mosquitto.url) as other:
        await transport.subscribe("shared", mine, no_local=True)
        await other.subscribe("shared", everyone)
        transport.publish("shared", b"from me")
        probe.transport.publish("shared", b"from the probe")
        await everyone.wait_deliveries(2)
        await round_trip(transport)
    assert mine.got == [b"from the probe"]


async def test_retained_messages(mosquitto: Mosquitto, probe: Probe) -> None:
    probe.transport.publish("state", b"old", qos=1, retain=True)
    await probe.watch("state")  # the retained message is stored by now
    as_published, plain, no_replay = Inbox(), Inbox(), Inbox()
    async with fast(mosquitto.url) as transport:
        await transport.subscribe("state", as_published, qos=1, retain_as_published=True)
        await as_published.wait_deliveries(1)
        async with fast(mosquitto.url) as second, fast(mosquitto.url) as third:
            await second.subscribe("state", plain, qos=1)
            await third.subscribe("state", no_replay, qos=1, replay_retained=False)
            await plain.wait_deliveries(1)
            probe.transport.publish("state", b"new", qos=1, retain=True)
            await as_published.wait_deliveries(2)
            await plain.wait_deliveries(2)
            await no_replay.wait_deliveries(1)
    # Replayed at subscribe time: retain set for everyone; live: only as published keeps it.
    kept = [(d.payload, d.retain) for d in as_published.deliveries]
    assert kept == [(b"old", True), (b"new", True)]
    assert [(d.payload, d.retain) for d in plain.deliveries] == [(b"old", True), (b"new", False)]
    assert [(d.payload, d.retain) for d in no_replay.deliveries] == [(b"new", False)]


async def test_wildcards(mosquitto: Mosquitto, probe: Probe) -> None:
    temps, everything = Inbox(), Inbox()
    async with fast(mosquitto.url) as transport:
        await transport.subscribe("sensors/+/temp", temps)
        await transport.subscribe("house/#", everything)
        for topic in ["sensors/a/temp", "sensors/b/hum", "sensors/c/temp", "house", "house/k/t"]:
            probe.transport.publish(topic, topic.encode())
        await everything.wait_deliveries(2)
        await temps.wait_deliveries(2)
        await transport.unsubscribe("house/#")
        probe.transport.publish("house/again", b"x")
        await round_trip(transport)
    assert [d.topic for d in temps.deliveries] == ["sensors/a/temp", "sensors/c/temp"]
    assert [d.topic for d in everything.deliveries] == ["house", "house/k/t"]


def test_topic_matching() -> None:
    assert topic_matches("a/+/c", "a/b/c") and not topic_matches("a/+/c", "a/b/d")
    assert topic_matches("a/#", "a") and topic_matches("a/#", "a/b/c")
    assert topic_matches("#", "x/y") and not topic_matches("#", "$SYS/x")
    assert not topic_matches("+/x", "$SYS/x") and topic_matches("$SYS/#", "$SYS/x")
    assert not topic_matches("a/+", "a") and not topic_matches("a/b", "a/b/c")


async def test_flush_then_close_loses_nothing(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("burst", qos=1)
    async with fast(mosquitto.url) as transport:
        for n in range(2000):
            transport.publish("burst", str(n).encode(), qos=n % 2)
        await asyncio.wait_for(transport.flush(), 10)
    got = [int(g) for g in await probe.wait_count("burst", 2000)]
    # 4.6: ordered per QoS (QoS 1 messages may wait for the broker's Receive Maximum).
    assert [n for n in got if n % 2 == 0] == list(range(0, 2000, 2))
    assert [n for n in got if n % 2 == 1] == list(range(1, 2000, 2))


async def test_pause_reading_holds_deliveries(mosquitto: Mosquitto, probe: Probe) -> None:
    inbox = Inbox()
    async with fast(mosquitto.url) as transport:
        await transport.subscribe("paused", inbox, qos=1)
        transport.pause_reading()
        for n in range(50):
            probe.transport.publish("paused", str(n).encode(), qos=1)
        await asyncio.sleep(0.3)
        assert inbox.deliveries == []
        transport.resume_reading()
        got = await inbox.wait_deliveries(50)
    assert [int(d.payload) for d in got] == list(range(50))


async def test_pause_survives_a_reconnect(mosquitto: Mosquitto, probe: Probe) -> None:
    inbox = Inbox()
    async with fast(mosquitto.url, backoff=QUICK) as transport:
        await transport.subscribe("held", inbox)
        transport.pause_reading()
        transport._conn.abort()  # type: ignore[union-attr]  # private: a lost connection
        await until(lambda: not transport.connected)
        await until(lambda: transport.connected)
        probe.transport.publish("held", b"1")
        await asyncio.sleep(0.3)
        assert inbox.deliveries == []
        transport.resume_reading()
        await inbox.wait_deliveries(1)


async def test_will_is_sent_when_the_connection_dies(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("dev/status")
    will = Will("dev/status", b"offline", qos=1)
    async with fast(mosquitto.url, will=will, backoff=Backoff(initial=30)) as transport:
        transport._conn.abort()  # type: ignore[union-attr]  # private: the crash under test
        assert await probe.wait_count("dev/status", 1) == [b"offline"]
    async with fast(mosquitto.url, will=will):
        pass  # a clean exit: DISCONNECT, no will
    await probe.watch("dev/status")
    assert probe.received["dev/status"] == [b"offline"]


# -- reconnecting ------------------------------------------------------------------------------


async def test_survives_broker_restart(
    mosquitto: Mosquitto, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    inbox, connects = Inbox(), []
    url = parse_broker_url(mosquitto.url)
    async with MqttTransport(url, client_id="restart", backoff=QUICK) as transport:
        transport.add_connect_listener(lambda: connects.append(transport.connected))
        await asyncio.wait_for(transport.wait_connected(), 5)
        await transport.subscribe("in", inbox, qos=1, no_local=True)
        await until(lambda: connects == [True])

        mosquitto.kill()
        await until(lambda: not transport.connected and not probe.transport.connected)
        transport.publish("out", b"queued while down", qos=1)
        transport.publish("out", b"dropped while down", qos=0)
        mosquitto.start()  # same port
        await until(lambda: probe.transport.connected and transport.connected)
        await probe.watch("out", qos=1)
        assert connects == [True, True]

        probe.transport.publish("in", b"after restart", qos=1)
        assert (await inbox.wait_deliveries(1))[0].payload == b"after restart"  # resubscribed
        await asyncio.wait_for(transport.flush(), 5)
    assert transport.stats.connects == 2 and transport.stats.dropped == 1
    assert any("lost connection" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]


async def test_refused_login_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    with Mosquitto(users={"sensor": "s3cr:t@/"}) as broker:
        good = f"mqtt://sensor:s3cr%3At%40%2F@127.0.0.1:{broker.port}"
        async with fast(good, client_id="good") as transport:
            assert transport.connected
        bad = parse_broker_url(f"mqtt://sensor:wrong@127.0.0.1:{broker.port}")
        async with MqttTransport(bad, client_id="bad", backoff=QUICK) as transport:
            await asyncio.sleep(1.0)
            assert not transport.connected
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= 2
    assert "broker refused the connection: Not authorized" in warnings[0]
    assert "retry in" in warnings[0]
    assert "wrong" not in " ".join(warnings)
    assert not [r for r in caplog.records if r.exc_info]


async def test_keepalive_pings_keep_the_connection(mosquitto: Mosquitto) -> None:
    async with fast(f"{mosquitto.url}?keepAlive=1") as transport:
        await asyncio.sleep(2.5)  # mosquitto drops a silent client after 1.5 keep alives
        assert transport.connected and transport.stats.connects == 1


async def test_client_id_and_nagle(mosquitto: Mosquitto) -> None:
    import socket

    async with fast(f"{mosquitto.url}?clientId=node-%i") as transport:
        assert transport.client_id.startswith("node-") and "%i" not in transport.client_id
        sock = transport._conn.transport.get_extra_info("socket")  # type: ignore[union-attr]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


# -- TLS ---------------------------------------------------------------------------------------


def tls_url(broker: Mosquitto, pki: Pki, ca: Path) -> str:
    return f"{broker.tls_url}?ca_certs={ca}&certfile={pki.client_cert}&keyfile={pki.client_key}"


async def test_mqtts(tls_broker: Mosquitto, pki: Pki) -> None:
    inbox = Inbox()
    async with fast(tls_url(tls_broker, pki, pki.ca)) as transport:
        await transport.subscribe("secure", inbox, qos=1)
        for n in range(500):
            transport.publish("secure", str(n).encode(), qos=n % 3)
        got = await inbox.wait_deliveries(500)
    assert sorted(int(d.payload) for d in got) == list(range(500))


# -- a scripted fake broker, for what mosquitto never does ---------------------------------------

CONNACK = b"\x20\x03\x00\x00\x00"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, await reader.readexactly(length)


@contextlib.asynccontextmanager
async def fake_broker(script: Script, connack: bytes = CONNACK) -> AsyncIterator[str]:
    """A loopback server running ``script(reader, writer, connection_number)`` per client."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            first, _ = await read_packet(reader)
            assert first == 0x10  # CONNECT
            writer.write(connack)
            await script(reader, writer, connections)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_unacknowledged_messages_are_resent_with_dup() -> None:
    seen: list[tuple[int, bytes]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        first, body = await read_packet(reader)
        seen.append((first, body))
        if n == 1:
            return  # close without PUBACK
        writer.write(b"\x40\x02" + body[8:10])  # PUBACK: topic "resend" is 2 + 6 bytes
        await read_packet(reader)  # until the client goes

    async with fake_broker(script) as url, fast(url, backoff=QUICK) as transport:
        transport.publish("resend", b"once", qos=1)
        await asyncio.wait_for(transport.flush(), 5)
    assert seen[0] == (0x32, encode_publish("resend", b"once", qos=1, packet_id=1)[2:])
    assert seen[1] == (0x3A, seen[0][1])  # the same packet identifier, DUP set


async def test_a_broker_that_does_not_read_stops_our_reading() -> None:
    go_on = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await go_on.wait()
        async with asyncio.timeout(10):
            while True:
                await read_packet(reader)

    async with fake_broker(script) as url, fast(url) as transport:
        conn = transport._conn  # private: the socket under test
        assert conn is not None and conn.transport is not None
        for _ in range(400):  # 40 MB, more than the kernel buffers hold
            transport.publish("flood", b"x" * 100_000)
            await asyncio.sleep(0)
            if not conn.transport.is_reading():
                break
        assert not conn.transport.is_reading()
        go_on.set()
        await until(lambda: conn.transport is not None and conn.transport.is_reading())


async def test_no_pingresp_drops_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        async with asyncio.timeout(10):
            while True:
                await read_packet(reader)  # PINGREQ, never answered

    async with fake_broker(script) as url, fast(f"{url}?keepAlive=1", backoff=QUICK) as transport:
        await until(lambda: transport.stats.connects >= 2)
    assert any("no PINGRESP" in r.getMessage() for r in caplog.records)


async def test_malformed_packet_drops_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1:
            await asyncio.sleep(0.2)  # once connected
            writer.write(b"\x36\x05\x00\x01t\x00\x00")  # PUBLISH with QoS 3
        await read_packet(reader)

    async with fake_broker(script) as url, fast(url, backoff=QUICK) as transport:
        await until(lambda: transport.stats.connects >= 2)
    assert any("malformed packet" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]


async def test_incoming_qos2_is_delivered_once_and_acknowledged() -> None:
    answers: list[bytes] = []
    message = encode_publish("q2", b"once", qos=2, packet_id=7)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        first, _ = await read_packet(reader)  # SUBSCRIBE
        writer.write(b"\x90\x04\x00\x01\x00\x02")  # SUBACK, granted QoS 2
        writer.write(message)
        writer.write(bytes([message[0] | 0x08]) + message[1:])  # the same again, DUP set
        for expected in (0x50, 0x50):  # PUBREC for each copy
            first, body = await read_packet(reader)
            assert first == expected
            answers.append(body)
        writer.write(b"\x62\x02\x00\x07")  # PUBREL
        first, body = await read_packet(reader)
        answers.append(bytes([first]) + body)
        await read_packet(reader)

    inbox = Inbox()
    async with fake_broker(script) as url, fast(url) as transport:
        await transport.subscribe("q2", inbox, qos=2)
        await until(lambda: len(answers) == 3)
        await asyncio.sleep(0.1)
    assert inbox.got == [b"once"]
    assert answers == [b"\x00\x07", b"\x00\x07", b"\x70\x00\x07"]  # PUBREC x2, PUBCOMP


async def test_receive_maximum_limits_messages_in_flight() -> None:
    rounds: list[list[bytes]] = []
    beyond: list[tuple[int, bytes]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for _ in range(3):
            got = [(await read_packet(reader))[1] for _ in range(2)]
            with contextlib.suppress(TimeoutError):  # a third must not come before an ack
                beyond.append(await asyncio.wait_for(read_packet(reader), 0.2))
            rounds.append([body[7:] for body in got])  # after topic "rm", packet id, properties
            for body in got:
                writer.write(b"\x40\x02" + body[4:6])  # PUBACK
        await read_packet(reader)

    connack = b"\x20\x06\x00\x00\x03\x21\x00\x02"  # Receive Maximum 2
    async with fake_broker(script, connack) as url, fast(url) as transport:
        for n in range(6):
            transport.publish("rm", str(n).encode(), qos=1)
        await asyncio.wait_for(transport.flush(), 5)
    assert beyond == []
    assert rounds == [[b"0", b"1"], [b"2", b"3"], [b"4", b"5"]]


# -- MQTT 3.1.1 and 5, shared subscriptions, persistent sessions ------------------------------


@pytest.mark.parametrize("version", ["4", "5"])
async def test_qos_levels_and_wildcards(mosquitto: Mosquitto, probe: Probe, version: str) -> None:
    url = parse_broker_url(f"{mosquitto.url}?protocolVersion={version}")
    got: list[Delivery] = []
    async with open_transport(url, client_id=f"v{version}") as transport:
        await asyncio.wait_for(transport.wait_connected(), 5)
        assert transport.supports_no_local is (version == "5")
        await transport.subscribe("in/+", got.append, qos=2)
        for qos in (0, 1, 2):
            probe.transport.publish(f"in/{qos}", str(qos).encode(), qos=qos)
        await probe.watch("out", qos=2)
        transport.publish("out", b"q2", qos=2)
        await asyncio.wait_for(transport.flush(), 5)
        assert await probe.wait_count("out", 1) == [b"q2"]
        async with asyncio.timeout(5):
            while len(got) < 3:
                await asyncio.sleep(0.01)
    assert sorted((d.topic, d.qos) for d in got) == [("in/0", 0), ("in/1", 1), ("in/2", 2)]


async def test_a_shared_subscription_gives_each_message_to_one(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    url = parse_broker_url(mosquitto.url)
    counts = [0, 0]

    def counter(n: int) -> Callable[[Delivery], None]:
        return lambda d: counts.__setitem__(n, counts[n] + 1)

    async with open_transport(url, client_id="w0") as a, open_transport(url, client_id="w1") as b:
        for n, worker in enumerate((a, b)):
            await asyncio.wait_for(worker.wait_connected(), 5)
            name = worker.shared_subscription("jobs", "g")
            await worker.subscribe(name, counter(n))
        for i in range(20):
            probe.transport.publish("jobs", str(i).encode())
        async with asyncio.timeout(5):
            while sum(counts) < 20:
                await asyncio.sleep(0.01)
    assert sum(counts) == 20


@pytest.mark.parametrize("version", ["4", "5"])
async def test_a_persistent_session_is_resumed(
    mosquitto: Mosquitto, probe: Probe, version: str
) -> None:
    url = parse_broker_url(f"{mosquitto.url}?protocolVersion={version}&sessionExpiry=60")
    got: list[bytes] = []
    async with open_transport(url, client_id="keeper") as transport:
        await asyncio.wait_for(transport.wait_connected(), 5)
        await transport.subscribe("kept", lambda d: got.append(d.payload), qos=1)
    probe.transport.publish("kept", b"while away", qos=1)
    await asyncio.wait_for(probe.transport.flush(), 5)
    again = open_transport(url, client_id="keeper")
    await again.subscribe("kept", lambda d: got.append(d.payload), qos=1)
    async with again:
        async with asyncio.timeout(5):
            while not got:
                await asyncio.sleep(0.01)
    assert got == [b"while away"]


async def test_a_resumed_sessions_messages_wait_for_their_subscriber(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    """The broker sends a resumed session's messages right after CONNACK: a program that
    subscribes only once connected still gets them, in order."""
    url = parse_broker_url(f"{mosquitto.url}?sessionExpiry=60")
    async with open_transport(url, client_id="late") as transport:
        await asyncio.wait_for(transport.wait_connected(), 5)
        await transport.subscribe("late/in", lambda d: None, qos=1)
    for n in range(3):
        probe.transport.publish("late/in", b"%d" % n, qos=1)
    await asyncio.wait_for(probe.transport.flush(), 5)
    got: list[bytes] = []
    async with open_transport(url, client_id="late") as again:
        async with asyncio.timeout(5):
            while again.stats.received < 3:  # arrived, nobody to take them yet
                await asyncio.sleep(0.01)
        await again.subscribe("late/in", lambda d: got.append(d.payload), qos=1)
        assert got == [b"0", b"1", b"2"]
        assert again.stats.received == 3


# -- connecting: refusals, fallback, timeouts --------------------------------------------------


async def test_a_broker_without_mqtt5_gets_mqtt311(caplog: pytest.LogCaptureFixture) -> None:
    versions: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_packet(reader)
        versions.append(body[6])  # the protocol level after "MQTT"
        writer.write(b"\x20\x02\x00\x01" if body[6] == 5 else b"\x20\x02\x00\x00")
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await read_packet(reader)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"mqtt://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, fast(url, backoff=QUICK) as transport:
        assert transport.version == 4 and not transport.supports_no_local
    assert versions == [5, 4]
    assert [r.getMessage() for r in caplog.records if "3.1.1" in r.getMessage()] == [
        f"mqtt: {url} does not speak MQTT 5; using 3.1.1 from now on"
    ]


async def test_a_forced_version_is_not_changed(caplog: pytest.LogCaptureFixture) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(b"\x20\x03\x00\x84\x00")  # Unsupported Protocol Version
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = parse_broker_url(
        f"mqtt://127.0.0.1:{server.sockets[0].getsockname()[1]}?protocolVersion=5"
    )
    async with server, MqttTransport(url, backoff=QUICK) as transport:
        await asyncio.sleep(0.5)
        assert not transport.connected and transport.version == 5
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals and "Unsupported Protocol Version" in refusals[0]


async def test_closed_before_connack_is_retried_at_once(caplog: pytest.LogCaptureFixture) -> None:
    attempts = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        await read_packet(reader)
        if attempts > 1:
            writer.write(CONNACK)
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await read_packet(reader)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"mqtt://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, fast(url, backoff=QUICK):
        pass
    assert any("closed before CONNACK" in r.getMessage() for r in caplog.records)


async def test_no_connack_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.transport.mqtt import client

    monkeypatch.setattr(client, "CONNACK_TIMEOUT", 0.2)
    gone = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await read_packet(reader)  # CONNECT, never answered
        writer.close()
        gone.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = parse_broker_url(f"mqtt://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    async with server:
        with pytest.raises(TransportError, match="no CONNACK within"):
            await MqttTransport(url)._connect_once()
        await asyncio.wait_for(gone.wait(), 5)  # the client hung up
