"""Shared fixtures: a real private mosquitto per test, one private RabbitMQ per session, and a
probe client to watch topics."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.transport.base import Delivery
from gateway.transport.mqtt import MqttTransport
from tests.amqp_broker import RabbitMQ

# Checks that every program the tests start comes from a package bootstrap installs.
pytest_plugins = ["tests.tool_audit"]


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    with Mosquitto() as broker:
        yield broker


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """One private RabbitMQ for the session (it takes seconds to start). Tests use queue names
    of their own; a test that restarts it leaves it running."""
    with RabbitMQ() as broker:
        yield broker


MARKER = "msgflo-gateway-tests/probe-marker"


class Probe:
    """A plain MQTT client for tests: subscribe to topics, await what arrives, publish."""

    def __init__(self, transport: MqttTransport) -> None:
        self.transport = transport
        self.received: dict[str, list[bytes]] = defaultdict(list)
        self._arrived = asyncio.Event()
        self._marker_subscribed = False

    async def watch(self, topic: str, qos: int = 0) -> None:
        """Subscribe to ``topic`` and return once the broker has applied the subscription."""
        await self.transport.subscribe(topic, self._collect, qos=qos)
        # SUBACKs are not exposed. The broker handles one connection's packets in order, so once
        # a message published after the SUBSCRIBE comes back, the subscription is active.
        if not self._marker_subscribed:
            await self.transport.subscribe(MARKER, self._collect)
            self._marker_subscribed = True
        self.transport.publish(MARKER, b"ready")
        await self.wait_count(MARKER, len(self.received[MARKER]) + 1)

    def _collect(self, delivery: Delivery) -> None:
        self.received[delivery.topic].append(delivery.payload)
        self._arrived.set()

    async def wait_count(self, topic: str, count: int, timeout: float = 5.0) -> list[bytes]:
        async with asyncio.timeout(timeout):
            while len(self.received[topic]) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received[topic]

    async def next_json(self, topic: str, timeout: float = 5.0) -> Any:
        before = len(self.received[topic])
        got = await self.wait_count(topic, before + 1, timeout)
        return json.loads(got[before])

    def discovery(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.received["fbp"]]


@pytest.fixture
async def probe(mosquitto: Mosquitto) -> AsyncIterator[Probe]:
    async with MqttTransport(parse_broker_url(mosquitto.url), client_id="probe") as transport:
        async with asyncio.timeout(5):
            await transport.wait_connected()
        yield Probe(transport)
