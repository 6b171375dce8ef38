"""Coordinator forwarding and scale: our ``msgflo`` coordinator against the original (npm 0.12.3).

    .venv/bin/python -m bench.coordinator           # 20,000 messages, 3 runs, 1,000 participants
    .venv/bin/python -m bench.coordinator --quick   # smoke run (2,000 messages, 1 run, 200)
    .venv/bin/python -m bench.coordinator --json out.json

Both coordinators run as their commands do for a user, each in its own process: ours is
``.venv/bin/msgflo --graph G.fbp --broker URL``, the original is
``node tests/npm/node_modules/.bin/msgflo --graph G.fbp --broker URL --host 127.0.0.1 --port P``
(installed by ``./bootstrap.sh setup``). No participant process is involved: this process
announces simulated participants itself (discovery messages on ``fbp`` whose queues it chooses)
and is both their producer and their consumer, so the coordinator is the only hop on the path.

1. Forwarding. The graph is one edge, ``src OUT -> IN dst``; ``src`` announces its outport on
   topic A and ``dst`` its inport on topic B. A load generator (``bench/participant.py``'s
   single-threaded paho client) publishes JSON messages of about 80 bytes to A and receives
   them on B, after the coordinator forwarded them:
   * flood: ``count`` messages, at most ``window`` of them unanswered: messages/s from the first
     send to the last arrival, and the round-trip times under that load;
   * ping-pong: ``pings`` messages one at a time: p50/p99 of an idle round trip;
   * lost, reordered, duplicated and altered messages (compared byte for byte; the payloads are
     compact JSON, which the original's ``JSON.parse``/``JSON.stringify`` leaves unchanged);
   * CPU time of the coordinator and the broker per message, from ``/proc``.
   The baseline ``direct`` is the same load generator publishing to B itself (broker only, no
   coordinator); the added latency of one hop is a coordinator's ping p50/p99 minus direct's.
   ``ours``, ``original`` and ``direct`` alternate (the order is reversed every run) over
   ``--runs``; figures are medians and ours/original ratios the medians of the paired runs.
   Each measurement gets a freshly started coordinator, and is timed only once a probe message
   has passed through it (the simulated participants re-announce every 0.5 s until then).
2. Scale. A graph of ``--participants`` nodes in a ring (``p0 OUT -> IN p1``, ...,
   ``p999 OUT -> IN p0``: as many edges as nodes, each edge from ``pI/out`` to ``pJ/in``), each
   node a simulated participant with its own two topics. On a fresh broker, the coordinator is
   started; once the broker log shows it subscribed to ``fbp``, all participants are announced
   in one burst, and probes are sent through every edge not yet seen working (every 0.1 s,
   every 0.5 s after 5 s) until all have arrived: "fully wired" is the time from the first
   announcement to the last first arrival. Then, after 2 s, the coordinator's RSS (VmRSS,
   VmHWM) and its CPU over ``--idle`` seconds with no traffic at all, and over as long again
   while every participant re-announces at the libraries' default rate (every 60 / 2.2 s,
   spread evenly), as a percentage of one core (10 ms ticks).

Goals (issue 4): at least 1.5x the original's forwarding throughput; fully wired in under 5 s;
idle CPU under 1 % of a core. Nothing here asserts them: the script prints figures and says
which goals the measured medians meet. On a small machine the flood is bounded by everything
on it (broker, load generator, coordinator), so the script also prints the ceiling (direct
path) and each coordinator's capacity per core (1e6 / its CPU microseconds per message), which
does not depend on that bound. Every loop is bounded in count and time, every process it starts
is stopped in a ``finally`` block, and all traffic goes to 127.0.0.1.

``--ours-commit REV`` runs our coordinator from ``git archive REV gateway`` instead of the
working tree (which others may be editing), ``--ours-cmd`` runs another Python command line as
ours (to try a change), ``--profile DIR`` runs ours under cProfile (its figures are then not
comparable).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from bench.common import (
    BIN,
    MESSAGE_SIZE,
    NODE_MODULES,
    ROOT,
    LoadGen,
    LoggedProcess,
    Phase,
    cpu_per_message,
    cpu_seconds,
    median,
    mqtt_machine,
    node_version,
    own_cpu_seconds,
    private_broker,
    proc_status,
    round_trip_figures,
)
from gateway.mosquitto import Mosquitto, free_port
from gateway.participant import define, encode_discovery
from gateway.participant.discovery import DEFAULT_PERIOD, DISCOVERY_TOPIC

ORIGINAL = NODE_MODULES / ".bin" / "msgflo"
COORDINATORS = ("ours", "original")
PATHS = ("ours", "original", "direct")
PATH_LABEL = {
    "ours": "ours (gateway msgflo)",
    "original": "original (npm msgflo 0.12.3)",
    "direct": "direct (no coordinator)",
}
THROUGHPUT_GOAL = 1.5  # x the original's forwarding throughput
WIRED_GOAL = 5.0  # s from the first announcement to every edge working
IDLE_GOAL = 1.0  # % of one core
WARMUP = 1000  # messages through each path before it is measured (V8 compiles the original)
READY_TIMEOUT = 30.0  # s for a started coordinator to forward a probe
ANNOUNCE_EVERY = 0.5  # s between re-announcements while waiting for a coordinator
SUBSCRIBE_TIMEOUT = 30.0  # s for a started coordinator to subscribe to fbp (scale run)
PROBE_FAST, PROBE_SLOW, PROBE_SLOW_AFTER = 0.1, 0.5, 5.0  # s between probe rounds (scale run)
SETTLE = 2.0  # s between fully wired and the memory and idle measurements
STOP_TIMEOUT = 10.0  # s for a coordinator to exit after SIGTERM before it is killed
LIBRARY = '{"name": "bench-coordinator", "msgflo": {"components": {}}}\n'
HEARTBEAT_INTERVAL = DEFAULT_PERIOD / 2.2  # msgflo-nodejs and msgflo-python re-announce so often


# -- the coordinators under test ---------------------------------------------------------------


@dataclass
class Settings:
    count: int
    runs: int
    window: int
    pings: int
    warmup: int
    timeout: float
    participants: int
    idle: float
    scale_timeout: float
    only: tuple[str, ...] = COORDINATORS
    profile: str = ""
    quick: bool = False
    ours_cmd: tuple[str, ...] = ()
    ours_src: str = ""  # a copy of gateway/ at --ours-commit, put first on our PYTHONPATH
    cpu_budget: float = 0.0  # percent of one core per coordinator (cgroup quota); 0: none


CGROUP_CPU = Path("/sys/fs/cgroup/cpu")  # cgroup v1 cpu controller, as on these machines


class CpuBudget:
    """A cgroup with a CPU quota, so that a coordinator, not the broker or the load generator,
    is what limits the flood: then msg/s measures the coordinator itself, with the same CPU
    for both coordinators. Needs root and the cgroup v1 cpu controller."""

    def __init__(self, percent: float, name: str) -> None:
        self.path = CGROUP_CPU / f"msgflo-bench-{os.getpid()}-{name}"
        self.path.mkdir()
        period = 100_000
        (self.path / "cpu.cfs_period_us").write_text(str(period))
        (self.path / "cpu.cfs_quota_us").write_text(str(int(period * percent / 100)))

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


class Coordinator:
    """One coordinator process (ours or the original) on ``graph``; output goes to a file."""

    def __init__(self, kind: str, graph: Path, url: str, settings: Settings, tag: str) -> None:
        self.kind = kind
        self.workdir = graph.parent
        # The original insists on a library file (package.json by default); ours reads it too.
        # It names no components, so neither coordinator starts a process.
        (self.workdir / "package.json").write_text(LIBRARY)
        wait = str(int(settings.scale_timeout + 30))  # the original gives up (and throws) then
        common = ["--graph", str(graph), "--broker", url, "--wait-timeout", wait]
        self.port = free_port()  # where it serves the runtime protocol (both take --port)
        common += ["--host", "127.0.0.1", "--port", str(self.port)]
        if kind == "original":
            cmd = [node(), str(ORIGINAL), *common]
        else:
            # --ours-cmd starts with a Python interpreter (e.g. "python my_msgflo.py").
            ours = list(settings.ours_cmd) or [sys.executable, str(BIN / "msgflo")]
            if settings.profile:
                out = Path(settings.profile) / f"ours-{tag}.pstats"
                ours = [ours[0], "-m", "cProfile", "-o", str(out), *ours[1:]]
            cmd = [*ours, *common]
        env = dict(os.environ)
        if kind == "ours" and settings.ours_src:
            # The working directory is not the checkout, so this wins over the editable install.
            env["PYTHONPATH"] = settings.ours_src
        self.budget = CpuBudget(settings.cpu_budget, tag) if settings.cpu_budget else None
        self.process = LoggedProcess(
            cmd, cwd=self.workdir, log=self.workdir / f"{kind}.log", env=env
        )
        if self.budget is not None:
            self.budget.add(self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.alive()

    def output(self, limit: int = 1500) -> str:
        return self.process.output(limit)

    def stop(self) -> None:
        try:
            self.process.stop(STOP_TIMEOUT)
        finally:
            if self.budget is not None:
                self.budget.remove()


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise SystemExit("node is not installed: the original coordinator needs it")
    return found


def original_available() -> str | None:
    """Why the original cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not ORIGINAL.exists():
        return f"{ORIGINAL.relative_to(ROOT)} is missing (run ./bootstrap.sh setup)"
    return None


