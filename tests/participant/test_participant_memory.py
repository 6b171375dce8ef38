"""The participant runtime on the in-process memory:// broker: announcing, an inport to an
outport, IIPs and announcing again after a reconnect, without starting a broker."""

from __future__ import annotations

import asyncio
import json

from gateway.participant import Message, Participant
from gateway.transport.memory import MemoryTransport
from tests.support.inbox import watch
from tests.support.participants import serving
from tests.support.wait import until


class Upper(Participant):
    def __init__(self, role: str) -> None:
        super().__init__({"component": "Upper", "inports": ["in"], "outports": ["out"]}, role)

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", str(msg.data).upper())


async def test_announces_itself_on_fbp(memory_url: str, memory_client: MemoryTransport) -> None:
    [fbp] = await watch(memory_client, "fbp")
    async with serving(memory_url, [Upper("up")], discovery_period=60):
        message = json.loads((await fbp.wait_count(1))[0])
    assert (message["protocol"], message["command"]) == ("discovery", "participant")
    assert message["payload"]["role"] == "up"
    assert message["payload"]["inports"] == [{"id": "in", "type": "any", "queue": "up/in"}]
    assert message["payload"]["outports"] == [{"id": "out", "type": "any", "queue": "up/out"}]


async def test_a_message_on_an_inport_comes_out_of_the_outport(
    memory_url: str, memory_client: MemoryTransport
) -> None:
    [out] = await watch(memory_client, "up/out")
    async with serving(memory_url, [Upper("up")], discovery_period=60):
        memory_client.publish("up/in", b'"hello"')
        memory_client.publish("up/in", b"[1]")
        assert await out.wait_count(2) == [b'"HELLO"', b'"[1]"']


async def test_iips_are_delivered_once_after_the_first_connect(
    memory_url: str, memory_client: MemoryTransport
) -> None:
    [out] = await watch(memory_client, "up/out")
    up = Upper("up")
    async with serving(memory_url, [up], discovery_period=60, iips={"in": "start"}):
        assert await out.wait_count(1) == [b'"START"']
        await memory_client.broker.restart()
        await until(lambda: up.stats.announced == 2, what="announcing after the reconnect")
        await asyncio.wait_for(memory_client.wait_connected(), 1)
        memory_client.publish("up/in", b'"after"')
        assert await out.wait_count(2) == [b'"START"', b'"AFTER"']  # no second IIP


async def test_announces_again_after_a_reconnect(
    memory_url: str, memory_client: MemoryTransport
) -> None:
    [fbp] = await watch(memory_client, "fbp")
    up = Upper("up")
    async with serving(memory_url, [up], discovery_period=60):
        await fbp.wait_count(1)
        # Only the participant's connection breaks: after a whole broker restart the watcher
        # could resubscribe after the participant announced, and miss it.
        for client in memory_client.broker.clients:
            if client is not memory_client:
                client.lose_connection()
        await until(lambda: up.stats.announced == 2, what="the second announcement")
        assert len(await fbp.wait_count(2)) == 2
