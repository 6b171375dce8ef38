"""The participant registry (pure, time passed in): add, update, expire, return, lookups."""

from __future__ import annotations

from gateway.coordinator.registry import Change, Registry
from gateway.participant.definition import Direction, ParticipantDefinition, define


def button(pid: str = "button-1", queue: str = "hw/button") -> ParticipantDefinition:
    return define(
        "button", "Button", outports=[{"id": "pressed", "queue": queue}], participant_id=pid
    )


def test_added_heartbeat_updated() -> None:
    registry = Registry()
    event = registry.observe(button(), now=0)
    assert event is not None and event.change is Change.ADDED
    assert registry.observe(button(), now=10) is None  # a heartbeat changes nothing
    event = registry.observe(button(queue="hw/button2"), now=20)
    assert event is not None and event.change is Change.UPDATED
    assert registry.port("button", Direction.OUT, "pressed").queue == "hw/button2"  # type: ignore[union-attr]


def test_expiry_and_return() -> None:
    registry = Registry(expiry=600)
    registry.observe(button(), now=0)
    assert registry.expire(now=599) == []
    assert registry.next_expiry() == 600
    gone = registry.expire(now=601)
    assert [e.change for e in gone] == [Change.GONE]
    assert registry.live("button") == []
    # Its last known topics still wire it: a quiet device is not cut off.
    assert registry.port("button", Direction.OUT, "pressed").queue == "hw/button"  # type: ignore[union-attr]
    assert registry.expire(now=700) == []  # reported once
    back = registry.observe(button(), now=800)
    assert back is not None and back.change is Change.RETURNED
    assert registry.port("button", Direction.OUT, "pressed") is not None


def test_declared_period_sets_the_timeout() -> None:
    sleepy = define("mcu", "Sensor", outports=["t"], participant_id="mcu-1")
    sleepy = ParticipantDefinition(**{**sleepy.__dict__, "extra": {"discoveryPeriod": 3600}})
    registry = Registry(expiry=600)
    registry.observe(sleepy, now=0)
    assert registry.expire(now=3 * 3600 - 1) == []
    assert len(registry.expire(now=3 * 3600 + 1)) == 1


def test_live_participant_wins_over_stale_one() -> None:
    registry = Registry(expiry=100)
    registry.observe(button("old", "old/topic"), now=0)
    registry.observe(button("new", "new/topic"), now=90)
    assert registry.port("button", Direction.OUT, "pressed").queue == "new/topic"  # type: ignore[union-attr]
    registry.expire(now=150)  # "old" expires, "new" is still live
    assert registry.port("button", Direction.OUT, "pressed").queue == "new/topic"  # type: ignore[union-attr]
    registry.observe(button("old", "old/topic"), now=160)  # "old" is back and newest
    assert registry.port("button", Direction.OUT, "pressed").queue == "old/topic"  # type: ignore[union-attr]


def test_role_announced_by_two_sources_resolves_each_port() -> None:
    # A YAML registration and the firmware announce the same role with different ports.
    yaml = define(
        "alien-alarm",
        "Alarm",
        outports=[{"id": "door", "queue": "alien-alarm/door"}],
        participant_id="alien-alarm",
    )
    firmware = define(
        "alien-alarm", "Alarm", outports=[{"id": "door-open"}], participant_id="alien-alarm-esp"
    )
    registry = Registry()
    registry.observe(yaml, now=0)
    registry.observe(firmware, now=1)
    assert registry.port("alien-alarm", Direction.OUT, "door").queue == "alien-alarm/door"  # type: ignore[union-attr]
    assert registry.port("alien-alarm", Direction.OUT, "door-open") is not None
