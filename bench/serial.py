#!/usr/bin/env python3
"""Serial bridge + simulated device (issue 6 item 6): throughput and round trip of the Echo
firmware on a simulated ATmega328P at 115200 baud, as a fraction of what the wire allows.

Builds the Echo example for an Uno (firmware/extras/build_avr.py) and the simavr harness
(firmware/test/simavr/harness.c), runs the harness in real-time mode (simulated time follows
wall-clock time; the harness reports the ratio when it stops) behind a by-id-style link, starts
a private mosquitto and ``msgflo-serial``, and drives the board's queues directly (no coordinator)
from this process, for each payload size:

- ping: ``--pings`` messages one at a time, each sent when the previous echo arrived: the
  idle round trip, against the wire's minimum of two frame times (host to board, then back);
- flood: ``--count`` messages with at most ``--window`` unanswered, from the first send to the
  last echo: messages/s, against the wire's limit of 11,520 bytes/s per direction (115200 baud,
  8N1: 10 bits a byte) divided by the bytes of one frame;
- the bridge's CPU time (/proc, 10 ms ticks) during the flood, per 1,000 messages.

A message frame of a payload of n bytes is n + 7 bytes on the wire: type, sequence number and
port index (3), CRC (2), the COBS code byte (1, for frames up to 254 bytes) and the 00 delimiter
(1). Pings of the bridge's liveness check (every 5 s) share the wire and are not subtracted.

    .venv/bin/python -m bench.serial [--sizes 8,24,48] [--count 2000] [--window 8] [--json FILE]
    .venv/bin/python -m bench.serial --quick        # smoke run, about 20 s

No figure is asserted; see bench/RESULTS.md for recorded runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import BIN, ROOT, cpu_seconds, percentile
from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.transport import Transport, open_transport
from gateway.transport.base import Delivery

HARNESS = ROOT / "firmware" / "test" / "simavr" / "harness.c"
BUILD_AVR = ROOT / "firmware" / "extras" / "build_avr.py"
LINK = "usb-Arduino__www.arduino.cc__0043_BENCH0001-if00"
ROLE = "bench/echo"
BAUD = 115200
BYTES_PER_SECOND = BAUD / 10  # 8N1
FRAME_OVERHEAD = 7
MAX_PAYLOAD = 55  # an Uno's max_frame of 60


@dataclass
class Result:
    payload: int
    wire_bytes: int
    wire_msgs_per_s: float
    wire_rtt_ms: float
    flood_msgs_per_s: float
    flood_fraction: float
    flood_p50_ms: float
    flood_p99_ms: float
    lost: int
    ping_p50_ms: float
    ping_p99_ms: float
    ping_fraction: float
    bridge_cpu_ms_per_1000: float


def run(command: list[str], timeout: float = 300) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"[-4000:])


def build(directory: Path) -> tuple[Path, Path]:
    harness = directory / "harness"
    command = ["gcc", "-O2", "-I/usr/include/simavr", str(HARNESS), "-o", str(harness)]
    run([*command, "-lsimavr", "-lsimavrparts", "-lutil"])
    run([sys.executable, str(BUILD_AVR), "--build", str(directory / "avr"), "Echo"])
    return harness, directory / "avr" / "Echo" / "Echo.elf"


@contextlib.contextmanager
def process(command: list[str], **kwargs: object) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(command, text=True, **kwargs)  # type: ignore[call-overload]
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)


class Echoes:
    """The board's outport queue: the arrival time of each sequence number."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.event = asyncio.Event()

    def collect(self, delivery: Delivery) -> None:
        with contextlib.suppress(ValueError):
            self.arrived[int(delivery.payload[:8])] = time.perf_counter()
        self.event.set()

    async def wait(self, condition: object, seconds: float) -> bool:
        deadline = time.perf_counter() + seconds
        while not condition():  # type: ignore[operator]
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return False
            self.event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.05)):
                    await self.event.wait()
        return True


def payload_for(seq: int, size: int) -> bytes:
    return f"{seq:08d}".encode().ljust(size, b"x")


async def measure(
    transport: Transport, echoes: Echoes, bridge_pid: int, size: int, args: argparse.Namespace
) -> Result:
    inport = f"{ROLE}/in"
    seq = 0
    # Ping: one at a time.
    rtts = []
    for _ in range(args.pings):
        seq += 1
        sent = time.perf_counter()
        transport.publish(inport, payload_for(seq, size))
        target = seq
        if await echoes.wait(lambda target=target: target in echoes.arrived, 2.0):
            rtts.append((echoes.arrived[target] - sent) * 1000)
    # Flood: at most --window unanswered; one unanswered for 1 s counts as lost.
    first, last = seq + 1, seq + args.count
    sent_at: dict[int, float] = {}
    waiting: list[int] = []  # sent, neither echoed nor given up, in order
    cpu_before = cpu_seconds(bridge_pid)
    start = time.perf_counter()
    next_seq = first
    while next_seq <= last:
        waiting = [s for s in waiting if s not in echoes.arrived]
        if waiting and time.perf_counter() - sent_at[waiting[0]] > 1.0:
            waiting.pop(0)
            continue
        if len(waiting) >= args.window:
            oldest = waiting[0]
            await echoes.wait(lambda oldest=oldest: oldest in echoes.arrived, 0.05)
            continue
        sent_at[next_seq] = time.perf_counter()
        transport.publish(inport, payload_for(next_seq, size))
        waiting.append(next_seq)
        next_seq += 1
    await echoes.wait(lambda: all(s in echoes.arrived for s in range(first, last + 1)), 2.0)
    received = [s for s in range(first, last + 1) if s in echoes.arrived]
    end = max((echoes.arrived[s] for s in received), default=start)
    elapsed = end - start
    cpu = cpu_seconds(bridge_pid) - cpu_before
    flood_rtts = [(echoes.arrived[s] - sent_at[s]) * 1000 for s in received]
    wire_bytes = size + FRAME_OVERHEAD
    wire_rate = BYTES_PER_SECOND / wire_bytes
    wire_rtt = 2 * wire_bytes / BYTES_PER_SECOND * 1000
    rate = len(received) / elapsed if elapsed > 0 else 0.0
    ping_p50 = statistics.median(rtts) if rtts else float("nan")
    return Result(
        payload=size,
        wire_bytes=wire_bytes,
        wire_msgs_per_s=round(wire_rate, 1),
        wire_rtt_ms=round(wire_rtt, 2),
        flood_msgs_per_s=round(rate, 1),
        flood_fraction=round(rate / wire_rate, 3),
        flood_p50_ms=round(percentile(flood_rtts, 0.5), 2),
        flood_p99_ms=round(percentile(flood_rtts, 0.99), 2),
        lost=args.count - len(received),
        ping_p50_ms=round(ping_p50, 2),
        ping_p99_ms=round(percentile(rtts, 0.99), 2),
        ping_fraction=round(wire_rtt / ping_p50, 3) if rtts else 0.0,
        bridge_cpu_ms_per_1000=round(cpu * 1000 / max(1, len(received)) * 1000, 1),
    )


