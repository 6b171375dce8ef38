"""The coordinator with its FBP runtime protocol server, until SIGINT or SIGTERM: what the
``msgflo`` command and the appliance's ``gateway-run coordinator`` both run.

Each builds a :class:`~gateway.coordinator.service.ServiceConfig` and
:class:`~gateway.coordinator.runtime_environment.RuntimeSettings` its own way (command-line
options, ``gateway.yaml``) and hands them to :func:`run_with_runtime_protocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from gateway.broker import ENV_BROKER, BrokerUrl, parse_broker_url, resolve_broker
from gateway.common.signals import notify_ready, run_daemon
from gateway.coordinator.runtime_environment import RuntimeProtocolService, RuntimeSettings
from gateway.coordinator.service import CoordinatorService, ServiceConfig
from gateway.graph.model import Graph
from gateway.mosquitto import Mosquitto

# Tools and tests wait for this line: the runtime protocol server listens once it is printed.
STARTED = "msgflo started on"


def run_with_runtime_protocol(
    config: ServiceConfig, graph: Graph, settings: RuntimeSettings
) -> None:
    """Blocking: coordinate ``graph`` and serve the runtime protocol until SIGINT/SIGTERM."""
    service = CoordinatorService(config, graph)
    runtime = RuntimeProtocolService(service, settings)
    run_daemon(serve(service, runtime))


async def serve(service: CoordinatorService, runtime: RuntimeProtocolService) -> None:
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(service.run())
        tasks.create_task(runtime.run())
        await runtime.server.ready.wait()
        await service.coordinator.listening.wait()  # no announcement is missed from here on
        print(f"{STARTED} {runtime.server.address}", flush=True)
        notify_ready()


def choose_broker(given: str | None, stack: contextlib.ExitStack) -> tuple[BrokerUrl, str | None]:
    """``given``, else ``$MSGFLO_BROKER``, else a broker on localhost:1883, else a private
    Mosquitto on a free loopback port that lives as long as ``stack``; with the broker's MQTT
    over WebSockets URL when it is the private one (for the dashboard's virtual devices)."""
    if given or os.environ.get(ENV_BROKER):
        return resolve_broker(given), None
    if _listening("127.0.0.1", 1883):
        return parse_broker_url("mqtt://localhost:1883"), None
    broker = stack.enter_context(Mosquitto(websockets=True))
    print(
        f"msgflo: no broker given and none on localhost:1883; started a private Mosquitto "
        f"at {broker.url}",
        flush=True,
    )
    return parse_broker_url(broker.url), broker.ws_url


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True
