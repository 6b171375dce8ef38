"""The GPIO bridge end to end on gpiozero's mock pins: the bridge on a real mosquitto, pins
driven with the mock pin API from another thread (as gpiozero's callback threads do), a
coordinator's graph wiring a button to an LED, PWM levels, debounce, held, bad messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory, MockPin

from gateway.bridges.gpio.bridge import GpioBridge
from gateway.bridges.gpio.factory import mock_factory
from gateway.bridges.host import BridgeHost
from gateway.broker import parse_broker_url
from gateway.config import GpioBridgeConfig, GpioDevice
from gateway.graph import parse_fbp
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from tests.conftest import Probe
from tests.support.coordinating import coordinating
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration

PERIOD = 5.0


def section(**devices: GpioDevice) -> GpioBridgeConfig:
    return GpioBridgeConfig(
        enabled=True, pin_factory="mock", period=PERIOD, devices=tuple(sorted(devices.items()))
    )


@pytest.fixture
def factory() -> Any:
    made = mock_factory()
    yield made
    made.close()


@contextlib.asynccontextmanager
async def bridge_running(
    url: str, config: GpioBridgeConfig, factory: MockFactory
) -> AsyncIterator[GpioBridge]:
    bridge = GpioBridge(config, factory)
    async with open_transport(parse_broker_url(url), client_id="msgflo-gpio-test") as transport:
        host = BridgeHost("gpio", transport, period=config.period)
        async with background(host.run(bridge.run)):
            await until(lambda: len(host.announced()) == len(config.devices) - len(bridge.failed))
            yield bridge


def pin(factory: MockFactory, number: int) -> MockPin:
    return factory.pin(number)


async def drive(*steps: Callable[[], None]) -> None:
    """Drive mock pins from a thread of its own, as the pin library's callbacks come."""

    def run() -> None:
        for step in steps:
            step()

    await asyncio.to_thread(run)


def values(probe: Probe, topic: str) -> list[Any]:
    return [json.loads(m) for m in probe.received[topic]]


async def test_a_graph_wires_a_button_to_an_led_and_a_press_lights_it(
    mosquitto: Mosquitto, probe: Probe, factory: MockFactory
) -> None:
    config = section(
        doorbell=GpioDevice("button", 17), lamp=GpioDevice("led", 27, label="Porch lamp")
    )
    graph = parse_fbp("doorbell(gpio/Button) PRESSED -> TOGGLE lamp(gpio/LED)")
    button, led = pin(factory, 17), pin(factory, 27)
    await probe.watch("fbp")
    await probe.watch("doorbell/state")
    async with (
        bridge_running(mosquitto.url, config, factory),
        coordinating(mosquitto.url, graph, expiry=1.5) as coordinator,
    ):
        await until(lambda: sum(s.resolved for s in coordinator.edge_states()) == 1)
        assert led.state == 0
        await drive(button.drive_low)  # pressed: the pull-up holds it high
        await until(lambda: led.state == 1, what="the LED lit by the press")
        await drive(button.drive_high)
        await probe.wait_count("doorbell/state", 2)  # released (not a bounce of the press)
        await drive(button.drive_low)
        await until(lambda: led.state == 0, what="the LED toggled off by the second press")
    announced = {d["payload"]["role"]: d["payload"] for d in probe.discovery()}
    assert announced["lamp"]["component"] == "gpio/LED"
    assert announced["lamp"]["label"] == "Porch lamp"
    assert announced["doorbell"]["id"] == "doorbell-gpio"


