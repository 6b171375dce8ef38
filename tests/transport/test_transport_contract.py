"""What every transport must do the same, run on MQTT (mosquitto), AMQP (RabbitMQ) and the
in-process memory:// broker alike.

A name is a topic on MQTT and an inport queue plus its same-named exchange on AMQP; either way,
what is published to it reaches whoever subscribed to it. Transports are made only by
``open_transport(url)``, so the suite holds whatever class serves a scheme.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from gateway.transport.base import Transport
from gateway.transport.memory import memory_broker
from tests.support.amqp_broker import RabbitMQ
from tests.support.inbox import Inbox


@dataclass
class Broker:
    """A running broker of any kind: how to reach it and how to restart it."""

    url: str
    restart: Callable[[], Awaitable[None]]

    def transport(self, name: str) -> Transport:
        # Unique client ids: an MQTT broker throws off the older of two clients with one id.
        return open_transport(
            parse_broker_url(self.url), client_id=f"{name}-{secrets.token_hex(3)}"
        )


async def _restart_mosquitto(broker: Mosquitto) -> None:
    # Started on the loop's thread: the parent-death signal of a broker spawned in an executor
    # thread would fire when that thread ends.
    await asyncio.to_thread(broker.stop)
    broker.start()


@pytest.fixture(
    params=[
        pytest.param("mqtt", marks=pytest.mark.integration),
        pytest.param("amqp", marks=pytest.mark.integration),
        "memory",
    ]
)
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    if request.param == "mqtt":
        with Mosquitto() as mosquitto:
            yield Broker(mosquitto.url, lambda: _restart_mosquitto(mosquitto))
    elif request.param == "amqp":
        rabbit: RabbitMQ = request.getfixturevalue("rabbitmq")
        yield Broker(rabbit.url, rabbit.restart_async)
    else:
        name = f"contract-{secrets.token_hex(4)}"
        yield Broker(f"memory://{name}", memory_broker(name).restart)


@pytest.fixture
async def pair(broker: Broker) -> AsyncIterator[tuple[Transport, Transport]]:
    async with broker.transport("pub") as pub, broker.transport("sub") as sub:
        async with asyncio.timeout(10):
            await pub.wait_connected()
            await sub.wait_connected()
        yield pub, sub


def unique(prefix: str) -> str:
    # One RabbitMQ serves the whole session and its queues are durable: never reuse a name.
    return f"contract.{prefix}.{secrets.token_hex(4)}"


PAYLOADS = [b"", b"0.00", b'{"x": 1}', b"\x00\xff\x80binary", "ünïcødé".encode(), bytes(100_000)]


async def test_round_trip_is_byte_for_byte(pair: tuple[Transport, Transport]) -> None:
    pub, sub = pair
    name, inbox = unique("bytes"), Inbox()
    await sub.subscribe(name, inbox)
    for payload in PAYLOADS:
        pub.publish(name, payload)
    assert await inbox.wait_count(len(PAYLOADS)) == PAYLOADS


async def test_order_is_kept(pair: tuple[Transport, Transport]) -> None:
    pub, sub = pair
    name, inbox = unique("order"), Inbox()
    await sub.subscribe(name, inbox)
    for n in range(500):
        pub.publish(name, str(n).encode())
    got = await inbox.wait_count(500, timeout=10)
    assert [int(g) for g in got] == list(range(500))


async def test_flush_then_close_loses_nothing(broker: Broker) -> None:
    name, inbox = unique("flush"), Inbox()
    async with broker.transport("sub") as sub:
        await asyncio.wait_for(sub.wait_connected(), 10)
        await sub.subscribe(name, inbox)
        async with broker.transport("burst") as pub:
            await asyncio.wait_for(pub.wait_connected(), 10)
            for n in range(1000):
                pub.publish(name, str(n).encode())
            await asyncio.wait_for(pub.flush(), 10)
        # The publisher is closed right after flush(): everything must still arrive.
        got = await inbox.wait_count(1000, timeout=10)
    assert [int(g) for g in got] == list(range(1000))


async def test_unsubscribe_stops_delivery(pair: tuple[Transport, Transport]) -> None:
    pub, sub = pair
    name, marker = unique("unsub"), unique("marker")
    inbox, markers = Inbox(), Inbox()
    await sub.subscribe(name, inbox)
    await sub.subscribe(marker, markers)
    pub.publish(name, b"before")
    await inbox.wait_count(1)
    await sub.unsubscribe(name)
    pub.publish(name, b"after")
    pub.publish(marker, b"done")  # sent after "after" on the same connection
    await markers.wait_count(1)
    await asyncio.sleep(0.2)
    assert inbox.got == [b"before"]


async def test_reconnect_after_broker_restart_resubscribes(broker: Broker) -> None:
    name, inbox = unique("restart"), Inbox()
    connects = 0

    def connected() -> None:
        nonlocal connects
        connects += 1

    async with broker.transport("pub") as pub, broker.transport("sub") as sub:
        sub.add_connect_listener(connected)
        async with asyncio.timeout(10):
            await pub.wait_connected()
            await sub.wait_connected()
        await sub.subscribe(name, inbox)
        pub.publish(name, b"first")
        await inbox.wait_count(1)
        await broker.restart()
        # Ping until one arrives: publishes made before the resubscription has reached the
        # broker may be lost on MQTT (QoS 0), which is fine; what matters is that it comes back.
        async with asyncio.timeout(20):
            while len(inbox.got) < 2:
                if pub.connected:
                    pub.publish(name, b"again")
                await asyncio.sleep(0.1)
        assert connects >= 2
    assert inbox.got[0] == b"first"
    assert set(inbox.got[1:]) == {b"again"}


async def test_flush_waits_for_what_was_sent_while_the_broker_was_down(broker: Broker) -> None:
    # paho reports a QoS 1 message queued while disconnected as failed, so flush() raised
    # RuntimeError (a CLI thrown off the broker crashed so). flush() returns once the broker
    # has taken the message (PUBACK): whether a subscriber that was also reconnecting got it
    # depends on which of the two came back first.
    name = unique("offline")
    async with broker.transport("pub") as pub:
        async with asyncio.timeout(10):
            await pub.wait_connected()

        async def publish_while_down() -> None:
            async with asyncio.timeout(20):
                while pub.connected:
                    await asyncio.sleep(0.01)
            pub.publish(name, b"while down", qos=1)

        publisher = asyncio.create_task(publish_while_down())
        await broker.restart()
        await publisher
        async with asyncio.timeout(20):
            await pub.flush()
        assert pub.connected
