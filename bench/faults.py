"""Faults while messages flow (issue 13): what each fault loses, duplicates and reorders, and
how long forwarding takes to come back.

    .venv/bin/python -m bench.faults              # every case: 100 msg/s per stream, 9 s each
    .venv/bin/python -m bench.faults --quick         # 50 msg/s, 6 s
    .venv/bin/python -m bench.faults --only coordinator-kill --rate 200

Each case is a fresh private Mosquitto with persistence on, saving every 30 s and at a clean
shutdown, and queueing at most 1,000 messages per client (as the appliance's broker), our
coordinator as the ``msgflo`` command runs it for a user (its own process group, ``--registry``
and the default persistent session), and a graph of two edges, ``s0 OUT -> IN k0`` (QoS 0) and
``s1 OUT -> IN k1`` (QoS 1). The four participants run in this process on this library, the
sinks behind a TCP proxy that can cut their network. Once a probe has passed both edges, each
source sends numbered messages at ``--rate`` for ``--seconds``; a third of the way in, the fault
is injected:

============================  ==================================================================
``none``                      the baseline: nothing happens
``broker-restart``            SIGTERM to mosquitto (it saves its database), then started again
``broker-kill``               SIGKILL to mosquitto (a crash: the database is the last autosave;
                              the case saves it (SIGUSR1) once everyone is connected, as a
                              broker up for longer than its 30 s autosave interval has)
``coordinator-kill``          ``kill -9`` of the coordinator's process group, then started again
``coordinator-restart``       SIGTERM to the coordinator (as systemd restarts it), then started
``network-cut``               every connection of the sinks dropped, and new ones refused, for
                              ``--outage`` seconds (netem is not available on these machines:
                              the proxy does what ``tc qdisc ... netem loss 100%`` would)
``network-cut-clean``         the same, with the participants on clean sessions (the original
                              libraries' and a laptop's default) instead of persistent ones
``network-slow``              every chunk the sinks send or receive held 300 ms, for
                              ``--outage`` seconds (a slow, congested link)
``discovery-flood``           10,000 fake participants (distinct roles and ids, 1 KB each)
                              announced as fast as one client can, while the data flows
``discovery-bloat``           2,000 fake participants of 30 KB each (the coordinator keeps at
                              most 1,000 participants and refuses announcements over 32 KiB)
``stalled-reader``            a third subscriber of both streams' topics, on a persistent
                              session, stops reading (SIGSTOP): the broker queues for it up to
                              its limit (1,000 messages, as on the appliance) and drops beyond
============================  ==================================================================

The participants connect with ``?sessionExpiry=300`` (an MQTT 5 persistent session, as the
appliance gives them) except in ``network-cut-clean``.

Per stream: messages sent, lost (never arrived), duplicated, reordered (arrived after a higher
number), and the longest time one took from its send to its arrival; "down" is how long the
component was away (from the fault until it was back), "back after" the time from then until
the first QoS 1 message sent after it arrived; and the coordinator's RSS once the edges are
wired and at the end (of the restarted process, where it was restarted). Nothing is
asserted: the goal (zero QoS 1 messages lost; QoS 0 losses only while something is down) is
printed beside the figures. Every loop is bounded in count and time, all traffic stays on
127.0.0.1, and every process started is stopped in a ``finally`` block.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import BIN, rss_mb
from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto, find_tool, free_port
from gateway.participant import Message, Participant, serve
from gateway.participant.definition import define
from gateway.participant.discovery import encode_discovery
from gateway.transport import open_transport
from tests.support.netfault import Proxy

LOOPBACK = "127.0.0.1"
CASES = (
    "none",
    "broker-restart",
    "broker-kill",
    "coordinator-kill",
    "coordinator-restart",
    "network-cut",
    "network-cut-clean",
    "network-slow",
    "discovery-flood",
    "discovery-bloat",
    "stalled-reader",
)
# Fake participants announced in the discovery cases, and the size of each announcement.
STALLED: list[asyncio.subprocess.Process] = []  # stopped readers, killed at the end of a case
FLOODS = {"discovery-flood": (10_000, 1_000), "discovery-bloat": (2_000, 30_000)}
SESSION = "?sessionExpiry=300"  # the participants' persistent sessions, as on the appliance
GRAPH = "s0(Source) OUT -> IN k0(Sink)\ns1(Source) OUT -> IN k1(Sink)\n"


@dataclass(frozen=True)
class Settings:
    rate: float = 100.0
    seconds: float = 9.0
    outage: float = 2.0
    drain: float = 20.0  # at most this long for the last messages after the sending ends


# -- the coordinator ---------------------------------------------------------------------------


class Coordinator:
    """``msgflo`` on the graph file, in its own process group."""

    def __init__(self, workdir: Path, broker: str) -> None:
        self.workdir = workdir
        self.broker = broker
        self.process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        argv = [str(BIN / "msgflo"), "--graph", "g.fbp", "--broker", self.broker]
        argv += ["--registry", "participants.json", "--port", str(free_port())]
        self.process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        stdout = self.process.stdout
        assert stdout is not None
        async with asyncio.timeout(30):
            while b"msgflo started on" not in await stdout.readline():
                pass
        self._drain = asyncio.create_task(self._read_rest(stdout))

    @staticmethod
    async def _read_rest(stdout: asyncio.StreamReader) -> None:
        while await stdout.readline():
            pass

    def rss_mb(self) -> float:
        assert self.process is not None
        return rss_mb(self.process.pid)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if sig is signal.SIGKILL:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        async with asyncio.timeout(30):
            await process.wait()
        if self._drain is not None:
            await self._drain


# -- the participants --------------------------------------------------------------------------


@dataclass
class Stream:
    """One edge's numbered messages: what was sent when, what arrived when."""

    qos: int
    sent: list[float] = field(default_factory=list)  # send time by number
    arrived: list[tuple[int, float]] = field(default_factory=list)
    probes: int = 0

    def source(self) -> Participant:
        port = {"id": "out", "qos": self.qos}
        return Participant(
            {"component": "Source", "inports": [], "outports": [port]}, f"s{self.qos}"
        )

    def sink(self) -> Participant:
        port = {"id": "in", "qos": self.qos}
        definition = {"component": "Sink", "inports": [port], "outports": []}
        return Participant(definition, f"k{self.qos}", process=self._arrive)

    def _arrive(self, inport: str, msg: Message) -> None:
        if msg.data == "probe":
            self.probes += 1
        elif isinstance(msg.data, int):
            self.arrived.append((msg.data, time.monotonic()))

    def figures(self, back: float | None) -> dict[str, Any]:
        numbers = [n for n, _ in self.arrived]
        reordered = sum(1 for a, b in itertools.pairwise(numbers) if b < a)
        first_after = [at for n, at in self.arrived if back is not None and self.sent[n] >= back]
        return {
            "sent": len(self.sent),
            "lost": len(self.sent) - len(set(numbers)),
            "duplicated": len(numbers) - len(set(numbers)),
            "reordered": reordered,
            "back_after": (min(first_after) - back) if first_after and back else None,
            "max_latency": max((at - self.sent[n] for n, at in self.arrived), default=None),
        }


