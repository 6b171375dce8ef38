"""Roles from USB identities and by-id names, msgflo-serial's options and gateway.yaml section,
the one start function, and the real command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.appliance.run import run_bridge
from gateway.bridges import run
from gateway.bridges.run import Section
from gateway.bridges.serial.bridge import bridge_config
from gateway.bridges.serial.cli import main, parser, serial_config, split_role
from gateway.bridges.serial.fake_device import PtyDevice
from gateway.bridges.serial.roles import PortIdentity, RoleMap, serial_number
from gateway.bridges.serial.session import SessionConfig
from gateway.broker import BrokerUrl, parse_broker_url
from gateway.config import GatewayConfig, SerialBridgeConfig, load_config
from gateway.errors import ConfigError, GatewayError
from gateway.mosquitto import Mosquitto
from gateway.participant.discovery import DEFAULT_PERIOD
from tests.conftest import Probe

UNO = "/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_75833353035351A0C1E1-if00"
CH340 = "/dev/serial/by-id/usb-1a86_USB2.0-Serial-if00-port0"
FTDI = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"


@pytest.mark.parametrize(
    ("path", "serial", "role"),
    [
        (UNO, "75833353035351A0C1E1", "75833353035351A0C1E1"),
        (FTDI, "A50285BI", "A50285BI"),
        (CH340, None, "1a86_USB2.0-Serial"),
        ("/dev/ttyACM0", None, "ttyACM0"),
    ],
)
def test_roles_derive_from_the_usb_serial_number(path: str, serial: str | None, role: str) -> None:
    assert serial_number(path) == serial
    assert PortIdentity.of(path).derived_role == role


def test_configured_roles_match_serial_number_link_name_or_path() -> None:
    roles = RoleMap(
        {
            "75833353035351A0C1E1": "lab/button",
            "usb-1a86_USB2.0-Serial-if00-port0": "pump",
            "/dev/ttyACM0": "by-path",
        }
    )
    assert roles.role_for(PortIdentity.of(UNO)) == "lab/button"
    assert roles.role_for(PortIdentity.of(CH340)) == "pump"
    assert roles.role_for(PortIdentity.of(FTDI)) == "A50285BI"
    assert roles.role_for(PortIdentity.of("/dev/ttyACM0")) == "by-path"


@pytest.mark.parametrize("text", ["nokey", "=role", "serial="])
def test_a_role_option_without_a_key_or_role_is_a_one_line_error(text: str) -> None:
    with pytest.raises(GatewayError, match=r"--role .*expected SERIALNUMBER=ROLE"):
        split_role(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("s=a/+/b", "--role 's': role 'a/+/b' contains an MQTT wildcard"),
        ("s=lab/\udc80", "--role 's': role 'lab/\\udc80' contains whitespace or a control"),
        ("s=" + "r" * 60_001, "--role 's': a role of 60001 bytes is longer than 60000"),
        ("s=/lab", "--role 's': role '/lab' starts with '/'"),
    ],
)
def test_roles_from_options_are_checked_as_in_gateway_yaml(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        serial_config(parser().parse_args(["--role", text]))
    (problem,) = caught.value.problems
    assert problem.startswith(message)


def gateway_yaml(directory: Path, serial: str) -> Path:
    path = directory / "gateway.yaml"
    path.write_text("access_point: {enabled: false}\nbridges:\n  serial:\n" + serial)
    return path


def test_options_override_the_serial_section_of_gateway_yaml(tmp_path: Path) -> None:
    path = gateway_yaml(
        tmp_path,
        "    globs: ['/dev/ttyACM*']\n    baud: 57600\n    period: 30\n"
        "    roles:\n      AAA: from-file\n      BBB: b\n",
    )
    args = parser().parse_args(["--config", str(path), "--role", "AAA=from-cli", "--baud", "9600"])
    config = serial_config(args)
    assert config == replace(
        load_config(path).bridges.serial, baud=9600, roles=(("AAA", "from-cli"), ("BBB", "b"))
    )
    assert config.globs == ("/dev/ttyACM*",)
    assert config.period == 30.0


def test_options_alone_give_the_defaults_of_gateway_yaml() -> None:
    assert serial_config(parser().parse_args([])) == GatewayConfig().bridges.serial


def test_gateway_yaml_defaults_are_the_bridge_defaults() -> None:
    section, session = SerialBridgeConfig(), SessionConfig(role="-")
    assert section.period == DEFAULT_PERIOD
    assert (section.ping_interval, section.missed_pongs) == (
        session.ping_interval,
        session.max_missed_pongs,
    )


@pytest.mark.parametrize(
    ("serial", "problem"),
    [
        ("    baud: 12345\n", "4: bridges.serial.baud: expected a baud rate this system supports"),
        ("    bogus: 1\n", "4: bridges.serial.bogus: unknown key"),
        ("    roles: [a]\n", "4: bridges.serial.roles: expected a mapping of serial numbers"),
        ("    period: 0\n", "4: bridges.serial.period: expected a positive number of seconds"),
    ],
)
def test_a_bad_gateway_yaml_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serial: str, problem: str
) -> None:
    path = gateway_yaml(tmp_path, serial)
    assert main(["--config", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"msgflo-serial: error: {path}:{problem}")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--baud", "12345"], "--baud: expected a baud rate this system supports, got 12345"),
        (["--period", "-1"], "--period: expected a positive number of seconds, got -1.0"),
        (["--missed-pongs", "0"], "--missed-pongs: expected a positive integer, got 0"),
        (["--glob", ""], "--glob: expected a non-empty glob pattern, got ''"),
        (["--role", "A=x", "--role", "B=x"], "--role 'B': role 'x' already belongs to 'A'"),
    ],
)
def test_bad_options_are_checked_by_the_config_checks(options: list[str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        serial_config(parser().parse_args(options))
    assert caught.value.problems == (problem,)


def test_the_command_and_the_appliance_start_the_bridge_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[str, Section, BrokerUrl]] = []

    async def serve(
        name: str, section: Section, broker: BrokerUrl, side: run.DeviceSide | None = None
    ) -> None:
        run.device_side(name, section)  # what the host would run is made
        started.append((name, section, broker))

    monkeypatch.setattr(run, "serve", serve)
    path = gateway_yaml(tmp_path, "    baud: 57600\n    ping_interval: 2\n    roles: {A1: lamp}\n")
    assert main(["--config", str(path), "--broker", "mqtt://localhost:1"]) == 0
    broker = parse_broker_url("mqtt://localhost:1")
    assert run_bridge("serial", load_config(path), broker) == 0
    (name, command, _), (_, appliance, persistent) = started
    assert name == "serial"
    assert command == appliance == load_config(path).bridges.serial
    assert persistent.options["sessionExpiry"] == "300"
    config = bridge_config(load_config(path).bridges.serial)
    assert (config.baud, config.session.ping_interval) == (57600, 2.0)
    assert config.roles.roles == {"A1": "lamp"}


def test_the_appliance_names_the_bridges_it_knows() -> None:
    with pytest.raises(GatewayError, match=r"unknown bridge 'nope' \(known: serial, ble"):
        run_bridge("nope", GatewayConfig(), parse_broker_url("mqtt://localhost:1"))


def test_main_reports_bad_input_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--role", "oops"]) == 2
    assert capsys.readouterr().err.strip() == (
        "msgflo-serial: error: --role 'oops': expected SERIALNUMBER=ROLE"
    )


@pytest.mark.integration
async def test_the_command_announces_a_device_and_forwards_its_messages(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    await probe.watch("cli/echo/out")
    command = [sys.executable, "-c", "from gateway.bridges.serial.cli import main; main()"]
    args = ["--broker", mosquitto.url, "--glob", str(tmp_path / "usb-*"), "--role", "C1=cli/echo"]
    async with PtyDevice() as device:
        device.plug(tmp_path, "usb-Fake_Device_C1-if00")
        process = await asyncio.create_subprocess_exec(
            *command, *args, stderr=asyncio.subprocess.DEVNULL, env=dict(os.environ)
        )
        try:
            found = await probe.next_json("fbp", timeout=10)
            assert found["payload"]["role"] == "cli/echo"
            probe.transport.publish("cli/echo/in", b"\x00hello\x00")
            assert await probe.wait_count("cli/echo/out", 1) == [b"\x00hello\x00"]
        finally:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0
