"""The MQTT client decision: CPU per forwarded message and RSS of the coordinator's forwarding
path on paho-mqtt 2.x, gmqtt and the project's own client, with our real coordinator for context.

    .venv/bin/python -m bench.mqtt_clients                # 20,000 messages, 3 runs
    .venv/bin/python -m bench.mqtt_clients --quick        # smoke run (2,000 messages, 1 run)
    .venv/bin/python -m bench.mqtt_clients --ours-commit HEAD --json out.json

Each forwarder runs in its own process and does what the coordinator does for one edge: an
MQTT 5 connection that subscribes to topic A with ``no_local`` and publishes every message it
receives on A, unchanged, to topic B at QoS 0:

* ``paho``: paho-mqtt 2.x, ``on_message`` publishes, ``loop_forever`` (Nagle off, as the others);
* ``gmqtt``: gmqtt (asyncio), ``on_message`` publishes;
* ``own``: the project's client, ``gateway.transport.open_transport(parse_broker_url(url))``;
  with ``--ours-commit`` of a revision before issue 14, where that returned the paho-based
  transport, that revision's ``gateway.transport.mqtt5_fast.FastMqttTransport`` instead (the
  figures name the class);
* ``coordinator``: our coordinator process (``.venv/bin/msgflo --graph G --broker URL``, started
  as ``bench.coordinator`` starts it, graph ``src OUT -> IN dst``, participants simulated by the
  load generator): the same path plus everything the coordinator does around it.

The load generator (``bench.common.LoadGen``, single-threaded paho, in this process) sends
``--count`` compact JSON messages of about 80 bytes to A, at most ``--window`` unanswered, and
counts their arrivals on B, after 1,000 warm-up messages. Measured per message, over the
``--count`` messages: the forwarder's CPU time (utime + stime from ``/proc``, 10 ms ticks) and
the broker's; the forwarder's RSS (VmRSS) and peak (VmHWM) after them; msg/s (bounded by the
whole machine: broker, load generator and forwarder share 2 cores). Lost, reordered and altered
messages (byte for byte) are counted. The clients alternate (the order is reversed every run)
over ``--runs``; the table shows medians, each figure's ratio to the best of the three clients,
and which clients are within 1.5x of the best CPU per message.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    cpu_per_message,
    cpu_seconds,
    markdown_table,
    median,
    mqtt_machine,
    page_faults,
    private_broker,
    proc_status,
    run_seconds,
    stop_process,
)
from bench.coordinator import (
    FORWARD_GRAPH,
    READY_TIMEOUT,
    WARMUP,
    Coordinator,
    HopLoad,
    Settings,
    forwarding_announcements,
    ours_checkout,
)
from bench.forwarders import START_TIMEOUT

CLIENTS = ("paho", "gmqtt", "own")
KINDS = (*CLIENTS, "floor", "floorbuf", "coordinator")
LABEL = {
    "paho": "paho-mqtt 2.x",
    "gmqtt": "gmqtt",
    "own": "own client",
    "floor": "asyncio floor (reference)",
    "floorbuf": "asyncio floor, buffered (reference)",
    "coordinator": "our coordinator (msgflo)",
}
WITHIN = 1.5  # a client within this factor of the best CPU per message is a candidate


# -- the orchestrator --------------------------------------------------------------------------


@dataclass
class Bench:
    count: int
    runs: int
    window: int
    timeout: float
    kinds: tuple[str, ...]
    rate: float = 0.0  # > 0: messages sent one at a time at this rate instead of the flood
    ours_src: str = ""  # gateway/ at --ours-commit, first on the forwarders' PYTHONPATH


class Forwarder:
    """One forwarder process; ``ready()`` waits for its "ready CLASS" line."""

    def __init__(self, bench: Bench, kind: str, url: str, topic_a: str, topic_b: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cwd = ROOT
        if bench.ours_src:  # gateway/ from the working directory, bench/ from the path
            cwd, env["PYTHONPATH"] = Path(bench.ours_src), str(ROOT)
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "bench.forwarders", kind, url, topic_a, topic_b]
        self.process = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=self.errors, text=True
        )
        self.client_class = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready(self) -> bool:
        stdout = self.process.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], START_TIMEOUT)
        line = stdout.readline() if readable else ""
        if not line.startswith("ready"):
            return False
        self.client_class = line.split(maxsplit=1)[1].strip()
        return True

    def output(self) -> str:
        self.errors.seek(0)
        return self.errors.read()[-1500:]

    def stop(self) -> None:
        try:
            stop_process(self.process)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.errors.close()


def coordinator_settings(bench: Bench) -> Settings:
    """``bench.coordinator``'s settings, for its ``Coordinator`` (one forwarding edge)."""
    return Settings(
        count=bench.count,
        runs=bench.runs,
        window=bench.window,
        pings=0,
        warmup=WARMUP,
        timeout=bench.timeout,
        participants=2,
        idle=1.0,
        scale_timeout=60.0,
        ours_src=bench.ours_src,
    )


