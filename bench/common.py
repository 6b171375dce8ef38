"""Helpers shared by the benchmark scripts: /proc readers, statistics, Markdown tables, a
private broker without ``set_tcp_nodelay``, the machine's description, the single-threaded
paho load generator that drives every MQTT path, and a bridge's device side hosted on a broker
with a subscriber process counting what it publishes (the bridge benches).

Run the scripts as modules from the repository root (``.venv/bin/python -m bench.coordinator``):
``bench`` is a package there; the editable install of the project only provides ``gateway``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from gateway.bridges.host import BridgeHost
from gateway.bridges.run import DeviceSide
from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto, find_mosquitto
from gateway.transport import Transport, open_transport

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's scripts (msgflo, msgflo-python, ...)
NODE_MODULES = ROOT / "tests" / "npm" / "node_modules"  # ./bootstrap.sh setup installs them
MESSAGE_SIZE = 80  # bytes of JSON per message, as in the reference measurements
IDLE_TIMEOUT = 5.0  # s without any echo ends a phase (the rest counts as lost)
PING_TIMEOUT = 1.0  # s to wait for one ping-pong echo
READ_BURST = 64  # packets the load generator reads per wake-up
PROBE_TIMEOUT = 20.0  # s for an echo path to answer a probe
PACE_SLACK = 10  # sends a paced schedule may fall behind (and catch up one per loop turn)


# -- processes: /proc readers, stopping --------------------------------------------------------


def cpu_times(pid: int) -> tuple[float, float]:
    """utime and stime of ``pid`` (user and kernel CPU seconds) from /proc (0.0 where /proc
    is not available)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = stat.rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc (0.0 where /proc is not available)."""
    return sum(cpu_times(pid))


def page_faults(pid: int) -> int:
    """Minor page faults of ``pid`` (all its threads) so far, from /proc (0 if unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[7])


def run_seconds(pid: int) -> float:
    """Time on a CPU of all of ``pid``'s threads, from the scheduler (``/proc/PID/task/*/
    schedstat``, nanoseconds), not sampled at 10 ms ticks as ``cpu_seconds`` is; threads that
    ended are not counted. 0.0 where it is not available."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        return 0.0
    return total / 1e9


def context_switches(pid: int) -> tuple[int, int]:
    """Voluntary (the thread blocked: a wait for input) and involuntary (it was preempted)
    context switches of all of ``pid``'s threads so far, from /proc."""
    voluntary = involuntary = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0, 0
    for task in tasks:
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    involuntary += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return voluntary, involuntary


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_status(pid: int, key: str) -> float:
    """A ``kB`` figure (``VmRSS``, ``VmHWM``) from /proc/PID/status, in MB (nan if unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


def rss_mb(pid: int) -> float:
    return proc_status(pid, "VmRSS")


def cpu_per_message(before: list[float], after: list[float], received: int) -> list[float]:
    """CPU microseconds per message of each measured process between two readings."""
    return [(a - b) / max(received, 1) * 1e6 for b, a in zip(before, after, strict=True)]


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class LoggedProcess:
    """``cmd`` in a session of its own, its output in the file ``log``: what a benchmark
    measures as one process (a coordinator) and reads the tail of when it fails."""

    def __init__(self, cmd: Sequence[str], *, cwd: Path, log: Path, env: dict[str, str]) -> None:
        self.log = log.open("w+")
        self.process = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, limit: int = 2000) -> str:
        self.log.flush()
        self.log.seek(0)
        text: str = self.log.read()
        return text[-limit:]

    def stop(self, timeout: float = 10.0, *, group: bool = False) -> None:
        """SIGTERM, SIGKILL after ``timeout``; with ``group`` also whatever it started and
        left behind (its session's process group)."""
        try:
            stop_process(self.process, timeout)
            if group:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
        finally:
            self.log.close()


def node() -> str | None:
    return shutil.which("node")


# -- statistics and tables ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """Date, cores, CPU model and Python version: the head line of every result."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
    }


