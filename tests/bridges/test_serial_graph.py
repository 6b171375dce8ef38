"""A fake board behind the serial bridge in a graph run by the coordinator: messages flow through
it, and after an unplug (the coordinator expires it) and a replug they flow again."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bridges.serial.fake_device import PtyDevice
from gateway.broker import parse_broker_url
from gateway.coordinator.coordinator import Coordinator, CoordinatorOptions
from gateway.graph import parse_fbp
from gateway.mosquitto import Mosquitto
from gateway.participant import Participant, serve
from gateway.transport import open_transport
from tests.bridges.test_serial_bridge import BY_ID, fast_config, running
from tests.conftest import Probe
from tests.support.participants import Relay
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration

GRAPH = "s(Source) OUT -> IN dev(Repeat)\ndev OUT -> IN r(Relay)"
PERIOD = 1.1  # everybody announces every 0.5 s; the coordinator expires after 1.5 s of silence


async def test_the_board_works_in_a_graph_and_again_after_unplug_expiry_and_replug(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("r/out")
    source = Participant({"component": "Source", "inports": [], "outports": ["out"]}, "s")
    url = parse_broker_url(mosquitto.url)
    async with (
        open_transport(url, client_id="coordinator") as transport,
        running(mosquitto, fast_config(tmp_path, {"DEV1": "dev"})) as bridge,
    ):
        coordinator = Coordinator(transport, parse_fbp(GRAPH), options=CoordinatorOptions(1.5))
        async with (
            background(coordinator.run()),
            background(serve([source, Relay("r")], url, discovery_period=PERIOD)),
        ):

            def resolved() -> int:
                return sum(state.resolved for state in coordinator.edge_states())

            async with PtyDevice() as board:
                board.plug(tmp_path, BY_ID.format(serial="DEV1"))
                await until(lambda: resolved() == 2)
                source.send("out", "x")
                assert await probe.next_json("r/out") == "x>r"  # the board echoed it byte for byte
                board.close()
                await until(lambda: not bridge.announced)
            # The coordinator expires it; it keeps the wiring of a device that went quiet.
            await until(lambda: not coordinator.registry.live("dev"))
            async with PtyDevice() as board:
                board.plug(tmp_path, BY_ID.format(serial="DEV1"))
                await until(lambda: bool(coordinator.registry.live("dev")))
                await until(lambda: resolved() == 2)
                source.send("out", "y")
                assert await probe.next_json("r/out") == "y>r"