class LoggingMosquitto(Mosquitto):
    """The private broker, also logging subscriptions, so the scale run can see when a
    coordinator has subscribed to ``fbp`` before it announces anyone."""

    def config(self) -> str:
        return super().config() + "log_type subscribe\n"

    def subscribed(self, topic: str) -> bool:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return False
        return any(line.endswith(" " + topic) for line in text.splitlines())


def announcement(role: str, inports: dict[str, str], outports: dict[str, str]) -> bytes:
    """A discovery message for a simulated participant: port id -> queue."""
    definition = define(
        role,
        "BenchNode",
        inports=[{"id": p, "type": "any", "queue": q} for p, q in inports.items()],
        outports=[{"id": p, "type": "any", "queue": q} for p, q in outports.items()],
        participant_id=f"{role}-bench",
    )
    return encode_discovery(definition)


# -- forwarding --------------------------------------------------------------------------------


class HopLoad(LoadGen):
    """The shared load generator, with compact JSON payloads (which the original's
    ``JSON.parse`` + ``JSON.stringify`` gives back unchanged) and discovery."""

    def __init__(self, url: str, topic_in: str, topic_out: str) -> None:
        super().__init__(url, topic_in, topic_out, 0, compact=True)

    def wait_forwarding(self, announcements: list[bytes], alive: Callable[[], bool]) -> bool:
        """Announce (every ``ANNOUNCE_EVERY`` s) and probe until a probe comes through."""
        deadline = time.monotonic() + READY_TIMEOUT
        next_announce, attempt = 0.0, 0
        while time.monotonic() < deadline and alive():
            if time.monotonic() >= next_announce:
                for message in announcements:
                    self.client.publish(DISCOVERY_TOPIC, message, 0)
                next_announce = time.monotonic() + ANNOUNCE_EVERY
            self.phase = Phase(f"probe{attempt}", 1)
            self.on_echo = lambda seq: None
            self.send(0)
            if self.pump(lambda: self.phase.received > 0, time.monotonic() + 0.1, idle=1.0):
                return True
            attempt += 1
        return False


