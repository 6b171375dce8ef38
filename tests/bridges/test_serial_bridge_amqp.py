"""The serial bridge on RabbitMQ (``msgflo-serial --broker amqp://...``): every transport the
gateway supports serves the bridge, so a device joins an AMQP deployment as it joins MQTT."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from gateway.bridges.serial.fake_device import FakePort
from gateway.broker import parse_broker_url
from gateway.transport import open_transport
from tests.bridges.test_serial_bridge import BY_ID, fast_config
from tests.bridges.test_serial_bridge_memory import bridging
from tests.support.amqp_broker import RabbitMQ
from tests.support.inbox import Inbox
from tests.support.wait import until

pytestmark = pytest.mark.integration


async def test_a_fake_device_on_amqp_is_announced_and_exchanges_messages(
    rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    role = f"serial-{secrets.token_hex(3)}"
    (tmp_path / BY_ID.format(serial="AMQP1")).touch()
    opened: list[FakePort] = []
    async with open_transport(parse_broker_url(rabbitmq.url), client_id="probe") as probe:
        await probe.wait_connected()
        # The discovery queue is shared by the session's tests: look for this role's.
        fbp, out = Inbox(), Inbox()
        await probe.subscribe("fbp", fbp)
        config = fast_config(tmp_path, {"AMQP1": role})
        async with bridging(rabbitmq.url, config, opened) as bridge:
            await until(lambda: bool(bridge.announced), what="the device to be announced")

            def announced() -> bool:
                return any(json.loads(m)["payload"]["role"] == role for m in fbp.got)

            await until(announced, what=f"{role}'s discovery message")
            await probe.subscribe(f"{role}/out", out)  # the port's queue, bound to its exchange
            opened[0].send(0, b"pressed")
            assert await out.wait_count(1) == [b"pressed"]
            probe.publish(f"{role}/in", b"\x00echo\xff")
            assert await out.wait_count(2) == [b"pressed", b"\x00echo\xff"]
