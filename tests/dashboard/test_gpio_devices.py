"""The GPIO devices on the dashboard: configured, not seen, so they are listed as the
participants they are (their role, component gpio/<Kind>, label with the pin, ports), online
while the bridge runs, and the page's send reaches the pin (mock pins, real mosquitto)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.bridges.gpio.factory import mock_factory
from gateway.config import GpioBridgeConfig, GpioDevice
from gateway.mosquitto import Mosquitto
from tests.bridges.test_gpio_bridge import bridge_running
from tests.dashboard.test_api import dashboard
from tests.support.wait import until

pytestmark = pytest.mark.integration


async def test_gpio_devices_are_listed_with_their_roles_and_driven_from_the_page(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = GpioBridgeConfig(
        enabled=True,
        pin_factory="mock",
        devices=(
            ("doorbell", GpioDevice("button", 17)),
            ("porch", GpioDevice("led", 27, label="Porch lamp")),
        ),
    )
    factory = mock_factory()
    graph = "doorbell(gpio/Button) PRESSED -> TOGGLE porch(gpio/LED)"
    try:
        async with (
            dashboard(mosquitto, tmp_path, graph) as running,
            bridge_running(mosquitto.url, config, factory),
        ):
            porch = await running.wait_for("porch", online=True)
            assert (porch["component"], porch["label"]) == ("gpio/LED", "Porch lamp")
            assert [p["id"] for p in porch["inports"]] == ["state", "on", "off", "toggle", "blink"]
            doorbell = await running.wait_for("doorbell", online=True)
            assert doorbell["component"] == "gpio/Button"
            assert doorbell["label"] == "button on GPIO17 (pin 11)"
            assert [p["id"] for p in doorbell["outports"]] == [
                "state", "pressed", "released", "held",
            ]  # fmt: skip
            body = json.dumps({"role": "porch", "port": "on", "data": True})
            assert await running.post("/api/send", body) == (200, {"ok": True})
            await until(lambda: factory.pin(27).state == 1, what="the LED lit from the page")
            _, status = await running.get("/api/status")
            assert status["devices"] == []  # nothing to adopt: they are configured
    finally:
        factory.close()
