"""The health core: when readings and alarms go out, the alarm flags, and the shutdown."""

from __future__ import annotations

import pytest

from gateway.health.core import (
    SHUTDOWN_NOTICE,
    HealthCore,
    Thresholds,
    alarm_flags,
)
from gateway.health.status import HealthStatus, encode_status, parse_status

INTERVAL = 60.0
GOOD = {"temperature": 50.0, "undervoltage": False, "throttled": False, "load": 0.5,
        "wifi_clients": None}  # fmt: skip


def test_readings_every_interval_and_absent_ones_never() -> None:
    core = HealthCore(INTERVAL, Thresholds())
    first = core.step(GOOD, 0.0)
    assert first.readings == {"temperature": 50.0, "undervoltage": False, "throttled": False,
                              "load": 0.5}  # fmt: skip
    assert first.alarms == {"undervoltage": False, "throttled": False, "hot": False}
    assert not core.step(GOOD, 5.0).readings  # nothing changed, nothing due
    assert core.step(GOOD, 60.0).readings  # due


def test_undervoltage_set_and_cleared_goes_out_at_once() -> None:
    core = HealthCore(INTERVAL, Thresholds())
    core.step(GOOD, 0.0)
    raised = core.step({**GOOD, "undervoltage": True}, 5.0)
    assert raised.alarms_changed and raised.alarms is not None and raised.alarms["undervoltage"]
    assert raised.readings["undervoltage"] is True  # the reading behind it goes with it
    assert not core.step({**GOOD, "undervoltage": True}, 10.0).alarms_changed
    cleared = core.step(GOOD, 15.0)
    assert cleared.alarms_changed and cleared.alarms == {
        "undervoltage": False, "throttled": False, "hot": False}  # fmt: skip


def test_hot_and_battery_low_clear_only_past_a_margin() -> None:
    limits = Thresholds(hot=80.0, battery_low=20.0)
    assert alarm_flags({"temperature": 80.0}, {}, limits) == {"hot": True}
    assert alarm_flags({"temperature": 77.0}, {"hot": True}, limits) == {"hot": True}
    assert alarm_flags({"temperature": 74.9}, {"hot": True}, limits) == {"hot": False}
    assert alarm_flags({"temperature": 77.0}, {}, limits) == {"hot": False}
    assert alarm_flags({"battery_percent": 22.0}, {"battery_low": True}, limits)["battery_low"]
    assert not alarm_flags({"battery_percent": 26.0}, {"battery_low": True}, limits)["battery_low"]
    assert alarm_flags({"temperature": float("nan")}, {}, limits) == {}  # not a reading


def test_no_shutdown_by_default() -> None:
    core = HealthCore(INTERVAL, Thresholds())
    for second in range(0, 600, 5):
        step = core.step({"battery_percent": 1.0}, float(second))
        assert step.announce is None and not step.request_shutdown


def test_a_low_battery_is_announced_then_shut_down_once() -> None:
    core = HealthCore(INTERVAL, Thresholds(shutdown_below=10.0, shutdown_after=30.0))
    assert core.step({"battery_percent": 9.0}, 0.0).announce is None
    assert core.step({"battery_percent": 12.0}, 20.0).announce is None  # back above: restart
    assert core.step({"battery_percent": 9.0}, 25.0).announce is None
    assert core.step({"battery_percent": None}, 40.0).announce is None  # a missed reading
    notice = core.step({"battery_percent": 8.0}, 55.0).announce
    assert notice is not None
    assert notice.to_json() == {
        "reason": "battery",
        "battery_percent": 8.0,
        "threshold": 10.0,
        "in": SHUTDOWN_NOTICE,
    }
    assert not core.step({"battery_percent": 30.0}, 60.0).request_shutdown  # too early
    assert core.step({"battery_percent": 8.0}, 55.0 + SHUTDOWN_NOTICE).request_shutdown
    assert not core.step({"battery_percent": 8.0}, 100.0).request_shutdown  # once


def test_the_status_reads_back_and_refuses_what_it_is_not() -> None:
    status = HealthStatus("gateway", 1000.0, {"temperature": 48.3, "undervoltage": True},
                          {"undervoltage": True}, None, 60.0)  # fmt: skip
    again = parse_status(encode_status(status))
    assert again == status
    assert again.readings_json()["temperature"] == {"value": 48.3, "unit": "°C"}
    assert not again.stale(1100.0) and again.stale(1000.0 + 3 * 60 + 11)
    bad = (
        b"[]",
        b"{}",
        b'{"role": "g", "time": 1, "readings": {"x": {"value": 1}}}',
        b'{"role": "g", "time": 1, "alarms": {"hot": 1}}',
        b"\xff",
        b"{" * 20_000,
    )
    for payload in bad:
        with pytest.raises(ValueError):
            parse_status(payload)
