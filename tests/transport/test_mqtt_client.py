"""The project's MQTT client against a real mosquitto, in both protocol versions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from gateway.transport.base import Delivery
from tests.conftest import Probe

pytestmark = pytest.mark.integration


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
