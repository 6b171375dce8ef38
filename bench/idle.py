"""Idle wakeups per second of the gateway's own processes (issue 19), beside a baseline.

The processes of ``./bootstrap.sh demo``, each started as its own process here so that each has
its own figure (the demo runs the coordinator and the bridges in one): a private Mosquitto, the
coordinator with the FBP runtime and dashboard server on the demo graph (``examples/demo.fbp``
plus the demo's two radio nodes, its participants started by the coordinator as in the demo),
the BLE and 433 MHz bridges the demo runs, and the bridges the kit runs (serial, health). By
default without the simulated devices' traffic: the participants' ``DEMO_INTERVAL`` is an hour,
the BLE bridge listens to a source that never hears anything and rtl_433 replays its recording
once an hour; ``--traffic`` runs the demo's pace (a reading a second, the replays every 2-3 s).

The baseline, measured in the same window: ``python3 -c 'import time; time.sleep(...)'`` (a
process that does nothing: what the counting itself sees) and a second Mosquitto with no
client at all. Every process is sampled with the self-test's sampler
(gateway/appliance/selftest.py: per-thread voluntary + involuntary context switches at the
start and end of the window), after a settling time once the participants are up.

    .venv/bin/python -m bench.idle [--seconds 30] [--settle 10] [--traffic]

About ``--seconds + --settle + 30`` s in all; every child ends by itself after that bound too.
No figure is asserted; see bench/RESULTS.md for recorded runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.common import cpu_seconds, machine, markdown_table, stop_process
from gateway.appliance.selftest import TaskCount, WakeupRates, measure_window
from gateway.bridges import ble, rf433
from gateway.bridges.ble.advert import Advert
from gateway.bridges.ble.sources import ReplaySource
from gateway.bridges.health import device_side as health_side
from gateway.bridges.run import serve
from gateway.broker import BrokerUrl, parse_broker_url
from gateway.common.logs import ENV_LOGLEVEL, configure_logging
from gateway.common.signals import run_daemon
from gateway.config import HealthConfig, SerialBridgeConfig
from gateway.coordinator.runtime_environment import RuntimeProtocolService, RuntimeSettings
from gateway.coordinator.service import CoordinatorService
from gateway.dashboard.settings import DashboardSettings
from gateway.demo import EXAMPLES, FRIDGE, GARDEN, REPLAY_SPEED, demo_config, demo_graph_text
from gateway.graph import read_fbp
from gateway.mosquitto import Mosquitto, free_port
from gateway.processes import with_parent_death_signal

QUIET_INTERVAL = "3600"  # the participants' DEMO_INTERVAL without traffic: a reading an hour
PARTICIPANTS = 4  # the demo graph's simulated devices the coordinator starts
STARTUP = 60.0  # s for the coordinator to start them
MARGIN = 30.0  # s a child outlives the planned run by, at most (it is stopped before)
SERVED = ("coordinator", "ble", "rf433", "health", "serial")


class Silent:
    """A BLE source that hears nothing: the bridge's own loops, without adverts."""

    async def run(self, deliver: Callable[[Advert], None]) -> None:
        await asyncio.Event().wait()


async def serve_coordinator(broker: BrokerUrl) -> None:
    config, graph_path = demo_config(str(broker), EXAMPLES)
    graph = read_fbp(demo_graph_text(graph_path), file=str(graph_path))[0]
    service = CoordinatorService(config, graph)
    settings = RuntimeSettings("127.0.0.1", free_port(), dashboard=DashboardSettings())
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(service.run())
        tasks.create_task(RuntimeProtocolService(service, settings).run())


async def serve_one(name: str, broker: BrokerUrl, traffic: bool, data: Path) -> None:
    if name == "coordinator":
        await serve_coordinator(broker)
    elif name == "ble":
        source = (
            ReplaySource(EXAMPLES / "ble-replay.jsonl", repeat=True, speed=REPLAY_SPEED)
            if traffic
            else Silent()
        )
        await serve("ble", FRIDGE, broker, side=ble.device_side(FRIDGE, source))
    elif name == "rf433":
        section = GARDEN if traffic else replace(GARDEN, replay_interval=3600.0)
        await serve("rf433", section, broker, side=rf433.device_side(section))
    elif name == "health":
        # This machine's own /proc and /sys; no access point here.
        health = HealthConfig(disk=data, hostapd_ctrl=None)
        await serve("health", health, broker, side=health_side(health, requests=data))
    elif name == "serial":
        await serve("serial", SerialBridgeConfig(), broker)


def child_main(name: str, broker_url: str, traffic: bool, deadline: float) -> int:
    configure_logging()
    with tempfile.TemporaryDirectory(prefix=f"idle-{name}-") as data:

        async def bounded() -> None:
            try:
                async with asyncio.timeout(deadline):
                    await serve_one(name, parse_broker_url(broker_url), traffic, Path(data))
            except TimeoutError:
                pass

        run_daemon(bounded())  # uvloop and the signal handling, as the daemons run
    return 0


# -- the measuring side ------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One process (with its descendants, unless they are named apart) and its figure."""

    name: str
    kind: str  # "gateway", "participant", "baseline"
    rate: float
    threads: int
    cpu_ms: float | None  # CPU milliseconds per second (the started process itself only)


def pid_tree_groups(
    roots: Mapping[int, str], apart: Mapping[int, str]
) -> Callable[[Mapping[int, TaskCount]], dict[int, str]]:
    """Each process grouped under the nearest started process it descends from; the children
    of a process in ``apart`` named by that mapping's value and their command (participants,
    rtl_433)."""

    def grouping(tasks: Mapping[int, TaskCount]) -> dict[int, str]:
        parent = {task.pid: task.ppid for task in tasks.values()}
        groups = {}
        for pid in parent:
            node, depth = pid, 0
            while node not in roots and node in parent and depth < 64:
                if parent[node] in apart:
                    groups[pid] = f"{apart[parent[node]]}: {command(pid)}"
                    break
                node, depth = parent[node], depth + 1
            else:
                if node in roots:
                    groups[pid] = roots[node]
        return groups

    return grouping


