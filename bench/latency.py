"""Latency and CPU per message one message at a time, with the original msgflo as the baseline.

    .venv/bin/python -m bench.latency --ours-commit HEAD     # everything, 3 runs, ~5 min
    .venv/bin/python -m bench.latency --quick                # smoke run, about 1 min
    .venv/bin/python -m bench.latency --parts paced --brokers nodelay --strace   # syscalls

Three parts, each on two private mosquitto 2.0 brokers: ``default`` (mosquitto's defaults, so
Nagle is on for what the broker sends) and ``nodelay`` (``set_tcp_nodelay true``). A paho load
generator (``bench.common.LoadGen``, single-threaded, Nagle off) drives every path; all of it
on 127.0.0.1.

1. ``coordinator``: ping-pong through a graph ``a(Repeat) OUT -> IN b(Repeat)``: the two ends
   are msgflo-nodejs 0.11.1's Repeat example (``msgflo-nodejs --name ROLE Repeat.coffee``, from
   tests/npm), the edge is forwarded by OUR coordinator (``.venv/bin/msgflo --graph G --broker
   URL``) or by the ORIGINAL (node msgflo 0.12.3), alternating, each freshly started with fresh
   participants (which announce every 0.9 s, ``MSGFLO_DISCOVERY_PERIOD=2``). The load generator
   sends to ``a.IN`` and waits for each message on ``b.OUT`` before it sends the next:
   round trip p50/p99, round trips per second, and the CPU time per round trip of the
   coordinator, of the two participants together and of the broker. 1,000 warm-up messages
   (windowed) go first: the original and the participants are JIT-compiled.
2. ``participant``: ping-pong through one Repeat participant, no coordinator: ours
   (``examples/repeat.py``'s ``Repeat`` run by ``gateway.participant.run``, in its own
   process) against msgflo-nodejs's Repeat: p50/p99, rate, the participant's CPU per round trip
   and RSS.
3. ``paced``: the coordinator's CPU time per forwarded message when messages arrive one by one:
   the graph ``src OUT -> IN dst`` with participants simulated by the load generator (as in
   ``bench.coordinator``, so the coordinator is the only hop), ``--count`` messages sent at a
   steady ``--rate`` (one message per send, never a burst, and never more than ``--window``
   unanswered), ours against the original: coordinator CPU per message (the goal: ours at most
   0.5x the original's), its RSS and peak RSS, the broker's CPU per message, the achieved rate,
   the mean number of messages in flight (rate x mean round trip) and the round trips.

Ratios ours/original are medians of the runs' pairs. ``--strace`` attaches ``strace -c -f`` to
each coordinator (and participant) during the measured messages and prints system calls per
message by name (figures of such a run are slowed down by strace: read them for counts only).
``--profile DIR`` runs ours under cProfile (one pstats file per measurement). Every loop is
bounded in count and time and every process started is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    NODE_MODULES,
    ROOT,
    context_switches,
    cpu_per_message,
    cpu_seconds,
    cpu_times,
    markdown_table,
    median,
    mqtt_machine,
    node,
    node_version,
    page_faults,
    percentile,
    private_broker,
    proc_status,
    stop_process,
)
from bench.coordinator import (
    FORWARD_GRAPH,
    WARMUP,
    Coordinator,
    HopLoad,
    Settings,
    forwarding_announcements,
    original_available,
    ours_checkout,
)
from gateway.mosquitto import Mosquitto

PARTS = ("coordinator", "participant", "paced")
BROKERS = ("default", "nodelay")
COORDINATORS = ("ours", "original")
PARTICIPANTS = ("python", "nodejs")
LABEL = {
    "ours": "ours (gateway msgflo)",
    "original": "original (npm msgflo 0.12.3)",
    "python": "ours (examples/repeat.py)",
    "nodejs": "msgflo-nodejs 0.11.1 Repeat",
}
BROKER_LABEL = {"default": "mosquitto defaults", "nodelay": "set_tcp_nodelay true"}
CPU_GOAL = 0.5  # issue 14: ours at most 0.5x the original's CPU per message, paced
NODEJS_BIN = NODE_MODULES / "msgflo-nodejs" / "bin" / "msgflo-nodejs"
NODEJS_REPEAT = NODE_MODULES / "msgflo-nodejs" / "examples" / "Repeat.coffee"
DISCOVERY_PERIOD = "2"  # s: the participants announce every 2 / 2.2 s
READY_TIMEOUT = 60.0  # s for a fresh coordinator and its participants to pass a probe
WARMUP_WINDOW = 50  # unanswered warm-up messages at most
CHILD = "_repeat"  # argv[1] of our Repeat participant's process
STRACE_ATTACH = 0.5  # s given to strace to attach before the measured messages


# -- the processes -----------------------------------------------------------------------------


def repeat_class() -> Any:
    """``Repeat`` from examples/repeat.py (loaded from its file: examples/ is no package, and
    an installed package named ``examples`` would shadow it)."""
    spec = importlib.util.spec_from_file_location("bench_repeat", ROOT / "examples" / "repeat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Repeat


def child_repeat(url: str, role: str) -> None:
    """Our Repeat participant: examples/repeat.py's class, run by gateway.participant.run."""
    from gateway.participant import run

    run(repeat_class()(role), url)


