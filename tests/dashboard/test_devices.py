"""The devices the bridges see without a role, in the dashboard, and adopting them: the lists
as the test publishes them, retained on a real mosquitto in the format every bridge uses
(:mod:`gateway.bridges.seen`), followed by the coordinator of a real dashboard. A BLE device
is listed with its details and adopted into ``bridges.ble.roles``; one bridge's malformed list
leaves every other list as it was; on the appliance adopting is a request for root. The serial
bridge itself, end to end: test_serial_adopt.py."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.appliance.adopt import REQUESTS_MODE, apply_requests
from gateway.bridges.seen import SeenDevice, encode_seen, seen_topic
from gateway.config import load_config
from gateway.dashboard.bridges import BridgeSeen
from gateway.errors import GatewayError
from gateway.mosquitto import Mosquitto
from tests.dashboard.test_api import Running, dashboard, watching
from tests.support.wait import until

pytestmark = pytest.mark.integration

SERIAL = "ADOPT0001"
THERMO = "A4:C1:38:12:34:56"
CONFIG = """\
# The test's gateway.yaml.
bridges:
  serial:
    roles:
      OTHER0001: lab/taken
"""
LOGGER = "gateway.dashboard.bridges"


class Restarts:
    """A restart hook that only counts, by bridge."""

    def __init__(self) -> None:
        self.bridges: list[str] = []

    async def __call__(self, bridge: str) -> None:
        self.bridges.append(bridge)


async def devices(running: Running) -> list[dict[str, Any]]:
    _, status = await running.get("/api/status")
    found: list[dict[str, Any]] = status["devices"]
    return found


async def wait_devices(running: Running, check: Any) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        while not check(found := await devices(running)):
            await asyncio.sleep(0.05)
    return found


def thermometers() -> list[SeenDevice]:
    return [
        SeenDevice(
            "ble", THERMO, "LYWSD03MMC", "ATC_123456", 1_700_000_000.5,
            "temperature 21.5 °C, humidity 40 %, rssi -70",
        ),
        SeenDevice("ble", "C4:7C:8D:00:00:01", "HHCCJCY01", "Flower care", None, "moisture 12 %"),
        SeenDevice("ble", "not an address", "", "", None, ""),
    ]  # fmt: skip


async def test_a_ble_device_is_listed_with_its_details_and_adopting_it_writes_its_role(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    restarts = Restarts()
    seen = BridgeSeen(config, restarts)
    async with (
        watching(mosquitto) as probe,
        dashboard(mosquitto, tmp_path, "taken(Talker)", devices=[seen]) as running,
    ):
        payload = encode_seen(thermometers())
        probe.transport.publish(seen_topic("ble"), payload, qos=1, retain=True)
        listed = await wait_devices(running, bool)
        assert listed[0] == {
            "bridge": "ble",
            "id": THERMO,
            "model": "LYWSD03MMC",
            "name": "ATC_123456",
            "last_seen": 1_700_000_000.5,
            "adopt": f'bridges.ble.roles: {{"{THERMO}": ROLE}}',
            "details": "temperature 21.5 °C, humidity 40 %, rssi -70",
        }
        assert [(d["bridge"], d["id"]) for d in listed] == [("ble", d.id) for d in thermometers()]

        async def adopt(device_id: str, role: str, bridge: str = "ble") -> tuple[int, Any]:
            body = {"bridge": bridge, "id": device_id, "role": role}
            return await running.post("/api/devices/adopt", json.dumps(body))

        for device_id, role, error in [
            (THERMO, "taken", "role 'taken' is already a node of the graph"),
            (THERMO, "lab/taken", "'lab/taken' already belongs to 'OTHER0001' (bridges.serial"),
            (THERMO, "kitchen/+", "wildcard"),
            ("not an address", "shed", "'not an address' is not a BLE address"),
        ]:
            status, answer = await adopt(device_id, role)
            assert status == 400 and error in answer["error"], answer
        status, answer = await adopt(THERMO, "kitchen", bridge="serial")
        assert status == 400 and "no bridge lists device" in answer["error"]
        assert config.read_text() == CONFIG and restarts.bridges == []

        assert await adopt(THERMO, "kitchen") == (200, {"ok": True})
        bridges = load_config(config).bridges
        assert bridges.ble.roles == ((THERMO, "kitchen"),)
        assert bridges.serial.roles == (("OTHER0001", "lab/taken"),)
        assert restarts.bridges == ["ble"]
        status, answer = await adopt("C4:7C:8D:00:00:01", "kitchen")
        assert status == 400
        assert f"'kitchen' already belongs to '{THERMO}' (bridges.ble.roles)" in answer["error"]


async def test_a_radio_device_heard_is_listed_and_adopting_it_writes_its_role(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    restarts = Restarts()
    seen = BridgeSeen(config, restarts)
    garden = SeenDevice(
        "rf433", "Nexus-TH/1/136", "Nexus-TH", "", 1_700_000_000.0, "temperature_C 21.5"
    )
    async with (
        watching(mosquitto) as probe,
        dashboard(mosquitto, tmp_path, "taken(Talker)", devices=[seen]) as running,
    ):
        probe.transport.publish(seen_topic("rf433"), encode_seen([garden]), qos=1, retain=True)
        listed = await wait_devices(running, bool)
        assert (listed[0]["bridge"], listed[0]["id"], listed[0]["details"]) == (
            "rf433", "Nexus-TH/1/136", "temperature_C 21.5",
        )  # fmt: skip
        assert listed[0]["adopt"] == 'bridges.rf433.roles: {"Nexus-TH/1/136": ROLE}'
        body = {"bridge": "rf433", "id": "Nexus-TH/1/136", "role": "garden"}
        assert await running.post("/api/devices/adopt", json.dumps(body)) == (200, {"ok": True})
    assert load_config(config).bridges.rf433.roles == (("Nexus-TH/1/136", "garden"),)
    assert restarts.bridges == ["rf433"]


async def test_a_malformed_list_is_one_log_line_and_the_other_lists_stay(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen = BridgeSeen(tmp_path / "gateway.yaml", Restarts(), bridges=("serial", "ble"))
    board = [{"id": "A1", "model": "uno", "name": "A1", "last_seen": 1.5}]  # no details: optional
    async with (
        watching(mosquitto) as probe,
        dashboard(mosquitto, tmp_path, devices=[seen]) as running,
    ):

        def publish(bridge: str, payload: bytes) -> None:
            probe.transport.publish(seen_topic(bridge), payload, qos=1, retain=True)

        publish("serial", json.dumps(board).encode())
        publish("ble", encode_seen(thermometers()[:1]))
        listed = await wait_devices(running, lambda d: len(d) == 2)
        assert [(d["bridge"], d["id"], d["last_seen"]) for d in listed] == [
            ("ble", THERMO, 1_700_000_000.5),
            ("serial", "A1", 1.5),
        ]
        assert listed[1]["details"] == ""
        for bridge, payload, why in [
            ("ble", b'[{"id": 5}]', "'id'"),
            ("serial", b"not JSON", "not JSON"),
            ("rf433", b"[]", "no 'rf433' bridge is enabled"),
        ]:
            caplog.clear()
            with caplog.at_level(logging.WARNING, LOGGER):
                refused = seen.refused
                publish(bridge, payload)
                await until(lambda: seen.refused == refused + 1)  # noqa: B023
            lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
            assert len(lines) == 1, lines
            assert seen_topic(bridge) in lines[0] and why in lines[0]
            assert await devices(running) == listed
        publish("ble", b"[]")  # an empty list empties that bridge's only
        await wait_devices(running, lambda d: [x["id"] for x in d] == ["A1"])


async def test_on_the_appliance_adopting_writes_a_request_for_root(tmp_path: Path) -> None:
    """``gateway-run coordinator --adopt-by-request``: the same checks, then a request in the
    coordinator's directory instead of a write to gateway.yaml; ``gateway-run adopt`` (root)
    applies it with the same function."""
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    requests = tmp_path / "coordinator" / "adopt.json"
    requests.parent.mkdir()
    restarts = Restarts()

    seen = BridgeSeen(config, restarts, requests=requests)
    for bridge, device_id, role, error in [
        ("serial", SERIAL, "lab/taken", "already belongs to 'OTHER0001'"),
        ("ble", SERIAL, "lab/fan", "'ADOPT0001' is not a BLE address"),
        ("ble", THERMO, "lab/taken", "already belongs to 'OTHER0001'"),
    ]:
        with pytest.raises(GatewayError, match=error):
            await seen.adopt(bridge, device_id, role)
    assert not requests.exists()
    await seen.adopt("serial", SERIAL, "lab/lamp")
    await seen.adopt("serial", "ADOPT0002", "lab/fan")
    await seen.adopt("ble", THERMO, "kitchen")
    await seen.adopt("serial", SERIAL, "lab/light")  # a second thought replaces the first
    assert json.loads(requests.read_text()) == [
        {"bridge": "serial", "id": "ADOPT0002", "role": "lab/fan"},
        {"bridge": "ble", "id": THERMO, "role": "kitchen"},
        {"bridge": "serial", "id": SERIAL, "role": "lab/light"},
    ]
    assert requests.stat().st_mode & 0o777 == REQUESTS_MODE
    assert config.read_text() == CONFIG and restarts.bridges == []
    assert apply_requests(requests, config) == {"serial": 2, "ble": 1}
    bridges = load_config(config).bridges
    assert dict(bridges.serial.roles) == {
        "ADOPT0002": "lab/fan", SERIAL: "lab/light", "OTHER0001": "lab/taken",
    }  # fmt: skip
    assert bridges.ble.roles == ((THERMO, "kitchen"),)


async def test_only_the_bridges_that_run_adopt(tmp_path: Path) -> None:
    """``gateway-run coordinator`` follows the enabled bridges only."""
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    seen = BridgeSeen(config, Restarts(), bridges=("serial",))
    with pytest.raises(GatewayError, match=r"no 'ble' bridge is enabled here \(serial\)"):
        await seen.adopt("ble", THERMO, "kitchen")
    assert config.read_text() == CONFIG
