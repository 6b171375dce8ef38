"""The 433 MHz bridge end to end: the real rtl_433 decodes generated OOK pulse data
(tests/support/rf433_signals.py) from files or a FIFO, the bridge announces adopted devices on a
real mosquitto, and a coordinator graph takes their values."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.bridges.host import BridgeHost
from gateway.bridges.rf433.bridge import Rf433Bridge
from gateway.bridges.rf433.child import Rtl433
from gateway.bridges.rf433.cli import heard
from gateway.bridges.seen import parse_seen, seen_topic
from gateway.broker import parse_broker_url
from gateway.config import Rf433BridgeConfig
from gateway.coordinator.coordinator import Coordinator, CoordinatorOptions
from gateway.graph import parse_fbp
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from gateway.transport.backoff import Backoff
from tests.conftest import Probe
from tests.support import rf433_signals as signals
from tests.support.participants import Relay, serving
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration

PERIOD = 5.0
FAST = Backoff(initial=0.05, maximum=0.2)
GARDEN = "Nexus-TH/1/136"
BELL = "Generic-Remote/-/4660"


def sent(packet: signals.Packet, gap_us: int = 1_000_000) -> signals.Transmission:
    return signals.Transmission(packet.pulses, packet.repeats, gap_us)


def weather(id: int = 136, temperature: float = 21.5) -> signals.Transmission:
    return sent(signals.nexus_th(id, 1, True, temperature, 40))


def section(**changes: Any) -> Rf433BridgeConfig:
    settings: dict[str, Any] = {"enabled": True, "period": PERIOD, "replay_interval": 600.0}
    settings.update(changes)
    return Rf433BridgeConfig(**settings)


@contextlib.asynccontextmanager
async def bridge_running(url: str, config: Rf433BridgeConfig) -> AsyncIterator[Rf433Bridge]:
    bridge = Rf433Bridge(config, Rtl433(config, backoff=FAST), seen_every=0.2)
    async with open_transport(parse_broker_url(url), client_id="msgflo-rf433-test") as transport:
        host = BridgeHost("rf433", transport, period=config.period)
        async with background(host.run(bridge.run)):
            yield bridge


def child(bridge: Rf433Bridge) -> Rtl433:
    assert isinstance(bridge.source, Rtl433)
    return bridge.source


def announced(probe: Probe, role: str) -> list[dict[str, Any]]:
    return [d["payload"] for d in probe.discovery() if d["payload"]["role"] == role]


class Fifo:
    """A named pipe rtl_433 reads as a live stream (``-r ook:PATH``); :meth:`send` writes one
    transmission once rtl_433 has it open, opening it again after rtl_433 was restarted."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "live.ook"
        os.mkfifo(self.path)
        self.fd: int | None = None

    async def send(self, transmission: signals.Transmission) -> None:
        data = signals.package_text(transmission).encode()
        for _ in range(2):
            await self._open()
            assert self.fd is not None
            try:
                os.write(self.fd, data)
                return
            except BrokenPipeError:  # the reader was killed: the next one opens it again
                self.close()
        raise AssertionError("rtl_433 did not read the FIFO")

    async def _open(self) -> None:
        while self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:
                if error.errno != errno.ENXIO:  # no reader yet
                    raise
                await asyncio.sleep(0.02)
        os.set_blocking(self.fd, True)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Fifo]:
    pipe = Fifo(tmp_path)
    yield pipe
    pipe.close()