def python_queues(role: str) -> tuple[str, str]:
    ports = repeat_class()(role).definition
    return ports["inports"][0]["queue"], ports["outports"][0]["queue"]


@dataclass
class Bench:
    settings: Settings  # bench.coordinator's, for its Coordinator
    pings: int
    count: int
    rate: float
    window: int
    parts: tuple[str, ...]
    brokers: tuple[str, ...]
    coordinators: tuple[str, ...]
    strace: bool = False
    workdirs: list[Path] = field(default_factory=list)


class Participant:
    """A Repeat participant process: ``nodejs`` (msgflo-nodejs) or ``python`` (ours)."""

    def __init__(self, bench: Bench, kind: str, role: str, url: str, workdir: Path) -> None:
        self.kind = kind
        self.log = (workdir / f"{role}.log").open("w+")
        env = {**os.environ, "MSGFLO_DISCOVERY_PERIOD": DISCOVERY_PERIOD}
        cwd = workdir
        if kind == "nodejs":
            found = node()
            assert found is not None, "checked by original_available()"
            cmd = [found, str(NODEJS_BIN), "--name", role, "--broker", url, str(NODEJS_REPEAT)]
            self.queues = (f"{role}.IN", f"{role}.OUT")
        else:
            cmd = [sys.executable, "-m", "bench.latency", CHILD, url, role]
            cwd = ROOT
            if bench.settings.ours_src:  # gateway/ from there, bench/ and examples/ from ROOT
                cwd, env["PYTHONPATH"] = Path(bench.settings.ours_src), str(ROOT)
            self.queues = python_queues(role)
        self.process = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-1000:]

    def stop(self) -> None:
        try:
            stop_process(self.process)
        finally:
            self.log.close()


@contextmanager
def participants(
    bench: Bench, kind: str, roles: Sequence[str], url: str, workdir: Path
) -> Iterator[list[Participant]]:
    started: list[Participant] = []
    try:
        for role in roles:
            started.append(Participant(bench, kind, role, url, workdir))
        yield started
    finally:
        for p in started:
            p.stop()


# -- system calls (--strace) -------------------------------------------------------------------


