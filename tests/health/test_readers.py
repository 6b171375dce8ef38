"""The health readers on a fake /proc and /sys tree: parsed right, both kernels' supply flags,
and absent sources absent (None), never zero."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest

from gateway.health import readers
from gateway.health.readers import FirmwareFlags, PowerSupplies
from gateway.health.sample import HealthSources, read_sample
from tests.health.conftest import MEMINFO, RPI_VOLT, Tree
from tests.wifi.conftest import HOSTAPD, FakeHostapd, Hostapd


def test_parsers() -> None:
    assert readers.parse_millidegrees("48312\n") == pytest.approx(48.312)
    assert readers.parse_loadavg("0.52 0.40 0.33 1/180 4242\n") == 0.52
    assert readers.parse_meminfo(MEMINFO) == 2_000_000 * 1024
    assert readers.parse_meminfo("MemFree: 10 kB\n") == 10 * 1024  # an old kernel
    assert readers.parse_uptime("12345.67 40000.00\n") == 12345.67
    assert readers.parse_throttled("50005\n") == 0x50005
    assert readers.parse_throttled("0x0\n") == 0
    bad = ((readers.parse_millidegrees, "hot"), (readers.parse_loadavg, ""),
           (readers.parse_meminfo, "x"), (readers.parse_flag, "2"))  # fmt: skip
    for parse, text in bad:
        with pytest.raises(ValueError):
            parse(text)


def test_the_firmware_word() -> None:
    # vcgencmd's 0x50005: undervoltage and throttled now, both also since boot.
    assert FirmwareFlags.of_word(0x50005) == FirmwareFlags(True, True, True, True)
    # 0x50000: both happened since boot, neither now.
    assert FirmwareFlags.of_word(0x50000) == FirmwareFlags(False, False, True, True)
    assert FirmwareFlags.of_word(0x8).throttled  # at the soft temperature limit


def test_power_supplies() -> None:
    battery = readers.parse_power_supply("POWER_SUPPLY_TYPE=Battery\nPOWER_SUPPLY_CAPACITY=87\n")
    mains = readers.parse_power_supply("POWER_SUPPLY_TYPE=Mains\nPOWER_SUPPLY_ONLINE=0\n")
    usb = readers.parse_power_supply("POWER_SUPPLY_TYPE=USB\nPOWER_SUPPLY_ONLINE=1\n")
    assert readers.power_supplies([battery, mains, usb]) == PowerSupplies(87, True)
    assert readers.power_supplies([mains]) == PowerSupplies(None, False)
    assert readers.power_supplies([]) == PowerSupplies()


async def test_a_pi_tree(tree: Tree, tmp_path: Path) -> None:
    tree.pi()
    tree.write("sys/class/thermal/thermal_zone1/temp", "39000\n")
    sample = await read_sample(HealthSources(tree.root, data_path=tmp_path))
    assert sample["temperature"] == 48.312  # the hottest zone
    assert sample["load"] == 0.52
    assert sample["memory_free"] == 2_000_000 * 1024
    assert sample["uptime"] == 600.5
    # Others write to this disk meanwhile: the same figure within a percent.
    assert sample["disk_free"] == pytest.approx(readers.disk_free(os.statvfs(tmp_path)), rel=0.01)
    assert sample["undervoltage"] is False and sample["throttled"] is False
    # No battery monitor, no power_supply class, no access point, no broker count: absent.
    for absent in ("battery_voltage", "battery_percent", "supply_online", "wifi_clients",
                   "broker_clients"):  # fmt: skip
        assert sample[absent] is None, absent


async def test_undervoltage_set_and_cleared_downstream(tree: Tree) -> None:
    tree.pi().throttled(0x50005)
    assert readers.firmware_flags(tree.root) == FirmwareFlags(True, True, True, True)
    tree.throttled(0x50000)
    assert readers.firmware_flags(tree.root) == FirmwareFlags(False, False, True, True)


def test_undervoltage_upstream_has_no_throttling_flag(tree: Tree) -> None:
    tree.write("sys/class/hwmon/hwmon0/name", "cpu_thermal\n")
    tree.write(f"{RPI_VOLT}/name", "rpi_volt\n")
    tree.write(f"{RPI_VOLT}/in0_lcrit_alarm", "1\n")
    assert readers.firmware_flags(tree.root) == FirmwareFlags(undervoltage=True)
    tree.write(f"{RPI_VOLT}/in0_lcrit_alarm", "0\n")
    assert readers.firmware_flags(tree.root) == FirmwareFlags(undervoltage=False)


async def test_absent_sources_are_absent_not_zero(tree: Tree) -> None:
    """QEMU's emulated board: no Pi firmware, no thermal zone, no battery."""
    sample = await read_sample(HealthSources(tree.root))
    assert set(sample.values()) == {None}
    tree.write("proc/loadavg", "garbage\n")  # unreadable as a number: absent, not an error
    tree.write("proc/uptime", "")
    tree.write("sys/class/thermal/thermal_zone0/temp", "\n")
    tree.write("sys/devices/platform/soc/soc:firmware/get_throttled", "no\n")
    assert set((await read_sample(HealthSources(tree.root))).values()) == {None}


async def test_an_unreachable_access_point_gives_no_wifi_reading(tree: Tree) -> None:
    sources = HealthSources(tree.root, hostapd_ctrl=str(tree.root / "no-such-socket"))
    assert (await read_sample(sources))["wifi_clients"] is None


async def test_wifi_clients_from_a_real_hostapd(tree: Tree) -> None:
    if not HOSTAPD.exists():
        pytest.skip(f"{HOSTAPD} is absent (./bootstrap.sh setup installs Debian's hostapd)")
    hostapd = Hostapd()
    try:
        hostapd.start()
        found = await read_sample(HealthSources(tree.root, hostapd_ctrl=str(hostapd.ctrl)))
    finally:
        hostapd.cleanup()
    # driver=none has no radio, so nobody is associated: a real zero, reported as such.
    assert found["wifi_clients"] == 0


async def test_wifi_clients_are_counted_over_the_control_socket() -> None:
    # driver=none never has stations: a scripted socket answers STA-FIRST/STA-NEXT with two.
    first, second = b"02:00:00:00:01:00", b"02:00:00:00:02:00"
    answers = {
        b"PING": [b"PONG\n"],
        b"STA-FIRST": [first + b"\nflags=[AUTH][ASSOC][AUTHORIZED]\n"],
        b"STA-NEXT " + first: [second + b"\nflags=[AUTH][ASSOC]\n"],
        b"STA-NEXT " + second: [b""],
    }
    # Not pytest's tmp_path: a UNIX socket path must fit in 108 bytes.
    with tempfile.TemporaryDirectory(prefix="gw-health-") as workdir:
        fake = FakeHostapd(Path(workdir) / "wlan0", lambda request: answers[request])
        serving = asyncio.create_task(fake.serve())
        try:
            assert await readers.wifi_clients(str(fake.path)) == 2
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            fake.sock.close()