FORWARD_GRAPH = "# @runtime msgflo\nsrc(BenchSource) OUT -> IN dst(BenchSink)\n"


def forwarding_announcements(topic_a: str, topic_b: str) -> list[bytes]:
    return [announcement("src", {}, {"out": topic_a}), announcement("dst", {"in": topic_b}, {})]


def measure_forwarding(
    settings: Settings, broker: tuple[str, int], path: str, run_no: int
) -> dict[str, Any]:
    """One measurement of ``path``: start its coordinator (none for direct), load, stop."""
    url, _ = broker
    topic = f"bench/fwd/r{run_no}/{path}"
    topic_a, topic_b = f"{topic}/a", f"{topic}/b"
    head = {"path": path, "run": run_no}
    with tempfile.TemporaryDirectory(prefix="bench-coordinator-") as tmp:
        coordinator = None
        if path != "direct":
            graph = Path(tmp) / "forward.fbp"
            graph.write_text(FORWARD_GRAPH)
            coordinator = Coordinator(path, graph, url, settings, f"fwd-r{run_no}")
        try:
            started = time.monotonic()
            load = HopLoad(url, topic_a if coordinator else topic_b, topic_b)
            try:
                if coordinator is None:
                    ready = load.probe()
                else:
                    announced = forwarding_announcements(topic_a, topic_b)
                    ready = load.wait_forwarding(announced, coordinator.alive)
                if not ready:
                    why = "no probe came through within" if coordinator else "no echo within"
                    error = f"{why} {READY_TIMEOUT:.0f} s"
                    if coordinator is not None:
                        error += f"; its output: {coordinator.output()!r}"
                    return {**head, "error": error}
                ready_s = time.monotonic() - started
                pid = coordinator.pid if coordinator else 0
                return {**head, **load_figures(settings, load, pid, broker[1]), "ready_s": ready_s}
            finally:
                load.close()
        finally:
            if coordinator is not None:
                coordinator.stop()


def load_figures(settings: Settings, load: HopLoad, pid: int, broker_pid: int) -> dict[str, Any]:
    count, window, timeout = settings.count, settings.window, settings.timeout
    load.flood("w", settings.warmup, window, timeout)
    pids = (pid, broker_pid)
    cpu_before = [cpu_seconds(p) if p else 0.0 for p in pids] + [own_cpu_seconds()]
    flood, elapsed = load.flood("t", count, window, timeout)
    cpu_after = [cpu_seconds(p) if p else 0.0 for p in pids] + [own_cpu_seconds()]
    rss = proc_status(pid, "VmRSS") if pid else float("nan")
    pings, pp_elapsed = load.ping_pong(settings.pings, timeout)
    per_msg = cpu_per_message(cpu_before, cpu_after, flood.received)
    return {
        **round_trip_figures(count, flood, elapsed, pings, pp_elapsed),
        "coord_cpu_us": per_msg[0],
        "broker_cpu_us": per_msg[1],
        "load_cpu_us": per_msg[2],
        "coord_rss_mb": rss,
        "elapsed_s": elapsed,
    }