async def test_an_adopted_weather_sensor_sends_noise_nothing_repeats_collapse(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    samples = signals.write_ook(
        tmp_path / "air.ook",
        [
            weather(),
            sent(signals.noise(1)),
            sent(signals.generic_remote(0x1234, 5)),  # one press: 6 repeats, 6 lines
            sent(signals.kerui(0x12345, "open")),  # not adopted: heard
            sent(signals.noise(2)),
        ],
    )
    expected_lines = len(signals.decode(samples))
    config = section(roles=((GARDEN, "garden"), (BELL, "bell")), replay=(samples,))
    for topic in (
        "fbp",
        "garden/temperature_c",
        "garden/humidity",
        "bell/cmd",
        seen_topic("rf433"),
    ):
        await probe.watch(topic)
    async with bridge_running(mosquitto.url, config) as bridge:
        assert json.loads((await probe.wait_count("garden/temperature_c", 1))[0]) == 21.5
        assert json.loads((await probe.wait_count("garden/humidity", 1))[0]) == 40
        assert json.loads((await probe.wait_count("bell/cmd", 1))[0]) == 5
        await until(lambda: bridge.registry.counts.events == expected_lines, what="every line")
        (garden, *_) = announced(probe, "garden")
        assert garden["component"] == "rf433/Nexus-TH"
        assert [p["id"] for p in garden["outports"]] == ["battery_ok", "temperature_c", "humidity"]

        def seen_ids() -> set[str]:
            lists = probe.received[seen_topic("rf433")]
            return {d.id for d in parse_seen("rf433", lists[-1])} if lists else set()

        await until(lambda: "Kerui-Security/-/74565" in seen_ids(), what="the seen list")
        assert {d["payload"]["role"] for d in probe.discovery()} == {"garden", "bell"}
        assert len(probe.received["bell/cmd"]) == 1  # 6 repeats, one message
        assert bridge.registry.counts.repeats >= 5
        assert child(bridge).bad == 0


async def test_a_weather_sensor_feeds_a_graph_run_by_the_coordinator(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    samples = signals.write_ook(tmp_path / "w.ook", [weather(temperature=-4.5)])
    graph = "garden(rf433/Nexus-TH) TEMPERATURE_C -> IN r(Relay)"
    await probe.watch("r/out")
    config = section(roles=((GARDEN, "garden"),), replay=(samples,), replay_interval=2.0)
    url = parse_broker_url(mosquitto.url)
    async with (
        open_transport(url, client_id="coordinator") as transport,
        serving(mosquitto.url, [Relay("r")], discovery_period=PERIOD),
        bridge_running(mosquitto.url, config),
    ):
        edges = parse_fbp(graph)
        coordinator = Coordinator(transport, edges, options=CoordinatorOptions(1.5))
        async with background(coordinator.run()):
            await until(lambda: sum(s.resolved for s in coordinator.edge_states()) == 1)
            assert await probe.next_json("r/out") == "-4.5>r"


async def test_a_swapped_id_keeps_its_role(mosquitto: Mosquitto, probe: Probe, fifo: Fifo) -> None:
    config = section(roles=((GARDEN, "garden"),), swap_after=0.3, replay=(fifo.path,))
    for topic in ("fbp", "garden/temperature_c"):
        await probe.watch(topic)
    async with bridge_running(mosquitto.url, config) as bridge:
        await fifo.send(weather())
        assert await probe.next_json("garden/temperature_c") == 21.5
        await fifo.send(weather(id=201, temperature=19.0))  # new batteries, new id
        await until(lambda: "Nexus-TH/1/201" in {s.id for s in bridge.registry.seen(0.0)})
        await asyncio.sleep(0.4)  # swap_after: heard for that long
        await fifo.send(weather(id=201, temperature=19.5))
        assert await probe.next_json("garden/temperature_c") == 19.5
        assert bridge.registry.counts.moved == 1
        await until(lambda: announced(probe, "garden")[-1]["label"].endswith("Nexus-TH/1/201"))
        assert {d["payload"]["id"] for d in probe.discovery()} == {"garden-rf433"}


async def test_rtl_433_killed_mid_stream_is_started_again(
    mosquitto: Mosquitto, probe: Probe, fifo: Fifo, caplog: pytest.LogCaptureFixture
) -> None:
    config = section(roles=((GARDEN, "garden"),), replay=(fifo.path,))
    await probe.watch("garden/temperature_c")
    async with bridge_running(mosquitto.url, config) as bridge:
        await fifo.send(weather())
        assert await probe.next_json("garden/temperature_c") == 21.5
        process = child(bridge).process
        assert process is not None
        process.kill()
        await until(lambda: child(bridge).starts == 2, what="rtl_433 started again")
        await fifo.send(weather(temperature=22.5))
        assert await probe.next_json("garden/temperature_c") == 22.5
        assert "rtl_433 exited with status -9" in caplog.text
        last = child(bridge).process
        assert last is not None
        pid = last.pid
    assert child(bridge).process is None
    with pytest.raises(ProcessLookupError):  # stopped with the bridge, and reaped
        os.kill(pid, 0)


async def test_heard_lists_each_device_with_the_line_that_adopts_it(tmp_path: Path) -> None:
    samples = signals.write_ook(
        tmp_path / "air.ook",
        [weather(), weather(), sent(signals.generic_remote(0x1234, 5)), sent(signals.noise(3))],
    )
    out = io.StringIO()
    config = Rf433BridgeConfig(roles=((BELL, "bell"),), replay=(samples,))
    assert await heard(config, 30.0, out, once=True) == 2
    text = out.getvalue()
    assert f"{GARDEN} Nexus-TH: battery_ok 1, temperature_C 21.5, humidity 40" in text
    assert f'adopt with: bridges.rf433.roles: {{"{GARDEN}": ROLE}}' in text
    assert f"{BELL} Generic-Remote: cmd 5" in text
    assert "adopted by the config as bell" in text
    assert "2 device(s) heard" in text


def test_rtl_433_is_read_on_uvloop_as_the_daemon_runs_it(tmp_path: Path) -> None:
    """The daemons run on uvloop, whose stdout=PIPE is a socket rtl_433 cannot open as
    /dev/stdout (-F json:/dev/stdout): the child's stdout must be a real pipe."""
    import uvloop

    path = signals.write_ook(tmp_path / "garden.ook", [weather()])
    child = Rtl433(section(replay=(path,)), backoff=FAST)
    events: list[Any] = []
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        status = runner.run(child.run_once(events.append))
    assert (status, [(e.key, e.values()["temperature_C"]) for e in events]) == (
        0, [(GARDEN, 21.5)],
    )  # fmt: skip
