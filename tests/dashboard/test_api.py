"""The dashboard's HTTP API on a real coordinator and a real mosquitto: what the page reads
(participants, log, health) and does (send to an inport), and its refusals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.bridges.seen import SeenDevice
from gateway.broker import parse_broker_url
from gateway.coordinator.library import ComponentLibrary
from gateway.coordinator.runtime_environment import CoordinatorEnvironment
from gateway.coordinator.service import CoordinatorService, ServiceConfig
from gateway.dashboard.api import Dashboard
from gateway.dashboard.log import BufferHandler
from gateway.dashboard.settings import DashboardSettings, WebMqtt
from gateway.dashboard.static import CSP
from gateway.graph import parse_fbp
from gateway.mosquitto import Mosquitto
from gateway.participant import Participant
from tests.conftest import Probe, probing
from tests.support.participants import serving
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration

SECRET = "dashboard-test-secret"
TALKER = """
from gateway.participant import Participant, main

print("talker says hello", flush=True)


class Talker(Participant):
    def __init__(self, role):
        spec = {"component": "Talker", "icon": "comment", "label": "Says what it gets",
                "inports": [{"id": "in"}], "outports": [{"id": "out"}]}
        super().__init__(spec, role)

    def process(self, inport, msg):
        print(f"got {msg.data}", flush=True)
        self.send("out", msg.data)


if __name__ == "__main__":
    raise SystemExit(main(Talker))