async def bench(args: argparse.Namespace, directory: Path) -> tuple[list[Result], str, float]:
    harness, elf = build(directory)
    devices = directory / "by-id"
    devices.mkdir()
    with (
        Mosquitto() as broker,
        process(
            [str(harness), "--realtime", "--usb-frame-us", str(args.usb_frame_us), str(elf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as board,
    ):
        assert board.stdout is not None and board.stderr is not None
        (devices / LINK).symlink_to(board.stdout.readline().strip())
        bridge_command = [str(BIN / "msgflo-serial"), "--broker", broker.url]
        bridge_command += ["--glob", str(devices / "usb-*"), "--role", f"BENCH0001={ROLE}"]
        env = {**os.environ, "MSGFLO_PYTHON_LOGLEVEL": "WARNING"}
        results = []
        with process(bridge_command, env=env) as bridge:
            async with open_transport(parse_broker_url(broker.url), client_id="bench") as transport:
                async with asyncio.timeout(5):
                    await transport.wait_connected()
                echoes = Echoes()
                await transport.subscribe(f"{ROLE}/out", echoes.collect)
                # Ready when an echo comes back.
                deadline = time.perf_counter() + 15
                while 0 not in echoes.arrived:
                    if time.perf_counter() > deadline:
                        sys.exit("the simulated board did not answer within 15 s")
                    transport.publish(f"{ROLE}/in", payload_for(0, 8))
                    await echoes.wait(lambda: 0 in echoes.arrived, 0.5)
                idle_before = cpu_seconds(bridge.pid)
                await asyncio.sleep(3.0)
                idle = (cpu_seconds(bridge.pid) - idle_before) / 3.0
                print(f"bridge CPU while idle: {100 * idle:.1f} % of a core", flush=True)
                for size in args.sizes:
                    echoes.arrived.clear()
                    result = await measure(transport, echoes, bridge.pid, size, args)
                    print(json.dumps(asdict(result)), flush=True)
                    results.append(result)
        board.terminate()
        board.wait(timeout=5)
        ratio = board.stderr.read().strip().splitlines()
    return results, ratio[-1] if ratio else "", idle


def table(results: list[Result]) -> str:
    lines = [
        "| payload B | wire B/msg | flood msg/s | wire limit msg/s | fraction | flood p50 / p99 ms "
        "| lost | ping p50 / p99 ms | wire RTT ms | fraction | bridge CPU ms / 1000 msg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.payload} | {r.wire_bytes} | {r.flood_msgs_per_s:.0f} | {r.wire_msgs_per_s:.0f} "
            f"| {100 * r.flood_fraction:.0f} % | {r.flood_p50_ms:.1f} / {r.flood_p99_ms:.1f} "
            f"| {r.lost} | {r.ping_p50_ms:.2f} / {r.ping_p99_ms:.2f} | {r.wire_rtt_ms:.2f} "
            f"| {100 * r.ping_fraction:.0f} % | {r.bridge_cpu_ms_per_1000:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,24,48", help="payload sizes in bytes (at most 55)")
    parser.add_argument("--count", type=int, default=2000, help="messages per flood")
    parser.add_argument("--window", type=int, default=8, help="max unanswered messages")
    parser.add_argument("--pings", type=int, default=200, help="one-at-a-time messages")
    parser.add_argument(
        "--usb-frame-us",
        type=int,
        default=1000,
        help="the harness passes the board's bytes on in batches this often (0: byte by byte)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 messages, 50 pings")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if any(not 8 <= s <= MAX_PAYLOAD for s in args.sizes):
        parser.error(f"sizes must be 8..{MAX_PAYLOAD} bytes (an Uno's frame limit)")
    if args.quick:
        args.count, args.pings = 300, 50
    with tempfile.TemporaryDirectory(prefix="msgflo-bench-serial-") as directory:
        results, ratio, idle = asyncio.run(bench(args, Path(directory)))
    print()
    print(
        f"{platform.node()}, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; {BAUD} baud; window {args.window}; "
        f"USB frame {args.usb_frame_us} us; {ratio}; "
        f"bridge CPU while idle {100 * idle:.1f} % of a core"
    )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