def measure(bench: Bench, broker: tuple[str, int], kind: str, run_no: int) -> dict[str, Any]:
    """Start the forwarder, send the warm-up and the measured messages through it, stop it."""
    url, broker_pid = broker
    topic_a, topic_b = f"bench/clients/r{run_no}/{kind}/a", f"bench/clients/r{run_no}/{kind}/b"
    head: dict[str, Any] = {"kind": kind, "run": run_no}
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as tmp:
        forwarder: Forwarder | Coordinator
        if kind == "coordinator":
            graph = Path(tmp) / "forward.fbp"
            graph.write_text(FORWARD_GRAPH)
            settings = coordinator_settings(bench)
            forwarder = Coordinator("ours", graph, url, settings, f"clients-r{run_no}")
            head["class"] = "msgflo"
        else:
            forwarder = Forwarder(bench, kind, url, topic_a, topic_b)
        try:
            if isinstance(forwarder, Forwarder) and not forwarder.ready():
                return {**head, "error": f"not ready: {forwarder.output()!r}"}
            if isinstance(forwarder, Forwarder):
                head["class"] = forwarder.client_class
            load = HopLoad(url, topic_a, topic_b)
            try:
                if isinstance(forwarder, Coordinator):
                    announced = forwarding_announcements(topic_a, topic_b)
                    came = load.wait_forwarding(announced, forwarder.alive)
                else:
                    came = load.probe(READY_TIMEOUT)
                if not came:
                    return {**head, "error": f"no probe came through: {forwarder.output()!r}"}
                return {**head, **figures(bench, load, forwarder.pid, broker_pid)}
            finally:
                load.close()
        finally:
            forwarder.stop()


def figures(bench: Bench, load: HopLoad, pid: int, broker_pid: int) -> dict[str, Any]:
    load.flood("w", WARMUP, bench.window, bench.timeout)
    before = [cpu_seconds(pid), cpu_seconds(broker_pid), run_seconds(pid), page_faults(pid)]
    if bench.rate:
        flood, elapsed = load.paced("t", bench.count, bench.rate, bench.window, bench.timeout)
    else:
        flood, elapsed = load.flood("t", bench.count, bench.window, bench.timeout)
    after = [cpu_seconds(pid), cpu_seconds(broker_pid), run_seconds(pid), page_faults(pid)]
    cpu, broker_cpu, run, faults = cpu_per_message(before, after, flood.received)
    return {
        "cpu_us": cpu,
        "run_us": run,
        "faults": faults / 1e6,
        "broker_cpu_us": broker_cpu,
        "rss_mb": proc_status(pid, "VmRSS"),
        "hwm_mb": proc_status(pid, "VmHWM"),
        "msgs_per_s": flood.received / elapsed,
        "lost": bench.count - flood.received,
        "reordered": flood.reordered,
        "corrupt": flood.corrupt + flood.duplicates,
    }


def run_all(bench: Bench) -> list[dict[str, Any]]:
    results = []
    with private_broker() as broker:  # set_tcp_nodelay, as every client here
        where = (broker.url, broker.pid or 0)
        for run_no in range(bench.runs):
            order = bench.kinds if run_no % 2 == 0 else bench.kinds[::-1]
            for kind in order:
                result = measure(bench, where, kind, run_no)
                results.append(result)
                print(progress_line(result), file=sys.stderr, flush=True)
    return results


def progress_line(r: dict[str, Any]) -> str:
    head = f"  run {r['run']} {LABEL[r['kind']]:<25}"
    if "error" in r:
        return f"{head} ERROR {r['error']}"
    return (
        f"{head} {r['cpu_us']:6.1f} us/msg (scheduler {r['run_us']:.1f}, "
        f"{r['faults']:.2f} page faults)  "
        f"RSS {r['rss_mb']:5.1f} MB  "
        f"{r['msgs_per_s']:7.0f} msg/s  broker {r['broker_cpu_us']:.1f} us/msg  "
        f"lost {r['lost']}  ({r['class']})"
    )


# -- summary -----------------------------------------------------------------------------------

FIGURES = ("cpu_us", "run_us", "faults", "broker_cpu_us", "rss_mb", "hwm_mb", "msgs_per_s")
COUNTS = ("lost", "reordered", "corrupt")


