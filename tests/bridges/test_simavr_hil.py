"""Hardware in the loop (issue 6 item 5): the Echo example, built for an Arduino Uno, runs on a
simulated ATmega328P (libsimavr, firmware/test/simavr/harness.c) whose UART is a pty behind a
/dev/serial/by-id-style link; ``msgflo-serial``, the ``msgflo`` coordinator and mosquitto do the
rest, as on the appliance.

The test sends a message from a graph node into the board's inport and sees the board's reply on
its outport queue; then the board is unplugged (the harness killed), replugged (restarted: a new
pty behind the same link) and works again; then line noise in both directions is survived.

Missing avr-gcc, the Arduino core or simavr is a failure, not a skip: ``./bootstrap.sh setup``
installs gcc-avr, avr-libc, arduino-core-avr, simavr, libsimavr-dev and libsimavrparts1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.mosquitto import Mosquitto
from gateway.participant import Participant, serve
from tests.conftest import Probe
from tests.support.cli import BIN
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "firmware" / "test" / "simavr" / "harness.c"
BUILD_AVR = ROOT / "firmware" / "extras" / "build_avr.py"
LINK = "usb-Arduino__www.arduino.cc__0043_{serial}-if00"
SERIAL = "SIMAVR0001"
ROLE = "dev"
GRAPH = f"s(Source) OUT -> IN {ROLE}(Echo)\n"
PERIOD = 2.0  # discovery every ~0.9 s


def build_harness(directory: Path) -> Path:
    """Compile harness.c against libsimavr; a failure (no simavr) fails the test."""
    if not Path("/usr/include/simavr/sim_avr.h").exists():
        pytest.fail("simavr headers missing: run ./bootstrap.sh setup (libsimavr-dev)")
    binary = directory / "harness"
    command = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-I/usr/include/simavr"]
    command += [str(HARNESS), "-o", str(binary), "-lsimavr", "-lsimavrparts", "-lutil"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(f"the simavr harness does not build:\n{result.stdout}{result.stderr}")
    return binary


def build_echo(directory: Path) -> Path:
    """The Echo example for an Uno, as firmware/extras/build_avr.py builds it."""
    command = [sys.executable, str(BUILD_AVR), "--build", str(directory), "Echo"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"the AVR build failed:\n{result.stdout}{result.stderr}"[-6000:])
    return directory / "Echo" / "Echo.elf"


class Board:
    """The simulated board: a harness process, its pty linked under a by-id-style name."""

    def __init__(self, harness: Path, elf: Path, link: Path) -> None:
        self.harness, self.elf, self.link = harness, elf, link
        self.process: subprocess.Popen[str] | None = None

    def plug(self) -> None:
        assert self.process is None
        self.process = subprocess.Popen(
            [str(self.harness), str(self.elf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        pty = self.process.stdout.readline().strip()  # the harness prints it at once
        assert pty.startswith("/dev/"), f"the harness printed {pty!r}"
        temporary = self.link.with_name(self.link.name + ".new")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(pty)
        temporary.replace(self.link)  # atomically: the bridge never sees a half-made link

    def unplug(self) -> None:
        self.link.unlink(missing_ok=True)
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=5)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None

    def noise(self) -> None:
        """64 random bytes each way (see harness.c)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)


