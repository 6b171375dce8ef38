"""FBP runtime protocol: the cost of edge inspection, and how fast ``graph:addedge`` takes effect.

    .venv/bin/python -m bench.runtime_protocol           # 20,000 messages, 3 runs, 100 cycles
    .venv/bin/python -m bench.runtime_protocol --quick   # smoke run (2,000 messages, 1 run, 20)
    .venv/bin/python -m bench.runtime_protocol --json out.json

Our coordinator runs as its command does for a user (``.venv/bin/msgflo --graph G --broker URL
--host 127.0.0.1 --port P --secret S``), started the way ``bench/coordinator.py`` starts it, on
the graph ``src OUT -> IN dst`` whose two participants this process announces itself (fixed
topics A and B): the coordinator is the only hop, and no participant process is involved.

1. Edge inspection overhead. ``bench/coordinator.py``'s forwarding measurement (its load
   generator: a windowed flood of ``--count`` compact JSON messages of 80 bytes from A to B,
   then ``--pings`` one at a time), with 0, 1 and 10 runtime protocol clients connected that
   each sent ``network:edges`` for ``src out -> in dst`` and read every ``network:data`` the
   coordinator sends them. All clients of a variant live in one subscriber process (one asyncio
   task each, a :class:`~gateway.runtime_protocol.client.RuntimeClient` that counts data frames
   instead of keeping them, and decodes one in 32 to see how late it arrived). Figures: msg/s,
   coordinator CPU us per message (``/proc``, during the flood), flood and ping round trips,
   the subscriber process's CPU per message, whether every client got every message published
   after it subscribed (and none was dropped by the server for not keeping up), and the
   inspection latency (publish on A to arrival of its ``network:data`` at a client). The
   0-subscriber variant is the baseline: the variants alternate (order reversed every run), each
   on a freshly started coordinator, and the ratios are medians of the per-run ratios.
2. ``graph:addedge`` round trip. On a fresh coordinator, a protocol client removes the edge,
   then ``--cycles`` times: sends ``graph:addedge`` for it and, from that moment, publishes a
   tagged message on A every ~1 ms (for at most 5 s) until the first one arrives on B; then
   ``graph:removeedge`` and a check that a message published after its reply is no longer
   forwarded. Figures (p50/p99 over all cycles of all runs): time until the ``graph:addedge``
   reply arrives, time until the first message arrives on B ("flowing"; it includes up to the
   ~1 ms publish interval), the transit time of that first message, and the ``graph:removeedge``
   reply. Baselines in the same run: a plain MQTT round trip through the broker (publish and
   subscribe on one topic) and a round trip through the coordinator's edge, one message at a
   time, ``--pings`` each, and the latter again with the instrument of the cycles (paho on its
   own network thread, 200 messages) as the baseline of the first message's transit.

The secret is set (as a deployed appliance has it); ``--no-secret`` runs without one (the core
then broadcasts a message meant for every client, which the server encodes once). Nothing here
asserts a time: the script prints figures next to the baselines. Every loop is bounded in count
and time, every process it starts is stopped in a ``finally`` block, all traffic is on
127.0.0.1. ``--ours-commit REV`` measures ``gateway/`` as committed in REV.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import (
    BIN,
    ROOT,
    LoadGen,
    median,
    mqtt_machine,
    nodelay,
    percentile,
)
from bench.coordinator import (
    FORWARD_GRAPH,
    READY_TIMEOUT,
    Coordinator,
    HopLoad,
    Settings,
    forwarding_announcements,
    load_figures,
    ours_checkout,
)
from gateway.errors import GatewayError
from gateway.mosquitto import Mosquitto
from gateway.participant.discovery import DISCOVERY_TOPIC
from gateway.runtime_protocol.client import RuntimeClient

SECRET = "bench-runtime-protocol-secret"
GRAPH_ID = "default/main"
EDGE = {"src": {"node": "src", "port": "out"}, "tgt": {"node": "dst", "port": "in"}}
DATA_MARK = '"command": "data"'  # how the server's json.dumps spells a network:data frame
SAMPLE_EVERY = 32  # a subscriber decodes one network:data frame in so many for its latency
CONNECT_TIMEOUT = 30.0  # s for the subscribers to connect and have network:edges answered
DRAIN_QUIET = 0.5  # s without network:data after which a subscriber has everything
DRAIN_LIMIT = 30.0  # s a subscriber process waits for stragglers at most
CHILD_LIFE = 600.0  # s a subscriber process lives at most
FLOW_EVERY = 0.001  # s between messages published on A while an addedge takes effect
FLOW_LIMIT = 5.0  # s of publishing per addedge cycle at most
LEAK_WAIT = 0.02  # s a message published after removeedge's reply is given to come through
PROBE_PINGS = 200  # round trips through the edge with the addedge instrument, as its baseline
REPLY_TIMEOUT = 10.0  # s for one graph:addedge / graph:removeedge reply
CHILD = "_subscribers"  # argv[1] of the subscriber process


# -- the subscriber process ---------------------------------------------------------------------


class Subscriber(RuntimeClient):
    """A protocol client that counts ``network:data`` frames instead of keeping them (a flood
    of them would fill ``received``), decoding one in ``SAMPLE_EVERY`` to time it."""

    def __init__(self, address: str, secret: str | None) -> None:
        super().__init__(address, secret=secret)
        self.data = 0
        self.latencies: list[float] = []
        self.last = ""
        self.closed = ""

    async def _read(self) -> None:
        assert self._connection is not None
        async for frame in self._connection:
            if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break  # ERROR: the connection is gone
            data = frame.data
            text = data if isinstance(data, str) else data.decode("utf-8", "replace")
            if DATA_MARK not in text[:64]:
                self.received.append(json.loads(text))
                self._arrived.set()
                continue
            self.data += 1
            self.last = text
            if self.data % SAMPLE_EVERY == 0:
                self._sample(text)
        # Not cancelled: the server dropped us (too slow) or went away.
        self.closed = f"closed (code {self._connection.close_code})"

    def _sample(self, text: str) -> None:
        now = time.perf_counter()  # CLOCK_MONOTONIC: comparable with the load generator's
        with contextlib.suppress(ValueError, KeyError, TypeError):
            self.latencies.append(now - float(json.loads(text)["payload"]["data"]["ts"]))

    def last_ok(self) -> bool:
        """The last data frame is a network:data of the watched edge carrying a bench message."""
        try:
            payload = json.loads(self.last)["payload"]
            return bool(payload["src"]["node"] == "src" and "seq" in payload["data"])
        except (ValueError, KeyError, TypeError):
            return False


async def connect(
    stack: contextlib.AsyncExitStack, make: Callable[[], RuntimeClient]
) -> RuntimeClient:
    """``make()`` entered on ``stack``, retried while the runtime is not listening yet."""
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            return await stack.enter_async_context(make())
        except GatewayError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def subscribers_main(address: str, clients: int, secret: str | None) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        subs = []
        for _ in range(clients):
            sub = await connect(stack, lambda: Subscriber(address, secret))
            assert isinstance(sub, Subscriber)
            subs.append(sub)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            for sub in subs:
                reply = await sub.request("network", "edges", {"graph": GRAPH_ID, "edges": [EDGE]})
                if reply["command"] != "edges":
                    return {"error": f"network:edges refused: {reply}"}
        cpu = time.process_time()
        print("ready", flush=True)
        await stop_requested()
        await drain(subs)
        return {
            "received": [s.data for s in subs],
            "dropped": sum(1 for s in subs if s.closed),
            "last_ok": all(s.last_ok() for s in subs if s.data),
            "latencies": [x for s in subs for x in s.latencies],
            "cpu_s": time.process_time() - cpu,
        }


async def stop_requested() -> None:
    """Until a line (or end of file) on stdin, at most ``CHILD_LIFE`` s."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CHILD_LIFE):
            await reader.readline()


