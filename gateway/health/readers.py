"""The gateway's health sources, each read once here: the health participant and the dashboard
both use these readers (docs/health.md says where each value comes from on a Pi).

Pure parsing functions take a file's text and return a value (or raise ``ValueError``); the
thin reading around them takes a root directory (``/`` on the gateway, a fake sysfs/procfs tree
in tests). A source this machine does not have is ``None``, never zero: a laptop without a
battery has no battery reading, a kit with no WiFi client has ``wifi_clients`` 0.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.errors import GatewayError
from gateway.wifi.hostapd_client import HostapdClient

log = logging.getLogger("gateway.health")

T = TypeVar("T")

HOSTAPD_TIMEOUT = 1.0  # seconds: a stuck access point must not hold up the other readings
MAX_FILE = 64 * 1024  # /proc and /sys files are small; anything bigger is not what we expect

# The Raspberry Pi firmware's throttling word (the mailbox's GET_THROTTLED, as ``vcgencmd
# get_throttled`` prints it): bits 0-3 are the state now, bits 16-19 "has happened since boot".
UNDERVOLTAGE_NOW = 1 << 0
CAPPED_NOW = 1 << 1
THROTTLED_NOW = 1 << 2
SOFT_TEMP_LIMIT_NOW = 1 << 3
UNDERVOLTAGE_SINCE_BOOT = 1 << 16
THROTTLED_SINCE_BOOT = 1 << 18

# Raspberry Pi OS's kernel (downstream) exposes the word on the firmware's platform device;
# the soc node's name differs between boards, hence the glob.
GET_THROTTLED = "sys/devices/platform/soc*/soc*:firmware/get_throttled"
# The upstream kernel (Debian's linux-image-arm64) has only the undervoltage bit: the
# raspberrypi-hwmon driver polls the firmware and raises in0_lcrit_alarm of hwmon "rpi_volt".
HWMON_NAME = "rpi_volt"


# -- pure parsing ---------------------------------------------------------------------------------


def parse_millidegrees(text: str) -> float:
    """``/sys/class/thermal/thermal_zone*/temp``: millidegrees Celsius, e.g. ``48312``."""
    return int(text.strip()) / 1000.0


def parse_loadavg(text: str) -> float:
    """``/proc/loadavg``: the one-minute load average, its first field."""
    fields = text.split()
    if not fields:
        raise ValueError("empty")
    return float(fields[0])


def parse_meminfo(text: str) -> int:
    """``/proc/meminfo``: bytes available for new programs (``MemAvailable``, else
    ``MemFree``: kernels before 3.14 lack the former)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            scale = 1024 if words[1:2] == ["kB"] else 1
            values[key.strip()] = int(words[0]) * scale
    for key in ("MemAvailable", "MemFree"):
        if key in values:
            return values[key]
    raise ValueError("neither MemAvailable nor MemFree")


def parse_uptime(text: str) -> float:
    """``/proc/uptime``: seconds since boot, its first field."""
    fields = text.split()
    if not fields:
        raise ValueError("empty")
    return float(fields[0])


def parse_power_supply(uevent: str) -> dict[str, str]:
    """``/sys/class/power_supply/*/uevent``: ``POWER_SUPPLY_KEY=value`` lines, keys without the
    prefix (``TYPE``, ``CAPACITY``, ``ONLINE``, ...)."""
    found = {}
    for line in uevent.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("POWER_SUPPLY_"):
            found[key.removeprefix("POWER_SUPPLY_")] = value.strip()
    return found


def parse_throttled(text: str) -> int:
    """``get_throttled``: the firmware's word in hex, with or without ``0x`` (``50005``)."""
    return int(text.strip(), 16)


def parse_flag(text: str) -> bool:
    """A sysfs alarm file: ``0`` or ``1``."""
    value = text.strip()
    if value not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {value[:20]!r}")
    return value == "1"


@dataclass(frozen=True)
class PowerSupplies:
    """What ``/sys/class/power_supply`` says: the first battery's charge in percent, and
    whether any mains or USB supply is online; None where no such supply is listed."""

    battery_percent: int | None = None
    online: bool | None = None


def power_supplies(supplies: list[dict[str, str]]) -> PowerSupplies:
    percent: int | None = None
    online: bool | None = None
    for supply in supplies:
        kind = supply.get("TYPE", "")
        if kind == "Battery" and percent is None and "CAPACITY" in supply:
            percent = int(supply["CAPACITY"])
        elif kind in ("Mains", "USB", "USB_PD", "USB_C") and "ONLINE" in supply:
            online = bool(online) or supply["ONLINE"] == "1"
    return PowerSupplies(percent, online)


