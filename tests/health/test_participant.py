"""The health participant on a real mosquitto: announced on fbp as gateway/Health, its
readings on its ports, alarms at once when the supply flag changes, and the shutdown path up
to the request (nothing is powered off: the request is a file in a test directory)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.bridges.host import BridgeHost
from gateway.broker import parse_broker_url
from gateway.config.model import BatteryMonitorConfig, HealthConfig
from gateway.health.ina219 import Ina219
from gateway.health.participant import COMPONENT, POWEROFF_REQUEST, HealthParticipant
from gateway.health.sample import HealthSources
from gateway.health.status import STATUS_TOPIC, parse_status
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from tests.conftest import Probe
from tests.health.conftest import FakeIna219Bus, Tree
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration

ROLE = "kit"
FAST = HealthConfig(role=ROLE, interval=0.5, sample_interval=0.05,
                    battery=BatteryMonitorConfig(monitor="ina219"))  # fmt: skip


@contextlib.asynccontextmanager
async def running(url: str, participant: HealthParticipant) -> AsyncIterator[None]:
    async with open_transport(parse_broker_url(url), client_id="msgflo-health-test") as transport:
        host = BridgeHost("health", transport, period=60.0)
        async with background(host.run(participant.run)):
            yield


def participant(
    tree: Tree, section: HealthConfig, bus: FakeIna219Bus, tmp: Path
) -> HealthParticipant:
    battery = Ina219(bus, 0x40, 0.1)
    sources = HealthSources(tree.root, data_path=tmp, battery=battery)
    return HealthParticipant(section, sources, tmp, notice=0.2)


def values(probe: Probe, port: str) -> list[Any]:
    return [json.loads(m) for m in probe.received[f"{ROLE}/{port}"]]


async def test_announced_with_its_readings_on_its_ports(
    mosquitto: Mosquitto, probe: Probe, tree: Tree, tmp_path: Path
) -> None:
    bus = FakeIna219Bus()
    bus.set_bus_volts(4.0)
    bus.set_shunt_volts(0.012)
    for topic in ("fbp", f"{ROLE}/+", STATUS_TOPIC):
        await probe.watch(topic)
    health = participant(tree.pi(), FAST, bus, tmp_path)
    async with running(mosquitto.url, health):
        await until(lambda: bool(probe.discovery()), what="the announcement")
        payload = probe.discovery()[0]["payload"]
        assert (payload["role"], payload["component"]) == (ROLE, COMPONENT)
        ports = {port["id"]: port["queue"] for port in payload["outports"]}
        assert ports["temperature"] == f"{ROLE}/temperature" and "alarms" in ports
        # The broker's count comes from $SYS; the first report may precede it.
        await until(lambda: bool(values(probe, "broker_clients")), what="the broker's count")
        assert values(probe, "temperature")[0] == 48.312
        assert values(probe, "battery_voltage")[0] == 4.0
        assert values(probe, "battery_current")[0] == pytest.approx(0.12)
        assert values(probe, "battery_percent")[0] == 82.0
        assert values(probe, "alarms")[0] == {"undervoltage": False, "throttled": False,
                                              "hot": False, "battery_low": False}  # fmt: skip
        count = values(probe, "broker_clients")[0]
        assert isinstance(count, int) and count >= 0  # as the broker last counted
        # Absent sources are not published at all, never as zero.
        assert not values(probe, "wifi_clients") and not values(probe, "supply_online")
        status = parse_status(probe.received[STATUS_TOPIC][-1])
        assert status.role == ROLE and status.readings["load"] == 0.52
    # Stopped cleanly: the dashboard's summary is cleared, not left as if current.
    await until(lambda: probe.received[STATUS_TOPIC][-1] == b"", what="the cleared summary")


async def test_undervoltage_set_and_cleared_is_sent_at_once(
    mosquitto: Mosquitto, probe: Probe, tree: Tree, tmp_path: Path
) -> None:
    slow = replace(FAST, interval=3600.0)  # only a change can send anything after the first
    await probe.watch(f"{ROLE}/alarms")
    async with running(mosquitto.url, participant(tree.pi(), slow, FakeIna219Bus(), tmp_path)):
        await until(lambda: len(values(probe, "alarms")) == 1, what="the first report")
        tree.throttled(0x50005)
        await until(lambda: len(values(probe, "alarms")) == 2, what="the raised alarm")
        assert values(probe, "alarms")[1] == {"undervoltage": True, "throttled": True,
                                              "hot": False, "battery_low": True}  # fmt: skip
        tree.throttled(0x50000)  # gone now, happened since boot
        await until(lambda: len(values(probe, "alarms")) == 3, what="the cleared alarm")
        assert values(probe, "alarms")[2]["undervoltage"] is False


async def test_a_low_battery_is_announced_then_the_power_off_requested(
    mosquitto: Mosquitto, probe: Probe, tree: Tree, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, "gateway.health")
    bus = FakeIna219Bus()
    bus.set_bus_volts(3.4)  # 7.5 %
    section = replace(FAST, shutdown_below=10.0, shutdown_after=0.3)
    requests = tmp_path / "run"
    requests.mkdir()
    (requests / POWEROFF_REQUEST).write_text("left from before\n")
    await probe.watch(f"{ROLE}/shutdown")
    health = participant(tree.pi(), section, bus, requests)
    async with running(mosquitto.url, health):
        notice = await probe.next_json(f"{ROLE}/shutdown", timeout=10)
        assert notice == {"reason": "battery", "battery_percent": 7.5, "threshold": 10.0,
                          "in": 0.2}  # fmt: skip
        request = requests / POWEROFF_REQUEST
        await until(request.exists, what="the power-off request")
        assert json.loads(request.read_text())["reason"] == "battery"
    assert "powering off in" in caplog.text and "power-off requested" in caplog.text