@contextlib.asynccontextmanager
async def participants(
    streams: Sequence[Stream], broker: str, sinks_via: str
) -> AsyncIterator[list[Participant]]:
    sources = [s.source() for s in streams]
    tasks = [
        asyncio.create_task(serve(sources, broker, discovery_period=5)),
        asyncio.create_task(serve([s.sink() for s in streams], sinks_via, discovery_period=5)),
    ]
    try:
        yield sources
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def until_wired(streams: Sequence[Stream], sources: Sequence[Participant]) -> None:
    async with asyncio.timeout(60):
        while any(s.probes == 0 for s in streams):
            for source in sources:
                source.send("out", "probe")
            await asyncio.sleep(0.2)


# -- one case ----------------------------------------------------------------------------------


@dataclass
class Rig:
    broker: Mosquitto
    proxy: Proxy
    coordinator: Coordinator


async def inject(case: str, rig: Rig, settings: Settings) -> None:
    """The fault, until the component is back (returns then)."""
    if case == "broker-restart":
        await asyncio.to_thread(rig.broker.stop)
        rig.broker.start()
    elif case == "broker-kill":
        await asyncio.to_thread(rig.broker.kill)
        rig.broker.start()
    elif case == "coordinator-kill":
        await rig.coordinator.stop(signal.SIGKILL)
        await rig.coordinator.start()
    elif case == "coordinator-restart":
        await rig.coordinator.stop(signal.SIGTERM)
        await rig.coordinator.start()
    elif case.startswith("network-cut"):
        await rig.proxy.cut(settings.outage)
    elif case == "network-slow":
        await rig.proxy.slow(0.3, settings.outage)
    elif case in FLOODS:
        await flood(rig.broker.url, *FLOODS[case])
    elif case == "stalled-reader":
        await stall_a_reader(rig.broker)


