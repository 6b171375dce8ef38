"""The dashboard's health: the health participant's summary when there is a current one, else
one sample of the same readers (the laptop demo runs no participant); and on a real broker,
/api/status showing what a running health participant publishes, its alarms included."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config.model import HealthConfig
from gateway.dashboard.health import HealthView
from gateway.health.participant import HealthParticipant
from gateway.health.sample import HealthSources
from gateway.health.status import STATUS_TOPIC, HealthStatus, encode_status
from gateway.mosquitto import Mosquitto
from gateway.transport.base import Delivery
from tests.dashboard.test_api import dashboard
from tests.health.conftest import Tree
from tests.health.test_participant import running
from tests.support.wait import until

NOW = 10_000.0
SUMMARY = HealthStatus("gateway", NOW - 5, {"temperature": 71.0, "undervoltage": True},
                       {"undervoltage": True, "hot": False}, None, 60.0)  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """The health tests' fake /proc and /sys tree (tests/health/conftest.py)."""
    root = tmp_path / "root"
    root.mkdir()
    return Tree(root)


def delivered(payload: bytes) -> Delivery:
    return Delivery(STATUS_TOPIC, payload, retain=True)


async def test_without_a_participant_the_same_readers_are_read_here(tree: Tree) -> None:
    tree.pi().throttled(0x1)
    answer = await HealthView(HealthSources(tree.root), wall=lambda: NOW).read()
    assert answer["source"] == "local"
    assert answer["readings"]["temperature"] == {"value": 48.312, "unit": "°C"}
    assert answer["alarms"] == {"undervoltage": True, "throttled": False, "hot": False}
    assert "battery_percent" not in answer["readings"]  # absent, not zero


async def test_the_participants_summary_while_it_is_current(tree: Tree) -> None:
    clock = [NOW]
    view = HealthView(HealthSources(tree.root), wall=lambda: clock[0])
    view.on_status(delivered(encode_status(SUMMARY)))
    answer = await view.read()
    assert (answer["source"], answer["role"]) == ("participant", "gateway")
    assert answer["readings"]["temperature"] == {"value": 71.0, "unit": "°C"}
    assert answer["alarms"]["undervoltage"] is True
    clock[0] = NOW + 3600  # not renewed for an hour: stale, read here instead
    assert (await view.read())["source"] == "local"
    clock[0] = NOW
    view.on_status(delivered(b""))  # the participant stopped
    assert (await view.read())["source"] == "local"


def test_a_malformed_summary_is_refused_and_the_last_kept(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    view = HealthView(HealthSources(tree.root))
    view.on_status(delivered(encode_status(SUMMARY)))
    view.on_status(delivered(b'{"role": "x"}'))
    assert view.refused == 1 and view.status == SUMMARY
    assert "ignoring the health summary" in caplog.text


@pytest.mark.integration
async def test_api_status_shows_the_running_participant(
    mosquitto: Mosquitto, tree: Tree, tmp_path: Path
) -> None:
    section = replace(HealthConfig(), interval=0.5, sample_interval=0.05)
    health = HealthParticipant(section, HealthSources(tree.pi().root, data_path=tmp_path), None)
    async with dashboard(mosquitto, tmp_path) as board, running(mosquitto.url, health):
        view = board.dashboard.health

        def alarm() -> bool | None:
            return None if view.status is None else view.status.alarms.get("undervoltage")

        await until(lambda: alarm() is False, what="the participant's summary")
        _, answer = await board.get("/api/status")
        assert answer["health"]["source"] == "participant"
        assert answer["health"]["readings"]["load"] == {"value": 0.52, "unit": ""}
        tree.throttled(0x50005)
        await until(lambda: alarm() is True, what="the raised alarm in the summary")
        _, answer = await board.get("/api/status")
        assert answer["health"]["alarms"]["undervoltage"] is True
