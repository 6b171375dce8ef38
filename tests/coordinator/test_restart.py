"""A coordinator killed and restarted: the registry on disk and the broker's persistent
session bring back its forwarding at once, with the QoS 1 data sent while it was down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.mosquitto import Mosquitto, free_port
from gateway.participant import Participant, serve
from tests.conftest import Probe
from tests.support.cli import BIN
from tests.support.participants import Relay

pytestmark = pytest.mark.integration


class Msgflo:
    """The ``msgflo`` command on a graph file, as systemd runs it (its own process group)."""

    def __init__(self, workdir: Path, broker: str, *args: str) -> None:
        self.argv = [str(BIN / "msgflo"), "--graph", "g.fbp", "--broker", broker, *args]
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            "--port",
            str(free_port()),
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(30):
            while b"msgflo started on" not in await self.process.stdout.readline():
                pass
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while await self.process.stdout.readline():
            pass

    async def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await self.process.wait()


@pytest.fixture
async def msgflo(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Msgflo]:
    (tmp_path / "g.fbp").write_text("s(Source) OUT -> IN r(Relay)\n")
    coordinator = Msgflo(tmp_path, mosquitto.url, "--registry", "participants.json")
    yield coordinator
    await coordinator.stop()


def sensor() -> Participant:
    port = {"id": "out", "qos": 1}
    return Participant({"component": "Source", "inports": [], "outports": [port]}, "s")


def saved_roles(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {p["role"] for p in json.loads(path.read_bytes())["participants"]}


async def registered(path: Path, roles: set[str]) -> None:
    async with asyncio.timeout(10):
        while not saved_roles(path) >= roles:
            await asyncio.sleep(0.05)


async def until_forwarded(s: Participant, probe: Probe) -> None:
    """Send until the coordinator has wired the edge and forwarded one."""
    async with asyncio.timeout(15):
        while not probe.received["r/in"]:
            s.send("out", "warm-up")
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_qos1_data_sent_while_the_coordinator_is_down_is_forwarded_after_its_restart(
    msgflo: Msgflo, mosquitto: Mosquitto, probe: Probe, tmp_path: Path, how: str
) -> None:
    await probe.watch("r/in", qos=1)
    await msgflo.start()
    s = sensor()
    # Announcing every 1.4 s: the coordinator may subscribe after their first announcement.
    # What arrived while it was down reaches it at connect, before any of them.
    task = asyncio.create_task(serve([s, Relay("r")], mosquitto.url, discovery_period=3))
    try:
        await until_forwarded(s, probe)
        await registered(tmp_path / "participants.json", {"s", "r"})
        await (msgflo.kill() if how == "SIGKILL" else msgflo.stop())
        for i in range(50):
            s.send("out", i)
        await msgflo.start()
        async with asyncio.timeout(10):
            while len(numbers := forwarded(probe)) < 50:
                await probe.wait_count("r/in", len(probe.received["r/in"]) + 1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert numbers == list(range(50))


def forwarded(probe: Probe) -> list[int]:
    return [m for m in map(json.loads, probe.received["r/in"]) if m != "warm-up"]