def run_forwarding(settings: Settings) -> list[dict[str, Any]]:
    paths = [p for p in PATHS if p in settings.only or p == "direct"]
    results: list[dict[str, Any]] = []
    with private_broker() as broker:  # sets set_tcp_nodelay (see gateway/mosquitto.py)
        where = (broker.url, broker.pid or 0)
        for run_no in range(settings.runs):
            order = paths if run_no % 2 == 0 else paths[::-1]
            for path in order:
                result = measure_forwarding(settings, where, path, run_no)
                results.append(result)
                print(forwarding_line(result), file=sys.stderr, flush=True)
    return results


def forwarding_line(r: dict[str, Any]) -> str:
    head = f"  forwarding run {r['run']} {PATH_LABEL[r['path']]:<29}"
    if "error" in r:
        return f"{head} ERROR {r['error']}"
    return (
        f"{head} {r['msgs_per_s']:8.0f} msg/s  ping p50 {r['pp_p50_ms']:.3f} ms  "
        f"lost {r['lost']}  corrupt {r['corrupt']}  cpu us/msg: coordinator "
        f"{r['coord_cpu_us']:.1f} broker {r['broker_cpu_us']:.1f}"
    )


# -- scale -------------------------------------------------------------------------------------


def ring_graph(n: int) -> str:
    lines = ["# @runtime msgflo"]
    lines += [f"p{i}(BenchNode) OUT -> IN p{(i + 1) % n}(BenchNode)" for i in range(n)]
    return "\n".join(lines) + "\n"


@dataclass
class Ring:
    """The scale run's simulated participants: ``pI`` announces ``PREFIX/pI/in`` and ``/out``."""

    prefix: str
    n: int
    arrived: bytearray = field(default_factory=bytearray)
    misrouted: int = 0
    last_arrival: float = 0.0

    def __post_init__(self) -> None:
        self.arrived = bytearray(self.n)

    def topic(self, i: int, port: str) -> str:
        return f"{self.prefix}/p{i}/{port}"

    def announcements(self) -> list[bytes]:
        return [
            announcement(f"p{i}", {"in": self.topic(i, "in")}, {"out": self.topic(i, "out")})
            for i in range(self.n)
        ]

    def missing(self) -> list[int]:
        return [i for i in range(self.n) if not self.arrived[i]]

    @property
    def wired(self) -> int:
        return self.n - self.arrived.count(0)


class ScaleLoad(LoadGen):
    """Announces the ring and probes its edges: edge I goes from ``pI/out`` to ``pI+1/in``."""

    def __init__(self, url: str, ring: Ring) -> None:
        self.ring = ring
        super().__init__(url, "-", f"{ring.prefix}/+/in", 0)

    def _on_message(self, c: paho.Client, u: Any, message: paho.MQTTMessage) -> None:
        self.packets += 1
        try:
            edge = int(json.loads(message.payload)["edge"])
        except (ValueError, KeyError, TypeError):
            self.ring.misrouted += 1
            return
        ring = self.ring
        if not 0 <= edge < ring.n or message.topic != ring.topic((edge + 1) % ring.n, "in"):
            ring.misrouted += 1
        elif not ring.arrived[edge]:
            ring.arrived[edge] = 1
            ring.last_arrival = time.perf_counter()

    def probe_round(self, edges: list[int]) -> None:
        for i in edges:
            payload = json.dumps({"edge": i}, separators=(",", ":")).encode()
            self.client.publish(self.ring.topic(i, "out"), payload, 0)

    def announce(self, messages: list[bytes]) -> None:
        for message in messages:
            self.client.publish(DISCOVERY_TOPIC, message, 0)

    def wire(self, deadline: float, alive: Callable[[], bool]) -> float | None:
        """Announce everyone, then probe until every edge works; seconds from the first
        announcement to the last first arrival, or None at the deadline."""
        messages = self.ring.announcements()
        start = time.perf_counter()
        self.announce(messages)
        while time.monotonic() < deadline and alive():
            missing = self.ring.missing()
            if not missing:
                return self.ring.last_arrival - start
            self.probe_round(missing)
            pause = PROBE_FAST if time.perf_counter() - start < PROBE_SLOW_AFTER else PROBE_SLOW
            self.idle(pause)
        return None if self.ring.missing() else self.ring.last_arrival - start

    def idle(self, seconds: float, heartbeats: list[bytes] | None = None) -> None:
        """Keep the connection serviced for ``seconds``; with ``heartbeats``, re-announce each
        participant once per ``HEARTBEAT_INTERVAL``, spread evenly."""
        end = time.monotonic() + seconds
        gap = HEARTBEAT_INTERVAL / len(heartbeats) if heartbeats else seconds
        sent, began = 0, time.monotonic()
        while (now := time.monotonic()) < end:
            if heartbeats:
                due = int((now - began) / gap) + 1
                while sent < due:
                    self.client.publish(DISCOVERY_TOPIC, heartbeats[sent % len(heartbeats)], 0)
                    sent += 1
            self.pump(lambda: False, min(end, now + min(gap, 0.2)), idle=seconds + 1)


