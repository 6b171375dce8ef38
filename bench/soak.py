"""Soak (issue 13): the demo graph plus a serial device under steady load for a set time, and
every process's memory, open files and CPU at the start and at the end.

    .venv/bin/python -m bench.soak --seconds 3600     # the hour-long run, by hand
    .venv/bin/python -m bench.soak                 # 120 s
    .venv/bin/python -m bench.soak --seconds 20       # a smoke run (the test suite runs this)

What runs, each as a user runs it: a private Mosquitto with persistence as on the appliance;
``msgflo`` on the demo graph (``examples/demo.fbp``, its simulated devices started as
participants from ``examples/components``) plus the edge ``load(Load) OUT -> IN echo(Echo)``;
``msgflo-serial`` with one simulated board (the firmware's echo example behind a real pty,
``gateway/bridges/serial/fake_device.py``) as role ``echo``. This process is the ``load``
participant and the echo's consumer; it also publishes climate readings on the climate
sensor's outport, which the coordinator forwards to the alarm. Together ``--rate`` messages/s
(default 100): half to the echo board through the coordinator and the bridge, half as
readings.

After ``--warmup`` seconds the figures of every process of the tree (broker, coordinator, its
participants, the bridge) are taken; again at the end. Printed per process: RSS (VmRSS, MB),
open files (``/proc/PID/fd``) and CPU (% of one core over the run), start and end, and whether
growth stays within the stated bound: RSS up by less than ``--rss-bound`` MB (default 5) and
open files unchanged. Messages sent, echoed and lost are printed too. Nothing is asserted;
every loop is bounded in time, all traffic stays on 127.0.0.1, every process is stopped in a
``finally`` block.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BIN, ROOT
from gateway.bridges.serial.fake_device import PtyDevice
from gateway.mosquitto import Mosquitto, free_port
from gateway.participant import Message, Participant, serve

EXAMPLES = ROOT / "examples"
TICK = os.sysconf("SC_CLK_TCK")
LOAD_EDGE = "load(Load) OUT -> IN echo(Echo)\n"
CLIMATE_TOPIC = "climate/temperature"  # the demo's climate sensor's outport, wired to the alarm


@dataclass(frozen=True)
class Settings:
    seconds: float = 120.0
    rate: float = 100.0
    warmup: float = 10.0
    rss_bound: float = 5.0


@dataclass(frozen=True)
class Sample:
    """One process at one moment."""

    pid: int
    name: str
    rss_mb: float
    files: int
    cpu_s: float


def sample(pid: int) -> Sample | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
        files = len(os.listdir(f"/proc/{pid}/fd"))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return Sample(pid, name_of(cmdline), rss / 1024, files, cpu)


def name_of(cmdline: list[bytes]) -> str:
    """What a process is: ``mosquitto``, ``msgflo``, ``msgflo-serial``, a participant
    (``msgflo-python climate``) or the keeper the coordinator runs it under."""
    words = [w.decode(errors="replace") for w in cmdline if w]
    names = [Path(w).name for w in words]
    if any(n == "keeper.py" for n in names):
        return f"keeper of {words[-1]}"
    tool = next((n for n in names if n.startswith(("msgflo", "mosquitto"))), None)
    if tool == "msgflo-python":
        return f"{tool} {words[-1]}"
    return tool or (names[0] if names else "?")


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc; parents before children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        todo += children.get(pid, [])
    return found


@contextlib.asynccontextmanager
async def command(*argv: str, cwd: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


class Echoes(Participant):
    """The load source (``load``), whose edge leads to the echo board, and a consumer of what the
    board sends back (a plain subscription to ``echo/out``)."""

    def __init__(self) -> None:
        super().__init__({"component": "Load", "inports": []}, "load")
        self.back: set[int] = set()


class EchoReader(Participant):
    def __init__(self, echoes: Echoes) -> None:
        port = {"id": "in", "queue": "echo/out"}
        super().__init__({"component": "SoakReader", "inports": [port]}, "soak-reader")
        self.echoes = echoes

    def process(self, inport: str, msg: Message) -> None:
        if isinstance(msg.data, int):
            self.echoes.back.add(msg.data)


async def load(echoes: Echoes, climate: Participant, settings: Settings, until: float) -> int:
    """Half the rate to the echo board, half as climate readings; returns how many were sent
    to the board."""
    interval, sent, started = 2.0 / settings.rate, 0, time.monotonic()
    while time.monotonic() < until:
        await asyncio.sleep(max(0.0, started + sent * interval - time.monotonic()))
        echoes.send("out", sent)
        climate.send("temperature", 20.0 + (sent % 100) / 10)
        sent += 1
    return sent


def snapshot(roots: Sequence[int]) -> dict[int, Sample]:
    found = {}
    for root in roots:
        for pid in tree(root):
            s = sample(pid)
            if s is not None:
                found[pid] = s
    return found


async def soak(settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="msgflo-soak-") as tmp:
        workdir = Path(tmp)
        graph = (EXAMPLES / "demo.fbp").read_text() + LOAD_EDGE
        (workdir / "soak.fbp").write_text(graph)
        with Mosquitto(autosave_interval=30) as broker:
            async with PtyDevice() as board:
                return await run_tree(settings, workdir, broker, board)


async def run_tree(
    settings: Settings, workdir: Path, broker: Mosquitto, board: PtyDevice
) -> dict[str, Any]:
    coordinator_argv = [
        str(BIN / "msgflo"), "--graph", "soak.fbp", "--broker", broker.url,
        "--library", str(EXAMPLES / "library.yaml"),
        "--componentdir", str(EXAMPLES / "components"),
        "--registry", "participants.json", "--port", str(free_port()),
    ]  # fmt: skip
    bridge_argv = [
        str(BIN / "msgflo-serial"), "--broker", broker.url,
        "--glob", board.path, "--role", f"{board.path}=echo",
    ]  # fmt: skip
    echoes = Echoes()
    climate = Participant(
        {
            "component": "SoakClimate",
            "inports": [],
            "outports": [{"id": "temperature", "queue": CLIMATE_TOPIC}],
        },
        "soak-climate",
    )
    async with (
        command(*coordinator_argv, cwd=workdir) as coordinator,
        command(*bridge_argv, cwd=workdir) as bridge,
    ):
        participants = [echoes, EchoReader(echoes), climate]
        task = asyncio.create_task(serve(participants, broker.url, discovery_period=10))
        try:
            await until_echoed(echoes)
            end = time.monotonic() + settings.seconds
            loader = asyncio.create_task(load(echoes, climate, settings, end))
            await asyncio.sleep(settings.warmup)
            roots = [broker_pid(broker), coordinator.pid, bridge.pid]
            start, start_time = snapshot(roots), time.monotonic()
            sent = await loader
            await echoed(echoes, sent)
            finish, finish_time = snapshot(roots), time.monotonic()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    elapsed = finish_time - start_time
    return figures(
        start, finish, elapsed=elapsed, sent=sent, echoed=len(echoes.back), settings=settings
    )


async def echoed(echoes: Echoes, sent: int) -> None:
    """Until every message sent to the board is back, or 10 s (then some are lost)."""
    for _ in range(200):
        if len(echoes.back) >= sent:
            return
        await asyncio.sleep(0.05)


async def until_echoed(echoes: Echoes) -> None:
    """The board is wired once a probe comes back (the coordinator and bridge start first)."""
    async with asyncio.timeout(60):
        while not echoes.back:
            echoes.send("out", -1)
            await asyncio.sleep(0.5)
    echoes.back.clear()


def broker_pid(broker: Mosquitto) -> int:
    assert broker.pid is not None
    return broker.pid


def figures(
    start: dict[int, Sample],
    finish: dict[int, Sample],
    *,
    elapsed: float,
    sent: int,
    echoed: int,
    settings: Settings,
) -> dict[str, Any]:
    rows = []
    for pid, first in start.items():
        last = finish.get(pid)
        if last is None:
            rows.append({"pid": pid, "name": first.name, "gone": True})
            continue
        growth = last.rss_mb - first.rss_mb
        rows.append(
            {
                "pid": pid,
                "name": first.name,
                "rss_mb": [round(first.rss_mb, 1), round(last.rss_mb, 1)],
                "files": [first.files, last.files],
                "cpu_percent": round(100 * (last.cpu_s - first.cpu_s) / elapsed, 1),
                "within_bound": growth < settings.rss_bound and last.files == first.files,
            }
        )
    new = [finish[pid].name for pid in finish if pid not in start]
    return {"seconds": round(elapsed, 1), "sent": sent, "echoed": echoed, "processes": rows,
            "new_processes": new}  # fmt: skip


def table(result: dict[str, Any], settings: Settings) -> str:
    lines = [
        f"{settings.rate:g} msg/s for {settings.seconds:g} s (figures over the last "
        f"{result['seconds']:g} s); to the echo board {result['sent']}, echoed "
        f"{result['echoed']}; bound: RSS up by less than {settings.rss_bound:g} MB, open files "
        "unchanged",
        "",
        "| process | RSS MB start -> end | open files start -> end | CPU % of a core | bound |",
        "|---|---|---|---|---|",
    ]
    for row in result["processes"]:
        if row.get("gone"):
            lines.append(f"| {row['name']} ({row['pid']}) | gone | | | restarted? |")
            continue
        rss, files = row["rss_mb"], row["files"]
        lines.append(
            f"| {row['name']} ({row['pid']}) | {rss[0]} -> {rss[1]} | {files[0]} -> {files[1]} | "
            f"{row['cpu_percent']} | {'kept' if row['within_bound'] else 'EXCEEDED'} |"
        )
    if result["new_processes"]:
        lines.append(f"\nstarted during the run: {', '.join(result['new_processes'])}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=Settings.seconds)
    p.add_argument("--rate", type=float, default=Settings.rate, help="messages/s in all")
    p.add_argument("--warmup", type=float, default=Settings.warmup)
    p.add_argument("--rss-bound", type=float, default=Settings.rss_bound, help="MB")
    p.add_argument("--json", metavar="FILE", help="write the figures to FILE")
    args = p.parse_args(argv)
    warmup = min(args.warmup, args.seconds / 2)
    settings = Settings(args.seconds, args.rate, warmup, args.rss_bound)
    result = asyncio.run(soak(settings))
    print(table(result, settings))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
