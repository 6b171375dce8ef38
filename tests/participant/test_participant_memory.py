"""The participant runtime on the in-process memory:// broker: announcing, an inport to an
outport, IIPs and announcing again after a reconnect, without starting a broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from gateway.broker import parse_broker_url
from gateway.participant import Message, Participant, serve
from gateway.transport import open_transport
from gateway.transport.base import Transport
from gateway.transport.memory import memory_broker
from tests.support.inbox import Inbox
from tests.support.wait import until


@pytest.fixture
def name() -> str:
    return f"participant-{secrets.token_hex(4)}"


@pytest.fixture
async def watcher(name: str) -> AsyncIterator[Transport]:
    """A plain client of the broker, to watch topics and publish."""
    async with open_transport(parse_broker_url(f"memory://{name}")) as transport:
        await asyncio.wait_for(transport.wait_connected(), 1)
        yield transport


@contextlib.asynccontextmanager
async def running(
    name: str, participants: Sequence[Participant], iips: Mapping[str, Any] | None = None
) -> AsyncIterator[None]:
    url = parse_broker_url(f"memory://{name}")
    task = asyncio.create_task(serve(participants, url, iips=iips, discovery_period=60))
    try:
        await until(lambda: all(p.stats.announced for p in participants), what="announcing")
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Upper(Participant):
    def __init__(self, role: str) -> None:
        super().__init__({"component": "Upper", "inports": ["in"], "outports": ["out"]}, role)

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", str(msg.data).upper())


async def watch(transport: Transport, topic: str) -> Inbox:
    inbox = Inbox()
    await transport.subscribe(topic, inbox)
    return inbox


async def test_announces_itself_on_fbp(name: str, watcher: Transport) -> None:
    fbp = await watch(watcher, "fbp")
    async with running(name, [Upper("up")]):
        message = json.loads((await fbp.wait_count(1))[0])
    assert (message["protocol"], message["command"]) == ("discovery", "participant")
    assert message["payload"]["role"] == "up"
    assert message["payload"]["inports"] == [{"id": "in", "type": "any", "queue": "up/in"}]
    assert message["payload"]["outports"] == [{"id": "out", "type": "any", "queue": "up/out"}]


async def test_a_message_on_an_inport_comes_out_of_the_outport(
    name: str, watcher: Transport
) -> None:
    out = await watch(watcher, "up/out")
    async with running(name, [Upper("up")]):
        watcher.publish("up/in", b'"hello"')
        watcher.publish("up/in", b"[1]")
        assert await out.wait_count(2) == [b'"HELLO"', b'"[1]"']


async def test_iips_are_delivered_once_after_the_first_connect(
    name: str, watcher: Transport
) -> None:
    out = await watch(watcher, "up/out")
    up = Upper("up")
    async with running(name, [up], iips={"in": "start"}):
        assert await out.wait_count(1) == [b'"START"']
        await memory_broker(name).restart()
        await until(lambda: up.stats.announced == 2, what="announcing after the reconnect")
        await asyncio.wait_for(watcher.wait_connected(), 1)
        watcher.publish("up/in", b'"after"')
        assert await out.wait_count(2) == [b'"START"', b'"AFTER"']  # no second IIP


async def test_announces_again_after_a_reconnect(name: str, watcher: Transport) -> None:
    fbp = await watch(watcher, "fbp")
    up = Upper("up")
    async with running(name, [up]):
        await fbp.wait_count(1)
        await memory_broker(name).restart()
        await until(lambda: up.stats.announced == 2, what="the second announcement")
        assert len(await fbp.wait_count(2)) == 2
