"""Adopting a serial board from the dashboard, end to end: the real serial bridge with a fake
device on a pty, a real mosquitto and coordinator. The bridge's list of boards without a role
reaches ``/api/status``; adopting one writes gateway.yaml and, once the bridge is restarted
(the test's restart hook), the board is announced under its new role."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.bridges.serial.bridge import SerialBridge
from gateway.bridges.serial.fake_device import PtyDevice
from gateway.bridges.serial.roles import RoleMap
from gateway.broker import parse_broker_url
from gateway.config import load_config
from gateway.dashboard.bridges import BridgeSeen
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from tests.bridges.test_serial_bridge import BY_ID, announcements, fast_config
from tests.dashboard.test_api import dashboard, watching
from tests.dashboard.test_devices import CONFIG, SERIAL, wait_devices
from tests.support.wait import until

pytestmark = pytest.mark.integration


def described(device: dict[str, Any]) -> str:
    return f"{device['model']} {device['details']}"


class BridgeHost:
    """The serial bridge run as the appliance runs it, from the file's roles; ``restart`` is
    the dashboard's restart hook."""

    def __init__(self, mosquitto: Mosquitto, config: Path, devices: Path) -> None:
        self.url = parse_broker_url(mosquitto.url)
        self.config = config
        self.devices = devices
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    async def _serve(self) -> None:
        section = load_config(self.config).bridges.serial
        config = dataclasses.replace(fast_config(self.devices), roles=RoleMap(dict(section.roles)))
        async with open_transport(self.url, client_id=f"serial-{self.restarts}") as transport:
            await SerialBridge(config, transport).run()

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def restart(self, bridge: str) -> None:
        assert bridge == "serial"
        await self.stop()
        self.restarts += 1
        self.start()


@contextlib.asynccontextmanager
async def hosted(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[BridgeHost]:
    (tmp_path / "dev").mkdir()
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    host = BridgeHost(mosquitto, config, tmp_path / "dev")
    host.start()
    try:
        yield host
    finally:
        await host.stop()


async def test_an_unconfigured_board_is_listed_and_adopting_it_gives_it_the_role(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # Not the "probe" fixture: tests/dashboard/conftest.py's is on another broker.
    async with watching(mosquitto) as probe, hosted(mosquitto, tmp_path) as host:
        await probe.watch("fbp")
        seen = BridgeSeen(host.config, host.restart)
        async with (
            PtyDevice() as device,
            dashboard(mosquitto, tmp_path, "taken(Talker)", devices=[seen]) as running,
        ):
            device.plug(tmp_path / "dev", BY_ID.format(serial=SERIAL))
            # Listed again once the board said what it is (its component: the model, or since
            # the bridge host the details).
            listed = await wait_devices(running, lambda d: d and "Repeat" in described(d[0]))
            assert len(listed) == 1
            board = listed[0]
            assert (board["bridge"], board["id"], board["name"]) == ("serial", SERIAL, SERIAL)
            assert isinstance(board["last_seen"], float)
            assert SERIAL in board["adopt"]
            await until(lambda: bool(announcements(probe, SERIAL)))

            async def adopt(role: str) -> tuple[int, Any]:
                body = {"bridge": "serial", "id": SERIAL, "role": role}
                return await running.post("/api/devices/adopt", json.dumps(body))

            for role, error in [
                ("taken", "role 'taken' is already a node of the graph"),
                ("lab/taken", "role 'lab/taken' already belongs to 'OTHER0001'"),
                ("lab/#", "wildcard"),
            ]:
                status, answer = await adopt(role)
                assert status == 400 and error in answer["error"]
                assert "\n" not in answer["error"]
            assert host.config.read_text() == CONFIG and host.restarts == 0

            assert await adopt("lab/lamp") == (200, {"ok": True})
            roles = load_config(host.config).bridges.serial.roles
            assert roles == (("ADOPT0001", "lab/lamp"), ("OTHER0001", "lab/taken"))
            assert host.restarts == 1
            await until(lambda: bool(announcements(probe, "lab/lamp")))
            assert announcements(probe, "lab/lamp")[-1]["component"] == "Repeat"
            await wait_devices(running, lambda d: d == [])
        # The bridge stopping cleanly empties its list.
        await host.stop()
        await until(lambda: seen.seen() == [])
