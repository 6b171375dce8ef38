"""Participant throughput and latency: our Repeat participant against a raw paho-mqtt echo.

    .venv/bin/python -m bench.participant               # 20,000 messages, QoS 0 and 1, 3 runs
    .venv/bin/python -m bench.participant --quick       # smoke run (2,000 messages, 1 run)
    .venv/bin/python -m bench.participant --json out.json

One run starts one private mosquitto on 127.0.0.1 and, for every measurement, two processes:

* the echo under test: either ``sut`` (a Repeat participant from this library, the same class as
  ``examples/repeat.py`` with its ports at the measured QoS, run by ``gateway.participant.run``)
  or ``raw`` (the baseline: a bare paho-mqtt 2.x client whose ``on_message`` publishes the
  payload to the out topic, driven by ``loop_forever``);
* a load generator (plain paho, single thread, no network thread) that measures
  1. flood: ``count`` JSON messages of about 80 bytes (sequence number, send timestamp), at most
     ``window`` of them unanswered at any time, as fast as the echo returns them: messages/s from
     the first send to the last echo, and the round-trip times under that load;
  2. ping-pong: ``pings`` messages one at a time: round-trip p50/p99 of an idle path.
  It counts messages not echoed before the phase's deadline (lost), echoes arriving after a
  later sequence number (reordered), duplicates and payloads that differ from what was sent, and
  reads the CPU time the echo process and the broker spent (``/proc``) per message.

Nothing may be dropped on the way, so the window (default 200, at most 500) stays below every
queue limit: mosquitto 2.0 drops QoS 0 messages for a subscriber with more than
``max_queued_messages`` packets waiting (default 1000; the private broker sets 100000) and holds
QoS 1 messages beyond ``max_inflight_messages`` (20) in that queue; paho keeps QoS 1 messages
beyond its 20 in flight in an unbounded queue (the gateway transport: 10000); the participant's
inbox pauses reading at 1000 messages.

Nagle's algorithm is off everywhere: paho 2.2 leaves it on and mosquitto does unless
``set_tcp_nodelay`` is set, and then every QoS 1 echo waits ~40 ms for a delayed ACK. The private
broker here sets it, the load generator and the raw echo set TCP_NODELAY on their sockets, and the
gateway transport does it itself, so the comparison is of the clients' own work.

SUT and baseline alternate (the order is swapped every run: AB BA AB ...) and each figure is the
median over ``--runs``; the SUT/baseline ratios are the medians of the paired runs. The machine is
shared and small, so read the ratios and the CPU per message, not the absolute numbers.
Every loop is bounded: each phase has a deadline and an idle timeout. ``--profile DIR`` runs the
participant under cProfile and writes one pstats file per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import (
    PROBE_TIMEOUT,
    ROOT,
    LoadGen,
    cpu_per_message,
    cpu_seconds,
    mqtt_machine,
    nodelay,
    own_cpu_seconds,
    private_broker,
    round_trip_figures,
    stop_process,
)
from gateway.participant import Message, Participant, run

PATHS = ("sut", "raw")
PATH_LABEL = {"sut": "gateway Repeat", "raw": "raw paho echo"}
GOAL = 0.8  # issue 2: at least 0.8x the raw paho echo's throughput
READY_TIMEOUT = PROBE_TIMEOUT  # s for the echo process to answer a probe
CHILD_TIMEOUT_MARGIN = 60.0  # s on top of the phase deadlines before a child is killed
PROFILE_ENV = "MSGFLO_BENCH_PROFILE"  # set for the SUT child by --profile: pstats file to write


# -- the processes under test ------------------------------------------------------------------


class BenchRepeat(Participant):
    """``examples/repeat.py``'s Repeat, with explicit queues and the QoS being measured."""

    def __init__(self, role: str, topic_in: str, topic_out: str, qos: int) -> None:
        definition = {
            "component": "PythonRepeat",
            "label": "Repeat input data without change",
            "inports": [{"id": "in", "type": "any", "queue": topic_in, "qos": qos}],
            "outports": [{"id": "out", "type": "any", "queue": topic_out, "qos": qos}],
        }
        super().__init__(definition, role)

    def process(self, inport: str, msg: Message) -> None:  # as examples/repeat.py
        self.send("out", msg.data)
        self.ack(msg)