async def stall_a_reader(broker: Mosquitto) -> None:
    """mosquitto_sub on both streams' topics (QoS 1, persistent session), stopped once it is
    subscribed: it holds its TCP connection and reads nothing more."""
    reader = await asyncio.create_subprocess_exec(
        find_tool("mosquitto_sub"), "-h", LOOPBACK, "-p", str(broker.port), "-q", "1",
        "-c", "-i", "stalled-reader", "-t", "k0/in", "-t", "k1/in",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert reader.stdout is not None
    await asyncio.wait_for(reader.stdout.readline(), 10)  # it gets messages: it is subscribed
    reader.send_signal(signal.SIGSTOP)
    STALLED.append(reader)


async def flood(broker: str, count: int, size: int) -> None:
    pad = "x" * (size - 100)
    async with open_transport(parse_broker_url(broker), client_id="flood") as transport:
        await transport.wait_connected()
        for i in range(count):
            ports = [{"id": "in", "queue": f"fake{i}/in", "description": pad}]
            definition = define(f"fake{i}", "Fake", inports=ports, participant_id=f"fake{i}-1")
            transport.publish("fbp", encode_discovery(definition))
            if i % 100 == 0:
                await asyncio.sleep(0)  # let the socket drain
        await transport.flush()


async def saved(broker: Mosquitto) -> None:
    """Have the broker write its database now (mosquitto(8): SIGUSR1), and wait until it is."""
    database = broker.workdir / "mosquitto.db"
    before = database.stat().st_mtime_ns if database.exists() else 0
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGUSR1)
    for _ in range(200):  # 10 s
        if database.exists() and database.stat().st_mtime_ns != before:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("mosquitto did not write its database within 10 s")


async def send_numbered(
    streams: Sequence[Stream],
    sources: Sequence[Participant],
    settings: Settings,
    rig: Rig,
    case: str,
) -> tuple[float, float]:
    """Send at the rate, inject the fault a third of the way in, and go on for ``seconds`` and
    at least 2 s after the component is back (at most a minute); (fault, back) times."""
    fault_at = int(settings.rate * settings.seconds) // 3
    fault: asyncio.Task[None] | None = None
    started = time.monotonic()
    fault_time = back = started
    n = 0
    while time.monotonic() < started + 60:
        elapsed_enough = n >= settings.rate * settings.seconds
        if fault is not None and fault.done() and back == started:
            back = time.monotonic() if case != "none" else fault_time
        if elapsed_enough and back != started and time.monotonic() > back + 2.0:
            break
        await asyncio.sleep(max(0.0, started + n / settings.rate - time.monotonic()))
        if n == fault_at:
            fault_time = time.monotonic()
            fault = asyncio.create_task(inject(case, rig, settings))
        now = time.monotonic()
        for stream, source in zip(streams, sources, strict=True):
            stream.sent.append(now)
            source.send("out", n)
        n += 1
    if fault is not None:
        await fault
    return fault_time, back


