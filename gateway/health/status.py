"""The health participant's summary for the dashboard: one retained JSON object on
``msgflo-gateway/health`` (pure; docs/health.md).

    {"role": "gateway", "time": 1700000000.0, "interval": 60.0,
     "readings": {"temperature": {"value": 48.3, "unit": "°C"}, ...},
     "alarms": {"undervoltage": false, ...}, "shutdown": null}

Only present readings are listed. The graph's ports carry the same values one by one; this
object saves the dashboard from knowing the participant's role and subscribing to each port.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.health.core import UNITS, Value

STATUS_TOPIC = "msgflo-gateway/health"
MAX_STATUS = 16 * 1024  # bytes: the object has a dozen readings
STALE_MARGIN = 10.0  # seconds


@dataclass(frozen=True)
class HealthStatus:
    role: str
    time: float
    readings: Mapping[str, Value]
    alarms: Mapping[str, bool]
    shutdown: Mapping[str, Any] | None = None
    interval: float = 60.0  # seconds between reports: an older status is stale

    def stale(self, now: float) -> bool:
        """Not renewed for three reports: the participant is stopped or stuck."""
        return now - self.time > 3 * self.interval + STALE_MARGIN

    def readings_json(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"value": v, "unit": UNITS.get(name, "")} for name, v in self.readings.items()
        }


def encode_status(status: HealthStatus) -> bytes:
    return json.dumps(
        {
            "role": status.role,
            "time": status.time,
            "readings": status.readings_json(),
            "alarms": dict(status.alarms),
            "shutdown": None if status.shutdown is None else dict(status.shutdown),
            "interval": status.interval,
        },
        ensure_ascii=False,
    ).encode()


def parse_status(payload: bytes) -> HealthStatus:
    """A status as published; ``ValueError`` (one line) for anything else. Anyone on the
    broker may publish here, so every field is checked."""
    if len(payload) > MAX_STATUS:
        raise ValueError(f"{len(payload)} bytes, more than {MAX_STATUS}")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    role: Any = data.get("role")
    time: Any = data.get("time")
    if not isinstance(role, str) or not _number(time):
        raise ValueError("no role or time")
    readings: dict[str, Value] = {}
    for name, reading in _mapping(data, "readings").items():
        value = reading.get("value") if isinstance(reading, dict) else None
        if name not in UNITS or not (isinstance(value, bool) or _number(value)):
            raise ValueError(f"reading {str(name)[:40]!r} is not one of the health readings")
        readings[name] = value  # type: ignore[assignment]  # checked just above
    alarms = _mapping(data, "alarms")
    if not all(isinstance(flag, bool) for flag in alarms.values()):
        raise ValueError("an alarm flag is not true or false")
    shutdown = data.get("shutdown")
    if shutdown is not None and not isinstance(shutdown, dict):
        raise ValueError("shutdown is not an object")
    interval: Any = data.get("interval", 60.0)
    if not _number(interval) or interval <= 0:
        raise ValueError("interval is not a positive number")
    return HealthStatus(role, float(time), readings, alarms, shutdown, float(interval))


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    found = data.get(key, {})
    if not isinstance(found, dict):
        raise ValueError(f"{key} is not an object")
    return found


def _number(value: object) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value)  # type: ignore[arg-type]