def summarize(results: list[dict[str, Any]], kinds: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for kind in kinds:
        mine = [r for r in results if r["kind"] == kind and "error" not in r]
        row: dict[str, Any] = {"kind": kind, "runs": len(mine)}
        row["class"] = mine[0]["class"] if mine else "-"
        row["errors"] = sum(1 for r in results if r["kind"] == kind and "error" in r)
        for key in FIGURES:
            row[key] = median([r[key] for r in mine])
        row["cpu_runs"] = [r["cpu_us"] for r in mine]
        for key in COUNTS:
            row[key] = sum(r[key] for r in mine)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]], bench: Bench) -> str:
    clients = [r for r in rows if r["kind"] in CLIENTS and r["runs"]]
    best_cpu = min((r["cpu_us"] for r in clients), default=float("nan"))
    best_rss = min((r["rss_mb"] for r in clients), default=float("nan"))
    head = [
        "forwarder",
        "class",
        "CPU us/msg",
        "x best",
        "CPU per run",
        "scheduler us/msg",
        "page faults/msg",
        "RSS MB (peak)",
        "x best",
        "msg/s",
        "broker CPU us/msg",
        "lost / reordered / altered",
    ]
    table = []
    for r in rows:
        runs = ", ".join(f"{x:.1f}" for x in r["cpu_runs"])
        table.append(
            [
                LABEL[r["kind"]],
                f"`{r['class']}`",
                f"{r['cpu_us']:.1f}",
                f"{r['cpu_us'] / best_cpu:.2f}",
                runs,
                f"{r['run_us']:.1f}",
                f"{r['faults']:.2f}",
                f"{r['rss_mb']:.1f} ({r['hwm_mb']:.1f})",
                f"{r['rss_mb'] / best_rss:.2f}",
                f"{r['msgs_per_s']:,.0f}",
                f"{r['broker_cpu_us']:.1f}",
                f"{r['lost']} / {r['reordered']} / {r['corrupt']}",
            ]
        )
    within = [LABEL[r["kind"]] for r in clients if r["cpu_us"] <= WITHIN * best_cpu]
    best = min(clients, key=lambda r: r["cpu_us"], default=None)
    lines = [markdown_table(head, table), ""]
    if best is not None:
        lines.append(
            f"Best CPU per forwarded message: {LABEL[best['kind']]} ({best_cpu:.1f} us); within "
            f"{WITHIN}x of it: {', '.join(within)}."
        )
    lines += [
        "",
        f"{bench.count} compact JSON messages of 80 bytes, A -> forwarder -> B at QoS 0, "
        + (
            f"sent one at a time at {bench.rate:,.0f} msg/s (at most {bench.window} unanswered)"
            if bench.rate
            else f"at most {bench.window} unanswered"
        )
        + f", after {WARMUP} warm-up messages; medians over {bench.runs} run(s), forwarders "
        "alternating; asyncio floor: a bare asyncio.Protocol that only re-frames each PUBLISH "
        "(no client features), for reference; buffered: the same as a BufferedProtocol reading "
        "into one reused buffer;",
        "CPU: the forwarder's utime + stime (/proc, 10 ms ticks) over the measured messages; RSS "
        "(VmRSS, peak VmHWM) after them; x best: ratio to the best of the three clients; lost, "
        "reordered, altered: totals over the runs.",
    ]
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[Bench, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mqtt_clients",
        description="CPU per forwarded message and RSS: paho-mqtt, gmqtt, our client, msgflo.",
    )
    parser.add_argument("--count", type=int, default=20_000, help="messages per measurement")
    parser.add_argument("--runs", type=int, default=3, help="alternating repetitions")
    parser.add_argument("--window", type=int, default=200, help="max unanswered messages")
    parser.add_argument("--timeout", type=float, default=120.0, help="s per flood at most")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="send one message at a time at this rate (msg/s) instead of the windowed flood",
    )
    parser.add_argument("--only", action="append", choices=KINDS, help="measure these only")
    parser.add_argument(
        "--ours-commit",
        metavar="REV",
        help="the own client and the coordinator from gateway/ as committed in REV",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2000 messages, 1 run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.runs = 2000, 1
    if args.count < 1 or args.runs < 1 or not 1 <= args.window <= 500:
        parser.error("--count and --runs must be >= 1, --window 1..500")
    kinds = tuple(k for k in KINDS if not args.only or k in args.only)
    return Bench(args.count, args.runs, args.window, args.timeout, kinds, args.rate), args


def main(argv: Sequence[str]) -> int:
    bench, args = parse_args(argv)
    with ours_checkout(args.ours_commit) as (bench.ours_src, source):
        print(
            f"MQTT clients: {', '.join(bench.kinds)} ({source}); {bench.count} messages, "
            f"{bench.runs} run(s), window {bench.window}"
            + (f", paced at {bench.rate:.0f} msg/s" if bench.rate else ""),
            file=sys.stderr,
        )
        started = time.monotonic()
        results = run_all(bench)
    rows = summarize(results, bench.kinds)
    host = {**mqtt_machine(), "gmqtt": gmqtt_version(), "ours": source}
    print()
    print(", ".join(f"{k} {v}" for k, v in host.items()))
    print(f"command: {Path(sys.executable).name} -m bench.mqtt_clients {' '.join(argv)}".rstrip())
    print(f"({time.monotonic() - started:.0f} s)\n")
    print(format_table(rows, bench))
    if args.json is not None:
        document = {"machine": host, "settings": asdict(bench), "rows": rows, "runs": results}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any("error" in r for r in results) else 0


def gmqtt_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gmqtt")
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
