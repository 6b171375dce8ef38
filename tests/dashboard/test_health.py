"""Health readings from a fake root tree: parsed right, and absent sources are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.dashboard.health import (
    HealthSources,
    disk_free,
    parse_loadavg,
    parse_meminfo,
    parse_millidegrees,
    parse_power_supply,
    parse_uptime,
    power_readings,
    read_health,
)
from tests.wifi.conftest import HOSTAPD, Hostapd

MEMINFO = "MemTotal:        3884096 kB\nMemFree:          123456 kB\nMemAvailable:    2000000 kB\n"


def write(root: Path, path: str, text: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_parsers() -> None:
    assert parse_millidegrees("48312\n") == pytest.approx(48.312)
    assert parse_loadavg("0.52 0.40 0.33 1/180 4242\n") == 0.52
    assert parse_meminfo(MEMINFO) == 2_000_000 * 1024
    assert parse_meminfo("MemFree: 10 kB\n") == 10 * 1024  # an old kernel: no MemAvailable
    assert parse_uptime("12345.67 40000.00\n") == 12345.67
    for parse, bad in ((parse_millidegrees, "hot"), (parse_loadavg, ""), (parse_meminfo, "x")):
        with pytest.raises(ValueError):
            parse(bad)


def test_power_supplies() -> None:
    battery = parse_power_supply("POWER_SUPPLY_TYPE=Battery\nPOWER_SUPPLY_CAPACITY=87\n")
    mains = parse_power_supply("POWER_SUPPLY_TYPE=Mains\nPOWER_SUPPLY_ONLINE=0\n")
    usb = parse_power_supply("POWER_SUPPLY_TYPE=USB\nPOWER_SUPPLY_ONLINE=1\n")
    found = power_readings([battery, mains, usb])
    assert found["battery"].to_json() == {"value": 87, "unit": "%"}
    assert found["supply"].value is True  # one of them is online
    assert power_readings([mains])["supply"].value is False
    assert power_readings([]) == {}


async def test_a_full_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "sys/class/thermal/thermal_zone0/temp", "51000\n")
    write(root, "sys/class/thermal/thermal_zone1/temp", "39000\n")
    write(root, "proc/loadavg", "1.25 0.80 0.50 2/200 999\n")
    write(root, "proc/meminfo", MEMINFO)
    write(root, "proc/uptime", "600.5 1200.0\n")
    write(
        root,
        "sys/class/power_supply/BAT0/uevent",
        "POWER_SUPPLY_TYPE=Battery\nPOWER_SUPPLY_CAPACITY=40\n",
    )
    found = await read_health(HealthSources(root=root, data_path=tmp_path))
    assert found["cpu_temperature"].to_json() == {"value": 51.0, "unit": "°C"}  # the hottest
    assert found["load"].value == 1.25
    assert found["memory_free"].value == 2_000_000 * 1024
    assert found["uptime"].to_json() == {"value": 600.5, "unit": "s"}
    assert found["disk_free"].value == disk_free(os.statvfs(tmp_path))
    assert found["battery"].value == 40
    assert "supply" not in found and "wifi_clients" not in found


async def test_absent_sources_are_absent_not_zero(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert await read_health(HealthSources(root=empty)) == {}
    write(empty, "proc/loadavg", "garbage\n")  # unreadable as a number: absent, not an error
    write(empty, "proc/uptime", "")
    assert await read_health(HealthSources(root=empty)) == {}


async def test_an_unreachable_access_point_gives_no_wifi_reading(tmp_path: Path) -> None:
    sources = HealthSources(root=tmp_path, hostapd_ctrl=str(tmp_path / "no-such-socket"))
    assert "wifi_clients" not in await read_health(sources)


async def test_broker_clients_when_known(tmp_path: Path) -> None:
    assert (await read_health(HealthSources(root=tmp_path, broker_clients=lambda: 3)))[
        "broker_clients"
    ].value == 3
    assert await read_health(HealthSources(root=tmp_path, broker_clients=lambda: None)) == {}


async def test_wifi_clients_from_a_real_hostapd(tmp_path: Path) -> None:
    if not HOSTAPD.exists():
        pytest.skip(f"{HOSTAPD} is absent (./bootstrap.sh setup installs Debian's hostapd)")
    hostapd = Hostapd()
    try:
        hostapd.start()
        found = await read_health(HealthSources(root=tmp_path, hostapd_ctrl=str(hostapd.ctrl)))
    finally:
        hostapd.cleanup()
    # driver=none has no radio, so nobody is associated: a real zero, reported as such.
    assert found["wifi_clients"].to_json() == {"value": 0, "unit": ""}
