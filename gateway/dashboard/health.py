"""The gateway's health for the dashboard: temperature, load, memory, disk, uptime, WiFi clients,
broker clients, battery and supply.

Pure parsing functions take a file's text and return a number (or raise ``ValueError``); the
thin reading around them takes a root directory (``/`` on the gateway, a fake tree in tests).
A source this machine does not have is absent from the result, never reported as zero: a laptop
without a battery has no ``battery`` key, a kit with 0 WiFi clients has ``wifi_clients: 0``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import GatewayError
from gateway.wifi.hostapd_client import HostapdClient

log = logging.getLogger(__name__)

T = TypeVar("T")

HOSTAPD_TIMEOUT = 1.0  # seconds: the status page must not hang on a stuck access point
MAX_FILE = 64 * 1024  # /proc and /sys files are small; anything bigger is not what we expect


@dataclass(frozen=True)
class Reading:
    value: float | int | bool
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit}


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


def power_readings(supplies: list[dict[str, str]]) -> dict[str, Reading]:
    """``battery`` (the first battery's charge) and ``supply`` (whether any mains or USB supply
    is online) from parsed uevents; absent when no supply of that kind is listed."""
    readings: dict[str, Reading] = {}
    for supply in supplies:
        kind = supply.get("TYPE", "")
        if kind == "Battery" and "battery" not in readings and "CAPACITY" in supply:
            readings["battery"] = Reading(int(supply["CAPACITY"]), "%")
        elif kind in ("Mains", "USB", "USB_PD", "USB_C") and "ONLINE" in supply:
            online = supply["ONLINE"] == "1"
            before = readings.get("supply")
            readings["supply"] = Reading(online or bool(before and before.value), "online")
    return readings


def disk_free(stat: os.statvfs_result) -> int:
    """Bytes an unprivileged process may still write (``f_bavail``, not ``f_bfree``, which
    counts root's reserve too)."""
    return stat.f_bavail * stat.f_frsize


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthSources:
    """Where the readings come from. ``root`` prefixes every /proc and /sys path; ``data_path``
    is the file system whose free space counts (the gateway's data directory);
    ``hostapd_ctrl`` is the access point's control socket (None: no WiFi clients reading);
    ``broker_clients`` answers the broker's client count when something knows it."""

    root: Path = Path("/")
    data_path: Path | None = None
    hostapd_ctrl: str | None = None
    broker_clients: Callable[[], int | None] | None = field(default=None, compare=False)


async def read_health(sources: HealthSources) -> dict[str, Reading]:
    """Every reading this machine has, by name (see the module docstring)."""
    root = sources.root
    readings: dict[str, Reading] = {}
    temperatures = [
        t
        for zone in sorted(root.glob("sys/class/thermal/thermal_zone*/temp"))
        if (t := _parsed(zone, parse_millidegrees)) is not None
    ]
    if temperatures:
        # The hottest zone: on a Pi there is one (the SoC), elsewhere the CPU package is hottest.
        readings["cpu_temperature"] = Reading(max(temperatures), "°C")
    _put(readings, "load", _parsed(root / "proc/loadavg", parse_loadavg), "")
    _put(readings, "memory_free", _parsed(root / "proc/meminfo", parse_meminfo), "B")
    _put(readings, "uptime", _parsed(root / "proc/uptime", parse_uptime), "s")
    if sources.data_path is not None:
        try:
            _put(readings, "disk_free", disk_free(os.statvfs(sources.data_path)), "B")
        except OSError as exc:
            log.debug("health: %s: %s", sources.data_path, exc.strerror)
    supplies = [
        parsed
        for uevent in sorted(root.glob("sys/class/power_supply/*/uevent"))
        if (parsed := _parsed(uevent, parse_power_supply)) is not None
    ]
    try:
        readings.update(power_readings(supplies))
    except ValueError as exc:
        log.debug("health: power supply: %s", exc)
    if sources.hostapd_ctrl is not None:
        _put(readings, "wifi_clients", await _wifi_clients(sources.hostapd_ctrl), "")
    if sources.broker_clients is not None:
        _put(readings, "broker_clients", sources.broker_clients(), "")
    return readings


def _put(readings: dict[str, Reading], key: str, value: float | None, unit: str) -> None:
    if value is not None:
        readings[key] = Reading(value, unit)


def _parsed(path: Path, parse: Callable[[str], T]) -> T | None:
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


async def _wifi_clients(ctrl: str) -> int | None:
    try:
        async with HostapdClient.connect(ctrl, timeout=HOSTAPD_TIMEOUT) as hostapd:
            return len(await hostapd.stations())
    except GatewayError as exc:
        log.debug("health: WiFi clients: %s", exc)
        return None
