"""A participant whose network to the broker is cut: with a persistent session
(``?sessionExpiry=N``) the QoS 1 messages sent meanwhile arrive after it is back."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.participant import Message, Participant, serve
from gateway.transport import open_transport
from tests.support.netfault import Proxy

pytestmark = pytest.mark.integration

SENT = 20


class Sink(Participant):
    def __init__(self) -> None:
        super().__init__({"component": "Sink", "inports": [{"id": "in", "qos": 1}]}, "sink")
        self.got: list[object] = []

    def process(self, inport: str, msg: Message) -> None:
        self.got.append(msg.data)


@pytest.mark.parametrize(("option", "kept"), [("?sessionExpiry=60", True), ("", False)])
async def test_qos1_messages_sent_while_the_network_is_cut_arrive_after_it_is_back(
    mosquitto: Mosquitto, option: str, kept: bool
) -> None:
    sink = Sink()
    async with Proxy(mosquitto.port) as proxy:
        url = f"mqtt://127.0.0.1:{proxy.port}{option}"
        task = asyncio.create_task(serve([sink], url))
        try:
            async with asyncio.timeout(10):
                while sink.stats.announced == 0:
                    await asyncio.sleep(0.01)
            async with open_transport(parse_broker_url(mosquitto.url), client_id="pub") as pub:
                await asyncio.wait_for(pub.wait_connected(), 10)
                pub.publish("sink/in", b'"before"', qos=1)
                async with asyncio.timeout(10):
                    while sink.got != ["before"]:
                        await asyncio.sleep(0.01)
                cut = asyncio.create_task(proxy.cut(1.0))
                await asyncio.sleep(0)  # the cut has begun: connections are gone
                for i in range(SENT):
                    pub.publish("sink/in", json.dumps(i).encode(), qos=1)
                await pub.flush()  # the broker has them
                await cut
                # Until the sink is back: on a clean session it missed what came before.
                async with asyncio.timeout(20):
                    while "after" not in sink.got:
                        pub.publish("sink/in", b'"after"', qos=1)
                        await asyncio.sleep(0.2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    during = [m for m in sink.got if isinstance(m, int)]
    assert during == (list(range(SENT)) if kept else [])