def wait_subscribed(broker: LoggingMosquitto, coordinator: Coordinator, load: ScaleLoad) -> float:
    """Seconds until the broker logged a subscription to ``fbp`` (or the timeout)."""
    started = time.monotonic()
    deadline = started + SUBSCRIBE_TIMEOUT
    while time.monotonic() < deadline and coordinator.alive():
        if broker.subscribed(DISCOVERY_TOPIC):
            return time.monotonic() - started
        load.idle(0.02)
    raise TimeoutError(f"no subscription to {DISCOVERY_TOPIC} in {SUBSCRIBE_TIMEOUT:.0f} s")


def measure_scale(settings: Settings, kind: str) -> dict[str, Any]:
    """Wire a ring of ``settings.participants`` with a fresh coordinator on a fresh broker."""
    head = {"path": kind, "participants": settings.participants}
    ring = Ring(f"bench/scale/{kind}", settings.participants)
    with LoggingMosquitto() as broker, tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        graph = Path(tmp) / "ring.fbp"
        graph.write_text(ring_graph(ring.n))
        coordinator = Coordinator(kind, graph, broker.url, settings, "scale")
        try:
            load = ScaleLoad(broker.url, ring)
            try:
                return {**head, **scale_figures(settings, broker, coordinator, load)}
            except TimeoutError as exc:
                return {**head, "error": f"{exc}; its output: {coordinator.output()!r}"}
            finally:
                load.close()
        finally:
            coordinator.stop()


def scale_figures(
    settings: Settings, broker: LoggingMosquitto, coordinator: Coordinator, load: ScaleLoad
) -> dict[str, Any]:
    subscribed_s = wait_subscribed(broker, coordinator, load)
    deadline = time.monotonic() + settings.scale_timeout
    wired_s = load.wire(deadline, coordinator.alive)
    ring = load.ring
    figures: dict[str, Any] = {
        "subscribed_s": subscribed_s,
        "wired_s": wired_s,
        "edges_wired": ring.wired,
        "misrouted": ring.misrouted,
    }
    if wired_s is None:
        state = "still running" if coordinator.alive() else "exited"
        figures["error"] = (
            f"{ring.wired} of {ring.n} edges working after {settings.scale_timeout:.0f} s "
            f"(coordinator {state}); its output: {coordinator.output()!r}"
        )
        return figures
    load.idle(SETTLE)
    figures["rss_mb"] = proc_status(coordinator.pid, "VmRSS")
    figures["hwm_mb"] = proc_status(coordinator.pid, "VmHWM")
    figures["idle_cpu_pct"] = cpu_percent(coordinator.pid, lambda: load.idle(settings.idle))
    heartbeats = ring.announcements()
    busy = cpu_percent(coordinator.pid, lambda: load.idle(settings.idle, heartbeats))
    figures["heartbeat_cpu_pct"] = busy
    figures["heartbeats_per_s"] = ring.n / HEARTBEAT_INTERVAL
    figures["alive"] = coordinator.alive()
    return figures


def cpu_percent(pid: int, window: Callable[[], None]) -> float:
    before, started = cpu_seconds(pid), time.monotonic()
    window()
    return (cpu_seconds(pid) - before) / (time.monotonic() - started) * 100


def run_scale(settings: Settings) -> list[dict[str, Any]]:
    results = []
    for kind in settings.only:
        result = measure_scale(settings, kind)
        results.append(result)
        print(scale_line(result), file=sys.stderr, flush=True)
    return results


def scale_line(r: dict[str, Any]) -> str:
    head = f"  scale {PATH_LABEL[r['path']]:<29} {r['participants']} participants"
    if "error" in r:
        return f"{head} ERROR {r['error'][:400]}"
    return (
        f"{head} wired in {r['wired_s']:.2f} s  RSS {r['rss_mb']:.1f} MB  "
        f"idle CPU {r['idle_cpu_pct']:.2f} %  with heartbeats {r['heartbeat_cpu_pct']:.2f} %"
    )


# -- summary -----------------------------------------------------------------------------------