@dataclass(frozen=True)
class FirmwareFlags:
    """The Pi firmware's supply and throttling flags; None where this kernel does not say
    (``throttled`` exists only with the downstream kernel's ``get_throttled``)."""

    undervoltage: bool | None = None
    throttled: bool | None = None
    undervoltage_since_boot: bool | None = None
    throttled_since_boot: bool | None = None

    @classmethod
    def of_word(cls, word: int) -> FirmwareFlags:
        return cls(
            undervoltage=bool(word & UNDERVOLTAGE_NOW),
            # Capped (arm frequency held down), throttled, or at the soft temperature limit:
            # each means the Pi runs slower than it should.
            throttled=bool(word & (CAPPED_NOW | THROTTLED_NOW | SOFT_TEMP_LIMIT_NOW)),
            undervoltage_since_boot=bool(word & UNDERVOLTAGE_SINCE_BOOT),
            throttled_since_boot=bool(word & THROTTLED_SINCE_BOOT),
        )


def disk_free(stat: os.statvfs_result) -> int:
    """Bytes an unprivileged process may still write (``f_bavail``, not ``f_bfree``, which
    counts root's reserve too)."""
    return stat.f_bavail * stat.f_frsize


# -- reading ------------------------------------------------------------------------------------


def parsed(path: Path, parse: Callable[[str], T]) -> T | None:
    """``parse`` of the file's text; None when it is missing or not what we expect."""
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            text = file.read(MAX_FILE)
    except OSError:
        return None
    try:
        return parse(text)
    except (ValueError, IndexError) as exc:
        log.debug("health: %s: %s", path, exc)
        return None


def cpu_temperature(root: Path) -> float | None:
    """The hottest thermal zone in °C: on a Pi there is one (the SoC), elsewhere the CPU
    package is the hottest."""
    found = [
        t
        for zone in sorted(root.glob("sys/class/thermal/thermal_zone*/temp"))
        if (t := parsed(zone, parse_millidegrees)) is not None
    ]
    return max(found) if found else None


def load(root: Path) -> float | None:
    return parsed(root / "proc/loadavg", parse_loadavg)


def memory_free(root: Path) -> int | None:
    return parsed(root / "proc/meminfo", parse_meminfo)


def uptime(root: Path) -> float | None:
    return parsed(root / "proc/uptime", parse_uptime)


def free_space(path: Path | None) -> int | None:
    """Free bytes of the file system holding ``path`` (the gateway's data directory)."""
    if path is None:
        return None
    try:
        return disk_free(os.statvfs(path))
    except OSError as exc:
        log.debug("health: %s: %s", path, exc.strerror)
        return None


def supplies(root: Path) -> PowerSupplies:
    found = [
        p
        for uevent in sorted(root.glob("sys/class/power_supply/*/uevent"))
        if (p := parsed(uevent, parse_power_supply)) is not None
    ]
    try:
        return power_supplies(found)
    except ValueError as exc:
        log.debug("health: power supply: %s", exc)
        return PowerSupplies()


def firmware_flags(root: Path) -> FirmwareFlags:
    """The downstream kernel's full word when there is one, else the upstream hwmon's
    undervoltage alarm, else nothing (not a Pi, or QEMU's emulated board)."""
    for path in sorted(root.glob(GET_THROTTLED)):
        word = parsed(path, parse_throttled)
        if word is not None:
            return FirmwareFlags.of_word(word)
    for name in sorted(root.glob("sys/class/hwmon/hwmon*/name")):
        if parsed(name, str.strip) == HWMON_NAME:
            alarm = parsed(name.parent / "in0_lcrit_alarm", parse_flag)
            if alarm is not None:
                return FirmwareFlags(undervoltage=alarm)
    return FirmwareFlags()


async def wifi_clients(ctrl: str | None) -> int | None:
    """Stations associated with the access point, from hostapd's control socket."""
    if ctrl is None:
        return None
    try:
        async with HostapdClient.connect(ctrl, timeout=HOSTAPD_TIMEOUT) as hostapd:
            return len(await hostapd.stations())
    except GatewayError as exc:
        log.debug("health: WiFi clients: %s", exc)
        return None
