"""The dashboard's boards on the WiFi (``/api/boards``): adding one and downloading its
secrets.h, on a provisioned gateway's real files, carried out in-process (a laptop) or by
request for root (the appliance, root played by the test calling what the root service runs);
whether each is connected, from a real participant on a real mosquitto."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.appliance.device_requests import REQUESTS, apply_device_requests
from gateway.appliance.devices import device_secrets, render_secrets_h
from gateway.config import GatewayConfig, load_config
from gateway.dashboard.api import NO_BOARDS
from gateway.dashboard.boards import Boards
from gateway.dashboard.settings import DashboardSettings
from gateway.mosquitto import Mosquitto
from tests.appliance.conftest import provision, write_config
from tests.dashboard.test_api import Running, blinker, dashboard
from tests.support.participants import serving

pytestmark = pytest.mark.integration


@pytest.fixture
def kit(tmp_path: Path) -> GatewayConfig:
    config = load_config(write_config(tmp_path))
    provision(config, tmp_path)
    return config


def settings(config: GatewayConfig, *, by_request: bool, reloads: list[str]) -> DashboardSettings:
    boards = Boards(config, by_request=by_request, reload=lambda: reloads.append("reload"))
    return DashboardSettings(boards=boards)


def add(role: str) -> str:
    return json.dumps({"role": role})


async def board(running: Running, role: str) -> dict[str, Any] | None:
    status, listing = await running.get("/api/boards")
    assert status == 200 and listing["available"], listing
    return next((b for b in listing["boards"] if b["role"] == role), None)


async def test_without_the_gateways_files_boards_are_not_offered(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The laptop demo: no data directory, no broker users to add."""
    async with dashboard(mosquitto, tmp_path) as running:
        assert await running.get("/api/boards") == (
            200,
            {"available": False, "problem": NO_BOARDS, "boards": []},
        )
        status, answer = await running.post("/api/boards/add", add("lamp"))
        assert status == 404 and NO_BOARDS in answer["error"]
        status, answer = await running.get("/api/boards/secrets", params={"role": "lamp"})
        assert status == 404
        for method, path in (
            ("GET", "/api/boards"),
            ("GET", "/api/boards/secrets"),
            ("POST", "/api/boards/add"),
            ("POST", "/api/boards/remove"),
            ("POST", "/api/boards/show"),
        ):
            async with running.client.request(method, path) as response:
                assert response.status == 401, path


async def test_added_in_process_its_secrets_h_is_downloaded_and_it_shows_online(
    mosquitto: Mosquitto, tmp_path: Path, kit: GatewayConfig
) -> None:
    reloads: list[str] = []
    options = settings(kit, by_request=False, reloads=reloads)
    async with dashboard(mosquitto, tmp_path, settings=options) as running:
        assert await board(running, "lamp") is None
        assert await running.post("/api/boards/add", add("lamp")) == (
            200,
            {"ok": True, "pending": False},
        )
        assert reloads == ["reload"]
        assert await board(running, "lamp") == {
            "role": "lamp",
            "added": True,
            "online": False,
            "last_seen": None,
            "pending": None,
            "secrets_h": True,
            "problem": None,
        }
        status, download = await running.get("/api/boards/secrets", params={"role": "lamp"})
        assert status == 200
        assert download == {
            "role": "lamp",
            "filename": "secrets.h",
            "text": render_secrets_h(device_secrets(kit, "lamp")),
        }
        # A board of that role announces itself: online, with when it was last heard.
        async with serving(mosquitto.url, [blinker("lamp")], discovery_period=0.3):
            found = None
            async with asyncio.timeout(10):
                while found is None or not found["online"]:
                    await asyncio.sleep(0.05)
                    found = await board(running, "lamp")
            assert isinstance(found["last_seen"], float)

        # Refusals: one line each, nothing done.
        for role, why in (
            ("lamp", "device 'lamp' exists already"),
            ("lamp/#", "wildcard"),
            ("web", "reserved for the gateway"),
        ):
            status, answer = await running.post("/api/boards/add", add(role))
            assert status == 400 and why in answer["error"], answer
        status, answer = await running.post("/api/boards/remove", add("ghost"))
        assert (status, answer) == (400, {"error": "dashboard: boards: remove: no device 'ghost'"})
        assert reloads == ["reload"]

        assert (await running.post("/api/boards/remove", add("lamp")))[0] == 200
        assert reloads == ["reload", "reload"]
        assert await board(running, "lamp") is None
        status, _ = await running.get("/api/boards/secrets", params={"role": "lamp"})
        assert status == 404


async def test_on_the_appliance_the_request_waits_for_root(
    mosquitto: Mosquitto, tmp_path: Path, kit: GatewayConfig
) -> None:
    reloads: list[str] = []
    options = settings(kit, by_request=True, reloads=reloads)
    async with dashboard(mosquitto, tmp_path, settings=options) as running:
        answer = await running.post("/api/boards/add", add("lamp"))
        assert answer == (200, {"ok": True, "pending": True})
        assert (kit.data_dir / REQUESTS).exists() and reloads == []
        waiting = await board(running, "lamp")
        assert waiting is not None
        assert (waiting["added"], waiting["pending"], waiting["secrets_h"]) == (False, "add", False)
        status, _ = await running.get("/api/boards/secrets", params={"role": "lamp"})
        assert status == 404  # not yet

        # What msgflo-devices.service runs (gateway-run devices).
        assert apply_device_requests(kit, lambda: reloads.append("root")) == 1
        done = await board(running, "lamp")
        assert done is not None
        assert (done["added"], done["pending"], done["secrets_h"]) == (True, None, True)
        status, download = await running.get("/api/boards/secrets", params={"role": "lamp"})
        assert status == 200 and "MSGFLO_MQTT_PASSWORD" in download["text"]

        assert (await running.post("/api/boards/remove", add("lamp")))[0] == 200
        removing = await board(running, "lamp")
        assert removing is not None and removing["pending"] == "remove"
        apply_device_requests(kit, lambda: reloads.append("root"))
        assert await board(running, "lamp") is None
    assert reloads == ["root", "root"]


async def test_a_failure_root_left_is_shown(
    mosquitto: Mosquitto, tmp_path: Path, kit: GatewayConfig
) -> None:
    options = settings(kit, by_request=True, reloads=[])
    async with dashboard(mosquitto, tmp_path, settings=options) as running:
        await running.post("/api/boards/add", add("lamp"))

        def refuse() -> None:
            raise_not_reloaded()

        apply_device_requests(kit, refuse)
        shown = await board(running, "lamp")
        assert shown is not None and shown["secrets_h"] and shown["added"]
        assert "was not told to reload" in shown["problem"]


def raise_not_reloaded() -> None:
    from gateway.appliance.devices import reload_pid

    reload_pid(2**22 + 1)()  # above the kernel's pid_max: nobody has it
