"""The health participant's logic, without I/O: its ports, the alarm flags (with hysteresis),
when to send, and when to shut down (docs/health.md).

:class:`HealthCore` is given one :class:`Sample` (every reading by port name, ``None`` where
the source is absent) each time the sources are read and a monotonic clock value, and answers
a :class:`Step`: which readings and alarms to send, and whether to announce or request the
orderly shutdown. Readings go out every ``interval``; the alarms too, and at once whenever a
flag changes, with the readings behind them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Value = float | int | bool


@dataclass(frozen=True)
class Port:
    id: str
    unit: str
    type: str  # the msgflo port type: number, int, boolean, object
    description: str


# One outport per reading, in the order the dashboard shows them.
READINGS: tuple[Port, ...] = (
    Port("temperature", "°C", "number", "CPU temperature, the hottest thermal zone"),
    Port("undervoltage", "", "boolean", "the supply is below 4.63 V now (Pi firmware)"),
    Port("throttled", "", "boolean", "the CPU is capped or throttled now (Pi firmware)"),
    Port("supply_online", "", "boolean", "a mains or USB supply is online (power_supply)"),
    Port("battery_voltage", "V", "number", "battery voltage (battery monitor)"),
    Port("battery_current", "A", "number", "battery current (battery monitor)"),
    Port("battery_percent", "%", "number", "battery charge, estimated"),
    Port("load", "", "number", "one-minute load average"),
    Port("memory_free", "B", "int", "memory available to programs"),
    Port("disk_free", "B", "int", "free space on the data partition"),
    Port("wifi_clients", "", "int", "stations on the access point"),
    Port("broker_clients", "", "int", "clients connected to the broker"),
    Port("uptime", "s", "number", "seconds since boot"),
)
ALARMS = Port("alarms", "", "object", "alarm flags: undervoltage, throttled, hot, battery_low")
SHUTDOWN = Port("shutdown", "", "object", "sent before an orderly shutdown for low battery")
PORTS = (*READINGS, ALARMS, SHUTDOWN)
UNITS = {port.id: port.unit for port in READINGS}

HOT_HYSTERESIS = 5.0  # °C below the threshold before "hot" clears
BATTERY_HYSTERESIS = 5.0  # percent above the threshold before "battery_low" clears
SHUTDOWN_NOTICE = 10.0  # seconds between announcing the shutdown and requesting it

Sample = Mapping[str, Value | None]


@dataclass(frozen=True)
class Thresholds:
    hot: float = 80.0  # °C: the Pi 4's firmware starts throttling at 80
    battery_low: float = 20.0  # percent
    shutdown_below: float | None = None  # percent; None: never shut down
    shutdown_after: float = 60.0  # seconds the charge must stay below it
    notice: float = SHUTDOWN_NOTICE  # seconds from announcing the shutdown to requesting it


@dataclass(frozen=True)
class ShutdownNotice:
    battery_percent: float
    threshold: float
    requested_in: float  # seconds until the shutdown is requested

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": "battery",
            "battery_percent": self.battery_percent,
            "threshold": self.threshold,
            "in": self.requested_in,
        }


@dataclass(frozen=True)
class Step:
    readings: dict[str, Value]  # to send now (empty: nothing due)
    alarms: dict[str, bool] | None  # to send now
    alarms_changed: bool
    announce: ShutdownNotice | None  # send on the shutdown port and log
    request_shutdown: bool  # ask the system to power off now


def alarm_flags(sample: Sample, before: Mapping[str, bool], limits: Thresholds) -> dict[str, bool]:
    """The flags whose source is present. ``hot`` and ``battery_low`` clear only past a
    margin, so a value hovering at the threshold does not flip them each sample."""
    flags: dict[str, bool] = {}
    for name in ("undervoltage", "throttled"):
        value = sample.get(name)
        if isinstance(value, bool):
            flags[name] = value
    temperature = sample.get("temperature")
    if _number(temperature):
        margin = HOT_HYSTERESIS if before.get("hot") else 0.0
        flags["hot"] = float(temperature) >= limits.hot - margin  # type: ignore[arg-type]
    percent = sample.get("battery_percent")
    if _number(percent):
        margin = BATTERY_HYSTERESIS if before.get("battery_low") else 0.0
        flags["battery_low"] = float(percent) <= limits.battery_low + margin  # type: ignore[arg-type]
    return flags


def _number(value: object) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value)  # type: ignore[arg-type]


class HealthCore:
    """See the module docstring. ``interval``: seconds between two reports."""

    def __init__(self, interval: float, limits: Thresholds) -> None:
        self.interval = interval
        self.limits = limits
        self.alarms: dict[str, bool] = {}
        self.latest: dict[str, Value] = {}  # the present readings of the last sample
        self.shutdown: ShutdownNotice | None = None  # announced
        self._next_report: float | None = None
        self._below_since: float | None = None
        self._announced_at: float | None = None
        self._requested = False

    def step(self, sample: Sample, now: float) -> Step:
        self.latest = {k: v for k, v in sample.items() if v is not None}
        flags = alarm_flags(sample, self.alarms, self.limits)
        changed = flags != self.alarms
        self.alarms = flags
        due = self._next_report is None or now >= self._next_report
        if due:
            self._next_report = now + self.interval
        announce, request = self._shutdown(sample.get("battery_percent"), now)
        send = due or changed
        return Step(
            readings=dict(self.latest) if send else {},
            alarms=dict(flags) if send else None,
            alarms_changed=changed,
            announce=announce,
            request_shutdown=request,
        )

    def _shutdown(self, percent: Value | None, now: float) -> tuple[ShutdownNotice | None, bool]:
        """Below ``shutdown_below`` for ``shutdown_after`` seconds: announce; request it
        ``notice`` seconds later, once. A reading missing meanwhile changes nothing."""
        threshold = self.limits.shutdown_below
        if threshold is None or self._requested:
            return None, False
        if self._announced_at is not None:
            self._requested = now - self._announced_at >= self.limits.notice
            return None, self._requested
        if not self._low_for_long(percent, threshold, now):
            return None, False
        self._announced_at = now
        self.shutdown = ShutdownNotice(float(percent), threshold, self.limits.notice)  # type: ignore[arg-type]
        return self.shutdown, False

    def _low_for_long(self, percent: Value | None, threshold: float, now: float) -> bool:
        if not _number(percent):
            return False
        if float(percent) > threshold:  # type: ignore[arg-type]
            self._below_since = None
            return False
        if self._below_since is None:
            self._below_since = now
        return now - self._below_since >= self.limits.shutdown_after
