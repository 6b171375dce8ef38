"""The serial bridge on the in-process memory:// broker with an in-process fake device: what a
device says reaches the broker and what the broker carries reaches the device, no broker and
no tty started."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from gateway.bridges.serial.bridge import BridgeConfig, SerialBridge
from gateway.bridges.serial.fake_device import FakeDeviceCore, FakePort
from gateway.broker import parse_broker_url
from gateway.transport import open_transport
from gateway.transport.memory import MemoryTransport
from tests.bridges.test_serial_bridge import BY_ID, fast_config
from tests.support.inbox import watch
from tests.support.tasks import background
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
        async with background(bridge.run()):
            yield bridge


async def test_a_fake_device_is_announced_and_its_messages_reach_the_broker(
    memory_url: str, memory_client: MemoryTransport, tmp_path: Path
) -> None:
    (tmp_path / BY_ID.format(serial="MEM1")).touch()  # what the bridge scans for
    opened: list[FakePort] = []
    fbp, out = await watch(memory_client, "fbp", "mem/out")
    async with bridging(memory_url, fast_config(tmp_path, {"MEM1": "mem"}), opened) as bridge:
        await until(lambda: bool(bridge.announced), what="the device to be announced")
        announced = json.loads((await fbp.wait_count(1))[0])["payload"]
        assert (announced["role"], announced["inports"][0]["queue"]) == ("mem", "mem/in")
        opened[0].send(0, b"pressed")  # the device speaks on its own
        assert await out.wait_count(1) == [b"pressed"]
        memory_client.publish("mem/in", b"\x00echo\xff")  # and echoes what it is sent
        assert await out.wait_count(2) == [b"pressed", b"\x00echo\xff"]
