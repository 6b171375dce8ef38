#!/usr/bin/env python3
"""Participants on AMQP (issue 8): throughput against a raw client and msgflo-nodejs, and scale-out.

One run starts one private RabbitMQ on 127.0.0.1 (tests/amqp_broker.py) and measures:

1. **Echo** (the queue names of a role ``bench``: ``bench.IN`` -> ``bench.OUT``, the objects
   msgflo-nodejs declares), each echo in its own process, one after the other, twice (AB BA):
   - ``ours``: a Repeat participant of this library on ``amqp://`` (ack after process);
   - ``persistent``: the same with its outport ``"options": {"persistent": true}`` (delivery
     mode 2: RabbitMQ writes each answer to disk before it counts as routed);
   - ``raw``: the baseline, a bare aio-pika consumer that publishes each body to the outport
     exchange and acks it, with the same prefetch (2);
   - ``nodejs``: the Repeat example of msgflo-nodejs 0.11.1 under its own command (amqplib 0.5).
   A load generator (aio-pika, in this process) floods ``--count`` messages of about 80 bytes
   with at most ``--window`` unanswered and times first send to last answer (messages/s), then
   sends ``--pings`` messages one at a time (round trip p50).
2. **Scale-out**: a CPU-bound worker role (each job spins ``--job-ms`` of CPU, then answers) with
   1, 2 and 4 participants consuming one queue: jobs/s for ``--jobs`` jobs, and the speed-up
   over one worker (the machine's core count bounds it).

Figures are medians over the runs; the ratios to the baseline are the figures to read (the
machine is small and shared). No figure is asserted; see bench/RESULTS.md.

    .venv/bin/python -m bench.amqp [--count 5000] [--window 50] [--pings 300] [--jobs 400]
    .venv/bin/python -m bench.amqp --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aio_pika

from bench.common import ROOT as REPO
from tests.support.amqp_broker import RabbitMQ

NODE_MODULES = REPO / "tests" / "npm" / "node_modules"
ROLE = "bench"
PREFETCH = 2

# -- the echoes and workers, each run as `python -m bench.amqp --serve KIND URL` -------------


def serve_ours(url: str, kind: str, job_ms: float) -> None:
    from gateway.participant import Message, Participant, run

    class Echo(Participant):
        def __init__(self) -> None:
            role = "work" if kind == "work" else ROLE
            # "persistent": the outport option that sends with delivery mode 2.
            options = {"persistent": True} if kind == "persistent" else {}
            super().__init__(
                {
                    "component": "BenchEcho",
                    "inports": [{"id": "in", "queue": f"{role}.IN"}],
                    "outports": [{"id": "out", "queue": f"{role}.OUT", "options": options}],
                },
                role,
            )

        def process(self, inport: str, msg: Message) -> None:
            if kind == "work":  # a CPU-bound job: the scale-out measurement
                end = time.process_time() + job_ms / 1000
                while time.process_time() < end:
                    pass
            self.send("out", msg.buffer)
            self.ack(msg)

    run(Echo(), url)


async def serve_raw(url: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        out = await channel.declare_exchange(
            f"{ROLE}.OUT", aio_pika.ExchangeType.FANOUT, durable=True
        )
        queue = await declare_inport(channel, f"{ROLE}.IN")
        async with queue.iterator() as messages:
            async for message in messages:
                await out.publish(aio_pika.Message(message.body), routing_key="")
                await message.ack()


async def declare_inport(
    channel: aio_pika.abc.AbstractChannel, name: str
) -> aio_pika.abc.AbstractQueue:
    """An inport as msgflo-nodejs declares it: queue with dead-lettering + same-named exchange."""
    queue = await channel.declare_queue(
        name, durable=True, arguments={"x-dead-letter-exchange": f"dead-{name}"}
    )
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)
    await queue.bind(exchange)
    return queue


def echo_process(kind: str, url: str, job_ms: float = 0) -> subprocess.Popen[bytes]:
    if kind == "nodejs":
        argv = [
            "node",
            str(NODE_MODULES / "msgflo-nodejs" / "bin" / "msgflo-nodejs"),
            "--name", ROLE, "--broker", url,
            str(NODE_MODULES / "msgflo-nodejs" / "examples" / "Repeat.coffee"),
        ]  # fmt: skip
    else:
        argv = [sys.executable, "-m", "bench.amqp", "--serve", kind, url, "--job-ms", str(job_ms)]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- the load generator -------------------------------------------------------------------------


class Load:
    def __init__(self, channel: aio_pika.abc.AbstractChannel, role: str) -> None:
        self.channel = channel
        self.role = role
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    async def start(self) -> None:
        inport = await declare_inport(self.channel, f"{self.role}.IN")
        await inport.purge()
        self.inport = await self.channel.get_exchange(f"{self.role}.IN")
        out = await self.channel.declare_exchange(
            f"{self.role}.OUT", aio_pika.ExchangeType.FANOUT, durable=True
        )
        # Durable, so that persistent answers are written to disk as they would be in a
        # participant's inport queue (the same for every kind: transient ones are not).
        answers = await self.channel.declare_queue(
            f"{self.role}.bench-answers", durable=True, auto_delete=True
        )
        await answers.purge()
        await answers.bind(out)
        await answers.consume(self._answer, no_ack=True)

    async def _answer(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.answers.put_nowait(message.body)

    async def send(self, seq: int) -> None:
        body = json.dumps({"seq": seq, "sent": time.perf_counter(), "pad": "x" * 40}).encode()
        await self.inport.publish(aio_pika.Message(body), routing_key="")

    async def warm_up(self, limit: float = 60) -> None:
        """Until the echo answers (it may still be starting and announcing)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            await self.send(-1)
            try:
                async with asyncio.timeout(1):
                    await self.answers.get()
                await asyncio.sleep(0.2)
                while not self.answers.empty():
                    self.answers.get_nowait()
                return
            except TimeoutError:
                continue
        raise RuntimeError(f"{self.role}: no echo within {limit:.0f} s")

    async def flood(self, count: int, window: int, limit: float = 120) -> float:
        start = time.perf_counter()
        sent = received = 0
        async with asyncio.timeout(limit):
            while received < count:
                while sent < count and sent - received < window:
                    await self.send(sent)
                    sent += 1
                await self.answers.get()
                received += 1
        return count / (time.perf_counter() - start)

    async def pings(self, count: int, limit: float = 60) -> float:
        rtts = []
        async with asyncio.timeout(limit):
            for seq in range(count):
                start = time.perf_counter()
                await self.send(seq)
                await self.answers.get()
                rtts.append(time.perf_counter() - start)
        return statistics.median(rtts) * 1000


