"""``gateway-wifi`` against a real hostapd (driver=none), and its output formats."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.cli.wifi import event_json, event_line, main, status_lines
from gateway.wifi.hostapd_client import HostapdClient
from gateway.wifi.hostapd_ctrl import (
    ApEnabled,
    Command,
    MacAddress,
    OtherEvent,
    StationConnected,
    parse_station,
    parse_status,
)
from tests.wifi.conftest import FakeHostapd, Hostapd
from tests.wifi.test_hostapd_ctrl import STATION, STATUS


@pytest.mark.integration
def test_status(hostapd: Hostapd, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--ctrl", str(hostapd.ctrl)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "state:    ENABLED",
        "ssid:     gw-test",
        "bssid:    00:00:00:00:00:00",
        "channel:  6",
        "stations: 0",
    ]


@pytest.mark.integration
def test_status_json(hostapd: Hostapd, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--ctrl", str(hostapd.ctrl), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "state": "ENABLED",
        "ssid": "gw-test",
        "bssid": "00:00:00:00:00:00",
        "channel": 6,
        "freq": 0,
        "num_sta": 0,
        "stations": [],
    }


def test_unreachable_socket_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--ctrl", f"{tmp_path}/wlan0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"gateway-wifi: error: hostapd at {tmp_path}/wlan0: cannot reach the control socket: "
        "No such file or directory\n"
    )


async def test_silent_socket_is_one_line_and_exit_2(
    fake_hostapd: Callable[..., FakeHostapd],
) -> None:
    silent = fake_hostapd(lambda request: [])
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "gateway.cli.wifi", "status", "--ctrl", str(silent.path)],
        *["--timeout", "0.2"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 2
    assert (out, err.decode()) == (
        b"",
        f"gateway-wifi: error: hostapd at {silent.path}: PING: no reply within 0.2 s\n",
    )


@pytest.mark.integration
async def test_watch_prints_events_until_hostapd_terminates(hostapd: Hostapd) -> None:
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "gateway.cli.wifi", "watch", "--ctrl", str(hostapd.ctrl)],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        first = await _first_line_while_toggling(hostapd, process.stdout)
        assert first in {"access point disabled", "access point enabled"}
        await asyncio.to_thread(hostapd.stop)
        async with asyncio.timeout(10):
            out, err = await process.communicate()
        assert out.decode().splitlines()[-2:] == ["access point disabled", "hostapd terminating"]
        assert err.decode() == f"gateway-wifi: hostapd at {hostapd.ctrl} is terminating\n"
        assert process.returncode == 1
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _first_line_while_toggling(hostapd: Hostapd, stdout: asyncio.StreamReader) -> str:
    """DISABLE and ENABLE until the watcher, once it has attached, prints an event."""
    async with HostapdClient.connect(hostapd.ctrl) as client, asyncio.timeout(15):
        while True:
            await client.request(Command.DISABLE)
            await client.request(Command.ENABLE)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.3):
                    return (await stdout.readline()).decode().rstrip("\n")


def test_status_lines_show_each_station() -> None:
    station = parse_station("STA-FIRST", STATION)
    assert station is not None
    lines = status_lines(parse_status(STATUS), [station])
    assert lines[-2:] == [
        "stations: 1",
        "  02:00:00:00:01:00  connected 42 s  signal -47 dBm  rx 10240 B tx 20480 B  "
        "ASSOC AUTH AUTHORIZED HT WMM",
    ]


def test_event_lines_and_json() -> None:
    mac = MacAddress("02:00:00:00:01:00")
    assert event_line(StationConnected(mac)) == "station connected: 02:00:00:00:01:00"
    assert event_json(StationConnected(mac)) == {
        "event": "station-connected",
        "mac": "02:00:00:00:01:00",
    }
    assert event_line(ApEnabled()) == "access point enabled"
    assert event_json(OtherEvent("WPS-PBC-ACTIVE")) == {"event": "other", "text": "WPS-PBC-ACTIVE"}
