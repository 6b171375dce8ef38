"""The GPIO bridge's pure parts: the header, the debouncer, what inports accept, the
participants; and the config's checks, each as its exact file:line message."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gateway.bridges.gpio import header, kinds
from gateway.bridges.gpio.cli import gpio_config, print_pins
from gateway.bridges.gpio.debounce import Debouncer, Step
from gateway.bridges.gpio.factory import on_a_pi, pin_factory
from gateway.config import ConfigError, GpioDevice, parse_config


def test_the_header_table_is_gpiozeros() -> None:
    factory = MockFactory(revision="a02082")
    try:
        pins = factory.board_info.headers["J8"].pins
        for number, info in pins.items():
            expected = int(info.name[4:]) if info.name.startswith("GPIO") else info.name
            assert header.HEADER[number] == expected
        assert len(pins) == 40
    finally:
        factory.close()


@pytest.mark.parametrize(
    ("given", "bcm"), [(17, 17), ("GPIO17", 17), ("bcm4", 4), ("BOARD11", 17), ("BOARD3", 2)]
)
def test_pins_are_named_by_bcm_number_or_header_pin(given: object, bcm: int) -> None:
    assert header.parse_pin(given) == bcm


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (28, "GPIO28 is not on the 40-pin header (BCM 0-27)"),
        ("BOARD6", "header pin 6 is GND, not a GPIO"),
        ("BOARD41", "the header has pins 1-40, not 41"),
        (True, "expected a BCM GPIO number 0-27 or a header pin such as 'BOARD11', got True"),
    ],
)
def test_pins_not_on_the_header_are_refused(given: object, problem: str) -> None:
    with pytest.raises(header.PinNameError) as error:
        header.parse_pin(given)
    assert str(error.value) == problem


def test_a_burst_of_bounces_is_one_change_and_the_last_level_wins() -> None:
    d = Debouncer(0.25)
    assert d.edge(True, 1.0) == Step(True, 1.25)  # reported at once
    assert d.edge(False, 1.0625) == Step()  # bounces within the quiet time
    assert d.edge(True, 1.125) == Step()
    assert d.settle(True, 1.25) == Step()  # settled where it was reported
    assert d.edge(False, 2.0) == Step(False, 2.25)
    assert d.edge(True, 2.125) == Step()
    assert d.settle(True, 2.25) == Step(True, 2.5)  # ended elsewhere: reported, quiet again
    assert d.settle(True, 2.5) == Step()


def test_a_settle_a_clock_tick_early_still_ends_the_quiet_time() -> None:
    d = Debouncer(0.25)
    d.edge(True, 1.0)
    assert d.settle(True, 1.125) == Step()
    assert d.edge(False, 1.125) == Step(False, 1.375)


def test_without_a_bounce_time_every_change_is_reported() -> None:
    d = Debouncer(None)
    assert d.edge(True, 1.0) == Step(True)
    assert d.edge(True, 1.0) == Step()
    assert d.edge(False, 1.0) == Step(False)


@pytest.mark.parametrize(
    ("payload", "on"),
    [(b"true", True), (b"false", False), (b"1", True), (b"0", False), (b'"on"', True),
     (b"off", False), (b" ON ", True)],
)  # fmt: skip
def test_a_switch_takes_booleans_ones_and_on_off(payload: bytes, on: bool) -> None:
    assert kinds.switch(payload) is on


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"2", "expected true/false, 1/0 or on/off, got '2'"),
        (b"maybe", "expected true/false, 1/0 or on/off, got 'maybe'"),
        (b"\xff", "not UTF-8 text (1 bytes)"),
    ],
)
def test_a_switch_refuses_the_rest(payload: bytes, problem: str) -> None:
    with pytest.raises(kinds.BadPayloadError) as error:
        kinds.switch(payload)
    assert str(error.value) == problem


def test_levels_blinks_and_triggers() -> None:
    assert kinds.level(b"0.25") == 0.25
    assert kinds.level(b'"1"') == 1.0
    for bad, problem in ((b"1.5", "got 1.5"), (b"true", "got 'true'"), (b"NaN", "got nan")):
        with pytest.raises(kinds.BadPayloadError, match=problem):
            kinds.level(bad)
    assert kinds.blink(b"true") == kinds.Blink()
    assert kinds.blink(b"0.2") == kinds.Blink(0.2, 0.2)
    assert kinds.blink(b'{"on_time": 1, "n": 3}') == kinds.Blink(1.0, 0.5, 3)
    assert kinds.blink(b"false") is None
    with pytest.raises(kinds.BadPayloadError, match="n: expected a positive integer"):
        kinds.blink(b'{"n": 0}')
    with pytest.raises(kinds.BadPayloadError, match="expected seconds above 0"):
        kinds.blink(b"-1")
    assert kinds.trigger(b"true") and kinds.trigger(b"") and kinds.trigger(b"bang")
    assert not kinds.trigger(b"false") and not kinds.trigger(b"null")


def test_each_kind_is_a_gpio_component_with_its_ports() -> None:
    button = kinds.definition("doorbell", GpioDevice("button", 17))
    assert button.component == "gpio/Button" and button.id == "doorbell-gpio"
    assert button.label == "button on GPIO17 (pin 11)"
    assert [p.id for p in button.outports] == ["state", "pressed", "released", "held"]
    assert [p.queue for p in button.outports][:1] == ["doorbell/state"]
    pwm = kinds.definition("dimmer", GpioDevice("pwm_led", 18, label="Desk"))
    assert pwm.component == "gpio/PWMLED" and pwm.label == "Desk"
    assert [p.id for p in pwm.inports] == ["level", "state", "on", "off", "toggle", "blink"]
    assert {k.component for k in kinds.KINDS.values()} == {
        "Button", "LED", "PWMLED", "Buzzer", "MotionSensor", "DigitalInputDevice",
        "DigitalOutputDevice",
    }  # fmt: skip


def test_auto_off_a_pi_is_mock_pins_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"QEMU Virtual Machine\0")
    assert on_a_pi(model) is None
    caplog.set_level("INFO", "gateway.bridges.gpio")
    factory = pin_factory("auto", model)
    try:
        assert isinstance(factory, MockFactory)
    finally:
        factory.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"not a Raspberry Pi ({model}): using mock pins, nothing on a header is driven"
    ]
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\0")
    assert on_a_pi(model) == "Raspberry Pi 4 Model B Rev 1.4"


CONFIG = """\
bridges:
  gpio:
    devices:
{devices}
"""


def problems(devices: str, extra: str = "") -> tuple[str, ...]:
    with pytest.raises(ConfigError) as error:
        parse_config(CONFIG.format(devices=devices) + extra, "gateway.yaml")
    return error.value.problems


def test_a_good_section_loads_with_the_kinds_defaults() -> None:
    text = CONFIG.format(
        devices="      doorbell: {kind: button, pin: 17, bounce_time: 0.02, hold_time: 2}\n"
        "      lamp: {kind: led, pin: BOARD13}\n"
        "      reed: {kind: input, pin: 5, pull: none, active_high: false}"
    )
    section = parse_config(text, "gateway.yaml").bridges.gpio
    assert dict(section.devices) == {
        "doorbell": GpioDevice("button", 17, bounce_time=0.02, hold_time=2.0),
        "lamp": GpioDevice("led", 27),
        "reed": GpioDevice("input", 5, pull="none", active_high=False),
    }
    assert section.roles == (("doorbell", "doorbell"), ("lamp", "lamp"), ("reed", "reed"))


@pytest.mark.parametrize(
    ("devices", "problem"),
    [
        (
            "      a: {kind: button, pin: 17}\n      b: {kind: led, pin: BOARD11}",
            "gateway.yaml:5: bridges.gpio.devices.b.pin: GPIO17 (pin 11) is already the pin "
            "of 'a' (line 4)",
        ),
        (
            "      a: {kind: led, pin: 30}",
            "gateway.yaml:4: bridges.gpio.devices.a.pin: GPIO30 is not on the 40-pin header "
            "(BCM 0-27)",
        ),
        (
            "      a: {kind: led, pin: 14}",
            "gateway.yaml:4: bridges.gpio.devices.a.pin: GPIO14 (pin 8) is in use: the serial "
            "console's UART (bridges.gpio.uart_console: false once it is off it)",
        ),
        (
            "      a: {kind: led, pin: 17, pull: up}",
            "gateway.yaml:4: bridges.gpio.devices.a.pull: a led has no pull (its keys: kind, "
            "pin, label, active_high)",
        ),
        (
            "      a: {kind: motion, pin: 3}",
            "gateway.yaml:4: bridges.gpio.devices.a.pin: GPIO3 (pin 5) has a fixed pull-up on "
            "the board: pull: up only",
        ),
        (
            "      a: {kind: input, pin: 6, pull: none}",
            "gateway.yaml:4: bridges.gpio.devices.a.pull: pull: none needs active_high (true: "
            "active when the pin is high)",
        ),
        (
            "      a: {kind: button, pin: 6, active_high: true}",
            "gateway.yaml:4: bridges.gpio.devices.a.active_high: only with pull: none (pull: up "
            "makes the input active when low)",
        ),
        (
            "      a: {kind: lamp, pin: 6}",
            "gateway.yaml:4: bridges.gpio.devices.a.kind: expected one of button, led, pwm_led, "
            "buzzer, motion, input, output, got 'lamp'",
        ),
        ("      a: {kind: led}", "gateway.yaml:4: bridges.gpio.devices.a: missing key 'pin'"),
    ],
)
def test_each_config_error_is_one_line_with_file_and_line(devices: str, problem: str) -> None:
    assert problems(devices) == (problem,)


def test_the_uart_pins_are_free_without_the_console_and_i2c_pins_taken_by_a_battery() -> None:
    free = CONFIG.format(devices="      a: {kind: led, pin: 14}") + "    uart_console: false\n"
    assert parse_config(free, "gateway.yaml").bridges.gpio.devices[0][1].pin == 14
    battery = "  health:\n    battery:\n      monitor: ina219\n"
    assert problems("      a: {kind: button, pin: 2}", battery) == (
        "gateway.yaml:4: bridges.gpio.devices.a.pin: GPIO2 (pin 3) is in use: I2C bus 1, "
        "which a configured I2C device uses",
    )


def test_pins_prints_the_header_with_each_device_at_its_pin(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.format(devices="      doorbell: {kind: button, pin: BOARD11}"))
    out = io.StringIO()
    print_pins(gpio_config(config), out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 20  # two pins a row
    assert lines[0].split() == ["1", "3V3", "|", "2", "5V"]
    assert lines[5].split() == ["doorbell", "(button)", "11", "GPIO17", "|", "12", "GPIO18"]
    assert lines[3].endswith("8 GPIO14 TXD   kept: the serial console's UART")
    assert gpio_config(None, "mock").pin_factory == "mock"
