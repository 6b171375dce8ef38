"""Discovery that used to stop or mislead the coordinator, against a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import parse_broker_url
from gateway.coordinator.service import (
    CoordinatorService,
    ServiceConfig,
    autosaved_path,
    load_service_graph,
)
from gateway.graph import load_graph, parse_fbp
from gateway.mosquitto import Mosquitto
from tests.conftest import Probe
from tests.coordinator.test_coordinator_mqtt import graph, participants, wired
from tests.support.coordinating import coordinating
from tests.support.participants import Relay, source
from tests.support.tasks import background

pytestmark = pytest.mark.integration


def announcement(role: str, pid: str, **ports: list[dict[str, Any]]) -> bytes:
    payload: dict[str, Any] = {
        "role": role,
        "id": pid,
        "component": "C",
        "inports": [],
        "outports": [],
    }
    payload.update(ports)
    message = {"protocol": "discovery", "command": "participant", "payload": payload}
    return json.dumps(message).encode("utf-8")


@contextlib.asynccontextmanager
async def running(service: CoordinatorService) -> AsyncIterator[asyncio.Task[object]]:
    async with background(service.run()) as task:
        # Discovery sent before the coordinator subscribed would be missed until the next
        # announcement: wait for a SUBACK, which the broker sends after applying the
        # coordinator's earlier subscriptions (it handles a connection's packets in order).
        async with asyncio.timeout(10):
            await service.transport.wait_connected()
            await service.transport.subscribe("test/subscribed", lambda delivery: None)
        yield task


async def test_queues_no_broker_can_carry_are_refused_and_the_coordinator_keeps_wiring(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    # These made the MQTT encoder raise while forwarding or sending an IIP: the coordinator
    # exited, and with a retained announcement it exited again after every restart.
    g = graph("s(Source) OUT -> IN r(Relay)\n'1' -> IN t(Relay)")
    await probe.watch("r/out")
    async with coordinating(mosquitto.url, g) as coordinator:
        for i, queue in enumerate(["\udc80", "q" * 65_536]):
            out = [{"id": "out", "queue": queue}]
            probe.transport.publish("fbp", announcement("s", f"evil{i}", outports=out), retain=True)
            probe.transport.publish("fbp", announcement("t", f"evil{i}", inports=out))
        async with asyncio.timeout(5):
            while coordinator.stats.discovery_rejected < 4:
                await asyncio.sleep(0.01)
        s = source("s")
        async with participants(mosquitto.url, s, Relay("r")):
            await wired(coordinator, 1)
            s.send("out", "x")
            assert await probe.next_json("r/out") == "x>r"
    probe.transport.publish("fbp", b"", retain=True)


async def test_participants_that_appear_later_do_not_resend_the_graphs_iips(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    # Each node the service added for a discovered role used to send every IIP again.
    config = ServiceConfig(broker=parse_broker_url(mosquitto.url), wait_timeout=0.5)
    service = CoordinatorService(config, parse_fbp("'go' -> IN t(Relay)", file="g.fbp"))
    await probe.watch("t/in", qos=1)
    async with running(service), participants(mosquitto.url, Relay("t")):
        assert await probe.wait_count("t/in", 1) == [b'"go"']
        strangers = [source(f"stranger{i}") for i in range(5)]
        async with participants(mosquitto.url, *strangers):
            async with asyncio.timeout(5):
                while len(service.coordinator.graph.processes) < 6:
                    await asyncio.sleep(0.01)
            await service.coordinator.wired()
        assert service.coordinator.stats.iips_sent == 1
        assert len(probe.received["t/in"]) == 1


async def test_auto_save_keeps_roles_fbp_cannot_name(mosquitto: Mosquitto, tmp_path: Path) -> None:
    # A serial device announced as lab/button: .fbp names cannot hold '/', and auto-save used
    # to fail on every later edit, which was then lost at the next restart.
    path = tmp_path / "g.fbp"
    path.write_text("a(Relay) OUT -> IN b(Relay)\n")
    config = ServiceConfig(broker=parse_broker_url(mosquitto.url), graph_path=path, auto_save=True)
    service = CoordinatorService(config, load_service_graph(path, auto_save=True))
    async with running(service), participants(mosquitto.url, source("lab/button")):
        async with asyncio.timeout(10):
            while not autosaved_path(path).exists():
                await asyncio.sleep(0.02)
    assert "lab/button" in load_graph(autosaved_path(path)).processes
    assert path.read_text() == "a(Relay) OUT -> IN b(Relay)\n"  # the user's file is untouched
    restarted = load_service_graph(path, auto_save=True)
    assert set(restarted.processes) == {"a", "b", "lab/button"}
    assert set(load_service_graph(path).processes) == {"a", "b"}  # without auto-save: the file
    path.write_text("a(Relay) OUT -> IN c(Relay)\n")  # edited by hand later: the newer one wins
    later = autosaved_path(path).stat().st_mtime + 1
    os.utime(path, (later, later))
    assert set(load_service_graph(path, auto_save=True).processes) == {"a", "c"}
