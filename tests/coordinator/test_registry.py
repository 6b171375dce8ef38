"""The participant registry (pure, time passed in): add, update, expire, return, lookups."""

from __future__ import annotations

import pytest

from gateway.coordinator.coordinator import check_own_queues
from gateway.coordinator.registry import MAX_GONE_PER_ROLE, Change, Registry
from gateway.errors import DiscoveryError
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


def test_online_means_announced_within_its_period() -> None:
    registry = Registry(expiry=600)
    registry.observe(button(), now=0)
    seen = registry.get("button-1")
    assert seen is not None
    assert seen.online(now=60)  # the default period: 60 s
    assert not seen.online(now=61)  # stopped announcing, though not expired yet
    fast = define("fast", "F", outports=["o"], participant_id="fast-1")
    fast = ParticipantDefinition(**{**fast.__dict__, "extra": {"discoveryPeriod": 2}})
    registry.observe(fast, now=0)
    quick = registry.get("fast-1")
    assert quick is not None and quick.online(now=2) and not quick.online(now=2.5)
    registry.expire(now=601)
    assert not registry.get("button-1").online(now=601)  # type: ignore[union-attr]


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


def worker(pid: str, role: str = "worker") -> ParticipantDefinition:
    return define(role, "Worker", inports=["in"], participant_id=pid)


def test_invented_ids_cannot_grow_the_registry_without_bound() -> None:
    registry = Registry(expiry=10, max_participants=5, max_live_per_role=3)
    for i in range(3):
        registry.observe(worker(f"w{i}"), now=0)
    with pytest.raises(DiscoveryError, match="role 'worker' has 3 live participants already"):
        registry.observe(worker("w3"), now=1)
    assert registry.observe(worker("w0"), now=1) is None  # known ids keep announcing
    registry.observe(worker("a", "other"), now=2)
    registry.observe(worker("b", "other"), now=2)
    with pytest.raises(DiscoveryError, match="5 participants known, the most allowed"):
        registry.observe(worker("c", "third"), now=3)
    assert len(registry) == 5


def test_quiet_participants_make_room_oldest_first() -> None:
    registry = Registry(expiry=10, max_participants=3)
    registry.observe(worker("old", "a"), now=0)
    registry.observe(worker("older", "b"), now=5)
    registry.observe(worker("live", "c"), now=5)
    registry.expire(now=16)  # "old" and "older" went quiet: both still wire their roles
    assert registry.port("a", Direction.IN, "in") is not None
    registry.observe(worker("live", "c"), now=16)
    registry.observe(worker("new", "d"), now=17)
    assert registry.get("old") is None  # forgotten to make room: it was quiet the longest
    assert registry.get("older") is not None and registry.get("new") is not None


def test_a_role_keeps_a_few_quiet_participants() -> None:
    registry = Registry(expiry=1)
    for i in range(20):  # a device that comes back with a new id after every reboot
        registry.observe(worker(f"boot{i}"), now=i * 10)
        registry.expire(now=i * 10 + 5)
    assert len(registry.known("worker")) == MAX_GONE_PER_ROLE
    assert registry.known("worker")[0].id == "boot19"


def test_strict_discovery_gives_a_dashboard_page_its_web_topics() -> None:
    own = define("lamp", "L", inports=[{"id": "in", "queue": "lamp/in"}], participant_id="l1")
    check_own_queues(own)
    page = "web-0123abcd-button"
    virtual = define(page, "B", outports=[{"id": "out", "queue": "web/web-0123abcd/button/out"}])
    check_own_queues(virtual)
    for role, queue in (
        (page, "lamp/in"),  # another role's topic
        (page, "web/web-99999999/led/in"),  # another page's
        ("lamp", "web/web-0123abcd/x"),  # a role that is no page
    ):
        with pytest.raises(DiscoveryError):
            check_own_queues(define(role, "X", inports=[{"id": "in", "queue": queue}]))
