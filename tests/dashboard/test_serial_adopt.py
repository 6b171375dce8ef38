"""Adopting a serial board from the dashboard, end to end: the real serial bridge with a fake
device on a pty, a real mosquitto and coordinator. The bridge's list of boards without a role
reaches ``/api/status``; adopting one writes gateway.yaml and, once the bridge is restarted
(the test's restart hook), the board is announced under its new role."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.appliance.adopt import REQUESTS_MODE, apply_requests
from gateway.bridges.serial.bridge import SEEN_TOPIC, SerialBridge
from gateway.bridges.serial.fake_device import PtyDevice
from gateway.bridges.serial.roles import RoleMap
from gateway.broker import parse_broker_url
from gateway.config import load_config
from gateway.dashboard.serial import SerialSeen
from gateway.errors import GatewayError
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from tests.bridges.test_serial_bridge import BY_ID, announcements, fast_config
from tests.dashboard.test_api import Running, dashboard, watching
from tests.support.wait import until

pytestmark = pytest.mark.integration

SERIAL = "ADOPT0001"
CONFIG = """\
# The test's gateway.yaml.
bridges:
  serial:
    roles:
      OTHER0001: lab/taken
"""


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

    async def restart(self) -> None:
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


async def devices(running: Running) -> list[dict[str, Any]]:
    _, status = await running.get("/api/status")
    found: list[dict[str, Any]] = status["devices"]
    return found


async def wait_devices(running: Running, check: Any) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        while not check(found := await devices(running)):
            await asyncio.sleep(0.05)
    return found


async def test_an_unconfigured_board_is_listed_and_adopting_it_gives_it_the_role(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # Not the "probe" fixture: tests/dashboard/conftest.py's is on another broker.
    async with watching(mosquitto) as probe, hosted(mosquitto, tmp_path) as host:
        await probe.watch("fbp")
        seen = SerialSeen(host.config, host.restart)
        async with (
            PtyDevice() as device,
            dashboard(mosquitto, tmp_path, "taken(Talker)", devices=[seen]) as running,
        ):
            device.plug(tmp_path / "dev", BY_ID.format(serial=SERIAL))
            listed = await wait_devices(running, lambda d: d and d[0]["model"] == "Repeat")
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


async def test_a_malformed_list_is_one_log_line_and_ignored(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen = SerialSeen(tmp_path / "gateway.yaml", lambda: asyncio.sleep(0))
    good = [{"id": "A1", "model": "uno", "name": "A1", "last_seen": 1.5}]
    async with (
        watching(mosquitto) as probe,
        dashboard(mosquitto, tmp_path, devices=[seen]) as running,
    ):
        probe.transport.publish(SEEN_TOPIC, json.dumps(good).encode(), qos=1, retain=True)
        listed = await wait_devices(running, bool)
        assert [(d["id"], d["last_seen"]) for d in listed] == [("A1", 1.5)]
        caplog.clear()
        with caplog.at_level(logging.WARNING, "gateway.dashboard.serial"):
            probe.transport.publish(SEEN_TOPIC, b'[{"id": 5}]', qos=1)
            await until(lambda: bool(caplog.records))
            await asyncio.sleep(0.2)
        lines = [r.getMessage() for r in caplog.records if r.name == "gateway.dashboard.serial"]
        assert len(lines) == 1 and SEEN_TOPIC in lines[0] and "'id'" in lines[0]
        assert [d["id"] for d in await devices(running)] == ["A1"]
        probe.transport.publish(SEEN_TOPIC, b"[]", qos=1, retain=True)  # no retained leftovers
        await wait_devices(running, lambda d: d == [])


async def test_on_the_appliance_adopting_writes_a_request_for_root(tmp_path: Path) -> None:
    """``gateway-run coordinator --adopt-by-request``: the same checks, then a request in the
    coordinator's directory instead of a write to gateway.yaml; ``gateway-run adopt`` (root)
    applies it with the same function."""
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    requests = tmp_path / "coordinator" / "adopt.json"
    requests.parent.mkdir()
    restarts: list[int] = []

    async def restart() -> None:
        restarts.append(1)

    seen = SerialSeen(config, restart, requests=requests)
    with pytest.raises(GatewayError, match="already belongs to 'OTHER0001'"):
        await seen.adopt("serial", SERIAL, "lab/taken")
    assert not requests.exists()
    await seen.adopt("serial", SERIAL, "lab/lamp")
    await seen.adopt("serial", "ADOPT0002", "lab/fan")
    await seen.adopt("serial", SERIAL, "lab/light")  # a second thought replaces the first
    assert json.loads(requests.read_text()) == [
        {"bridge": "serial", "id": "ADOPT0002", "role": "lab/fan"},
        {"bridge": "serial", "id": SERIAL, "role": "lab/light"},
    ]
    assert requests.stat().st_mode & 0o777 == REQUESTS_MODE
    assert config.read_text() == CONFIG and restarts == []
    assert apply_requests(requests, config) == 2
    roles = dict(load_config(config).bridges.serial.roles)
    assert roles == {"ADOPT0002": "lab/fan", SERIAL: "lab/light", "OTHER0001": "lab/taken"}