async def test_pwm_levels_and_bad_messages(
    mosquitto: Mosquitto, probe: Probe, factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    config = section(dimmer=GpioDevice("pwm_led", 18), relay=GpioDevice("output", 22))
    led, relay = pin(factory, 18), pin(factory, 22)
    async with bridge_running(mosquitto.url, config, factory) as bridge:
        send = probe.transport.publish
        send("dimmer/level", b"0.25")
        await until(lambda: led.state == 0.25, what="level 0.25")
        assert led.frequency == 100
        caplog.set_level(logging.WARNING, "gateway.bridges.gpio")
        send("dimmer/level", b"1.5")
        send("dimmer/blink", b'{"n": 0}')
        send("relay/state", b"maybe")
        send("dimmer/level", b"0.75")  # the barrier: handled after the bad ones
        await until(lambda: led.state == 0.75, what="level 0.75")
        assert bridge.bad == 3
        send("relay/on", b"true")
        await until(lambda: relay.state == 1)
        send("relay/toggle", b"false")  # a trigger ignores false
        send("relay/state", b'"off"')
        await until(lambda: relay.state == 0)
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.bridges.gpio"]
    where = "gpio dimmer (pwm_led on GPIO18 (pin 12))"
    assert lines == [
        f"{where}: inport level: expected a number 0-1, got 1.5; message dropped (1 so far)",
        f"{where}: inport blink: n: expected a positive integer or null, got '{{\"n\": 0}}'; "
        "message dropped (2 so far)",
        "gpio relay (output on GPIO22 (pin 15)): inport state: expected true/false, 1/0 or "
        "on/off, got 'maybe'; message dropped (3 so far)",
    ]


async def test_bounces_within_bounce_time_are_one_press_and_one_release(
    mosquitto: Mosquitto, probe: Probe, factory: MockFactory
) -> None:
    config = section(key=GpioDevice("button", 23, bounce_time=0.5))
    key = pin(factory, 23)
    for port in ("state", "pressed", "released"):
        await probe.watch(f"key/{port}")
    async with bridge_running(mosquitto.url, config, factory):
        bouncy = [key.drive_low, key.drive_high] * 3 + [key.drive_low]
        await drive(*bouncy)  # ends pressed
        await probe.wait_count("key/state", 1)
        await drive(*[key.drive_high, key.drive_low] * 3, key.drive_high)  # ends released
        await probe.wait_count("key/state", 2)
        # The barrier: a later, distinct press; had a bounce leaked, it came before this.
        await drive(key.drive_low)
        await probe.wait_count("key/state", 3)
    assert values(probe, "key/state") == [True, False, True]
    assert values(probe, "key/pressed") == [True, True]
    assert values(probe, "key/released") == [True]


async def test_held_is_sent_once_a_press_lasts_hold_time(
    mosquitto: Mosquitto, probe: Probe, factory: MockFactory
) -> None:
    config = section(key=GpioDevice("button", 24, bounce_time=0.01, hold_time=0.3))
    key = pin(factory, 24)
    for port in ("state", "held"):
        await probe.watch(f"key/{port}")
    async with bridge_running(mosquitto.url, config, factory) as bridge:
        await drive(key.drive_low)
        await probe.wait_count("key/state", 1)
        await drive(key.drive_high)  # a short press: its held timer is cancelled
        await probe.wait_count("key/state", 2)
        await drive(key.drive_low)
        await probe.wait_count("key/state", 3)
        opened = bridge.devices["key"]
        await until(lambda: opened.held is None, what="the long press's held timer")
        await drive(key.drive_high)
        await probe.wait_count("key/state", 4)  # after every held published before it
    assert values(probe, "key/held") == [True]


async def test_inputs_send_their_level_at_start_and_on_change(
    mosquitto: Mosquitto, probe: Probe, factory: MockFactory
) -> None:
    config = section(
        hall=GpioDevice("motion", 5), door=GpioDevice("input", 6, pull="none", active_high=True)
    )
    motion, door = pin(factory, 5), pin(factory, 6)
    await probe.watch("hall/motion")
    await probe.watch("door/state")
    async with bridge_running(mosquitto.url, config, factory):
        await probe.wait_count("hall/motion", 1)
        await probe.wait_count("door/state", 1)
        await drive(motion.drive_high, door.drive_high)
        await probe.wait_count("hall/motion", 2)
        await probe.wait_count("door/state", 2)
    assert values(probe, "hall/motion") == [False, True]
    assert values(probe, "door/state") == [False, True]


async def test_a_device_that_cannot_be_opened_is_one_line_and_the_others_run(
    mosquitto: Mosquitto, probe: Probe, factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    busy = factory.pin(26)
    holder = LED(26, pin_factory=factory)  # another device holds the pin
    try:
        config = section(lamp=GpioDevice("led", 26), bell=GpioDevice("buzzer", 12))
        caplog.set_level(logging.ERROR, "gateway.bridges.gpio")
        async with bridge_running(mosquitto.url, config, factory) as bridge:
            assert bridge.failed == ["lamp"]
            probe.transport.publish("bell/on", b"")
            await until(lambda: factory.pin(12).state == 1)
    finally:
        holder.close()
    assert busy is factory.pin(26)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("gpio lamp (led on GPIO26 (pin 37)): cannot open: GPIOPinInUse: ")