@contextlib.contextmanager
def spawned(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "MSGFLO_PYTHON_LOGLEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def read(path: Path) -> str:
    return path.read_text("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def announcements(probe: Probe) -> list[dict[str, object]]:
    return [m["payload"] for m in probe.discovery() if m.get("payload", {}).get("role") == ROLE]


class Source(Participant):
    """The graph node s; remembers what it sent, so every echo can be checked against it."""

    def __init__(self) -> None:
        super().__init__({"component": "Source", "inports": [], "outports": ["out"]}, "s")
        self.sent: set[str] = set()

    def emit(self, text: str) -> None:
        self.sent.add(text)
        self.send("out", text)


async def round_trip(source: Source, probe: Probe, tag: str, timeout: float = 10.0) -> None:
    """Send from the graph node s into the board (via the coordinator's edge) until the board's
    echo of one of these messages comes back on its outport queue."""
    topic = f"{ROLE}/out"
    before = len(probe.received[topic])
    deadline = time.monotonic() + timeout
    attempt = 0
    while time.monotonic() < deadline:
        source.emit(f"{tag}-{attempt}")
        attempt += 1
        for _ in range(10):
            await asyncio.sleep(0.05)
            for payload in probe.received[topic][before:]:
                text = json.loads(payload)
                assert text in source.sent, payload  # only ever what was sent, byte for byte
                if text.startswith(f"{tag}-"):
                    return
    pytest.fail(f"no echo of {tag!r} on {topic} within {timeout} s")


async def test_echo_firmware_on_simavr_through_bridge_and_coordinator(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    for tool in ("avr-gcc", "avr-g++", "gcc"):
        assert shutil.which(tool), f"{tool} missing: run ./bootstrap.sh setup"
    harness = build_harness(tmp_path)
    elf = build_echo(tmp_path / "avr")
    devices = tmp_path / "by-id"
    devices.mkdir()
    board = Board(harness, elf, devices / LINK.format(serial=SERIAL))
    graph = tmp_path / "main.fbp"
    graph.write_text(GRAPH)
    bridge_log, coordinator_log = tmp_path / "bridge.log", tmp_path / "coordinator.log"
    bridge_command = [str(BIN / "msgflo-serial"), "--broker", mosquitto.url]
    bridge_command += ["--glob", str(devices / "usb-*"), "--role", f"{SERIAL}={ROLE}"]
    bridge_command += ["--period", str(PERIOD), "--ping-interval", "0.5", "--missed-pongs", "3"]
    coordinator_command = [str(BIN / "msgflo"), "--graph", str(graph), "--broker", mosquitto.url]
    coordinator_command += ["--ignore", "s", "--ignore", ROLE, "--port", str(free_port())]
    source = Source()
    await probe.watch("fbp")
    await probe.watch(f"{ROLE}/out")
    try:
        with (
            spawned(bridge_command, bridge_log),
            spawned(coordinator_command, coordinator_log),
        ):
            async with background(serve([source], mosquitto.url, discovery_period=PERIOD)):
                try:
                    await run_scenario(board, probe, source, bridge_log)
                except BaseException:
                    print("--- bridge log ---\n" + bridge_log.read_text(errors="replace"))
                    print(
                        "--- coordinator log ---\n" + coordinator_log.read_text("utf-8", "replace")
                    )
                    raise
    finally:
        board.unplug()


async def run_scenario(board: Board, probe: Probe, source: Source, bridge_log: Path) -> None:
    # Plugged in: announced with the ports of the firmware's description.
    board.plug()
    await until(lambda: bool(announcements(probe)), 15, "the board's discovery on fbp")
    assert announcements(probe)[-1] == {
        "component": "Echo",
        "label": "Sends every message back",
        "icon": "repeat",
        "role": ROLE,
        "id": ROLE,
        "inports": [{"id": "in", "type": "any", "queue": f"{ROLE}/in"}],
        "outports": [{"id": "out", "type": "any", "queue": f"{ROLE}/out"}],
    }
    await round_trip(source, probe, "first")

    # Unplugged: the bridge notices and stops announcing it.
    board.unplug()
    await until(lambda: "no longer announced" in bridge_log.read_text(), 10, "the unplug")
    count = len(announcements(probe))
    await asyncio.sleep(2.5 * PERIOD / 2.2)
    assert len(announcements(probe)) == count, "still announced after the unplug"

    # Replugged (a new pty behind the same link): announced again, same role, works again.
    board.plug()
    await until(lambda: len(announcements(probe)) > count, 15, "the board's return")
    await round_trip(source, probe, "again")

    # Line noise both ways, bursts between and during messages: both ends drop it and count it
    # (the bridge logs its own drops and the board's counters from its pongs), and carry on.
    for burst in range(5):
        board.noise()
        source.emit(f"noisy-{burst}")  # may be lost to the noise: at most once
        await asyncio.sleep(0.1)
    await round_trip(source, probe, "after-noise")
    await until(lambda: "device counts dropped frames" in read(bridge_log), 5, "the board's counts")
    assert "dropped frame" in read(bridge_log), "the bridge did not notice the noise"
