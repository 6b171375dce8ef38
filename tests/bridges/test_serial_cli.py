"""Roles from by-id names, the msgflo-serial options and config file, and the real command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from gateway.bridges.serial.cli import bridge_config, load_config_file, main, parser
from gateway.bridges.serial.fake_device import PtyDevice
from gateway.bridges.serial.roles import RoleMap, derived_role, parse_role_option, serial_number
from gateway.errors import GatewayError
from gateway.mosquitto import Mosquitto
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
    assert derived_role(path) == role


def test_configured_roles_match_serial_number_link_name_or_path() -> None:
    roles = RoleMap(
        {"75833353035351A0C1E1": "lab/button", "usb-1a86_USB2.0-Serial-if00-port0": "pump"}
    )
    assert roles.role_for(UNO) == "lab/button"
    assert roles.role_for(CH340) == "pump"
    assert roles.role_for(FTDI) == "A50285BI"


@pytest.mark.parametrize(
    "text", ["nokey", "=role", "serial=", "s=a/+/b", "s=lab/\udc80", "s=" + "r" * 60_001]
)
def test_bad_role_options_are_one_line_errors(text: str) -> None:
    with pytest.raises(GatewayError, match="--role"):
        parse_role_option(text)


def test_options_override_the_config_file(tmp_path: Path) -> None:
    file = tmp_path / "serial.yaml"
    file.write_text(
        "broker: mqtt://example\nglobs: ['/dev/ttyACM*']\nbaud: 57600\nperiod: 30\n"
        "roles:\n  AAA: from-file\n  BBB: b\n",
        encoding="utf-8",
    )
    args = parser().parse_args(["--config", str(file), "--role", "AAA=from-cli", "--baud", "9600"])
    config = bridge_config(args, load_config_file(file))
    assert config.globs == ("/dev/ttyACM*",)
    assert config.baud == 9600
    assert config.period == 30.0
    assert config.roles.roles == {"AAA": "from-cli", "BBB": "b"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus: 1\n", "unknown setting 'bogus'"),
        ("baud: 12345\n", "baud 12345"),
        ("- a\n", "mapping"),
        ("roles: [a]\n", "roles must map"),
    ],
)
def test_config_file_errors(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "serial.yaml"
    file.write_text(text, encoding="utf-8")
    args = parser().parse_args(["--config", str(file)])
    with pytest.raises(GatewayError, match=message):
        bridge_config(args, load_config_file(file))


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
