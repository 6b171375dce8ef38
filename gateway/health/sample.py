"""One sample of every health source: the readers of :mod:`gateway.health.readers` and the
battery monitor, by port name (:data:`gateway.health.core.READINGS`), ``None`` where absent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.health import readers
from gateway.health.core import Value
from gateway.health.ina219 import Ina219

log = logging.getLogger("gateway.health")


@dataclass
class HealthSources:
    """Where the readings come from. ``root`` prefixes every /proc and /sys path;
    ``data_path`` is the file system whose free space counts (the data partition);
    ``hostapd_ctrl`` the access point's control socket; ``battery`` the battery monitor;
    ``broker_clients`` answers the broker's client count when something knows it. None:
    that source is absent."""

    root: Path = Path("/")
    data_path: Path | None = None
    hostapd_ctrl: str | None = None
    battery: Ina219 | None = None
    broker_clients: Callable[[], int | None] | None = field(default=None, compare=False)
    battery_failures: int = 0  # readings the battery monitor did not answer


async def read_sample(sources: HealthSources) -> dict[str, Value | None]:
    """Every reading, by port name; the file readers take microseconds, hostapd is bounded by
    its timeout."""
    root = sources.root
    flags = readers.firmware_flags(root)
    supplies = readers.supplies(root)
    sample: dict[str, Value | None] = {
        "temperature": readers.cpu_temperature(root),
        "undervoltage": flags.undervoltage,
        "throttled": flags.throttled,
        "supply_online": supplies.online,
        "battery_voltage": None,
        "battery_current": None,
        "battery_percent": supplies.battery_percent,
        "load": readers.load(root),
        "memory_free": readers.memory_free(root),
        "disk_free": readers.free_space(sources.data_path),
        "wifi_clients": await readers.wifi_clients(sources.hostapd_ctrl),
        "broker_clients": sources.broker_clients() if sources.broker_clients else None,
        "uptime": readers.uptime(root),
    }
    if sources.battery is not None:
        _battery(sources, sample)
    return sample


def _battery(sources: HealthSources, sample: dict[str, Value | None]) -> None:
    assert sources.battery is not None
    try:
        battery = sources.battery.read()
    except (OSError, ValueError) as exc:
        sources.battery_failures += 1
        if sources.battery_failures == 1:  # one line, not one a sample
            log.warning("health: battery monitor at I2C address 0x%02x: %s",
                        sources.battery.address, exc)  # fmt: skip
        return
    if sources.battery_failures:
        log.info("health: battery monitor answers again")
        sources.battery_failures = 0
    sample["battery_voltage"] = battery.voltage
    sample["battery_current"] = battery.current
    sample["battery_percent"] = battery.percent
