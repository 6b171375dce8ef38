"""The serial bridge on the in-process memory:// broker with an in-process fake device: what a
device says reaches the broker and what the broker carries reaches the device, no broker and
no tty started."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from gateway.bridges.serial.bridge import BridgeConfig, SerialBridge
from gateway.bridges.serial.fake_device import FakeDeviceCore, FakePort
from gateway.broker import parse_broker_url
from gateway.transport import open_transport
from gateway.transport.base import Transport
from tests.bridges.test_serial_bridge import BY_ID, fast_config
from tests.support.inbox import Inbox
from tests.support.wait import until


@contextlib.asynccontextmanager
async def bridging(
    url: str, config: BridgeConfig, opened: list[FakePort]
) -> AsyncIterator[SerialBridge]:
    def opener(path: str, baud: int) -> FakePort:
        opened.append(FakePort(FakeDeviceCore(), path))
        return opened[-1]

    async with open_transport(parse_broker_url(url), client_id="bridge") as transport:
        bridge = SerialBridge(config, transport, opener=opener)
        task = asyncio.create_task(bridge.run())
        try:
            yield bridge
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def subscribed(transport: Transport, *topics: str) -> dict[str, Inbox]:
    inboxes = {topic: Inbox() for topic in topics}
    for topic, inbox in inboxes.items():
        await transport.subscribe(topic, inbox)
    return inboxes


async def test_a_fake_device_is_announced_and_its_messages_reach_the_broker(
    tmp_path: Path,
) -> None:
    url = f"memory://serial-{secrets.token_hex(4)}"
    (tmp_path / BY_ID.format(serial="MEM1")).touch()  # what the bridge scans for
    opened: list[FakePort] = []
    async with open_transport(parse_broker_url(url), client_id="watcher") as watcher:
        seen = await subscribed(watcher, "fbp", "mem/out")
        async with bridging(url, fast_config(tmp_path, {"MEM1": "mem"}), opened) as bridge:
            await until(lambda: bool(bridge.announced), what="the device to be announced")
            announced = json.loads((await seen["fbp"].wait_count(1))[0])["payload"]
            assert (announced["role"], announced["inports"][0]["queue"]) == ("mem", "mem/in")
            opened[0].send(0, b"pressed")  # the device speaks on its own
            assert await seen["mem/out"].wait_count(1) == [b"pressed"]
            watcher.publish("mem/in", b"\x00echo\xff")  # and echoes what it is sent
            assert await seen["mem/out"].wait_count(2) == [b"pressed", b"\x00echo\xff"]