async def drained(streams: Sequence[Stream], settings: Settings) -> None:
    """Until every QoS 1 number arrived (then 1 s more for the rest), or ``settings.drain``:
    a sink whose connection was cut comes back after its reconnect backoff."""
    deadline = time.monotonic() + settings.drain
    reliable = [s for s in streams if s.qos]
    while time.monotonic() < deadline:
        if all(len({n for n, _ in s.arrived}) == len(s.sent) for s in reliable):
            await asyncio.sleep(1.0)
            return
        await asyncio.sleep(0.1)


async def run_case(case: str, settings: Settings) -> dict[str, Any]:
    streams = [Stream(0), Stream(1)]
    with tempfile.TemporaryDirectory(prefix="msgflo-faults-") as tmp:
        workdir = Path(tmp)
        (workdir / "g.fbp").write_text(GRAPH)
        with Mosquitto(autosave_interval=30, max_queued=1000) as broker:
            async with Proxy(broker.port) as proxy:
                coordinator = Coordinator(workdir, broker.url)
                rig = Rig(broker, proxy, coordinator)
                await coordinator.start()
                try:
                    session = "" if case == "network-cut-clean" else SESSION
                    sinks_via = f"mqtt://{LOOPBACK}:{proxy.port}{session}"
                    source_url = broker.url + session
                    async with participants(streams, source_url, sinks_via) as sources:
                        await until_wired(streams, sources)
                        rss_before = coordinator.rss_mb()
                        if case == "broker-kill":
                            await saved(broker)
                        fault, back = await send_numbered(streams, sources, settings, rig, case)
                        await drained(streams, settings)
                        rss_after = coordinator.rss_mb()
                        broker_rss = rss_mb(broker.pid or 0)
                finally:
                    await coordinator.stop()
                    for reader in STALLED:
                        reader.kill()
                        await reader.wait()
                    STALLED.clear()
    found: dict[str, Any] = {"case": case, "down": back - fault if case != "none" else 0.0}
    found["coordinator_rss_mb"] = [round(rss_before, 1), round(rss_after, 1)]
    found["broker_rss_mb"] = round(broker_rss, 1)
    for stream in streams:
        found[f"qos{stream.qos}"] = stream.figures(back if case != "none" else None)
    return found


# -- output ------------------------------------------------------------------------------------


def cells(f: dict[str, Any]) -> str:
    return f"{f['sent']} / {f['lost']} / {f['duplicated']} / {f['reordered']}"


def table(results: list[dict[str, Any]], settings: Settings) -> str:
    lines = [
        f"{settings.rate:g} msg/s per stream for {settings.seconds:g} s; "
        "cells: sent / lost / duplicated / reordered",
        "",
        "| case | down (s) | QoS 0 | QoS 1 | QoS 1 back after (s) | QoS 1 slowest (s) "
        "| coordinator RSS MB | broker RSS MB | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        back, rss = r["qos1"]["back_after"], r["coordinator_rss_mb"]
        met = "met" if r["qos1"]["lost"] == 0 else "QoS 1 lost"
        lines.append(
            f"| {r['case']} | {r['down']:.2f} | {cells(r['qos0'])} | {cells(r['qos1'])} | "
            f"{'-' if back is None else f'{back:.2f}'} | {r['qos1']['max_latency']:.2f} | "
            f"{rss[0]} -> {rss[1]} | {r['broker_rss_mb']} | {met} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> tuple[Settings, list[str], str | None]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=Settings.rate, help="messages/s per stream")
    p.add_argument("--seconds", type=float, default=Settings.seconds)
    p.add_argument("--outage", type=float, default=Settings.outage, help="network cut, s")
    p.add_argument("--only", action="append", choices=CASES, help="a case to run; repeatable")
    p.add_argument("--quick", action="store_true", help="50 msg/s for 6 s")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    args = p.parse_args(argv)
    settings = Settings(args.rate, args.seconds, args.outage)
    if args.quick:
        settings = Settings(50.0, 6.0, args.outage)
    return settings, list(args.only or CASES), args.json


def main(argv: Sequence[str]) -> int:
    settings, cases, json_path = parse_args(argv)
    results = []
    for case in cases:
        result = asyncio.run(run_case(case, settings))
        print(f"{case}: {json.dumps(result)}", flush=True)
        results.append(result)
    print()
    print(table(results, settings))
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
