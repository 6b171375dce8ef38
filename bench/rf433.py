"""The 433 MHz bridge (issue 17): decoded events per second it sustains and its CPU per event,
against rtl_433 alone writing JSON to /dev/null, and what collapsing repeats costs and saves.

    .venv/bin/python -m bench.rf433                # 3 rounds of 2,000 transmissions per mix
    .venv/bin/python -m bench.rf433 --quick        # smoke run, a few seconds
    .venv/bin/python -m bench.rf433 --profile 25   # also one bridge pass per mix under cProfile

The radio is the real rtl_433 (Debian's 22.11) reading OOK pulse data files made by
``tests/support/rf433_signals.py`` (docs/rf433.md, "Test signals"); a new file per round and
mix, so that no value of a round repeats the last one of the round before. A *transmission* is
one reading or one press, what the bridge should make one message of (per field). Two mixes:

* ``sensors``: Nexus-TH weather sensors, up to 768 (ids 0-255 on channels 1-3), each reading
  its 12 repeats; rtl_433 reports the 12 as one line (they reach its decoder as one package).
  A sensor's readings within a file differ (temperature), so every line is a message per field
  (battery_ok, temperature_c, humidity);
* ``remotes``: 256 EV1527 remotes (``Generic-Remote``), each press 6 repeats that rtl_433
  reports one by one (6 lines); the bridge collapses them to one message per field (cmd,
  tristate). A remote's presses within a file differ (cmd).

Stages, in this order for each mix in every round (each a whole pass over that round's file):

1. ``rtl_433 alone`` (the floor): the bridge's own rtl_433 command line (``command_line``:
   ``-F json -M level -M protocol -M time:unix:usec -C si -r FILE``) with stdout on /dev/null;
   CPU (user + system) from ``os.wait4``, and transmissions per wall-clock second;
2. ``+ reader``: the bridge's child supervisor (``Rtl433.run_once``) runs the same command and
   reads, cuts and parses its output into ``RadioEvent`` values, handed to ``list.append``:
   rtl_433's CPU (``RUSAGE_CHILDREN``; it writes to a pipe now) and this process's;
3. ``Registry.observe``: the pure core alone on those events (adoption done beforehand);
4. ``bridge``: the whole bridge: an ``Rf433Bridge`` in a ``BridgeHost`` on a private mosquitto
   (``gateway.mosquitto.Mosquitto``), every device adopted by an exact role
   (``bridges.rf433.roles``), its source running ``Rtl433.run_once`` on the file when the bench
   says (the supervisor's restart loop, idle between passes, is left out). A pass runs from
   rtl_433's start until every event was handled by the registry and every message left
   (``transport.flush``). CPU per transmission = rtl_433's (``RUSAGE_CHILDREN``) + this
   process's, every thread (``time.process_time``: the reader, the registry, the host, the
   MQTT client); the broker's, its own process (``/proc/PID/task/*/schedstat``), is a column
   of its own and not in the ratio. A subscriber in another process counts what arrived.
   Every device was adopted and announced in a warm-up pass before anything is measured; the
   discovery period is 600 s so re-announcing 1,000 participants falls outside the passes;
5. remotes only, ``bridge, no collapsing``: a second bridge, the same remotes adopted under
   other roles, with ``window`` 1 us (the shortest a config can say): every report is sent.
   Messages per press and CPU with and without collapsing;
6. ``-F json``, as the bridge ran it before: rtl_433 22.11 sets its stdout unbuffered and
   writes ``-F json`` one character per write() (about 165 a line); given a file to write
   (``json:/dev/stdout``, what the bridge now runs) it writes one line per write() and flushes
   it at once. Both stages 1 and 4 again with that one option changed (the bench's own
   ``trickle``), on the next file, to show what the bridge's reader paid for the trickle.

The ratio bridge / rtl_433 alone is the figure the issue asks for. Nothing is asserted. Every
loop is bounded by a count and by ``--seconds`` per pass; processes are stopped in ``finally``
blocks (rtl_433 by the child supervisor's own stop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import resource
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    SETTLE,
    CountingSubscriber,
    hosted,
    machine,
    markdown_table,
    median,
    run_seconds,
    wait_for,
)
from gateway.bridges.rf433.bridge import Rf433Bridge
from gateway.bridges.rf433.child import Rtl433, command_line
from gateway.bridges.rf433.events import RadioEvent
from gateway.bridges.rf433.registry import Registry
from gateway.config import Rf433BridgeConfig
from gateway.mosquitto import Mosquitto
from gateway.transport import Transport
from tests.support import rf433_signals as signals

SENSOR_IDS = 256
SENSOR_CHANNELS = 3
REMOTES = 256
REMOTE_BASE = 0x2000  # remote ids REMOTE_BASE .. REMOTE_BASE + REMOTES - 1
PERIOD = 600.0  # discovery period: re-announcements stay out of the measured passes
NO_WINDOW = 1e-6  # seconds: the shortest window a config can give (it wants > 0)
POLL = 0.005  # seconds between looks at the bridge's progress


# -- signals ---------------------------------------------------------------------------------------


def sensor_key(index: int) -> str:
    return f"Nexus-TH/{1 + index // SENSOR_IDS}/{index % SENSOR_IDS}"


def remote_key(index: int) -> str:
    return f"Generic-Remote/-/{REMOTE_BASE + index}"


def reading(index: int, step: int) -> signals.Transmission:
    """Sensor ``index``'s reading number ``step``: the temperature walks 0.1 C a step. nexus.c
    refuses one payload in 256 (it would pass as a Rubicson's); such a reading moves 40 C up."""
    tenths = 100 + step % 300
    for offset in (0, 400, 800):
        try:
            packet = signals.nexus_th(
                index % SENSOR_IDS,
                1 + index // SENSOR_IDS,
                True,
                (tenths + offset) / 10,
                30 + index % 40,
            )
        except ValueError:
            continue
        return packet.send()
    raise ValueError(f"no Nexus-TH reading for sensor {index}, step {step}")


def press(index: int, step: int) -> signals.Transmission:
    """Remote ``index``'s press number ``step``: the cmd byte walks 1 a step (1-255)."""
    return signals.generic_remote(REMOTE_BASE + index, 1 + step % 255).send()


MIXES: dict[str, tuple[int, Callable[[int], str], Callable[[int, int], signals.Transmission]]] = {
    "sensors": (SENSOR_IDS * SENSOR_CHANNELS, sensor_key, reading),
    "remotes": (REMOTES, remote_key, press),
}


def devices(mix: str, count: int) -> int:
    return min(MIXES[mix][0], count)


def write_mix(path: Path, mix: str, count: int, number: int) -> Path:
    """``count`` transmissions of ``mix``, the devices in turn, for the file ``number``. Device
    d's k-th transmission in file n is step n * (K + 1) + k, K its transmissions per file: two
    consecutive transmissions of a device differ, within a file and from file n to n + 1."""
    total, _, make = MIXES[mix]
    used = min(total, count)
    per_device = -(-count // used)
    base = number * (per_device + 1)
    return signals.write_ook(path, (make(i % used, base + i // used) for i in range(count)))


def roles(mix: str, count: int, prefix: str) -> tuple[tuple[str, str], ...]:
    _, key, _ = MIXES[mix]
    return tuple((key(i), f"{prefix}{i}") for i in range(devices(mix, count)))


# -- measurements ------------------------------------------------------------------------------


def children_cpu() -> float:
    """User + system CPU seconds of this process's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def trickle(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``-F json:/dev/stdout`` made ``-F json``: rtl_433 22.11 then writes JSON
    to its (unbuffered) stdout one character per write()."""
    out = list(argv)
    at = out.index("-F")
    out[at + 1] = "json"
    return out


def floor_pass(
    section: Rf433BridgeConfig, path: Path, seconds: float, *, lines: bool = False
) -> tuple[float, float]:
    """rtl_433 alone on ``path``, its JSON to /dev/null: (CPU s, wall s). ``lines``: with
    :func:`trickle`."""
    argv = command_line(section, (path,))
    if lines:
        argv = trickle(argv)
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + seconds
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"bench.rf433: rtl_433 alone took over {seconds:.0f} s")
            time.sleep(0.002)
    finally:
        if process.returncode is None and process.poll() is None:
            process.kill()
            process.wait(5)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    errors = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"rtl_433 alone exited with {process.returncode}: {errors[-500:]}")
    return usage.ru_utime + usage.ru_stime, wall


async def reader_pass(
    section: Rf433BridgeConfig, path: Path, seconds: float
) -> tuple[float, float, float, list[RadioEvent]]:
    """The child supervisor's one run on ``path``: (rtl_433 CPU s, this process's CPU s,
    wall s, the events)."""
    events: list[RadioEvent] = []
    child = Rtl433(section, replay=(path,))
    gc.collect()
    children, own, start = children_cpu(), time.process_time(), time.perf_counter()
    async with asyncio.timeout(seconds):
        status = await child.run_once(events.append)
    wall = time.perf_counter() - start
    own = time.process_time() - own
    if status != 0 or child.bad:
        raise SystemExit(f"bench.rf433: rtl_433 through the reader: {status}, {child.bad} bad")
    return children_cpu() - children, own, wall, events


def registry_pass(section: Rf433BridgeConfig, events: Sequence[RadioEvent]) -> float:
    """CPU seconds of ``Registry.observe`` over ``events`` (each device adopted and its
    definition made in a first, unmeasured pass)."""
    registry = Registry(section)
    for event in events:
        registry.observe(event, 0.0)
    gc.collect()
    clock = time.monotonic
    start = time.process_time()
    for event in events:
        registry.observe(event, clock())
    return time.process_time() - start


class OnDemand:
    """The bridge's source: its child supervisor's one run (``Rtl433.run_once``) on the file
    the bench gives, when it gives one."""

    def __init__(self, section: Rf433BridgeConfig) -> None:
        self.section = section
        self.bad = 0
        self.delivered = 0
        self._files: asyncio.Queue[tuple[Path, bool]] = asyncio.Queue()
        self._ends: asyncio.Queue[int | str] = asyncio.Queue()

    async def run(self, deliver: Callable[[RadioEvent], None]) -> None:
        def counted(event: RadioEvent) -> None:
            self.delivered += 1
            deliver(event)

        while True:
            path, lines = await self._files.get()
            child = Rtl433(self.section, replay=(path,))
            if lines:
                child.argv = trickle(child.argv)
            status = await child.run_once(counted)
            self.bad += child.bad
            self._ends.put_nowait(status)

    async def one_pass(self, path: Path, seconds: float, lines: bool) -> None:
        self._files.put_nowait((path, lines))
        async with asyncio.timeout(seconds):
            status = await self._ends.get()
        if status != 0:
            raise SystemExit(f"bench.rf433: rtl_433 in the bridge: {status}")


@dataclass
class Running:
    bridge: Rf433Bridge
    source: OnDemand
    transport: Transport


@contextlib.asynccontextmanager
async def bridge_on(url: str, section: Rf433BridgeConfig, client_id: str) -> AsyncIterator[Running]:
    """The bridge as ``msgflo-rf433`` runs it (``BridgeHost``, ``Rf433Bridge``), its source
    the on-demand child supervisor, connected to ``url``."""
    source = OnDemand(section)
    bridge = Rf433Bridge(section, source)
    async with hosted(url, "rf433", bridge.run, section.period, client_id) as transport:
        yield Running(bridge, source, transport)


@dataclass(frozen=True)
class BridgePass:
    rtl_cpu: float  # s
    own_cpu: float  # s
    broker_cpu: float  # s
    wall: float  # s
    sent: int
    dropped: int


async def bridge_pass(
    running: Running, path: Path, broker_pid: int, seconds: float, *, lines: bool = False
) -> BridgePass:
    bridge, source = running.bridge, running.source
    events, delivered = bridge.registry.counts.events, source.delivered
    sent, dropped = bridge.sent, bridge.dropped
    gc.collect()
    children, own, broker = children_cpu(), time.process_time(), run_seconds(broker_pid)
    start = time.perf_counter()
    await source.one_pass(path, seconds, lines)
    await wait_for(
        lambda: (
            bridge.registry.counts.events - events + bridge.dropped - dropped
            >= source.delivered - delivered
        ),
        SETTLE,
        "the bridge's handling of every event",
        poll=POLL,
    )
    await asyncio.sleep(0)  # the last report carried out
    async with asyncio.timeout(SETTLE):
        await running.transport.flush()
    return BridgePass(
        rtl_cpu=children_cpu() - children,
        own_cpu=time.process_time() - own,
        broker_cpu=run_seconds(broker_pid) - broker,
        wall=time.perf_counter() - start,
        sent=bridge.sent - sent,
        dropped=bridge.dropped - dropped,
    )


# -- rounds ----------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One bridge variant's figures, one entry per round (us: CPU per transmission)."""

    rtl: list[float] = field(default_factory=list)  # rtl_433
    own: list[float] = field(default_factory=list)  # this process
    rate: list[float] = field(default_factory=list)  # transmissions per wall-clock second
    broker: list[float] = field(default_factory=list)
    messages: list[float] = field(default_factory=list)  # per transmission
    dropped: list[int] = field(default_factory=list)

    def record(self, figures: BridgePass, count: int) -> None:
        us = 1e6 / count
        self.rtl.append(figures.rtl_cpu * us)
        self.own.append(figures.own_cpu * us)
        self.rate.append(count / figures.wall)
        self.broker.append(figures.broker_cpu * us)
        self.messages.append(figures.sent / count)
        self.dropped.append(figures.dropped)

    def whole(self) -> list[float]:
        return [r + o for r, o in zip(self.rtl, self.own, strict=True)]


@dataclass
class Stages:
    """Per round: CPU microseconds per transmission, transmissions per second, and counts."""

    lines: list[float] = field(default_factory=list)  # rtl_433 reports per transmission
    floor: list[float] = field(default_factory=list)
    floor_rate: list[float] = field(default_factory=list)
    reader_rtl: list[float] = field(default_factory=list)
    reader_own: list[float] = field(default_factory=list)
    reader_rate: list[float] = field(default_factory=list)
    registry: list[float] = field(default_factory=list)
    bridge: Variant = field(default_factory=Variant)
    raw: Variant = field(default_factory=Variant)  # remotes: the bridge without collapsing
    # rtl_433 -F json (one character per write), alone and through the bridge
    floor_lines: list[float] = field(default_factory=list)
    floor_lines_rate: list[float] = field(default_factory=list)
    lines_bridge: Variant = field(default_factory=Variant)


@dataclass
class Bench:
    args: Any
    folder: Path
    broker_pid: int
    bridge: Running
    raw: Running
    section: Rf433BridgeConfig
    results: dict[str, Stages] = field(default_factory=dict)
    models: dict[str, list[str]] = field(default_factory=dict)


async def one_round(bench: Bench, mix: str, round_number: int) -> None:
    """Every stage of ``mix`` on a file of its own; the variant writing one line per write()
    on the next file (the bridge's registry must not take it for repeats of this one)."""
    args = bench.args
    stages = bench.results.setdefault(mix, Stages())
    us = 1e6 / args.count
    path = write_mix(bench.folder / f"{mix}.ook", mix, args.count, 2 * round_number)
    try:
        cpu, wall = floor_pass(bench.section, path, args.seconds)
        stages.floor.append(cpu * us)
        stages.floor_rate.append(args.count / wall)
        rtl_cpu, own_cpu, wall, events = await reader_pass(bench.section, path, args.seconds)
        stages.reader_rtl.append(rtl_cpu * us)
        stages.reader_own.append(own_cpu * us)
        stages.reader_rate.append(args.count / wall)
        stages.lines.append(len(events) / args.count)
        bench.models[mix] = sorted({event.model for event in events})
        stages.registry.append(registry_pass(bench.section, events) * us)
        figures = await bridge_pass(bench.bridge, path, bench.broker_pid, args.seconds)
        stages.bridge.record(figures, args.count)
        if mix == "remotes":
            figures = await bridge_pass(bench.raw, path, bench.broker_pid, args.seconds)
            stages.raw.record(figures, args.count)
    finally:
        path.unlink()
    path = write_mix(bench.folder / f"{mix}-lines.ook", mix, args.count, 2 * round_number + 1)
    try:
        cpu, wall = floor_pass(bench.section, path, args.seconds, lines=True)
        stages.floor_lines.append(cpu * us)
        stages.floor_lines_rate.append(args.count / wall)
        figures = await bridge_pass(bench.bridge, path, bench.broker_pid, args.seconds, lines=True)
        stages.lines_bridge.record(figures, args.count)
    finally:
        path.unlink()
    print(round_line(mix, round_number, stages), flush=True)


def round_line(mix: str, round_number: int, s: Stages) -> str:
    b, line = s.bridge, s.lines_bridge
    text = (
        f"round {round_number} {mix}: rtl_433 alone {s.floor[-1]:.0f} us "
        f"({s.floor_rate[-1]:,.0f}/s), + reader {s.reader_rtl[-1]:.0f} + {s.reader_own[-1]:.0f} "
        f"us, Registry.observe {s.registry[-1]:.0f} us, bridge {b.rtl[-1]:.0f} + "
        f"{b.own[-1]:.0f} us ({b.whole()[-1] / s.floor[-1]:.2f}x, {b.rate[-1]:,.0f}/s), "
        f"broker {b.broker[-1]:.0f} us, {b.messages[-1]:.2f} messages/transmission"
    )
    if s.raw.own:
        text += (
            f"; no collapsing: {s.raw.rtl[-1]:.0f} + {s.raw.own[-1]:.0f} us, broker "
            f"{s.raw.broker[-1]:.0f} us, {s.raw.messages[-1]:.2f} messages/transmission"
        )
    return text + (
        f"; -F json: alone {s.floor_lines[-1]:.0f} us, bridge {line.rtl[-1]:.0f} + "
        f"{line.own[-1]:.0f} us ({line.whole()[-1] / s.floor_lines[-1]:.2f}x, "
        f"{line.rate[-1]:,.0f}/s)"
    )


async def warm_up(bench: Bench) -> None:
    """Every device adopted and announced by both bridges, from a file of its own."""
    for mix in MIXES:
        path = write_mix(bench.folder / f"warm-{mix}.ook", mix, bench.args.count, 0)
        try:
            await bridge_pass(bench.bridge, path, bench.broker_pid, bench.args.seconds)
            if mix == "remotes":
                await bridge_pass(bench.raw, path, bench.broker_pid, bench.args.seconds)
        finally:
            path.unlink()


async def profiled(bench: Bench, round_number: int) -> str:
    """One more bridge pass of each mix under cProfile (this process: reader, registry, host,
    MQTT client): the top functions by own time."""
    out = io.StringIO()
    for mix in MIXES:
        path = write_mix(bench.folder / f"profile-{mix}.ook", mix, bench.args.count, round_number)
        try:
            profiler = cProfile.Profile()
            profiler.enable()
            await bridge_pass(bench.bridge, path, bench.broker_pid, bench.args.seconds)
            profiler.disable()
        finally:
            path.unlink()
        out.write(f"\n### {mix} (cProfile, one bridge pass, by own time)\n\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(bench.args.profile)
    return out.getvalue()


def sections(count: int) -> tuple[Rf433BridgeConfig, Rf433BridgeConfig]:
    """The bridge's section (every device of both mixes adopted) and the no-collapsing one's
    (the remotes under other roles, window 1 us)."""
    adopted = roles("sensors", count, "t") + roles("remotes", count, "r")
    bridge = Rf433BridgeConfig(enabled=True, period=PERIOD, roles=adopted)
    raw = replace(bridge, roles=roles("remotes", count, "n"), window=NO_WINDOW)
    return bridge, raw


async def throughput(broker: Mosquitto, args: Any) -> tuple[Bench, tuple[int, int], str | None]:
    section, raw_section = sections(args.count)
    subscriber = CountingSubscriber(broker)
    profile_text = None
    try:
        subscriber.wait_ready()
        with tempfile.TemporaryDirectory(prefix="bench-rf433-") as folder:
            async with (
                bridge_on(broker.url, section, "msgflo-rf433-bench") as running,
                bridge_on(broker.url, raw_section, "msgflo-rf433-bench-raw") as raw,
            ):
                bench = Bench(args, Path(folder), broker.pid or 0, running, raw, section)
                await warm_up(bench)
                for round_number in range(1, args.rounds + 1):
                    for mix in MIXES:
                        await one_round(bench, mix, round_number)
                if args.profile:
                    profile_text = await profiled(bench, 2 * args.rounds + 2)
                sent = running.bridge.sent + raw.bridge.sent
                bad = running.source.bad + raw.source.bad
                if bad:
                    print(f"warning: {bad} rtl_433 lines dropped as bad", flush=True)
        counted = await subscriber.wait_count(sent, SETTLE)
    finally:
        subscriber.close()
    return bench, (sent, counted), profile_text


# -- report ----------------------------------------------------------------------------------------


def ratios(whole: Sequence[float], floor: Sequence[float]) -> list[float]:
    return [w / f for w, f in zip(whole, floor, strict=True)]


def stage_table(results: dict[str, Stages]) -> str:
    rows = []
    for mix, s in results.items():
        b = s.bridge
        per_round = ratios(b.whole(), s.floor)
        rows.append(
            [
                mix,
                f"{median(s.lines):.2f}",
                f"{median(s.floor):.0f}",
                f"{median(s.floor_rate):,.0f}",
                f"{median(s.reader_rtl):.0f} + {median(s.reader_own):.0f}",
                f"{median(s.registry):.0f}",
                f"{median(b.rtl):.0f} + {median(b.own):.0f} = {median(b.whole()):.0f} "
                f"({median(per_round):.2f}x)",
                ", ".join(f"{r:.2f}" for r in per_round),
                f"{median(b.rate):,.0f}",
                f"{median(b.broker):.0f}",
                f"{median(b.messages):.2f}",
                str(sum(b.dropped)),
            ]
        )
    head = [
        "mix",
        "reports/tx",
        "rtl_433 alone us",
        "alone tx/s",
        "+ reader us (rtl_433 + Python)",
        "Registry.observe us",
        "bridge us: rtl_433 + Python (ratio)",
        "bridge/alone per round",
        "bridge tx/s",
        "broker us",
        "messages/tx",
        "dropped",
    ]
    return markdown_table(head, rows)


def lines_table(results: dict[str, Stages]) -> str:
    rows = []
    for mix, s in results.items():
        line = s.lines_bridge
        rows.append(
            [
                mix,
                f"{median(s.floor_lines):.0f} ({median(s.floor_lines_rate):,.0f}/s)",
                f"{median(line.rtl):.0f} + {median(line.own):.0f} = {median(line.whole()):.0f}",
                f"{median(ratios(line.whole(), s.floor_lines)):.2f}x",
                f"{median(ratios(line.whole(), s.floor)):.2f}x",
                f"{median(line.rate):,.0f}",
                f"{median(line.broker):.0f}",
            ]
        )
    head = [
        "mix, -F json (before)",
        "rtl_433 alone us (tx/s)",
        "bridge us: rtl_433 + Python",
        "bridge / its alone",
        "bridge / alone as the bridge runs it",
        "bridge tx/s",
        "broker us",
    ]
    return markdown_table(head, rows)


def collapse_table(s: Stages) -> str:
    rows = []
    for name, v in (("collapsed (window 1.5 s)", s.bridge), ("not collapsed (1 us)", s.raw)):
        rows.append(
            [
                name,
                f"{median(v.messages):.2f}",
                f"{median(v.own):.0f}",
                f"{median(v.rtl):.0f}",
                f"{median(v.broker):.0f}",
                f"{median(v.rate):,.0f}",
            ]
        )
    head = ["remotes", "messages/press", "Python us", "rtl_433 us", "broker us", "presses/s"]
    return markdown_table(head, rows)


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="transmissions per mix and pass")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the stages alternating")
    parser.add_argument("--seconds", type=float, default=120.0, help="at most, per pass")
    parser.add_argument("--profile", type=int, default=0, help="cProfile: show this many rows")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 200 transmissions, 1 round"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.quick:
        args.count, args.rounds, args.seconds = 200, 1, 30.0
    info = machine()
    load_before = load()
    with Mosquitto() as broker:
        bench, (sent, counted), profile_text = asyncio.run(throughput(broker, args))
    load_after = load()
    print()
    print(
        f"{info['date']}, {info['nproc']} x {info['cpu']}, Python {info['python']}; load average "
        f"{load_before} before, {load_after} after; {args.count} transmissions per mix and pass, "
        f"{args.rounds} round(s); medians, us are CPU per transmission"
    )
    print(stage_table(bench.results))
    print()
    print(lines_table(bench.results))
    print()
    if "remotes" in bench.results:
        print(collapse_table(bench.results["remotes"]))
    models = "; ".join(f"{mix}: {', '.join(names)}" for mix, names in bench.models.items())
    print(
        f"\nmodels rtl_433 reported: {models}. Messages the bridges published: {sent:,}; "
        f"counted by a subscriber: {counted:,}. Bridge CPU: rtl_433 (RUSAGE_CHILDREN) + this "
        "process (all threads); the broker is its own column."
    )
    if profile_text:
        print(profile_text)
    if args.json:
        data = {
            "machine": info,
            "load": {"before": load_before, "after": load_after},
            "args": {"count": args.count, "rounds": args.rounds},
            "stages": {mix: asdict(s) for mix, s in bench.results.items()},
            "models": bench.models,
            "published": sent,
            "counted": counted,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
