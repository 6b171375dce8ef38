"""Strict discovery against the appliance's real broker, users and ACLs: a device that
announces another role cannot make the coordinator carry data into or out of that role."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.appliance.secrets import Secrets, mqtt_user_url
from gateway.broker import parse_broker_url
from gateway.config.model import GatewayConfig
from gateway.coordinator.coordinator import Coordinator, CoordinatorOptions
from gateway.graph import parse_fbp
from gateway.participant import Participant, serve
from gateway.participant.definition import define
from gateway.participant.discovery import encode_discovery
from gateway.transport import open_transport
from tests.appliance.conftest import Broker, appliance_config, provision
from tests.conftest import Probe
from tests.support.participants import Relay
from tests.support.wait import until

pytestmark = pytest.mark.integration

ROLES = ("sensor", "display", "intruder")
SENT = 20


@pytest.fixture
def appliance(tmp_path: Path) -> tuple[GatewayConfig, Secrets]:
    """conftest's appliance with three device roles; its ``broker`` fixture runs on it."""
    config = appliance_config(tmp_path, roles=ROLES)
    return config, provision(config, tmp_path)


def url(appliance: tuple[GatewayConfig, Secrets], user: str) -> str:
    config, secrets = appliance
    return mqtt_user_url(user, secrets.mqtt_passwords[user], config.broker.port)


@contextlib.asynccontextmanager
async def running(*tasks: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def client(address: str, name: str) -> AsyncIterator[Probe]:
    async with open_transport(parse_broker_url(address), client_id=name) as transport:
        async with asyncio.timeout(5):
            await transport.wait_connected()
        yield Probe(transport)


async def wired(coordinator: Coordinator) -> None:
    async with asyncio.timeout(10):
        while not all(s.resolved for s in coordinator.edge_states()):
            await asyncio.sleep(0.02)
        await coordinator.wired()


async def announce(coordinator: Coordinator, intruder: Probe, role: str, port: str) -> None:
    """The intruder announces ``role`` with one port on its own topic ``intruder/<port>``."""
    ports = [{"id": port, "queue": f"intruder/{port}"}]
    inports, outports = (ports, []) if port == "in" else ([], ports)
    definition = define(role, "Fake", inports=inports, outports=outports, participant_id="fake")
    intruder.transport.publish("fbp", encode_discovery(definition))
    async with asyncio.timeout(5):
        while not coordinator.registry.get("fake") and not coordinator.stats.discovery_rejected:
            await asyncio.sleep(0.02)
    await coordinator.wired()


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize("attack", ["inject", "steal"])
async def test_a_device_announcing_another_role_neither_injects_nor_steals(
    appliance: tuple[GatewayConfig, Secrets], broker: Broker, attack: str, strict: bool
) -> None:
    graph = parse_fbp("sensor(Sensor) OUT -> IN display(Relay)", file="g.fbp")
    transport = open_transport(parse_broker_url(url(appliance, "coordinator")), client_id="c")
    sensor = Participant({"component": "Sensor", "inports": []}, "sensor")
    async with transport:
        coordinator = Coordinator(transport, graph, options=CoordinatorOptions(strict=strict))
        tasks = [
            asyncio.create_task(coordinator.run()),
            asyncio.create_task(serve([sensor], url(appliance, "sensor"), discovery_period=3)),
            asyncio.create_task(
                serve([Relay("display")], url(appliance, "display"), discovery_period=3)
            ),
        ]
        async with (
            running(*tasks),
            client(url(appliance, "admin"), "watcher") as watcher,
            client(url(appliance, "intruder"), "intruder") as intruder,
        ):
            await watcher.watch("display/in", qos=1)
            # What reaches intruder/in, the intruder may read (its ACL): the admin watches it.
            await watcher.watch("intruder/in", qos=1)
            await until(lambda: all(s.resolved for s in coordinator.edge_states()))
            await coordinator.wired()
            at_display = watcher.received["display/in"]
            at_intruder = watcher.received["intruder/in"]
            if attack == "inject":  # "sensor"'s outport on a topic the intruder may write
                await announce(coordinator, intruder, "sensor", "out")
                for i in range(SENT):
                    intruder.transport.publish(
                        "intruder/out", json.dumps(f"fake {i}").encode(), qos=1
                    )
                await intruder.transport.flush()
            else:  # "display"'s inport on a topic the intruder may read
                await announce(coordinator, intruder, "display", "in")
                for i in range(SENT):
                    sensor.send("out", i)
            sensor.send("out", "marker")  # sent after everything else, through the real path
            if strict:
                await until(lambda: b'"marker"' in at_display)
            else:  # what strict discovery prevents: the attack works on a lenient coordinator
                await until(lambda: len(at_display if attack == "inject" else at_intruder) >= SENT)

    injected = [m for m in at_display if m.startswith(b'"fake')]
    if strict:
        assert (injected, at_intruder) == ([], [])
        real = [*range(SENT)] if attack == "steal" else []
        assert [json.loads(m) for m in at_display] == [*real, "marker"]
        assert coordinator.stats.discovery_rejected == 1
    elif attack == "inject":
        assert len(injected) == SENT
    else:
        assert [json.loads(m) for m in at_intruder][:SENT] == list(range(SENT))
