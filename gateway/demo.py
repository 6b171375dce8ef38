"""``./bootstrap.sh demo``: the coordinator running the demo graph, with nothing to configure.

Starts a private Mosquitto on a free loopback port, then the coordinator on
``examples/demo.fbp``: it starts each simulated device (a climate sensor, a button, a
threshold alarm, an LED display) as its own participant process from ``examples/components``,
wires them as the graph says, and prints what the devices print. A BLE thermometer (role
``fridge``) comes from the BLE bridge replaying ``examples/ble-replay.jsonl`` through the same
pipeline a radio would feed (docs/ble.md), and a 433 MHz weather sensor (role ``garden``) from
the 433 MHz bridge running the real rtl_433 on ``examples/rf433-replay.ook`` in a loop
(docs/rf433.md). Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from gateway.bridges import ble, rf433
from gateway.bridges.ble.sources import ReplaySource
from gateway.bridges.run import serve
from gateway.broker import parse_broker_url
from gateway.common.logs import ENV_LOGLEVEL, configure_logging
from gateway.common.signals import run_daemon
from gateway.config import BleBridgeConfig, Rf433BridgeConfig
from gateway.coordinator.library import load_library, with_builtins
from gateway.coordinator.runtime_environment import RuntimeProtocolService, RuntimeSettings
from gateway.coordinator.service import CoordinatorService, ServiceConfig
from gateway.dashboard.settings import DashboardSettings, WebMqtt
from gateway.errors import GatewayError
from gateway.graph import read_fbp
from gateway.mosquitto import Mosquitto, free_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEFAULT_RUNTIME_PORT = 3569
# The replayed thermometer the graph names fridge; its values are sent again every 2 s, so
# the display shows one soon after the coordinator has wired the edge.
FRIDGE = BleBridgeConfig(
    enabled=True, roles=(("A4:C1:38:D5:D4:98", "fridge"),), report_interval=2.0, period=10.0
)
REPLAY_SPEED = 4.0  # the recording's 12 s, four times faster
# The weather sensor in the garden: rtl_433 decodes its recorded signal every 3 s.
GARDEN = Rf433BridgeConfig(
    enabled=True,
    roles=(("Nexus-TH/2/90", "garden"),),
    replay=(EXAMPLES / "rf433-replay.ook",),
    replay_interval=3.0,
    period=10.0,
)


def demo_config(broker_url: str, examples: Path) -> tuple[ServiceConfig, Path]:
    graph_path = examples / "demo.fbp"
    if not graph_path.exists():
        raise GatewayError(f"{graph_path}: the demo graph is missing (run from a checkout)")
    library = with_builtins(
        load_library(examples / "library.yaml").with_component_dir(examples / "components")
    )
    config = ServiceConfig(
        broker=parse_broker_url(broker_url),
        graph_path=graph_path,
        library=library,
        wait_timeout=15.0,
    )
    return config, graph_path


# The radio devices the laptop demo adds to examples/demo.fbp (the kit's first graph, which has
# none: on the kit, radio devices are real ones the user adopts).
RADIO_NODES = """
fridge(ble/LYWSD03MMC/MJWSD05MMC_ATC) TEMPC -> TEMPERATURE display
garden(rf433/Nexus-TH) TEMPERATURE_C -> OUTSIDE display
"""


def demo_graph_text(graph_path: Path) -> str:
    """examples/demo.fbp with the replayed radio devices wired to the display."""
    return graph_path.read_text(encoding="utf-8") + RADIO_NODES


async def run_demo(
    config: ServiceConfig,
    graph_path: Path,
    port: int,
    duration: float | None,
    dashboard: DashboardSettings | None = None,
) -> None:
    graph = read_fbp(demo_graph_text(graph_path), file=str(graph_path))[0]
    service = CoordinatorService(config, graph)
    settings = RuntimeSettings("127.0.0.1", port, dashboard=dashboard or DashboardSettings())
    runtime = RuntimeProtocolService(service, settings)
    try:
        async with asyncio.timeout(duration), asyncio.TaskGroup() as tasks:
            tasks.create_task(service.run())
            tasks.create_task(runtime.run())
            tasks.create_task(replayed_ble(config))
            tasks.create_task(replayed_rf433(config))
    except TimeoutError:
        pass


async def replayed_ble(config: ServiceConfig) -> None:
    replay = ReplaySource(EXAMPLES / "ble-replay.jsonl", repeat=True, speed=REPLAY_SPEED)
    await serve("ble", FRIDGE, config.broker, side=ble.device_side(FRIDGE, replay))


async def replayed_rf433(config: ServiceConfig) -> None:
    await serve("rf433", GARDEN, config.broker, side=rf433.device_side(GARDEN))


def runtime_port() -> int:
    """The usual FBP runtime port, or any free one when something else has it."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", DEFAULT_RUNTIME_PORT))
    except OSError:
        return free_port()
    return DEFAULT_RUNTIME_PORT


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="msgflo-gateway-demo", description=__doc__)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    args = parser.parse_args(argv)
    configure_logging()
    logging.getLogger("gateway.transport").setLevel(logging.WARNING)
    # The started devices inherit these: their pace, and quiet connection logs.
    os.environ["DEMO_INTERVAL"] = str(args.interval)
    os.environ[ENV_LOGLEVEL] = "WARNING"
    # The WebSockets listener is for the dashboard's virtual devices (the phone as a device).
    with Mosquitto(websockets=True) as broker:
        config, graph_path = demo_config(broker.url, EXAMPLES)
        port = runtime_port()
        web_mqtt = WebMqtt(broker.ws_url) if broker.ws_url else None
        dashboard = DashboardSettings(web_mqtt=web_mqtt, data_path=graph_path.parent)
        print(f"msgflo-gateway demo: coordinator on {graph_path}")
        print(f"  broker (private, loopback only): {broker.url}")
        print(
            f"  FBP runtime (Flowhub, fbp-spec):  ws://127.0.0.1:{port}  "
            f"(try: .venv/bin/msgflo-info --address ws://127.0.0.1:{port})"
        )
        print(
            f"  watch the devices announce:  .venv/bin/msgflo-dump-message --broker "
            f"{broker.url} --queue fbp"
        )
        print(
            f"  press the button yourself:   .venv/bin/msgflo-send-message --broker "
            f"{broker.url} --queue button/pressed --json true"
        )
        print(f"  dashboard: http://127.0.0.1:{port}/")
        print("  (Ctrl-C stops the demo)")
        print(flush=True)
        run_daemon(run_demo(config, graph_path, port, args.duration, dashboard))
    print("demo stopped", flush=True)
    return 0