FIGURES = (
    "msgs_per_s",
    "load_p50_ms",
    "load_p99_ms",
    "pp_p50_ms",
    "pp_p99_ms",
    "pp_msgs_per_s",
    "coord_cpu_us",
    "broker_cpu_us",
    "load_cpu_us",
    "coord_rss_mb",
    "ready_s",
)
COUNTS = ("lost", "reordered", "duplicates", "corrupt")


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for path in PATHS:
        all_runs = [r for r in results if r["path"] == path]
        if not all_runs:
            continue
        mine = [r for r in all_runs if "error" not in r]
        row: dict[str, Any] = {"path": path, "runs": len(mine), "errors": len(all_runs) - len(mine)}
        for key in FIGURES:
            row[key] = median([r[key] for r in mine if key in r])
        for key in COUNTS:
            row[key] = sum(r[key] for r in mine)
        rows.append(row)
    return {"rows": rows, "ratios": paired_ratios(results)}


def paired_ratios(results: list[dict[str, Any]]) -> dict[str, Any]:
    """ours/original per run (adjacent in time), hop latencies per run, and their medians."""
    throughput, cpu = [], []
    hop50: dict[str, list[float]] = {}
    hop99: dict[str, list[float]] = {}
    for run_no in sorted({r["run"] for r in results}):
        pair = {r["path"]: r for r in results if r["run"] == run_no and "error" not in r}
        if "ours" in pair and "original" in pair:
            ours, original = pair["ours"], pair["original"]
            throughput.append(ours["msgs_per_s"] / original["msgs_per_s"])
            if original["coord_cpu_us"]:
                cpu.append(ours["coord_cpu_us"] / original["coord_cpu_us"])
        if "direct" in pair:
            for kind in COORDINATORS:
                if kind in pair:
                    hop50.setdefault(kind, []).append(
                        pair[kind]["pp_p50_ms"] - pair["direct"]["pp_p50_ms"]
                    )
                    hop99.setdefault(kind, []).append(
                        pair[kind]["pp_p99_ms"] - pair["direct"]["pp_p99_ms"]
                    )
    return {
        "throughput": median(throughput),
        "throughput_runs": throughput,
        "coord_cpu": median(cpu),
        "hop_p50_ms": {k: median(v) for k, v in hop50.items()},
        "hop_p99_ms": {k: median(v) for k, v in hop99.items()},
    }