def command(pid: int) -> str:
    """The program, or a Python script's name (``Climate.py``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    words = [Path(word.decode(errors="replace")).name for word in argv if word]
    scripts = [word for word in words if word.endswith(".py")]
    return scripts[0] if scripts else (words[0] if words else str(pid))


def threads_of(tasks_seen: Mapping[int, TaskCount], groups: Mapping[int, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in tasks_seen.values():
        if task.pid in groups:
            counts[groups[task.pid]] = counts.get(groups[task.pid], 0) + 1
    return counts


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split()]


def wait_participants(coordinator: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and coordinator.poll() is None:
        if len(children(coordinator.pid)) >= PARTICIPANTS:
            break
        time.sleep(0.5)
    return len(children(coordinator.pid))


def start_child(
    name: str, broker: Mosquitto, traffic: bool, bound: float
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.idle", "--serve", name, "--broker", broker.url]
    argv += ["--deadline", f"{bound:.0f}"] + (["--traffic"] if traffic else [])
    return subprocess.Popen(with_parent_death_signal(argv))


def measure(args: argparse.Namespace) -> tuple[list[Measured], WakeupRates, int]:
    bound = STARTUP + args.settle + args.seconds + MARGIN
    os.environ["DEMO_INTERVAL"] = "1.0" if args.traffic else QUIET_INTERVAL
    os.environ[ENV_LOGLEVEL] = "WARNING"
    sleeper_code = f"import time; time.sleep({bound:.0f})"
    started: list[subprocess.Popen[bytes]] = []
    with Mosquitto() as alone, Mosquitto(websockets=True) as broker:
        try:
            sleeper = subprocess.Popen(with_parent_death_signal(["python3", "-c", sleeper_code]))
            started.append(sleeper)
            served = {name: start_child(name, broker, args.traffic, bound) for name in SERVED}
            started += served.values()
            found = wait_participants(served["coordinator"], STARTUP)
            time.sleep(args.settle)
            roots = {pid: name for pid, name in ((alone.pid, "mosquitto alone"),
                     (broker.pid, "broker (mosquitto)")) if pid is not None}  # fmt: skip
            roots[sleeper.pid] = "python3 time.sleep"
            roots.update({child.pid: name for name, child in served.items()})
            apart = {served["coordinator"].pid: "participant", served["rf433"].pid: "rf433 child"}
            grouping = pid_tree_groups(roots, apart)
            seen: dict[str, int] = {}

            def grouped(tasks: Mapping[int, TaskCount]) -> dict[int, str]:
                groups = grouping(tasks)
                seen.update(threads_of(tasks, groups))
                return groups

            cpu_before = {pid: cpu_seconds(pid) for pid in roots}
            rates, _ = measure_window(Path("/proc"), args.seconds, grouping=grouped)
            cpu = {
                name: (cpu_seconds(pid) - cpu_before[pid]) * 1000 / rates.seconds
                for pid, name in roots.items()
            }
        finally:
            for child in reversed(started):
                stop_process(child)
    baseline = {"mosquitto alone", "python3 time.sleep"}
    rows = [
        Measured(
            name,
            "baseline" if name in baseline else "participant" if ":" in name else "gateway",
            rate,
            seen.get(name, 0),
            cpu.get(name),
        )
        for name, rate in rates.per_group.items()
    ]
    return rows, rates, found


def report(rows: Sequence[Measured], rates: WakeupRates, found: int, traffic: bool) -> None:
    order = {"gateway": 0, "participant": 1, "baseline": 2}
    table = [
        [row.name, row.kind, str(row.threads), f"{row.rate:.2f}", cpu_cell(row.cpu_ms)]
        for row in sorted(rows, key=lambda row: (order[row.kind], -row.rate))
    ]
    own = sum(row.rate for row in rows if row.kind == "gateway")
    graph = sum(row.rate for row in rows if row.kind == "participant")
    own_cpu = sum(row.cpu_ms or 0.0 for row in rows if row.kind == "gateway")
    table.append(
        ["**gateway's own processes, total**", "gateway", "", f"**{own:.2f}**", f"{own_cpu:.1f}"]
    )
    table.append(["the graph's participants, total", "participant", "", f"{graph:.2f}", ""])
    print(", ".join(f"{key}: {value}" for key, value in machine().items()))
    mode = "with the demo's traffic" if traffic else "idle (no device traffic)"
    print(
        f"\nWakeups per second, {mode}, one {rates.seconds:.1f} s window "
        f"({found} participants started; {rates.tasks_gone} tasks exited in the window):\n"
    )
    head = ["process", "kind", "threads", "wakeups/s", "CPU ms/s"]
    print(markdown_table(head, table))
    print(f"\ngoal below 5/s for the gateway's own processes: {'met' if own < 5 else 'missed'}")


def cpu_cell(cpu_ms: float | None) -> str:
    """The process's own CPU time (10 ms clock ticks: below 0.3 ms/s in 30 s is noise)."""
    return "" if cpu_ms is None else f"{cpu_ms:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="the window")
    parser.add_argument("--settle", type=float, default=10.0, help="s after start-up")
    parser.add_argument("--traffic", action="store_true", help="the demo's device traffic")
    parser.add_argument("--serve", choices=SERVED, help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=120.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return child_main(args.serve, args.broker, args.traffic, args.deadline)
    rows, rates, found = measure(args)
    report(rows, rates, found, args.traffic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