def child_sut(url: str, topic_in: str, topic_out: str, qos: int) -> None:
    participant = BenchRepeat("bench-repeat", topic_in, topic_out, qos)
    profile = os.environ.get(PROFILE_ENV)
    if not profile:
        run(participant, url)
        return
    import cProfile  # --profile: the whole life of the process, written when it is stopped

    profiler = cProfile.Profile()
    profiler.runcall(run, participant, url)
    profiler.dump_stats(profile)


def child_raw(url: str, topic_in: str, topic_out: str, qos: int) -> None:
    """The baseline: the smallest correct paho-mqtt 2.x echo."""
    parts = urlsplit(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)

    def on_connect(c: paho.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        nodelay(c.socket())  # paho 2.2 leaves Nagle on; the gateway transport turns it off
        c.subscribe(topic_in, qos)

    def on_message(c: paho.Client, u: Any, message: paho.MQTTMessage) -> None:
        c.publish(topic_out, message.payload, qos)

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    signal.signal(signal.SIGTERM, lambda *_: client.disconnect())
    client.loop_forever()


# -- the load generator ------------------------------------------------------------------------


def child_load(config: dict[str, Any]) -> None:
    """Measure one echo path; prints one JSON line with the figures."""
    load = LoadGen(config["url"], config["topic_in"], config["topic_out"], config["qos"])
    if not load.probe():
        print(json.dumps({"error": f"no echo within {READY_TIMEOUT:.0f} s"}), flush=True)
        return
    count, window, timeout = config["count"], config["window"], config["timeout"]
    load.flood("w", config["warmup"], window, timeout)
    pids = (config["echo_pid"], config["broker_pid"])
    cpu_before = [cpu_seconds(pid) for pid in pids] + [own_cpu_seconds()]
    flood, elapsed = load.flood("t", count, window, timeout)
    cpu_after = [cpu_seconds(pid) for pid in pids] + [own_cpu_seconds()]
    pings, pp_elapsed = load.ping_pong(config["pings"], timeout)
    load.close()
    per_msg = cpu_per_message(cpu_before, cpu_after, flood.received)
    result = {
        **round_trip_figures(count, flood, elapsed, pings, pp_elapsed),
        "echo_cpu_us": per_msg[0],
        "broker_cpu_us": per_msg[1],
        "load_cpu_us": per_msg[2],
        "elapsed_s": elapsed,
    }
    print(json.dumps(result), flush=True)


# -- the orchestrator --------------------------------------------------------------------------


@dataclass
class Settings:
    count: int
    qos: list[int]
    runs: int
    window: int
    pings: int
    warmup: int
    timeout: float
    profile: str = ""


def spawn(mode: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.participant", mode, *args]
    return subprocess.Popen(cmd, text=True, cwd=ROOT, **kwargs)


def measure(
    settings: Settings, broker: tuple[str, int], path: str, qos: int, run_no: int
) -> dict[str, Any]:
    """One measurement of ``path`` at ``qos``: start its echo, run the load generator, stop."""
    url, broker_pid = broker
    topic = f"bench/{path}-r{run_no}-q{qos}"
    topic_in, topic_out = f"{topic}/in", f"{topic}/out"
    with tempfile.TemporaryFile("w+") as errors:
        env = dict(os.environ)
        if settings.profile and path == "sut":
            env[PROFILE_ENV] = str(Path(settings.profile) / f"sut-q{qos}-r{run_no}.pstats")
        echo = spawn(f"_{path}", url, topic_in, topic_out, str(qos), stderr=errors, env=env)
        try:
            config = {
                **asdict(settings),
                "url": url,
                "topic_in": topic_in,
                "topic_out": topic_out,
                "qos": qos,
                "echo_pid": echo.pid,
                "broker_pid": broker_pid,
            }
            load = spawn("_load", json.dumps(config), stdout=subprocess.PIPE)
            limit = 2 * settings.timeout + READY_TIMEOUT + CHILD_TIMEOUT_MARGIN
            try:
                out, _ = load.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                load.kill()
                out, _ = load.communicate()
                out = json.dumps({"error": f"load generator killed after {limit:.0f} s"})
        finally:
            stop_process(echo)
        errors.seek(0)
        stderr = errors.read().strip()
    lines = out.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": "no output"}
    if stderr:
        result["echo_stderr"] = stderr[-2000:]
    return {"path": path, "qos": qos, "run": run_no, **result}


def run_all(settings: Settings) -> tuple[list[dict[str, Any]], dict[str, str]]:
    results: list[dict[str, Any]] = []
    with private_broker() as broker:  # sets set_tcp_nodelay (see gateway/mosquitto.py)
        where = (broker.url, broker.pid or 0)
        for run_no in range(settings.runs):
            order = PATHS if run_no % 2 == 0 else PATHS[::-1]
            for qos in settings.qos:
                for path in order:
                    result = measure(settings, where, path, qos, run_no)
                    results.append(result)
                    print(progress_line(result), file=sys.stderr, flush=True)
    return results, mqtt_machine()


def progress_line(r: dict[str, Any]) -> str:
    head = f"  run {r['run']} qos {r['qos']} {PATH_LABEL[r['path']]:<15}"
    if "error" in r:
        return f"{head} ERROR {r['error']}"
    return (
        f"{head} {r['msgs_per_s']:8.0f} msg/s  ping p50 {r['pp_p50_ms']:.3f} ms  "
        f"lost {r['lost']}  cpu us/msg: echo {r['echo_cpu_us']:.1f} "
        f"broker {r['broker_cpu_us']:.1f} load generator {r['load_cpu_us']:.1f}"
    )


# -- summary -----------------------------------------------------------------------------------

FIGURES = (
    "msgs_per_s",
    "load_p50_ms",
    "load_p99_ms",
    "pp_p50_ms",
    "pp_p99_ms",
    "pp_msgs_per_s",
    "echo_cpu_us",
    "broker_cpu_us",
    "load_cpu_us",
)
COUNTS = ("lost", "reordered", "duplicates", "corrupt")


def summarize(results: list[dict[str, Any]], qoses: list[int]) -> dict[str, Any]:
    rows, ratios = [], []
    for qos in qoses:
        for path in PATHS:
            all_runs = [r for r in results if r["path"] == path and r["qos"] == qos]
            mine = [r for r in all_runs if "error" not in r]
            errors = len(all_runs) - len(mine)
            row: dict[str, Any] = {"path": path, "qos": qos, "runs": len(mine), "errors": errors}
            for key in FIGURES:
                row[key] = statistics.median(r[key] for r in mine) if mine else float("nan")
            for key in COUNTS:
                row[key] = sum(r[key] for r in mine)
            rows.append(row)
        ratios.append(paired_ratios(results, qos))
    return {"rows": rows, "ratios": ratios}


def paired_ratios(results: list[dict[str, Any]], qos: int) -> dict[str, Any]:
    """SUT/baseline for each run (same run, adjacent in time), and their median."""
    throughput, cpu = [], []
    for run_no in sorted({r["run"] for r in results}):
        pair = {r["path"]: r for r in results if r["run"] == run_no and r["qos"] == qos}
        if all(p in pair and "error" not in pair[p] for p in PATHS):
            sut, raw = pair["sut"], pair["raw"]
            throughput.append(sut["msgs_per_s"] / raw["msgs_per_s"])
            cpu.append(sut["echo_cpu_us"] / raw["echo_cpu_us"] if raw["echo_cpu_us"] else 0.0)
    return {
        "qos": qos,
        "throughput": statistics.median(throughput) if throughput else float("nan"),
        "throughput_runs": throughput,
        "echo_cpu": statistics.median(cpu) if cpu else float("nan"),
    }


def format_table(summary: dict[str, Any], settings: Settings) -> str:
    head = (
        "| path | qos | msg/s | p50 ms | p99 ms | ping p50 ms | ping p99 ms | ping msg/s | lost "
        "| reordered | echo CPU us/msg | broker CPU us/msg |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for row in summary["rows"]:
        lines.append(
            f"| {PATH_LABEL[row['path']]} | {row['qos']} | {row['msgs_per_s']:,.0f} "
            f"| {row['load_p50_ms']:.2f} | {row['load_p99_ms']:.2f} "
            f"| {row['pp_p50_ms']:.3f} | {row['pp_p99_ms']:.3f} | {row['pp_msgs_per_s']:,.0f} "
            f"| {row['lost']} "
            f"| {row['reordered']} | {row['echo_cpu_us']:.1f} | {row['broker_cpu_us']:.1f} |"
        )
    lines.append("")
    for ratio in summary["ratios"]:
        runs = ", ".join(f"{x:.2f}" for x in ratio["throughput_runs"])
        verdict = "meets" if ratio["throughput"] >= GOAL else "below"
        lines.append(
            f"QoS {ratio['qos']}: gateway/raw throughput {ratio['throughput']:.2f}x "
            f"(runs: {runs}; goal >= {GOAL}x: {verdict}); "
            f"echo CPU per message {ratio['echo_cpu']:.2f}x the raw echo's"
        )
    lines += [
        "",
        f"msg/s, p50, p99: flood of {settings.count} messages, at most {settings.window} "
        "unanswered (round trip under load);",
        f"ping p50/p99: {settings.pings} messages one at a time (idle round trip);",
        f"medians over {settings.runs} run(s), SUT and baseline alternating; lost, reordered: "
        "totals over all runs; CPU from /proc during the flood (10 ms ticks).",
        "Broker: private mosquitto with set_tcp_nodelay; every client sets TCP_NODELAY "
        "(the gateway transport does it itself).",
    ]
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[Settings, Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.participant",
        description="Throughput and latency of a Repeat participant vs a raw paho-mqtt echo.",
    )
    parser.add_argument("--count", type=int, default=20_000, help="messages per flood")
    parser.add_argument("--qos", default="0,1", help="QoS levels to measure, e.g. 0,1")
    parser.add_argument("--runs", type=int, default=3, help="alternating repetitions")
    parser.add_argument("--window", type=int, default=200, help="max unanswered messages")
    parser.add_argument("--pings", type=int, default=2000, help="ping-pong messages")
    parser.add_argument("--timeout", type=float, default=120.0, help="s per phase at most")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2000 messages, 1 run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the gateway participant under cProfile, write DIR/sut-qQOS-rRUN.pstats "
        "(its figures are then not comparable)",
    )
    args = parser.parse_args(argv)
    qos = sorted({int(q) for q in args.qos.split(",") if q.strip()})
    if not qos or any(q not in (0, 1) for q in qos):
        parser.error("--qos takes 0, 1 or 0,1")
    if args.quick:
        args.count, args.runs, args.pings = 2000, 1, 200
    if args.count < 1 or args.runs < 1 or not 1 <= args.window <= 500 or args.pings < 0:
        parser.error("--count and --runs must be >= 1, --window 1..500, --pings >= 0")
    warmup = min(1000, max(args.count // 10, 1))
    profile = ""
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        profile = str(args.profile.resolve())
    settings = Settings(
        args.count, qos, args.runs, args.window, args.pings, warmup, args.timeout, profile
    )
    return settings, args.json


def main(argv: Sequence[str]) -> int:
    settings, json_path = parse_args(argv)
    print(
        f"participant benchmark: {settings.count} messages, QoS {settings.qos}, "
        f"{settings.runs} run(s), window {settings.window}",
        file=sys.stderr,
    )
    results, host = run_all(settings)
    summary = summarize(results, settings.qos)
    print()
    print(", ".join(f"{k} {v}" for k, v in host.items()))
    print(f"command: {Path(sys.executable).name} -m bench.participant {' '.join(argv)}".rstrip())
    print()
    print(format_table(summary, settings))
    if json_path is not None:
        document = {"machine": host, "settings": asdict(settings), **summary, "runs": results}
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    failed = [r for r in results if "error" in r]
    return 1 if failed else 0


def child_main(mode: str, args: list[str]) -> None:
    if mode == "_load":
        child_load(json.loads(args[0]))
        return
    url, topic_in, topic_out, qos = args[0], args[1], args[2], int(args[3])
    (child_sut if mode == "_sut" else child_raw)(url, topic_in, topic_out, qos)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_sut", "_raw", "_load"):
        child_main(sys.argv[1], sys.argv[2:])
    else:
        raise SystemExit(main(sys.argv[1:]))