async def drain(subs: list[Subscriber]) -> None:
    """Until no client got anything for ``DRAIN_QUIET`` s (at most ``DRAIN_LIMIT``)."""
    deadline = time.monotonic() + DRAIN_LIMIT
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = sum(s.data for s in subs)
        if total != last:
            last, quiet_since = total, time.monotonic()
        elif time.monotonic() - quiet_since >= DRAIN_QUIET:
            return
        await asyncio.sleep(0.05)


def child_main(argv: Sequence[str]) -> int:
    address, clients, secret = argv[0], int(argv[1]), argv[2] or None
    report = asyncio.run(subscribers_main(address, clients, secret))
    print(json.dumps(report), flush=True)
    return 0


class SubscriberGroup:
    """The subscriber process, seen from the benchmark: ready, then finish with the counts."""

    def __init__(self, address: str, clients: int, secret: str | None) -> None:
        cmd = [sys.executable, "-m", "bench.runtime_protocol", CHILD, address, str(clients)]
        self.process = subprocess.Popen(
            [*cmd, secret or ""],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if readable:
                return self.process.stdout.readline().strip()
            if self.process.poll() is not None:
                break
        return ""

    def ready(self) -> bool:
        return self._line(CONNECT_TIMEOUT + 10) == "ready"

    def finish(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        line = self._line(DRAIN_LIMIT + 10)
        if not line:
            return {"error": "the subscriber process did not report"}
        report: dict[str, Any] = json.loads(line)
        return report

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
        finally:
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()


# -- the coordinator under test -----------------------------------------------------------------


@dataclass
class Bench:
    settings: Settings  # bench/coordinator.py's, for its Coordinator and load_figures
    secret: str | None
    variants: tuple[int, ...]
    cycles: int
    url: str = ""
    broker_pid: int = 0


def start_coordinator(bench: Bench, workdir: Path, tag: str) -> Coordinator:
    graph = workdir / "forward.fbp"
    graph.write_text(FORWARD_GRAPH)
    return Coordinator("ours", graph, bench.url, bench.settings, tag)


def runtime_address(coordinator: Coordinator) -> str:
    """Where the coordinator serves the protocol (bench/coordinator.py picked the port)."""
    return f"ws://127.0.0.1:{coordinator.port}"


def not_ready(coordinator: Coordinator) -> str:
    return f"no probe came through within {READY_TIMEOUT:.0f} s; output: {coordinator.output()!r}"


class CountingLoad(HopLoad):
    """bench/coordinator.py's load generator, counting every message it publishes on A."""

    sent = 0

    def send(self, seq: int) -> None:
        self.sent += 1
        super().send(seq)


# -- 1. edge inspection overhead ----------------------------------------------------------------


def measure_inspection(bench: Bench, subscribers: int, run_no: int) -> dict[str, Any]:
    head = {"subscribers": subscribers, "run": run_no}
    topic = f"bench/rp/r{run_no}/s{subscribers}"
    topic_a, topic_b = f"{topic}/a", f"{topic}/b"
    with tempfile.TemporaryDirectory(prefix="bench-rp-") as tmp:
        coordinator = start_coordinator(bench, Path(tmp), f"s{subscribers}-r{run_no}")
        try:
            load = CountingLoad(bench.url, topic_a, topic_b)
            try:
                announced = forwarding_announcements(topic_a, topic_b)
                if not load.wait_forwarding(announced, coordinator.alive):
                    return {**head, "error": not_ready(coordinator)}
                return {**head, **inspected(bench, coordinator, load, subscribers)}
            finally:
                load.close()
        finally:
            coordinator.stop()


def inspected(
    bench: Bench, coordinator: Coordinator, load: CountingLoad, subscribers: int
) -> dict[str, Any]:
    if not subscribers:
        return load_figures(bench.settings, load, coordinator.pid, bench.broker_pid)
    group = SubscriberGroup(runtime_address(coordinator), subscribers, bench.secret)
    try:
        if not group.ready():
            return {"error": f"subscribers not ready; coordinator: {coordinator.output()!r}"}
        before = load.sent
        figures = load_figures(bench.settings, load, coordinator.pid, bench.broker_pid)
        expected = load.sent - before
        report = group.finish()
    finally:
        group.stop()
    if "error" in report:
        return {**figures, "error": report["error"]}
    received, latencies = report["received"], report["latencies"]
    return {
        **figures,
        "expected": expected,
        "received_min": min(received),
        "received_max": max(received),
        "dropped_clients": report["dropped"],
        "data_ok": report["last_ok"],
        "sub_cpu_us": report["cpu_s"] / max(expected, 1) * 1e6,
        "inspect_p50_ms": percentile(latencies, 0.50) * 1e3,
        "inspect_p99_ms": percentile(latencies, 0.99) * 1e3,
    }


def inspection_line(r: dict[str, Any]) -> str:
    head = f"  run {r['run']} {r['subscribers']:>2} network:edges subscriber(s)"
    if "error" in r:
        return f"{head} ERROR {r['error'][:600]}"
    line = (
        f"{head} {r['msgs_per_s']:8.0f} msg/s  coordinator {r['coord_cpu_us']:.1f} us/msg  "
        f"lost {r['lost']}"
    )
    if r["subscribers"]:
        line += (
            f"  data per client {r['received_min']}..{r['received_max']} of {r['expected']}"
            f"  dropped clients {r['dropped_clients']}"
        )
    return line


# -- 2. graph:addedge round trip ----------------------------------------------------------------


class FlowProbe:
    """A paho client on its own network thread: publishes tagged messages on A, and notes when
    the first message of the current tag arrives on B (and when it was sent). Create it in the
    event loop that awaits it."""

    def __init__(self, url: str, topic_a: str, topic_b: str) -> None:
        self.topic_a = topic_a
        self.lock = threading.Lock()
        self.tag = ""
        self.first: tuple[float, float] | None = None  # (arrived, sent), perf_counter
        self.loop = asyncio.get_running_loop()
        self.arrived = asyncio.Event()  # set (from paho's thread) when ``first`` is
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        parts = urlsplit(url)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        nodelay(self.client.socket())
        self.client.subscribe(topic_b, 0)
        self.client.loop_start()
        if not subscribed.wait(10):
            self.close()
            raise SystemExit(f"flow probe: no SUBACK for {topic_b}")

    def _on_message(self, c: paho.Client, u: Any, message: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        with contextlib.suppress(ValueError, KeyError, TypeError):
            data = json.loads(message.payload)
            with self.lock:
                if data["tag"] == self.tag and self.first is None:
                    self.first = (now, float(data["ts"]))
                    self.loop.call_soon_threadsafe(self.arrived.set)

    def arm(self, tag: str) -> None:
        with self.lock:
            self.tag, self.first = tag, None
            self.arrived.clear()

    def publish(self, tag: str) -> None:
        payload = json.dumps({"tag": tag, "ts": time.perf_counter()}, separators=(",", ":"))
        self.client.publish(self.topic_a, payload.encode(), 0)

    async def publish_until_flowing(self, tag: str, deadline: float) -> None:
        while self.first is None and time.perf_counter() < deadline:
            self.publish(tag)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLOW_EVERY):
                    await self.arrived.wait()

    async def ping(self, tag: str) -> float | None:
        """Seconds from publishing one message to its arrival (None: not within 1 s)."""
        self.arm(tag)
        self.publish(tag)
        try:
            async with asyncio.timeout(1.0):
                await self.arrived.wait()
        except TimeoutError:
            return None
        first = self.first
        return None if first is None else first[0] - first[1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Cycles:
    """What the addedge cycles of one coordinator measured, in seconds."""

    added: list[float] = field(default_factory=list)
    flowing: list[float] = field(default_factory=list)
    transit: list[float] = field(default_factory=list)
    removed: list[float] = field(default_factory=list)
    published: int = 0
    failed: list[str] = field(default_factory=list)
    leaked: int = 0
    probe_rtt: list[float] = field(default_factory=list)  # through the edge, this instrument


def edge_payload() -> dict[str, Any]:
    return {**EDGE, "graph": GRAPH_ID}


async def edit(client: RuntimeClient, command: str) -> float:
    """Send ``graph:<command>`` for the edge; seconds until its reply (raises on an error)."""
    start = time.perf_counter()
    async with asyncio.timeout(REPLY_TIMEOUT):
        reply = await client.request("graph", command, edge_payload())
    if reply["command"] != command:
        raise GatewayError(f"graph:{command} refused: {reply['payload']}")
    return time.perf_counter() - start


async def add_cycle(client: RuntimeClient, flow: FlowProbe, tag: str, cycles: Cycles) -> None:
    flow.arm(tag)
    start = time.perf_counter()
    mark = await client.send("graph", "addedge", edge_payload())
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(flow.publish_until_flowing(tag, start + FLOW_LIMIT))
        async with asyncio.timeout(REPLY_TIMEOUT):
            reply = await client.wait_for({("graph", "addedge"), ("graph", "error")}, since=mark)
        replied = time.perf_counter() - start
    if reply["command"] != "addedge":
        raise GatewayError(f"graph:addedge refused: {reply['payload']}")
    cycles.added.append(replied)
    first = flow.first
    if first is None:
        cycles.failed.append(f"{tag}: nothing flowed within {FLOW_LIMIT:.0f} s")
        return
    cycles.flowing.append(first[0] - start)
    cycles.transit.append(first[0] - first[1])


async def remove_cycle(client: RuntimeClient, flow: FlowProbe, tag: str, cycles: Cycles) -> None:
    cycles.removed.append(await edit(client, "removeedge"))
    flow.arm(tag)  # a message published now must not come through any more
    flow.publish(tag)
    await asyncio.sleep(LEAK_WAIT)
    if flow.first is not None:
        cycles.leaked += 1


async def addedge_cycles(bench: Bench, address: str, topic_a: str, topic_b: str) -> Cycles:
    cycles = Cycles()
    flow = FlowProbe(bench.url, topic_a, topic_b)
    try:
        async with contextlib.AsyncExitStack() as stack:
            client = await connect(stack, lambda: RuntimeClient(address, secret=bench.secret))
            for i in range(PROBE_PINGS):  # the graph's edge still forwards
                rtt = await flow.ping(f"p{i}")
                if rtt is not None:
                    cycles.probe_rtt.append(rtt)
            await edit(client, "removeedge")  # the graph's edge, which proved it forwards
            for i in range(bench.cycles):
                await add_cycle(client, flow, f"c{i}", cycles)
                await remove_cycle(client, flow, f"x{i}", cycles)
    finally:
        flow.close()
    return cycles


def round_trips(bench: Bench, load: HopLoad, topic: str) -> dict[str, Any]:
    """Baselines: one message at a time through the coordinator's edge, and through the broker
    alone (publish and subscribe on one topic)."""
    pings, timeout = bench.settings.pings, bench.settings.timeout
    hop, _ = load.ping_pong(pings, timeout)
    direct = LoadGen(bench.url, topic, topic, 0)
    try:
        if not direct.probe():
            return {"error": "no plain MQTT round trip"}
        plain, _ = direct.ping_pong(pings, timeout)
    finally:
        direct.close()
    return {"edge_rtt": hop.rtts, "mqtt_rtt": plain.rtts}


def measure_addedge(bench: Bench, run_no: int) -> dict[str, Any]:
    head: dict[str, Any] = {"run": run_no}
    topic = f"bench/rp/r{run_no}/add"
    topic_a, topic_b = f"{topic}/a", f"{topic}/b"
    with tempfile.TemporaryDirectory(prefix="bench-rp-") as tmp:
        coordinator = start_coordinator(bench, Path(tmp), f"add-r{run_no}")
        try:
            load = HopLoad(bench.url, topic_a, topic_b)
            try:
                announced = forwarding_announcements(topic_a, topic_b)
                if not load.wait_forwarding(announced, coordinator.alive):
                    return {**head, "error": not_ready(coordinator)}
                for message in announced:  # fresh, so nobody expires during the cycles
                    load.client.publish(DISCOVERY_TOPIC, message, 0)
                head.update(round_trips(bench, load, f"{topic}/plain"))
            finally:
                load.close()
            address = runtime_address(coordinator)
            try:
                cycles = asyncio.run(addedge_cycles(bench, address, topic_a, topic_b))
            except (GatewayError, TimeoutError) as exc:
                return {**head, "error": f"{exc!r}; output: {coordinator.output()!r}"}
            return {**head, **asdict(cycles)}
        finally:
            coordinator.stop()


def addedge_line(r: dict[str, Any]) -> str:
    head = f"  run {r['run']} addedge"
    if "error" in r:
        return f"{head} ERROR {r['error'][:600]}"
    return (
        f"{head} {len(r['added'])} cycles: reply p50 {ms(r['added'], 0.5)} ms, "
        f"flowing p50 {ms(r['flowing'], 0.5)} ms; failed {len(r['failed'])}, "
        f"leaked after removeedge {r['leaked']}; plain MQTT round trip p50 "
        f"{ms(r['mqtt_rtt'], 0.5)} ms"
    )


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1e3:.2f}" if values else "-"


# -- running and reporting ----------------------------------------------------------------------


def run_all(bench: Bench) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inspection: list[dict[str, Any]] = []
    addedge: list[dict[str, Any]] = []
    with Mosquitto() as broker:
        bench.url, bench.broker_pid = broker.url, broker.pid or 0
        for run_no in range(bench.settings.runs):
            order = bench.variants if run_no % 2 == 0 else bench.variants[::-1]
            for subscribers in order:
                result = measure_inspection(bench, subscribers, run_no)
                inspection.append(result)
                print(inspection_line(result), file=sys.stderr, flush=True)
            result = measure_addedge(bench, run_no)
            addedge.append(result)
            print(addedge_line(result), file=sys.stderr, flush=True)
    return inspection, addedge


INSPECTION_FIGURES = (
    "msgs_per_s",
    "coord_cpu_us",
    "broker_cpu_us",
    "load_p50_ms",
    "load_p99_ms",
    "pp_p50_ms",
    "pp_p99_ms",
    "sub_cpu_us",
    "inspect_p50_ms",
    "inspect_p99_ms",
)


def summarize_inspection(
    results: list[dict[str, Any]], variants: Sequence[int]
) -> list[dict[str, Any]]:
    rows = []
    for k in variants:
        mine = [r for r in results if r["subscribers"] == k and "error" not in r]
        row: dict[str, Any] = {"subscribers": k, "runs": len(mine)}
        row["errors"] = sum(1 for r in results if r["subscribers"] == k and "error" in r)
        for key in INSPECTION_FIGURES:
            row[key] = median([r[key] for r in mine if key in r])
        row["lost"] = sum(r["lost"] for r in mine)
        row["short"] = sum(r["expected"] - r["received_min"] for r in mine if k)
        row["dropped_clients"] = sum(r.get("dropped_clients", 0) for r in mine)
        row["data_ok"] = all(r.get("data_ok", True) for r in mine)
        row["throughput_ratio"] = paired(results, k, "msgs_per_s")
        row["cpu_ratio"] = paired(results, k, "coord_cpu_us")
        rows.append(row)
    return rows


def paired(results: list[dict[str, Any]], k: int, key: str) -> float:
    """Median over runs of (variant k) / (0 subscribers), both from the same run."""
    ratios = []
    for run_no in sorted({r["run"] for r in results}):
        pair = {r["subscribers"]: r for r in results if r["run"] == run_no and "error" not in r}
        if k in pair and 0 in pair and pair[0][key]:
            ratios.append(pair[k][key] / pair[0][key])
    return median(ratios)


def format_inspection(rows: list[dict[str, Any]], bench: Bench) -> str:
    head = (
        "| network:edges subscribers | msg/s | vs 0 | coordinator CPU us/msg | vs 0 "
        "| flood p50 / p99 ms | ping p50 / p99 ms | inspection latency p50 / p99 ms "
        "| subscriber process CPU us/msg | data missing | clients dropped | lost |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    lines += [inspection_row(r) for r in rows]
    secret = "with a secret" if bench.secret else "without a secret"
    s = bench.settings
    lines += [
        "",
        f"Each row: a fresh coordinator ({secret}) forwarding one edge; a flood of {s.count} "
        f"messages of 80 bytes (at most {s.window} unanswered), then {s.pings} pings one at a "
        "time;",
        "subscribers: protocol clients in one process, each having sent network:edges for the "
        "edge and reading every network:data. msg/s and flood p50/p99: the flood through the "
        "edge;",
        "vs 0: median over runs of this row / the 0-subscriber row of the same run; coordinator "
        "CPU: /proc, during the flood, per forwarded message (10 ms ticks);",
        "inspection latency: publish on the source topic to a client reading its network:data "
        f"(one frame in {SAMPLE_EVERY}, all clients); subscriber process CPU: all its clients, "
        "per message;",
        "data missing: messages published after the subscription that the worst client did not "
        "get (sum over runs); clients dropped: closed by the server as too slow; lost: MQTT.",
        f"Medians over {s.runs} run(s); the variants alternate (order reversed every run).",
    ]
    if not all(r["data_ok"] for r in rows):
        lines.append("WARNING: a client's last network:data was not the bench message it expected")
    return "\n".join(lines)


def inspection_row(r: dict[str, Any]) -> str:
    k = r["subscribers"]
    cells = [
        f"{k}" if k else "0 (baseline)",
        f"{r['msgs_per_s']:,.0f}",
        f"{r['throughput_ratio']:.2f}x",
        f"{r['coord_cpu_us']:.1f}",
        f"{r['cpu_ratio']:.2f}x",
        f"{r['load_p50_ms']:.2f} / {r['load_p99_ms']:.2f}",
        f"{r['pp_p50_ms']:.3f} / {r['pp_p99_ms']:.3f}",
    ]
    if k:
        cells += [
            f"{r['inspect_p50_ms']:.2f} / {r['inspect_p99_ms']:.2f}",
            f"{r['sub_cpu_us']:.1f}",
            f"{r['short']}",
            f"{r['dropped_clients']}",
        ]
    else:
        cells += ["-"] * 4
    cells.append(f"{r['lost']}")
    return "| " + " | ".join(cells) + " |"


def format_addedge(results: list[dict[str, Any]], bench: Bench) -> str:
    ok = [r for r in results if "error" not in r]

    def pooled(key: str) -> list[float]:
        return [x for r in ok for x in r[key]]

    rows = [
        ("graph:addedge sent -> its reply arrives", "added"),
        ("graph:addedge sent -> first message arrives on the target topic", "flowing"),
        ("transit of that first message (published -> arrived)", "transit"),
        ("graph:removeedge sent -> its reply arrives", "removed"),
        ("baseline: plain MQTT round trip through the broker", "mqtt_rtt"),
        ("baseline: round trip through the coordinator's edge", "edge_rtt"),
        ("baseline: the same, measured as the first message is (threaded paho)", "probe_rtt"),
    ]
    lines = ["| figure | p50 ms | p99 ms | max ms | n |", "|---|---|---|---|---|"]
    for label, key in rows:
        values = pooled(key)
        top = f"{max(values) * 1e3:.2f}" if values else "-"
        lines.append(
            f"| {label} | {ms(values, 0.5)} | {ms(values, 0.99)} | {top} | {len(values)} |"
        )
    flowing, plain, edge = pooled("flowing"), pooled("mqtt_rtt"), pooled("edge_rtt")
    lines.append("")
    if flowing and plain and edge:
        p50 = percentile(flowing, 0.5)
        lines.append(
            f"addedge until flowing, p50: {p50 / percentile(plain, 0.5):.1f}x a plain MQTT "
            f"round trip (per run: {per_run_ratios(ok)}), {p50 / percentile(edge, 0.5):.1f}x "
            "a round trip through the edge"
        )
    failed = [f for r in ok for f in r["failed"]]
    leaked = sum(r["leaked"] for r in ok)
    early = sum(
        1
        for r in ok
        for flow, transit, added in zip(r["flowing"], r["transit"], r["added"], strict=False)
        if flow - transit < added
    )
    lines += [
        f"In {early} of {len(flowing)} cycles the first message that came through was published "
        "before the addedge reply arrived (the edge worked before the reply said so).",
        f"{len(failed)} cycle(s) where nothing flowed; {leaked} where a message published "
        "after the removeedge reply still came through; "
        f"{sum(1 for r in results if 'error' in r)} run(s) failed.",
        "",
        f"{bench.cycles} cycles per run on a fresh coordinator, {bench.settings.runs} run(s), "
        "pooled: addedge, then a message on the source topic every ~1 ms "
        f"(at most {FLOW_LIMIT:.0f} s) until one arrives, then removeedge;",
        "'first message arrives' includes up to one publish interval (~1 ms plus the event "
        f"loop's sleep granularity); baselines: {bench.settings.pings} messages one at a time.",
    ]
    return "\n".join(lines)


def per_run_ratios(ok: list[dict[str, Any]]) -> str:
    ratios = [
        percentile(r["flowing"], 0.5) / percentile(r["mqtt_rtt"], 0.5)
        for r in ok
        if r["flowing"] and r["mqtt_rtt"]
    ]
    return ", ".join(f"{x:.1f}x" for x in ratios)


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[Bench, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.runtime_protocol",
        description="Edge inspection overhead and graph:addedge round trip of our coordinator.",
    )
    parser.add_argument("--count", type=int, default=20_000, help="messages per flood")
    parser.add_argument("--runs", type=int, default=3, help="alternating repetitions")
    parser.add_argument("--window", type=int, default=200, help="max unanswered messages")
    parser.add_argument("--pings", type=int, default=1000, help="one-at-a-time round trips")
    parser.add_argument("--cycles", type=int, default=100, help="addedge cycles per run")
    parser.add_argument(
        "--subscribers", default="0,1,10", help="network:edges clients per variant (with 0)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="s per phase at most")
    parser.add_argument("--no-secret", action="store_true", help="run the coordinator without")
    parser.add_argument("--ours-commit", metavar="REV", help="measure gateway/ as in REV")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2000 messages, 1 run")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.runs, args.pings, args.cycles = 2000, 1, 200, 20
    try:
        variants = tuple(sorted({0, *(int(x) for x in args.subscribers.split(","))}))
    except ValueError:
        parser.error("--subscribers: numbers separated by commas, e.g. 0,1,10")
    if args.count < 1 or args.runs < 1 or not 1 <= args.window <= 500 or args.pings < 1:
        parser.error("--count, --runs and --pings must be >= 1, --window 1..500")
    if args.cycles < 1 or min(variants) < 0 or max(variants) > 100:
        parser.error("--cycles must be >= 1, subscribers 0..100")
    secret = None if args.no_secret else SECRET
    # bench/coordinator.py's settings: --ours-cmd is how a secret reaches its Coordinator.
    ours = (sys.executable, str(BIN / "msgflo"), *(("--secret", secret) if secret else ()))
    settings = Settings(
        count=args.count,
        runs=args.runs,
        window=args.window,
        pings=args.pings,
        warmup=1000,
        timeout=args.timeout,
        participants=2,  # the scale run's settings, unused here
        idle=1.0,
        scale_timeout=60.0,
        only=("ours",),
        quick=args.quick,
        ours_cmd=ours,
    )
    return Bench(settings, secret, variants, args.cycles), args


def main(argv: Sequence[str]) -> int:
    if argv[:1] == [CHILD]:
        return child_main(argv[1:])
    bench, args = parse_args(argv)
    with ours_checkout(args.ours_commit) as (bench.settings.ours_src, source):
        return report(bench, args, argv, source)


def report(bench: Bench, args: argparse.Namespace, argv: Sequence[str], source: str) -> int:
    s = bench.settings
    print(
        f"runtime protocol benchmark ({source}): {s.count} messages, {s.runs} run(s), "
        f"subscribers {bench.variants}, {bench.cycles} addedge cycles",
        file=sys.stderr,
    )
    inspection, addedge = run_all(bench)
    rows = summarize_inspection(inspection, bench.variants)
    host = {**mqtt_machine(), "ours": source, "secret": "yes" if bench.secret else "no"}
    print()
    print(", ".join(f"{k} {v}" for k, v in host.items()))
    print(f"command: {Path(sys.executable).name} -m bench.runtime_protocol {' '.join(argv)}")
    print("\nEdge inspection overhead: forwarding one edge with network:edges subscribers\n")
    print(format_inspection(rows, bench))
    print("\ngraph:addedge round trip\n")
    print(format_addedge(addedge, bench))
    if args.json is not None:
        document = {
            "machine": host,
            "settings": {**asdict(s), "cycles": bench.cycles, "variants": bench.variants},
            "inspection": rows,
            "inspection_runs": inspection,
            "addedge_runs": addedge,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    failed = [r for r in inspection + addedge if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