"""


@dataclass
class Running:
    client: TestClient[Any, Any]
    service: CoordinatorService
    dashboard: Dashboard
    headers: dict[str, str]

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.client.get(path, headers=self.headers, **kwargs) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: str) -> tuple[int, Any]:
        async with self.client.post(path, data=body, headers=self.headers) as response:
            return response.status, await response.json()

    async def participant(self, role: str) -> dict[str, Any] | None:
        _, status = await self.get("/api/status")
        return next((p for p in status["participants"] if p["role"] == role), None)

    async def wait_for(self, role: str, online: bool) -> dict[str, Any]:
        found: dict[str, Any] | None = None
        async with asyncio.timeout(15):
            while found is None or found["online"] is not online:
                await asyncio.sleep(0.05)
                found = await self.participant(role)
        return found


def bearer(request: web.Request) -> bool:
    # What the runtime server's check does, for a dashboard on an application of the test's own.
    return request.headers.get("Authorization") == f"Bearer {SECRET}"


@contextlib.asynccontextmanager
async def dashboard(
    broker: Mosquitto,
    tmp_path: Path,
    fbp: str = "",
    settings: DashboardSettings | None = None,
    **options: Any,
) -> AsyncIterator[Running]:
    (tmp_path / "Talker.py").write_text(TALKER)
    library = ComponentLibrary().with_component_dir(tmp_path)
    config = ServiceConfig(broker=parse_broker_url(broker.url), library=library)
    service = CoordinatorService(config, parse_fbp(fbp, file="g.fbp"))
    board = Dashboard(CoordinatorEnvironment(service), settings, **options)
    app = web.Application()
    board.setup(app, bearer)
    async with background(service.run()), TestServer(app) as server:
        client: TestClient[Any, Any] = TestClient(server)
        async with client:
            yield Running(client, service, board, {"Authorization": f"Bearer {SECRET}"})


def watching(broker: Mosquitto) -> contextlib.AbstractAsyncContextManager[Probe]:
    # Not the shared "probe" fixture: tests/dashboard/conftest.py gives that name to a probe
    # on the browser tests' own broker.
    return probing(broker.url, "api-probe")


async def test_a_message_sent_arrives_on_the_inports_topic(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with dashboard(mosquitto, tmp_path, "t(Talker)") as running, watching(mosquitto) as probe:
        talker = await running.wait_for("t", online=True)
        assert (talker["component"], talker["icon"], talker["label"]) == (
            "Talker",
            "comment",
            "Says what it gets",
        )
        assert [p["id"] for p in talker["inports"]] == ["in"]
        assert isinstance(talker["last_seen"], float)
        queue = talker["inports"][0]["queue"]
        await probe.watch(queue)
        status, answer = await running.post(
            "/api/send", json.dumps({"role": "t", "port": "in", "data": {"level": 3}})
        )
        assert (status, answer) == (200, {"ok": True})
        assert await probe.next_json(queue) == {"level": 3}

        # What the participant printed is in the log, as its role's lines.
        def texts() -> list[str]:
            return [line.text for line in running.dashboard.log.after(0) if line.source == "t"]

        await until(lambda: "got {'level': 3}" in texts(), what="the participant's output")
        assert "talker says hello" in texts()
        _, log = await running.get("/api/log")
        seqs = [line["seq"] for line in log["lines"]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        _, later = await running.get("/api/log", params={"after": str(seqs[-1])})
        assert later["lines"] == []


async def test_send_refuses_what_it_cannot_deliver(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with dashboard(mosquitto, tmp_path, "t(Talker)") as running:
        await running.wait_for("t", online=True)
        cases = {
            "not json": "the body is not JSON",
            "[1]": "must be a JSON object",
            json.dumps({"role": "nobody", "port": "in", "data": 1}): "no participant 'nobody'",
            json.dumps({"role": "t", "port": "nope", "data": 1}): "t has no inport 'nope'",
            json.dumps({"role": "t", "port": "out", "data": 1}): "t has no inport 'out'",
            json.dumps({"role": "t", "port": "in"}): "no data",
        }
        for body, problem in cases.items():
            status, answer = await running.post("/api/send", body)
            assert status == 400, body
            assert answer["error"].startswith("dashboard: send: "), answer
            assert problem in answer["error"] and "\n" not in answer["error"]


def blinker(role: str) -> Participant:
    # Declares a short discovery period, so that it shows offline a second after it stops.
    spec = {"component": "Blinker", "discoveryPeriod": 1, "inports": [], "outports": ["out"]}
    return Participant(spec, role)


async def test_a_participant_that_stops_shows_offline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with dashboard(mosquitto, tmp_path) as running:
        async with serving(mosquitto.url, [blinker("lamp")], discovery_period=0.3):
            seen = await running.wait_for("lamp", online=True)
        gone = await running.wait_for("lamp", online=False)
        assert gone["component"] == "Blinker"
        # Still says when it was last heard. Each answer converts the registry's monotonic
        # time to epoch seconds with both clocks read then: allow that microseconds' jitter.
        assert gone["last_seen"] >= seen["last_seen"] - 0.001


async def test_everything_under_api_needs_the_secret(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with dashboard(mosquitto, tmp_path) as running:
        for method, path in (
            ("GET", "/api/status"),
            ("GET", "/api/log"),
            ("POST", "/api/send"),
            ("GET", "/api/mqtt"),
            ("POST", "/api/devices/adopt"),
        ):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with running.client.request(method, path, headers=headers) as response:
                    assert response.status == 401, path
                    assert await response.json() == {"error": "dashboard: missing or wrong secret"}
                    assert response.headers["Content-Security-Policy"] == CSP
        status, answer = await running.get("/api/status")
        assert status == 200
        async with running.client.get("/api/status", headers=running.headers) as response:
            assert response.headers["Content-Encoding"] in ("gzip", "deflate")  # over WiFi
        assert answer["participants"] == [] and answer["devices"] == []
        # No health participant here: the dashboard reads the same sources itself.
        assert answer["health"]["source"] == "local"
        assert "uptime" in answer["health"]["readings"]  # this machine has /proc/uptime


async def test_coordinator_warnings_appear_in_the_log_while_it_runs(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with dashboard(mosquitto, tmp_path) as running:
        logging.getLogger("gateway.coordinator.test").warning("the %s is on fire", "broker")
        logging.getLogger("gateway.coordinator.test").info("not a warning")
        _, log = await running.get("/api/log")
        assert [(line["source"], line["text"]) for line in log["lines"]] == [
            ("coordinator", "warning: the broker is on fire")
        ]
    # Only while the dashboard runs: no handler is left behind.
    assert not [h for h in logging.getLogger("gateway").handlers if isinstance(h, BufferHandler)]


async def test_the_mqtt_endpoint(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with dashboard(mosquitto, tmp_path) as running:
        status, answer = await running.get("/api/mqtt")
        assert status == 404 and "no MQTT over WebSockets" in answer["error"]
    web_mqtt = WebMqtt.parse("ws://web:pa%3Ass@127.0.0.1:9001")
    assert web_mqtt == WebMqtt("ws://127.0.0.1:9001/", "web", "pa:ss")
    async with dashboard(mosquitto, tmp_path, settings=DashboardSettings(web_mqtt)) as running:
        _, first = await running.get("/api/mqtt")
        _, second = await running.get("/api/mqtt")
    assert {k: first[k] for k in ("url", "username", "password")} == {
        "url": "ws://127.0.0.1:9001/",
        "username": "web",
        "password": "pa:ss",
    }
    assert re.fullmatch("web-[0-9a-f]{8}", first["prefix"])
    assert first["prefix"] != second["prefix"]


class Bridge:
    """A bridge host's listing, as the later issue's will provide it."""

    def __init__(self) -> None:
        self.adopted: list[tuple[str, str, str]] = []

    def seen(self) -> list[SeenDevice]:
        return [SeenDevice("serial", "A7X3K2", "uno", "Arduino Uno", None, "Repeat, 2 ports")]

    async def adopt(self, bridge: str, device_id: str, role: str) -> None:
        self.adopted.append((bridge, device_id, role))


async def test_adopting_a_device(mosquitto: Mosquitto, tmp_path: Path) -> None:
    body = json.dumps({"bridge": "serial", "id": "A7X3K2", "role": "lamp"})
    async with dashboard(mosquitto, tmp_path) as running:
        status, answer = await running.post("/api/devices/adopt", body)
        assert (status, answer) == (
            400,
            {"error": "dashboard: adopt: no bridge lists device A7X3K2"},
        )
    bridge = Bridge()
    async with dashboard(mosquitto, tmp_path, devices=[bridge]) as running:
        _, status_answer = await running.get("/api/status")
        assert status_answer["devices"] == [
            {
                "bridge": "serial",
                "id": "A7X3K2",
                "model": "uno",
                "name": "Arduino Uno",
                "last_seen": None,
                "adopt": 'bridges.serial.roles: {"A7X3K2": ROLE}',
                "details": "Repeat, 2 ports",
            }
        ]
        assert (await running.post("/api/devices/adopt", body)) == (200, {"ok": True})
        other = json.dumps({"bridge": "ble", "id": "A7X3K2", "role": "lamp"})
        assert (await running.post("/api/devices/adopt", other))[0] == 400
    assert bridge.adopted == [("serial", "A7X3K2", "lamp")]