def format_forwarding(summary: dict[str, Any], settings: Settings) -> str:
    head = (
        "| path | msg/s | p50 ms | p99 ms | ping p50 ms | ping p99 ms | ping msg/s | lost "
        "| reordered | altered | coordinator CPU us/msg | broker CPU us/msg | coordinator RSS MB |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for row in summary["rows"]:
        rss = "-" if row["path"] == "direct" else f"{row['coord_rss_mb']:.1f}"
        cpu = "-" if row["path"] == "direct" else f"{row['coord_cpu_us']:.1f}"
        lines.append(
            f"| {PATH_LABEL[row['path']]} | {row['msgs_per_s']:,.0f} "
            f"| {row['load_p50_ms']:.2f} | {row['load_p99_ms']:.2f} "
            f"| {row['pp_p50_ms']:.3f} | {row['pp_p99_ms']:.3f} | {row['pp_msgs_per_s']:,.0f} "
            f"| {row['lost']} | {row['reordered']} | {row['corrupt']} | {cpu} "
            f"| {row['broker_cpu_us']:.1f} | {rss} |"
        )
    lines.append("")
    ratios = summary["ratios"]
    for kind in COORDINATORS:
        if kind in ratios["hop_p50_ms"]:
            lines.append(
                f"Added latency of one hop through {PATH_LABEL[kind]} (ping minus direct, "
                f"median of runs): p50 {ratios['hop_p50_ms'][kind]:.3f} ms, "
                f"p99 {ratios['hop_p99_ms'][kind]:.3f} ms"
            )
    if ratios["throughput_runs"]:
        runs = ", ".join(f"{x:.2f}" for x in ratios["throughput_runs"])
        verdict = "met" if ratios["throughput"] >= THROUGHPUT_GOAL else "NOT met"
        if settings.quick:
            verdict += " (--quick: a smoke run, not a measurement)"
        lines.append(
            f"Throughput ours/original: {ratios['throughput']:.2f}x (runs: {runs}); "
            f"goal >= {THROUGHPUT_GOAL}x: {verdict}. Coordinator CPU per message "
            f"ours/original: {ratios['coord_cpu']:.2f}x"
        )
    lines += capacity_lines(summary["rows"])
    lines += [
        "",
        f"msg/s, p50, p99: flood of {settings.count} messages of {MESSAGE_SIZE} bytes through "
        f"one edge, at most {settings.window} unanswered (round trip under load);",
        f"ping: {settings.pings} messages one at a time (idle round trip); direct: the load "
        "generator publishes to the consumer topic itself (broker only);",
        f"medians over {settings.runs} run(s), paths alternating; lost, reordered, altered: "
        "totals over all runs; CPU from /proc during the flood (10 ms ticks); RSS after it.",
    ]
    return "\n".join(lines)


def capacity_lines(rows: list[dict[str, Any]]) -> list[str]:
    """What the flood figures can show: the ceiling set by the broker and the load generator
    (the direct path), and each coordinator's capacity if it had a core to itself."""
    by_path = {row["path"]: row for row in rows}
    lines = []
    direct = by_path.get("direct")
    if direct is not None:
        shares = ", ".join(
            f"{kind} {by_path[kind]['msgs_per_s'] / direct['msgs_per_s']:.2f}x"
            for kind in COORDINATORS
            if kind in by_path
        )
        lines.append(
            f"Ceiling of this setup: direct (broker and load generator only) "
            f"{direct['msgs_per_s']:,.0f} msg/s; of that, {shares}"
        )
    capacity = {
        kind: 1e6 / by_path[kind]["coord_cpu_us"]
        for kind in COORDINATORS
        if kind in by_path and by_path[kind]["coord_cpu_us"] > 0
    }
    if capacity:
        text = ", ".join(f"{kind} {value:,.0f} msg/s" for kind, value in capacity.items())
        lines.append(f"Capacity per core (1e6 / coordinator CPU us per message): {text}")
    if len(capacity) == len(COORDINATORS):
        lines.append(f"Capacity ours/original: {capacity['ours'] / capacity['original']:.2f}x")
    return lines


def format_scale(results: list[dict[str, Any]], settings: Settings) -> str:
    head = (
        "| coordinator | participants / edges | fbp subscribed s | fully wired s | edges working "
        "| RSS MB (peak) | idle CPU % of a core | CPU % with heartbeats |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in results:
        wired = f"{r['wired_s']:.2f}" if r.get("wired_s") is not None else "not wired"
        if "rss_mb" in r:
            memory = f"{r['rss_mb']:.1f} ({r['hwm_mb']:.1f})"
            idle, busy = f"{r['idle_cpu_pct']:.2f}", f"{r['heartbeat_cpu_pct']:.2f}"
        else:
            memory = idle = busy = "-"
        subscribed = f"{r['subscribed_s']:.2f}" if "subscribed_s" in r else "-"
        lines.append(
            f"| {PATH_LABEL[r['path']]} | {r['participants']} / {r['participants']} "
            f"| {subscribed} | {wired} | {r.get('edges_wired', 0)} | {memory} | {idle} | {busy} |"
        )
    lines.append("")
    for r in results:
        if "error" in r:
            lines.append(f"{PATH_LABEL[r['path']]}: {r['error'][:600]}")
    ours = next((r for r in results if r["path"] == "ours"), None)
    if ours is not None:
        lines.append(scale_verdict(ours))
    lines += [
        "",
        "fbp subscribed: from the coordinator's start until the broker logged its subscription "
        "to fbp; fully wired: from the first of the burst of announcements until a probe had "
        f"come through every edge (probes every {PROBE_FAST} s; {PROBE_SLOW} s after "
        f"{PROBE_SLOW_AFTER:.0f} s);",
        f"RSS: VmRSS (VmHWM) {SETTLE:.0f} s after fully wired; idle CPU: over "
        f"{settings.idle:.0f} s with no traffic; with heartbeats: over as long again while "
        "every participant "
        f"re-announces every {HEARTBEAT_INTERVAL:.1f} s "
        f"({settings.participants / HEARTBEAT_INTERVAL:.0f} discovery messages/s).",
    ]
    return "\n".join(lines)


def scale_verdict(r: dict[str, Any]) -> str:
    wired = r.get("wired_s")
    wired_ok = wired is not None and wired < WIRED_GOAL
    idle = r.get("idle_cpu_pct")
    idle_ok = idle is not None and idle < IDLE_GOAL
    return (
        f"Ours: fully wired goal < {WIRED_GOAL:.0f} s: {'met' if wired_ok else 'NOT met'}; "
        f"idle CPU goal < {IDLE_GOAL:.0f} % of a core: {'met' if idle_ok else 'NOT met'}"
    )


# -- command line ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What to run, besides the measurement settings."""

    json_path: Path | None
    forwarding: bool
    scale: bool
    commit: str


def parse_args(argv: Sequence[str]) -> tuple[Settings, Plan]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.coordinator",
        description="Forwarding throughput, hop latency and scale of our msgflo coordinator "
        "against the original.",
    )
    parser.add_argument("--count", type=int, default=20_000, help="messages per flood")
    parser.add_argument("--runs", type=int, default=3, help="alternating repetitions")
    parser.add_argument("--window", type=int, default=200, help="max unanswered messages")
    parser.add_argument("--pings", type=int, default=2000, help="ping-pong messages")
    parser.add_argument("--timeout", type=float, default=120.0, help="s per phase at most")
    parser.add_argument("--participants", type=int, default=1000, help="scale run size")
    parser.add_argument("--idle", type=float, default=10.0, help="s of each idle CPU window")
    parser.add_argument(
        "--scale-timeout", type=float, default=60.0, help="s for a coordinator to wire the ring"
    )
    parser.add_argument("--only", choices=COORDINATORS, help="measure one coordinator only")
    parser.add_argument("--no-forwarding", action="store_true", help="scale run only")
    parser.add_argument("--no-scale", action="store_true", help="forwarding only")
    parser.add_argument(
        "--ours-cmd",
        help="Python command line run as our coordinator instead of .venv/bin/msgflo "
        "(to try a change), e.g. '.venv/bin/python my_msgflo.py'",
    )
    parser.add_argument(
        "--ours-commit",
        metavar="REV",
        help="run our coordinator from gateway/ as committed in REV (git archive into a temp "
        "dir) instead of the working tree, which others may be editing",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2000 messages, 1 run")
    parser.add_argument(
        "--cpu-budget",
        type=float,
        default=0.0,
        metavar="PCT",
        help="give each coordinator this percent of one core (cgroup quota), so that it limits "
        "the flood and msg/s compares the coordinators, not the shared machine",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run our coordinator under cProfile, write DIR/ours-*.pstats "
        "(its figures are then not comparable)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.runs, args.pings = 2000, 1, 200
        args.participants, args.idle = 200, 3.0
    if args.count < 1 or args.runs < 1 or not 1 <= args.window <= 500 or args.pings < 0:
        parser.error("--count and --runs must be >= 1, --window 1..500, --pings >= 0")
    if args.participants < 2 or args.idle <= 0:
        parser.error("--participants must be >= 2 and --idle > 0")
    only: tuple[str, ...] = COORDINATORS if args.only is None else (args.only,)
    why = original_available()
    if "original" in only and why is not None:
        print(f"original coordinator skipped: {why}", file=sys.stderr)
        only = tuple(k for k in only if k != "original")
    profile = ""
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        profile = str(args.profile.resolve())
    warmup = WARMUP  # the same for --quick: the original's JIT needs it before any figure
    settings = Settings(
        args.count,
        args.runs,
        args.window,
        args.pings,
        warmup,
        args.timeout,
        args.participants,
        args.idle,
        args.scale_timeout,
        only,
        profile,
        args.quick,
        tuple(shlex.split(args.ours_cmd or "")),
        cpu_budget=args.cpu_budget,
    )
    plan = Plan(args.json, not args.no_forwarding, not args.no_scale, args.ours_commit or "")
    return settings, plan


def export_commit(rev: str, into: Path) -> str:
    """``git archive REV gateway`` unpacked into ``into``; returns the full commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", commit, "gateway"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, timeout=60)
    return commit


@contextlib.contextmanager
def ours_checkout(rev: str | None) -> Iterator[tuple[str, str]]:
    """``(src, source)``: with ``rev``, ``src`` is a temporary copy of ``gateway/`` as committed
    in ``rev`` (for ``Settings.ours_src``), else ``""``; ``source`` says what ours runs from."""
    with tempfile.TemporaryDirectory(prefix="bench-ours-") as tmp:
        commit = export_commit(rev, Path(tmp)) if rev else ""
        yield (tmp if rev else ""), ours_source(commit)


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip()


def ours_source(commit: str) -> str:
    if commit:
        return f"gateway/ at commit {commit[:10]}"
    head = git("rev-parse", "--short=10", "HEAD")
    dirty = git("status", "--porcelain", "--", "gateway")
    return f"working tree at {head}" + (" with uncommitted changes in gateway/" if dirty else "")


def main(argv: Sequence[str]) -> int:
    settings, plan = parse_args(argv)
    with ours_checkout(plan.commit) as (settings.ours_src, source):
        return run_main(settings, plan, argv, source)


def run_main(settings: Settings, plan: Plan, argv: Sequence[str], source: str) -> int:
    forwarding, scale, json_path = plan.forwarding, plan.scale, plan.json_path
    print(
        f"coordinator benchmark: {', '.join(settings.only)} ({source}); {settings.count} "
        f"messages, {settings.runs} run(s), window {settings.window}; "
        f"scale {settings.participants}",
        file=sys.stderr,
    )
    fwd = run_forwarding(settings) if forwarding else []
    big = run_scale(settings) if scale else []
    host = {**mqtt_machine(), "node": node_version(), "ours": source}
    summary = summarize(fwd) if fwd else {"rows": [], "ratios": {}}
    print()
    print(", ".join(f"{k} {v}" for k, v in host.items()))
    print(f"command: {Path(sys.executable).name} -m bench.coordinator {' '.join(argv)}".rstrip())
    if fwd:
        print("\nForwarding through one edge\n")
        print(format_forwarding(summary, settings))
    if big:
        print("\nScale: a ring of participants\n")
        print(format_scale(big, settings))
    if json_path is not None:
        document = {
            "machine": host,
            "settings": asdict(settings),
            **summary,
            "runs": fwd,
            "scale": big,
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    failed = [r for r in fwd + big if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