async def measure_echo(url: str, kind: str, args: argparse.Namespace) -> tuple[float, float]:
    process = echo_process(kind, url)
    try:
        connection = await aio_pika.connect(url)
        async with connection:
            load = Load(await connection.channel(), ROLE)
            await load.start()
            await load.warm_up()
            rate = await load.flood(args.count, args.window)
            p50 = await load.pings(args.pings)
    finally:
        process.terminate()
        process.wait(10)
    return rate, p50


async def measure_scale(url: str, workers: int, args: argparse.Namespace) -> float:
    processes = [echo_process("work", url, args.job_ms) for _ in range(workers)]
    try:
        connection = await aio_pika.connect(url)
        async with connection:
            load = Load(await connection.channel(), "work")
            await load.start()
            await load.warm_up()
            await asyncio.sleep(2)  # every worker connected and consuming
            return await load.flood(args.jobs, window=4 * PREFETCH * workers, limit=300)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


async def bench(args: argparse.Namespace) -> dict[str, object]:
    kinds = ["ours", "persistent", "raw"]
    kinds += ["nodejs"] if (NODE_MODULES / "amqplib").is_dir() else []
    echo: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with RabbitMQ() as broker:
        for run in range(args.runs):
            for kind in kinds if run % 2 == 0 else list(reversed(kinds)):
                echo[kind].append(await measure_echo(broker.url, kind, args))
                rate, p50 = echo[kind][-1]
                print(
                    f"  run {run + 1} {kind:>10}: {rate:8.0f} msg/s   ping p50 {p50:6.2f} ms",
                    flush=True,
                )
        scale = {n: await measure_scale(broker.url, n, args) for n in (1, 2, 4)}
    medians = {
        k: (statistics.median(r for r, _ in v), statistics.median(p for _, p in v))
        for k, v in echo.items()
    }
    print("\necho (median)              msg/s   vs raw   ping p50 ms")
    for kind, (rate, p50) in medians.items():
        print(f"  {kind:>10}     {rate:10.0f}   {rate / medians['raw'][0]:5.2f}x   {p50:8.2f}")
    print(f"\nscale-out: CPU-bound jobs of {args.job_ms:g} ms on {os.cpu_count()} cores")
    for n, rate in scale.items():
        print(f"  {n} worker{'s' if n > 1 else ' '}   {rate:8.1f} jobs/s   {rate / scale[1]:5.2f}x")
    return {"echo": medians, "scale": scale, "args": vars(args)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--serve", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--pings", type=int, default=300)
    p.add_argument("--jobs", type=int, default=400)
    p.add_argument("--job-ms", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.serve:
        kind, url = args.serve
        if kind == "raw":
            asyncio.run(serve_raw(url))
        else:
            serve_ours(url, kind, args.job_ms)
        return 0
    if args.quick:
        args.count, args.pings, args.jobs, args.runs = 500, 50, 100, 1
    result = asyncio.run(bench(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
