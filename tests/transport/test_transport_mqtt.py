"""The MQTT transport itself: last will on a crash, none on a clean exit, wildcard delivery."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import textwrap

import pytest

from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.transport.mqtt import MqttTransport
from tests.conftest import Probe

pytestmark = pytest.mark.integration

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.broker import parse_broker_url
    from gateway.transport.mqtt import MqttTransport, Will

    async def main():
        will = Will("devices/holder/status", b"offline", qos=1, retain=False)
        async with MqttTransport(parse_broker_url(sys.argv[1]), will=will) as t:
            await t.wait_connected()
            print("connected", flush=True)
            await asyncio.sleep(float(sys.argv[2]))

    asyncio.run(main())
    """
)


def holder(url: str, hold: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(hold)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "connected"
    return process


async def test_last_will_is_published_when_the_client_dies(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    await probe.watch("devices/holder/status")
    process = holder(mosquitto.url, 60)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=5)
    assert await probe.wait_count("devices/holder/status", 1) == [b"offline"]


async def test_no_last_will_after_a_clean_disconnect(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("devices/holder/status")
    process = holder(mosquitto.url, 0.1)
    process.communicate(timeout=10)
    await probe.watch("devices/holder/status")  # a full round trip after the disconnect
    assert probe.received["devices/holder/status"] == []


async def test_wildcard_subscription(mosquitto: Mosquitto, probe: Probe) -> None:
    got: list[str] = []
    url = parse_broker_url(mosquitto.url)
    async with MqttTransport(url, client_id="wild") as transport:
        await asyncio.wait_for(transport.wait_connected(), 5)
        await transport.subscribe("sensors/+/temp", lambda d: got.append(d.topic))
        await probe.watch("sensors/done")
        await transport.subscribe("sensors/done", lambda d: got.append(d.topic))
        await asyncio.sleep(0.1)
        for topic in ["sensors/a/temp", "sensors/b/humidity", "sensors/c/temp", "sensors/done"]:
            probe.transport.publish(topic, b"1")
        await probe.wait_count("sensors/done", 1)
        async with asyncio.timeout(5):
            while "sensors/done" not in got:
                await asyncio.sleep(0.01)
    assert got == ["sensors/a/temp", "sensors/c/temp", "sensors/done"]


async def test_credentials_from_the_url() -> None:
    with Mosquitto(users={"sensor": "s3cr:t@/"}) as broker:
        good = parse_broker_url(f"mqtt://sensor:s3cr%3At%40%2F@127.0.0.1:{broker.port}")
        async with MqttTransport(good, client_id="good") as transport:
            await asyncio.wait_for(transport.wait_connected(), 5)


async def test_wrong_password_is_refused_logged_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Mosquitto(users={"sensor": "right"}) as broker:
        bad = parse_broker_url(f"mqtt://sensor:wrong@127.0.0.1:{broker.port}")
        async with MqttTransport(bad, client_id="bad") as transport:
            await asyncio.sleep(1.0)
            assert not transport.connected
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "broker refused the connection: Not authorized" in warnings[0]
    assert "retry in" in warnings[0]
    assert "wrong" not in " ".join(warnings)
    assert not [r for r in caplog.records if r.exc_info]


async def test_socket_has_nagle_off(mosquitto: Mosquitto) -> None:
    import socket

    async with MqttTransport(parse_broker_url(mosquitto.url), client_id="nodelay") as transport:
        await asyncio.wait_for(transport.wait_connected(), 5)
        conn = transport._conn  # private, but the socket is the thing under test
        assert conn is not None and conn.transport is not None
        sock = conn.transport.get_extra_info("socket")  # asyncio.TransportSocket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@pytest.mark.parametrize("qos", [0, 1])
async def test_flush_waits_until_a_burst_has_left(
    mosquitto: Mosquitto, probe: Probe, qos: int
) -> None:
    await probe.watch("burst", qos=1)
    async with MqttTransport(parse_broker_url(mosquitto.url), client_id="burst") as transport:
        await asyncio.wait_for(transport.wait_connected(), 5)
        for n in range(2000):
            transport.publish("burst", str(n).encode(), qos=qos)
        await asyncio.wait_for(transport.flush(), 10)
        assert transport.stats.dropped == 0
    # The connection is closed right after flush(): everything must still arrive.
    got = await probe.wait_count("burst", 2000)
    assert [int(g) for g in got] == list(range(2000))
