"""The wall clock jumping (a Pi has no real-time clock: its time is restored from a file at
boot and set by hand or by a phone later): the coordinator's timers run on the monotonic
clock, so a jump forward expires nobody and a jump back stops no timer. The coordinator runs
under libfaketime, which moves its wall clock (and only that) while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.mosquitto import Mosquitto, free_port
from gateway.participant import serve
from tests.conftest import Probe
from tests.support.cli import BIN
from tests.support.participants import Relay, source

pytestmark = pytest.mark.integration

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
EXPIRY = 15  # seconds: the participants announce once in the test (their period is 60 s)


class Output:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    async def read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode(errors="replace"))
            self.changed.set()

    async def until(self, text: str, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while sum(text in line for line in self.lines) < count:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def faked_msgflo(workdir: Path, broker: str, clock: Path) -> AsyncIterator[Output]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(clock),
        "FAKETIME_NO_CACHE": "1",  # read the file at every call: the test moves the clock
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # as on a real system: only the wall clock jumps
    }
    argv = [str(BIN / "msgflo"), "--graph", "g.fbp", "--broker", broker, "--expiry", str(EXPIRY)]
    process = await asyncio.create_subprocess_exec(
        *argv,
        "--port",
        str(free_port()),
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = Output()
    reader = asyncio.create_task(output.read(process.stdout))
    try:
        await output.until("msgflo started on", 1, 30)
        yield output
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
        await reader


@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="libfaketime (./bootstrap.sh setup) missing")
async def test_wall_clock_jumps_neither_expire_participants_nor_stop_timers(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    (tmp_path / "g.fbp").write_text("s(Source) OUT -> IN r(Relay)\n")
    clock = tmp_path / "faketime"
    clock.write_text("+0\n")
    await probe.watch("r/in")
    async with faked_msgflo(tmp_path, mosquitto.url, clock) as output:
        s = source("s")
        task = asyncio.create_task(serve([s, Relay("r")], mosquitto.url, discovery_period=60))
        try:
            async with asyncio.timeout(10):
                while not probe.received["r/in"]:
                    s.send("out", "before")
                    await asyncio.sleep(0.1)
            clock.write_text("+365d\n")  # a year forward: nobody has been quiet that long
            await asyncio.sleep(1.5)  # the expiry timer checks at least every second
            sent = len(probe.received["r/in"])
            s.send("out", "after a jump forward")
            assert await probe.next_json("r/in") == "after a jump forward", sent
            assert not [line for line in output.lines if " gone: " in line]
            clock.write_text("-730d\n")  # two years back: the expiry must still come
            await output.until(" gone: ", 2, EXPIRY + 30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