class Strace:
    """``strace -c -f -p PID`` over a window; ``calls()``: system call -> count."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        cmd = ["strace", "-c", "-f", "-q", "-o", str(out), "-p", str(pid)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(STRACE_ATTACH)

    def calls(self) -> dict[str, int]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        found: dict[str, int] = {}
        try:
            text = self.out.read_text()
        except OSError:
            return found
        for line in text.splitlines():
            words = line.split()
            # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(words) >= 5 and words[0][0].isdigit() and words[-1] != "total":
                found[words[-1]] = int(words[3])
        return found


@contextmanager
def traced(bench: Bench, pids: dict[str, int], workdir: Path) -> Iterator[dict[str, Strace]]:
    tracers: dict[str, Strace] = {}
    try:
        if bench.strace:
            for name, pid in pids.items():
                tracers[name] = Strace(pid, workdir / f"strace-{name}.txt")
        yield tracers
    finally:
        for tracer in tracers.values():
            if tracer.process.poll() is None:
                tracer.process.kill()
                tracer.process.wait(5)


def syscalls_per_message(tracers: dict[str, Strace], messages: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, tracer in tracers.items():
        calls = tracer.calls()
        per = {k: v / max(messages, 1) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}
        figures[f"syscalls_{name}"] = per
    return figures


# -- the three parts ---------------------------------------------------------------------------


def coordinator_pingpong(
    bench: Bench, broker: Mosquitto, kind: str, run_no: int, workdir: Path
) -> dict[str, Any]:
    """Node Repeats at both ends of one edge, forwarded by ``kind``; ping-pong."""
    url = broker.url
    roles = (f"{kind}{run_no}a", f"{kind}{run_no}b")
    graph = workdir / "repeat.fbp"
    graph.write_text(f"{roles[0]}(Repeat) OUT -> IN {roles[1]}(Repeat)\n")
    coordinator = Coordinator(
        kind, graph, url, bench.settings, f"pp-{broker_name(broker)}-r{run_no}"
    )
    try:
        with participants(bench, "nodejs", roles, url, workdir) as (a, b):
            load = HopLoad(url, a.queues[0], b.queues[1])
            try:
                if not load.probe(READY_TIMEOUT, every=0.5):
                    why = f"coordinator: {coordinator.output()!r}; a: {a.output()!r}"
                    return {"error": f"no probe came through in {READY_TIMEOUT:.0f} s; {why}"}
                load.flood("w", WARMUP, WARMUP_WINDOW, bench.settings.timeout)
                pids = {"coordinator": coordinator.pid, "a": a.pid, "b": b.pid}
                return pingpong_figures(bench, load, pids, broker, workdir)
            finally:
                load.close()
    finally:
        coordinator.stop()


def participant_pingpong(
    bench: Bench, broker: Mosquitto, kind: str, run_no: int, workdir: Path
) -> dict[str, Any]:
    """One Repeat participant, the load generator at both its ends; ping-pong."""
    url = broker.url
    with participants(bench, kind, [f"{kind}{run_no}"], url, workdir) as (p,):
        load = HopLoad(url, *p.queues)
        try:
            if not load.probe(READY_TIMEOUT, every=0.5):
                return {"error": f"no echo in {READY_TIMEOUT:.0f} s: {p.output()!r}"}
            load.flood("w", WARMUP, WARMUP_WINDOW, bench.settings.timeout)
            figures = pingpong_figures(bench, load, {"participant": p.pid}, broker, workdir)
            figures["participant_rss_mb"] = proc_status(p.pid, "VmRSS")
            return figures
        finally:
            load.close()


def pingpong_figures(
    bench: Bench, load: HopLoad, pids: dict[str, int], broker: Mosquitto, workdir: Path
) -> dict[str, Any]:
    watched = [*pids.values(), broker.pid or 0]
    with traced(bench, pids, workdir) as tracers:
        before = [cpu_seconds(pid) for pid in watched]
        pings, elapsed = load.ping_pong(bench.pings, bench.settings.timeout)
        after = [cpu_seconds(pid) for pid in watched]
        syscalls = syscalls_per_message(tracers, pings.received)
    per = dict(zip([*pids, "broker"], cpu_per_message(before, after, pings.received), strict=True))
    figures: dict[str, Any] = {
        "p50_ms": percentile(pings.rtts, 0.5) * 1e3,
        "p99_ms": percentile(pings.rtts, 0.99) * 1e3,
        "rate": pings.received / elapsed,
        "broker_cpu_us": per["broker"],
        "lost": pings.count - pings.received,
        **syscalls,
    }
    if "coordinator" in pids:
        figures["coord_cpu_us"] = per["coordinator"]
        figures["participants_cpu_us"] = per["a"] + per["b"]
        figures["coord_rss_mb"] = proc_status(pids["coordinator"], "VmRSS")
    else:
        figures["participant_cpu_us"] = per["participant"]
    return figures


def paced_cpu(
    bench: Bench, broker: Mosquitto, kind: str, run_no: int, workdir: Path
) -> dict[str, Any]:
    """Simulated participants, messages sent one by one at ``bench.rate``: CPU per message."""
    url = broker.url
    topic = f"bench/paced/{broker_name(broker)}/r{run_no}/{kind}"
    topic_a, topic_b = f"{topic}/a", f"{topic}/b"
    graph = workdir / "forward.fbp"
    graph.write_text(FORWARD_GRAPH)
    tag = f"paced-{broker_name(broker)}-r{run_no}"
    coordinator = Coordinator(kind, graph, url, bench.settings, tag)
    try:
        load = HopLoad(url, topic_a, topic_b)
        try:
            announced = forwarding_announcements(topic_a, topic_b)
            if not load.wait_forwarding(announced, coordinator.alive):
                return {"error": f"no probe came through: {coordinator.output()!r}"}
            load.flood("w", WARMUP, WARMUP_WINDOW, bench.settings.timeout)
            pid, broker_pid = coordinator.pid, broker.pid or 0
            with traced(bench, {"coordinator": pid}, workdir) as tracers:
                before = [*cpu_times(pid), cpu_seconds(broker_pid), *context_switches(pid)]
                before.append(page_faults(pid))
                phase, elapsed = load.paced(
                    "t", bench.count, bench.rate, bench.window, bench.settings.timeout
                )
                after = [*cpu_times(pid), cpu_seconds(broker_pid), *context_switches(pid)]
                after.append(page_faults(pid))
                syscalls = syscalls_per_message(tracers, phase.received)
            per = cpu_per_message(before, after, phase.received)
            user, system, broker_cpu = per[:3]
            return {
                "sleeps": per[3] / 1e6,  # voluntary context switches per message
                "preempted": per[4] / 1e6,
                "faults": per[5] / 1e6,  # minor page faults per message
                "coord_cpu_us": user + system,
                "coord_sys_us": system,
                "broker_cpu_us": broker_cpu,
                "coord_rss_mb": proc_status(pid, "VmRSS"),
                "coord_hwm_mb": proc_status(pid, "VmHWM"),
                "rate": phase.received / elapsed,
                "in_flight": sum(phase.rtts) / elapsed,
                "p50_ms": percentile(phase.rtts, 0.5) * 1e3,
                "p99_ms": percentile(phase.rtts, 0.99) * 1e3,
                "lost": bench.count - phase.received,
                "reordered": phase.reordered,
                "corrupt": phase.corrupt + phase.duplicates,
                **syscalls,
            }
        finally:
            load.close()
    finally:
        coordinator.stop()


MEASURE: dict[str, Callable[[Bench, Mosquitto, str, int, Path], dict[str, Any]]] = {
    "coordinator": coordinator_pingpong,
    "participant": participant_pingpong,
    "paced": paced_cpu,
}


def broker_name(broker: Mosquitto) -> str:
    return "nodelay" if "set_tcp_nodelay" in broker.config() else "default"


def kinds_of(bench: Bench, part: str) -> tuple[str, ...]:
    return PARTICIPANTS if part == "participant" else bench.coordinators


def run_all(bench: Bench) -> list[dict[str, Any]]:
    results = []
    for broker_kind in bench.brokers:
        with private_broker(nodelay=broker_kind == "nodelay") as broker:
            for part in bench.parts:
                kinds = kinds_of(bench, part)
                for run_no in range(bench.settings.runs):
                    for kind in kinds if run_no % 2 == 0 else kinds[::-1]:
                        head = {"part": part, "broker": broker_kind, "kind": kind, "run": run_no}
                        with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
                            found = MEASURE[part](bench, broker, kind, run_no, Path(tmp))
                        result = {**head, **found}
                        results.append(result)
                        print(progress_line(result), file=sys.stderr, flush=True)
    return results


def progress_line(r: dict[str, Any]) -> str:
    head = f"  {r['part']:<11} {r['broker']:<7} run {r['run']} {LABEL[r['kind']]:<29}"
    if "error" in r:
        return f"{head} ERROR {r['error'][:800]}"
    cpu = r.get("coord_cpu_us", r.get("participant_cpu_us", float("nan")))
    return (
        f"{head} p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  {r['rate']:7.0f} msg/s  "
        f"CPU {cpu:.1f} us/msg  lost {r['lost']}"
    )


# -- summary -----------------------------------------------------------------------------------

COUNTS = ("lost", "reordered", "corrupt")


def summarize(results: list[dict[str, Any]], bench: Bench) -> list[dict[str, Any]]:
    """One row per part, broker and kind: medians of the figures, totals of the counts, and
    for ``ours`` and ``python`` the medians of the paired ratios to the baseline."""
    rows = []
    for part in bench.parts:
        for broker_kind in bench.brokers:
            for kind in kinds_of(bench, part):
                mine = [
                    r
                    for r in results
                    if (r["part"], r["broker"], r["kind"]) == (part, broker_kind, kind)
                ]
                ok = [r for r in mine if "error" not in r]
                row: dict[str, Any] = {"part": part, "broker": broker_kind, "kind": kind}
                row["runs"], row["errors"] = len(ok), len(mine) - len(ok)
                keys = {k for r in ok for k, v in r.items() if isinstance(v, float)}
                for key in sorted(keys - set(COUNTS)):
                    row[key] = median([r[key] for r in ok if key in r])
                for key in COUNTS:
                    row[key] = sum(r.get(key, 0) for r in ok)
                for key in {k for r in ok for k in r if k.startswith("syscalls_")}:
                    row[key] = median_calls([r[key] for r in ok if key in r])
                rows.append(row)
    for row in rows:
        if row["kind"] in ("ours", "python"):
            row["ratios"] = paired_ratios(results, row)
    return rows


def median_calls(tables: list[dict[str, float]]) -> dict[str, float]:
    names = {name for table in tables for name in table}
    merged = {name: median([table.get(name, 0.0) for table in tables]) for name in names}
    return dict(sorted(merged.items(), key=lambda kv: -kv[1]))


def paired_ratios(results: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, float]:
    """ours/original (python/nodejs) per run and figure; the median over the runs."""
    baseline = "original" if row["kind"] == "ours" else "nodejs"
    pairs: dict[str, list[float]] = {}
    for run_no in sorted({r["run"] for r in results}):
        pick = {
            r["kind"]: r
            for r in results
            if (r["part"], r["broker"], r["run"]) == (row["part"], row["broker"], run_no)
            and "error" not in r
        }
        if row["kind"] in pick and baseline in pick:
            ours, base = pick[row["kind"]], pick[baseline]
            for key, value in ours.items():
                if isinstance(value, float) and key in base and base[key]:
                    pairs.setdefault(key, []).append(value / base[key])
    return {key: median(values) for key, values in pairs.items()}


def cell(row: dict[str, Any], key: str, fmt: str = "{:.1f}") -> str:
    value = row.get(key)
    return "-" if value is None or math.isnan(value) else fmt.format(value)


def ratio(row: dict[str, Any], key: str) -> str:
    value = row.get("ratios", {}).get(key)
    return "" if value is None else f" ({value:.2f}x)"


def format_pingpong(rows: list[dict[str, Any]], part: str, bench: Bench) -> str:
    mine = [r for r in rows if r["part"] == part]
    coordinator = part == "coordinator"
    head = ["broker", "path", "p50 ms", "p99 ms", "round trips/s"]
    if coordinator:
        head += ["coordinator CPU us/msg", "participants CPU us/msg", "coordinator RSS MB"]
    else:
        head += ["participant CPU us/msg", "participant RSS MB"]
    head += ["broker CPU us/msg", "lost", "runs"]
    table = []
    for r in mine:
        line = [
            BROKER_LABEL[r["broker"]],
            LABEL[r["kind"]],
            cell(r, "p50_ms", "{:.3f}") + ratio(r, "p50_ms"),
            cell(r, "p99_ms", "{:.3f}") + ratio(r, "p99_ms"),
            cell(r, "rate", "{:,.0f}") + ratio(r, "rate"),
        ]
        if coordinator:
            line += [
                cell(r, "coord_cpu_us") + ratio(r, "coord_cpu_us"),
                cell(r, "participants_cpu_us"),
                cell(r, "coord_rss_mb"),
            ]
        else:
            line += [
                cell(r, "participant_cpu_us") + ratio(r, "participant_cpu_us"),
                cell(r, "participant_rss_mb"),
            ]
        line += [cell(r, "broker_cpu_us"), str(r["lost"]), f"{r['runs']} ({r['errors']} failed)"]
        table.append(line)
    ends = "msgflo-nodejs Repeats at both ends, " if coordinator else ""
    lines = [
        markdown_table(head, table),
        "",
        f"{ends}{bench.pings} messages one at a time after {WARMUP} warm-up messages; medians "
        f"over {bench.settings.runs} run(s), alternating; (x): ours/"
        f"{'original' if coordinator else 'msgflo-nodejs'}, median of the runs' pairs; CPU "
        "per round trip from /proc (10 ms ticks).",
    ]
    for r in mine:
        if r["kind"] in ("ours", "python") and "rate" in r.get("ratios", {}):
            verdict = "met" if r["ratios"]["rate"] >= 1.0 else "NOT met"
            lines.append(
                f"{BROKER_LABEL[r['broker']]}: ping-pong no slower than the original: {verdict} "
                f"({r['ratios']['rate']:.2f}x its round trips per second)"
            )
    return "\n".join(lines)


def format_paced(rows: list[dict[str, Any]], bench: Bench) -> str:
    mine = [r for r in rows if r["part"] == "paced"]
    head = [
        "broker",
        "coordinator",
        "CPU us/msg",
        "of it kernel",
        "RSS MB (peak)",
        "broker CPU us/msg",
        "msg/s",
        "in flight (mean)",
        "sleeps / preempted per msg",
        "page faults per msg",
        "p50 ms",
        "p99 ms",
        "lost / reordered / altered",
    ]
    table = [
        [
            BROKER_LABEL[r["broker"]],
            LABEL[r["kind"]],
            cell(r, "coord_cpu_us") + ratio(r, "coord_cpu_us"),
            cell(r, "coord_sys_us"),
            f"{cell(r, 'coord_rss_mb')} ({cell(r, 'coord_hwm_mb')})" + ratio(r, "coord_rss_mb"),
            cell(r, "broker_cpu_us"),
            cell(r, "rate", "{:,.0f}"),
            cell(r, "in_flight", "{:.2f}"),
            f"{cell(r, 'sleeps', '{:.2f}')} / {cell(r, 'preempted', '{:.2f}')}",
            cell(r, "faults", "{:.2f}"),
            cell(r, "p50_ms", "{:.3f}"),
            cell(r, "p99_ms", "{:.3f}"),
            f"{r['lost']} / {r['reordered']} / {r['corrupt']}",
        ]
        for r in mine
    ]
    lines = [
        markdown_table(head, table),
        "",
        f"{bench.count} messages sent one at a time at {bench.rate:,.0f} msg/s (at most "
        f"{bench.window} unanswered), the coordinator the only hop; CPU per message from /proc "
        f"(10 ms ticks); medians over {bench.settings.runs} run(s), alternating; (x): ours/"
        "original, median of the runs' pairs.",
    ]
    for r in mine:
        cpu = r.get("ratios", {}).get("coord_cpu_us")
        if r["kind"] == "ours" and cpu is not None:
            verdict = "met" if cpu <= CPU_GOAL else "NOT met"
            lines.append(
                f"{BROKER_LABEL[r['broker']]}: CPU per message ours/original {cpu:.2f}x; "
                f"goal <= {CPU_GOAL}x: {verdict}"
            )
    return "\n".join(lines)


def format_syscalls(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        for key in sorted(k for k in r if k.startswith("syscalls_")):
            calls = r[key]
            total = sum(calls.values())
            top = ", ".join(f"{name} {n:.2f}" for name, n in list(calls.items())[:8])
            who = key.removeprefix("syscalls_")
            lines.append(
                f"- {r['part']}, {BROKER_LABEL[r['broker']]}, {LABEL[r['kind']]}, {who}: "
                f"{total:.2f} per message ({top})"
            )
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[Bench, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description="Ping-pong latency and paced CPU per message: ours vs the original msgflo.",
    )
    parser.add_argument("--pings", type=int, default=2000, help="ping-pong round trips")
    parser.add_argument("--count", type=int, default=20_000, help="paced messages")
    parser.add_argument("--rate", type=float, default=2000.0, help="paced messages per second")
    parser.add_argument("--window", type=int, default=100, help="paced: max unanswered")
    parser.add_argument("--runs", type=int, default=3, help="alternating repetitions")
    parser.add_argument("--timeout", type=float, default=120.0, help="s per phase at most")
    parser.add_argument("--parts", default=",".join(PARTS), help="coordinator,participant,paced")
    parser.add_argument("--brokers", default=",".join(BROKERS), help="default,nodelay")
    parser.add_argument("--only", choices=COORDINATORS, help="one coordinator only")
    parser.add_argument("--ours-commit", metavar="REV", help="ours from gateway/ at REV")
    parser.add_argument(
        "--ours-cmd",
        help="Python command line run as our coordinator instead of .venv/bin/msgflo, "
        "e.g. '.venv/bin/python my_msgflo.py' (as bench.coordinator's)",
    )
    parser.add_argument("--strace", action="store_true", help="count system calls per message")
    parser.add_argument("--profile", type=Path, help="ours under cProfile: DIR/ours-*.pstats")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 pings, 3000 paced")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.pings, args.count, args.runs = 300, 3000, 1
    parts = tuple(p for p in args.parts.split(",") if p)
    brokers = tuple(b for b in args.brokers.split(",") if b)
    if not set(parts) <= set(PARTS) or not set(brokers) <= set(BROKERS) or not parts:
        parser.error(f"--parts from {','.join(PARTS)}; --brokers from {','.join(BROKERS)}")
    if min(args.pings, args.count, args.runs, args.window) < 1 or args.rate <= 0:
        parser.error("--pings, --count, --runs, --window and --rate must be positive")
    why = original_available()
    if why is not None:
        parser.error(f"the original and msgflo-nodejs are needed: {why}")
    coordinators = COORDINATORS if args.only is None else (args.only,)
    profile = ""
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        profile = str(args.profile.resolve())
    settings = Settings(
        count=args.count,
        runs=args.runs,
        window=args.window,
        pings=args.pings,
        warmup=WARMUP,
        timeout=args.timeout,
        participants=2,
        idle=1.0,
        scale_timeout=READY_TIMEOUT,
        profile=profile,
        ours_cmd=tuple(shlex.split(args.ours_cmd or "")),
    )
    bench = Bench(
        settings, args.pings, args.count, args.rate, args.window, parts, brokers, coordinators
    )
    bench.strace = args.strace
    return bench, args


def main(argv: Sequence[str]) -> int:
    bench, args = parse_args(argv)
    with ours_checkout(args.ours_commit) as (bench.settings.ours_src, source):
        print(
            f"latency benchmark ({source}): parts {', '.join(bench.parts)}; brokers "
            f"{', '.join(bench.brokers)}; {bench.pings} pings, {bench.count} paced at "
            f"{bench.rate:.0f}/s, {bench.settings.runs} run(s)",
            file=sys.stderr,
        )
        results = run_all(bench)
    rows = summarize(results, bench)
    host = {**mqtt_machine(), "node": node_version(), "ours": source}
    print()
    print(", ".join(f"{k} {v}" for k, v in host.items()))
    print(f"command: {Path(sys.executable).name} -m bench.latency {' '.join(argv)}".rstrip())
    if bench.strace:
        print("(--strace: strace slows the traced processes; read the system call counts only)")
    if "coordinator" in bench.parts:
        print("\nPing-pong through one edge (coordinator)\n")
        print(format_pingpong(rows, "coordinator", bench))
    if "participant" in bench.parts:
        print("\nPing-pong through one Repeat participant\n")
        print(format_pingpong(rows, "participant", bench))
    if "paced" in bench.parts:
        print("\nCoordinator CPU per message, messages arriving one by one\n")
        print(format_paced(rows, bench))
    if bench.strace:
        print("\nSystem calls per message (strace -c -f, during the measured messages)\n")
        print(format_syscalls(rows))
    if args.json is not None:
        settings = {**asdict(bench), "settings": asdict(bench.settings)}
        document = {"machine": host, "settings": settings, "rows": rows, "runs": results}
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == CHILD:
        child_repeat(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(main(sys.argv[1:]))