def mqtt_machine() -> dict[str, str]:
    """``machine()`` with the versions of paho-mqtt and mosquitto."""
    mosquitto = subprocess.run(
        [find_mosquitto(), "-h"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.splitlines()
    return {
        **machine(),
        "paho-mqtt": paho_version,
        "mosquitto": mosquitto[0] if mosquitto else "unknown",
    }


def node_version() -> str:
    found = node()
    if found is None:
        return "none"
    done = subprocess.run(
        [found, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip()


class DefaultMosquitto(Mosquitto):
    """The private broker with mosquitto's default ``set_tcp_nodelay false`` (Nagle on for
    what it sends), as a broker installed from a distribution runs."""

    def config(self) -> str:
        lines = super().config().splitlines()
        return "\n".join(line for line in lines if not line.startswith("set_tcp_nodelay")) + "\n"


def private_broker(nodelay: bool = True) -> Mosquitto:
    """A private mosquitto on a free loopback port (use with ``with``); ``nodelay=False``:
    mosquitto's defaults."""
    return Mosquitto() if nodelay else DefaultMosquitto()


# -- the load generator ------------------------------------------------------------------------


def nodelay(sock: Any) -> None:
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass
class Phase:
    """Echoes of one phase (``name`` is carried in every payload, stale echoes are ignored)."""

    name: str
    count: int
    payloads: list[bytes] = field(default_factory=list)
    seen: bytearray = field(default_factory=bytearray)
    rtts: list[float] = field(default_factory=list)
    received: int = 0
    highest: int = -1
    reordered: int = 0
    duplicates: int = 0
    corrupt: int = 0
    last_echo: float = 0.0

    def __post_init__(self) -> None:
        self.seen = bytearray(self.count)

    def record(self, seq: int, sent_at: float, payload: bytes | bytearray, now: float) -> None:
        if not 0 <= seq < self.count or self.seen[seq]:
            self.duplicates += 1
            return
        self.seen[seq] = 1
        self.received += 1
        self.rtts.append(now - sent_at)
        self.last_echo = now
        if payload != self.payloads[seq]:
            self.corrupt += 1
        if seq < self.highest:
            self.reordered += 1
        else:
            self.highest = seq


def make_payload(phase: str, seq: int, pad: str, *, compact: bool = False) -> bytes:
    """JSON with a sequence number and the send time. ``compact`` leaves out the blanks, so
    that a ``JSON.parse`` + ``JSON.stringify`` (the original coordinator, msgflo-nodejs) gives
    back the same bytes."""
    data = {"seq": seq, "ts": time.perf_counter(), "ph": phase, "pad": pad}
    if compact:
        return json.dumps(data, separators=(",", ":")).encode()
    return json.dumps(data).encode()


def pad_for(size: int, *, compact: bool = False) -> str:
    probe = len(make_payload("t", 10_000, "", compact=compact))
    return "x" * max(0, size - probe)


class LoadGen:
    """Drives one echo path with a single-threaded paho client (select + loop_read/loop_write):
    publishes to ``topic_in`` and receives on ``topic_out``."""

    def __init__(
        self, url: str, topic_in: str, topic_out: str, qos: int, *, compact: bool = False
    ) -> None:
        parts = urlsplit(url)
        self.topic_in, self.qos, self.compact = topic_in, qos, compact
        self.pad = pad_for(MESSAGE_SIZE, compact=compact)
        self.phase = Phase("-", 0)
        self.on_echo: Callable[[int], None] = lambda seq: None
        self.packets = 0
        self.last_misc = time.monotonic()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self.client.on_message = self._on_message
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        sock = self.client.socket()
        assert sock is not None, "paho has a socket once connect() returned"
        self.sock = sock
        nodelay(self.sock)  # the instrument must not hold back small packets
        self.client.subscribe(topic_out, qos)

    def _on_message(self, c: paho.Client, u: Any, message: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        self.packets += 1
        payload = message.payload
        try:
            data = json.loads(payload)
            name, seq, sent_at = data["ph"], data["seq"], data["ts"]
        except (ValueError, KeyError, TypeError):
            self.phase.corrupt += 1
            return
        if name != self.phase.name:
            return  # a late echo from an earlier phase
        self.phase.record(seq, sent_at, payload, now)
        self.on_echo(seq)

    def send(self, seq: int) -> None:
        payload = make_payload(self.phase.name, seq, self.pad, compact=self.compact)
        self.phase.payloads.append(payload)
        self.client.publish(self.topic_in, payload, self.qos)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, 0)

    def pump(
        self,
        done: Callable[[], bool],
        deadline: float,
        idle: float,
        tick: Callable[[], float] | None = None,
    ) -> bool:
        """Move bytes until ``done()``; False when the deadline or the idle timeout passed.
        ``tick`` (if given) is called every turn and returns the seconds it wants to wait at
        most before the next turn (a pacer's next send)."""
        client, sock = self.client, self.sock
        last_packets, last_progress = self.packets, time.monotonic()
        wait = 0.05
        while not done():
            now = time.monotonic()
            if self.packets != last_packets:
                last_packets, last_progress = self.packets, now
            if now >= deadline or now - last_progress > idle:
                return False
            if tick is not None:
                wait = min(0.05, max(0.0, tick()))
            wlist = [sock] if client.want_write() else []
            readable, _, _ = select.select([sock], wlist, [], wait)
            if readable:
                self._read_burst()
            if client.want_write():
                self._check(client.loop_write())
            if now - self.last_misc >= 1.0:
                self._check(client.loop_misc())
                self.last_misc = now
        return True

    def _read_burst(self) -> None:
        # paho reads one packet per loop_read() at QoS 0; read on while packets keep coming.
        for _ in range(READ_BURST):
            before = self.packets
            self._check(self.client.loop_read())
            if self.packets == before:
                return

    @staticmethod
    def _check(rc: MQTTErrorCode) -> None:
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise SystemExit(f"load generator: connection lost ({paho.error_string(rc)})")

    def probe(self, timeout: float = PROBE_TIMEOUT, every: float = 0.2) -> bool:
        """Send probes until the echo answers: both it and our subscription may still be
        starting, so no SUBACK is awaited."""
        deadline = time.monotonic() + timeout
        attempt = 0
        while time.monotonic() < deadline:
            self.phase = Phase(f"probe{attempt}", 1)
            self.on_echo = lambda seq: None
            self.send(0)
            if self.pump(lambda: self.phase.received > 0, time.monotonic() + every, idle=1.0):
                return True
            attempt += 1
        return False

    def flood(self, name: str, count: int, window: int, timeout: float) -> tuple[Phase, float]:
        """Keep ``window`` messages unanswered until ``count`` were sent; returns the phase and
        the seconds from the first send to the last echo."""
        self.phase = phase = Phase(name, count)
        sent = 0

        def refill(_seq: int) -> None:
            nonlocal sent
            if sent < count:
                self.send(sent)
                sent += 1

        self.on_echo = refill
        start = time.perf_counter()
        for _ in range(min(window, count)):
            refill(0)
        self.pump(lambda: phase.received >= count, time.monotonic() + timeout, IDLE_TIMEOUT)
        return phase, max(phase.last_echo - start, 1e-9)

    def paced(
        self, name: str, count: int, rate: float, window: int, timeout: float
    ) -> tuple[Phase, float]:
        """Send ``count`` messages one at a time, one every 1/``rate`` s on average (at most
        one per turn of the loop, never more than ``window`` unanswered; a schedule more than
        ``PACE_SLACK`` sends behind is given up rather than made up for): arrivals one by one
        instead of the flood's bursts. Returns the phase and the seconds from the first send
        to the last echo."""
        self.phase = phase = Phase(name, count)
        self.on_echo = lambda seq: None
        gap = 1.0 / rate
        sent = 0
        start = time.perf_counter()
        next_send = start

        def tick() -> float:
            nonlocal sent, next_send
            now = time.perf_counter()
            if sent < count and now >= next_send and sent - phase.received < window:
                self.send(sent)
                sent += 1
                next_send = max(next_send + gap, now - PACE_SLACK * gap)
                now = time.perf_counter()
            return next_send - now if sent < count else 0.05

        self.pump(lambda: phase.received >= count, time.monotonic() + timeout, IDLE_TIMEOUT, tick)
        return phase, max(phase.last_echo - start, 1e-9)

    def ping_pong(self, count: int, timeout: float) -> tuple[Phase, float]:
        self.phase = phase = Phase("p", count)
        self.on_echo = lambda seq: None
        deadline = time.monotonic() + timeout
        start = time.perf_counter()
        for seq in range(count):
            if time.monotonic() >= deadline:
                break
            self.send(seq)

            def echoed(s: int = seq) -> bool:
                return phase.seen[s] == 1

            self.pump(echoed, deadline, PING_TIMEOUT)
        return phase, max(time.perf_counter() - start, 1e-9)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_write()


def round_trip_figures(
    count: int, flood: Phase, elapsed: float, pings: Phase, pp_elapsed: float
) -> dict[str, float]:
    """The figures of a windowed flood and a ping-pong run, shared by the bench scripts."""
    return {
        "msgs_per_s": flood.received / elapsed,
        "load_p50_ms": percentile(flood.rtts, 0.50) * 1e3,
        "load_p99_ms": percentile(flood.rtts, 0.99) * 1e3,
        "pp_p50_ms": percentile(pings.rtts, 0.50) * 1e3,
        "pp_p99_ms": percentile(pings.rtts, 0.99) * 1e3,
        "pp_msgs_per_s": pings.received / pp_elapsed,
        "lost": (count - flood.received) + (pings.count - pings.received),
        "reordered": flood.reordered + pings.reordered,
        "duplicates": flood.duplicates + pings.duplicates,
        "corrupt": flood.corrupt + pings.corrupt,
    }


# -- a bridge on a broker (bench.ble, bench.rf433) ---------------------------------------------

SETTLE = 10.0  # s for a broker connection, a bridge's start, a subscriber's answer
COUNTER = """
import sys
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
count = 0
def on_message(client, userdata, message):
    global count
    count += 1
def on_connect(client, userdata, flags, reason, properties):
    client.subscribe("+/+", 0)
def on_subscribe(client, userdata, mid, reasons, properties):
    print("ready", flush=True)
client = paho.Client(CallbackAPIVersion.VERSION2)
client.on_message, client.on_connect = on_message, on_connect
client.on_subscribe = on_subscribe
client.connect(sys.argv[1], int(sys.argv[2]))
client.loop_start()
for line in sys.stdin:
    print(count, flush=True)
"""


async def wait_for(
    condition: Callable[[], bool], seconds: float, what: str, poll: float = 0.01
) -> None:
    """Until ``condition()``; SystemExit naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {what} did not happen within {seconds:.0f} s")
        await asyncio.sleep(poll)


@contextlib.asynccontextmanager
async def hosted(
    url: str, name: str, side: DeviceSide, period: float, client_id: str
) -> AsyncIterator[Transport]:
    """Bridge ``name``'s device side ``side`` in a ``BridgeHost`` on the broker at ``url``, as
    ``gateway.bridges.run`` runs it; the transport is yielded connected, the host stopped on
    leaving."""
    async with open_transport(parse_broker_url(url), client_id=client_id) as transport:
        async with asyncio.timeout(SETTLE):
            await transport.wait_connected()
        host = BridgeHost(name, transport, period=period)
        task = asyncio.create_task(host.run(side))
        try:
            yield transport
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class CountingSubscriber:
    """Counts, in a process of its own, what bridges publish on ``role/port`` topics."""

    def __init__(self, broker: Mosquitto) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", COUNTER, "127.0.0.1", str(broker.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _line(self, seconds: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], seconds)
        if not ready:
            raise SystemExit("bench: the subscriber does not answer")
        return self.process.stdout.readline().strip()

    def wait_ready(self) -> None:
        if self._line(SETTLE) != "ready":
            raise SystemExit("bench: the subscriber did not subscribe")

    def count(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write("?\n")
        self.process.stdin.flush()
        return int(self._line(SETTLE))

    async def wait_count(self, expected: int, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        found = self.count()
        while found < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            found = self.count()
        return found

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process.stdout.close()
