"""The BLE bridge's advertisement path (issue 16): its CPU per advert against Theengs Decoder
alone, its sustained rate through a real broker, and its memory among thousands of devices.

    .venv/bin/python -m bench.ble                  # 3 rounds of 10,000 adverts, 5,000 devices
    .venv/bin/python -m bench.ble --quick          # smoke run, a few seconds
    .venv/bin/python -m bench.ble --profile 25     # also one path round under cProfile

Adverts are those of ``tests/vectors/ble_adverts.json`` (ATC1441 and pvvx firmwares of the
LYWSD03MMC, RuuviTag RAWv2, Govee H5075, SwitchBot Meter), in two mixes:

* ``changing``: all eleven vectors in turn. A sensor's vectors differ in their values, so every
  advert changes at least one value and the bridge publishes it (the busiest case);
* ``steady``: the first vector of each of the five sensors, over and over: after the first
  pass the values are those already sent, so nothing is published (what a sensor does most of
  the time: it repeats itself every second or so and its values change every few minutes).

1. Per advert, in this process (CPU seconds, ``time.process_time``, over the whole mix; the
   stages alternate with the path in every round, and each figure is a median over rounds):
   * ``decodeBLE``: the floor. Theengs Decoder's own ``decodeBLE`` on the very JSON strings the
     bridge gives it (``decoder_inputs``, built beforehand), one call per advert as the bridge
     makes for these adverts;
   * ``Decoder.decode``: our wrapper (the input JSON built, the answer parsed and filtered);
   * ``Registry.observe``: the whole pure core (digest, decode, adoption, what to send);
   * ``bridge path``: the whole bridge. Every sensor is adopted (``bridges.ble.roles``); a
     ``BleBridge`` with the real ``BleakSource`` runs in a ``BridgeHost`` on a private mosquitto
     (``gateway.mosquitto.Mosquitto``). Adverts enter where bleak's BlueZ backend hands them
     over: ``call_detection_callbacks(BLEDevice, AdvertisementData)`` of the bleak scanner
     (a ``BaseBleakScanner`` given to ``BleakScanner`` as its ``backend``, the radio being the
     only thing faked), then ``BleakSource``'s callback, ``from_bleak``, the bridge's queue,
     the registry and the participants' publishes. The (device, data) pairs are made
     beforehand: bleak's own parsing of BlueZ's D-Bus signals is not counted. At most
     ``WINDOW`` adverts are unprocessed at a time (the bridge's queue holds ``QUEUE``; none may
     be dropped), and the round ends when the last advert was handled and the transport
     flushed. Process CPU is this whole process (every thread), without the broker's, which is
     its own process and given beside it (``/proc/PID/task/*/schedstat``), as is the rate
     sustained (adverts per wall-clock second). A subscriber in another process counts what
     arrived.
   The ratio path / decodeBLE is the issue's goal (within 2x). In each round the stages take
   turns every ``CHUNK`` adverts, so that each meets the same moments of a busy machine.
2. Memory, each in a fresh child process running the same bridge on the same broker, nothing
   adopted: RSS (``VmRSS``) before and after ``--devices`` distinct addresses, with checkpoints
   between; ``phones``: random addresses with random Apple manufacturer data (undecodable, or
   decoded as devices with private addresses: never a sensor); ``sensors``: the vectors with
   random addresses (decodable, seen, not adopted; the seen list holds ``max_seen``). Then,
   with ``tracemalloc``, a fresh ``Registry`` given the same adverts (made one by one inside
   the traced loop, so what the registry keeps is counted): its memory at the end and its peak.
   bleak's ``seen_devices`` (which BlueZ's backend prunes when BlueZ forgets a device) is not
   in it: the adverts are delivered with fresh ``BLEDevice`` values. Beside it, the child's
   CPU per advert while it fed them (making each advert's bleak values included) against
   ``decodeBLE`` alone on the same adverts: none repeats, so the negative cache never helps.

Nothing is asserted; the script prints figures beside their baseline. Loops are bounded by a
count and by ``--seconds`` per phase; processes are stopped in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import logging
import pstats
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from bench.common import (
    ROOT,
    SETTLE,
    CountingSubscriber,
    hosted,
    machine,
    markdown_table,
    median,
    rss_mb,
    run_seconds,
    wait_for,
)
from gateway.bridges.ble.advert import Advert, parse_replay_line
from gateway.bridges.ble.bridge import BleBridge
from gateway.bridges.ble.decode import Decoder, _theengs, decoder_inputs
from gateway.bridges.ble.registry import Registry
from gateway.bridges.ble.sources import BleakSource
from gateway.bridges.observe import QUEUE
from gateway.config import BleBridgeConfig
from gateway.mosquitto import Mosquitto
from gateway.transport import Transport

VECTORS = ROOT / "tests" / "vectors" / "ble_adverts.json"
WINDOW = QUEUE // 4  # adverts delivered and not yet handled, at most
CHUNK = 1000  # adverts a stage takes in one turn (module docstring)


# -- adverts ---------------------------------------------------------------------------------------


def vectors() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return found


def mixes() -> dict[str, list[dict[str, Any]]]:
    """The two mixes of replay-line dicts (module docstring)."""
    raw = [v["advert"] for v in vectors()]
    first: dict[str, dict[str, Any]] = {}
    for advert in raw:
        first.setdefault(advert["address"], advert)
    return {"changing": raw, "steady": list(first.values())}


def bleak_pair(raw: dict[str, Any]) -> tuple[BLEDevice, AdvertisementData]:
    """What bleak's BlueZ backend hands a detection callback for the advert ``raw``."""
    service = {
        f"0000{uuid[-4:]}-0000-1000-8000-00805f9b34fb": bytes.fromhex(data)
        for uuid, data in raw.get("service_data", {}).items()
    }
    makers = {
        int(cid, 0): bytes.fromhex(data) for cid, data in raw.get("manufacturer_data", {}).items()
    }
    data = AdvertisementData(
        local_name=raw.get("name"),
        manufacturer_data=makers,
        service_data=service,
        service_uuids=list(service),
        tx_power=None,
        rssi=raw.get("rssi", -60),
        platform_data=(),
    )
    return BLEDevice(raw["address"], raw.get("name"), None), data


def random_address(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02X}" for _ in range(6))


def phone(rng: random.Random) -> dict[str, Any]:
    """A phone: a random address, random Apple manufacturer data, no name."""
    data = rng.randbytes(rng.randrange(4, 24)).hex()
    return {"address": random_address(rng), "rssi": -90, "manufacturer_data": {"0x004c": data}}


def sensor(rng: random.Random, index: int, raw: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Vector ``index`` (mod their number) with a random address."""
    return dict(raw[index % len(raw)], address=random_address(rng))


# -- the stages in this process --------------------------------------------------------------------


@dataclass
class Stages:
    """CPU microseconds per advert of each stage, one entry per round."""

    floor: list[float] = field(default_factory=list)
    decoder: list[float] = field(default_factory=list)
    registry: list[float] = field(default_factory=list)
    path: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)  # path: adverts per wall-clock second
    broker: list[float] = field(default_factory=list)  # broker CPU us per advert
    published: list[float] = field(default_factory=list)  # messages per advert
    counted: list[int] = field(default_factory=list)  # adverts each path round handled


def per_advert(run: Callable[[int], None], count: int, seconds: float) -> float:
    """CPU microseconds per call of ``run(i)`` for i < ``count``, stopping after ``seconds``."""
    deadline = time.monotonic() + seconds
    start = time.process_time()
    done = 0
    while done < count:
        run(done)
        done += 1
        if done % 256 == 0 and time.monotonic() > deadline:
            break
    return (time.process_time() - start) / done * 1e6


def floor_stage(adverts: Sequence[Advert], count: int, seconds: float) -> float:
    """Theengs Decoder's ``decodeBLE`` alone, as the bridge calls it: on each input in turn
    until one decodes (one call for every vector here)."""
    decode_ble, _ = _theengs()
    inputs = [decoder_inputs(advert) for advert in adverts]

    def run(i: int) -> None:
        for query in inputs[i % len(inputs)]:
            if decode_ble(query) is not None:
                return

    return per_advert(run, count, seconds)


def decoder_stage(adverts: Sequence[Advert], count: int, seconds: float) -> float:
    decoder = Decoder()
    for advert in adverts:  # the models' property lists, asked once for the bridge's life
        decoder.decode(advert)

    def run(i: int) -> None:
        decoder.decode(adverts[i % len(adverts)])

    return per_advert(run, count, seconds)


def registry_stage(
    adverts: Sequence[Advert], section: BleBridgeConfig, count: int, seconds: float
) -> float:
    registry = Registry(section)
    for advert in adverts:  # adoption happens once
        registry.observe(advert, 0.0)

    def run(i: int) -> None:
        registry.observe(adverts[i % len(adverts)], time.monotonic())

    return per_advert(run, count, seconds)


# -- the bridge on a broker ------------------------------------------------------------------------


class Radio:
    """bleak's side: the fake backend's scanners, whose ``call_detection_callbacks`` is where
    bleak's BlueZ backend delivers every advert."""

    def __init__(self) -> None:
        self.scanners: list[BaseBleakScanner] = []

    def backend(self) -> type[BaseBleakScanner]:
        radio = self

        class BenchScanner(BaseBleakScanner):
            def __init__(
                self, detection_callback: Any, service_uuids: Any, scanning_mode: str, **kw: Any
            ) -> None:
                super().__init__(detection_callback, service_uuids)

            async def start(self) -> None:
                radio.scanners.append(self)

            async def stop(self) -> None:
                radio.scanners.remove(self)

        return BenchScanner

    def deliver(self, pair: tuple[BLEDevice, AdvertisementData]) -> None:
        self.scanners[0].call_detection_callbacks(*pair)


@dataclass
class Running:
    bridge: BleBridge
    radio: Radio
    transport: Transport


@contextlib.asynccontextmanager
async def bridge_on(url: str, section: BleBridgeConfig) -> AsyncIterator[Running]:
    """The BLE bridge as ``msgflo-ble`` runs it (``BridgeHost``, ``BleBridge``, ``BleakSource``)
    with the fake radio as bleak's backend, connected to ``url``."""
    radio = Radio()
    source = BleakSource(section, backend=radio.backend(), main_conf=None)
    bridge = BleBridge(section, source)
    async with hosted(url, "ble", bridge.run, section.period, "msgflo-ble-bench") as transport:
        await wait_for(lambda: bool(radio.scanners), SETTLE, "the scanner's start")
        yield Running(bridge, radio, transport)


async def feed(
    running: Running,
    pairs: Callable[[int], tuple[BLEDevice, AdvertisementData]],
    count: int,
    seconds: float,
) -> int:
    """Deliver ``pairs(i)`` for i < ``count`` (or until ``seconds`` passed), at most WINDOW
    unhandled at a time; returns when every delivered advert was handled: how many."""
    counts = running.bridge.registry.counts
    first = counts.adverts
    deadline = time.monotonic() + seconds
    delivered = 0
    while delivered < count and time.monotonic() < deadline:
        while delivered < count and delivered - (counts.adverts - first) < WINDOW:
            running.radio.deliver(pairs(delivered))
            delivered += 1
        await asyncio.sleep(0)
    await wait_for(lambda: counts.adverts - first >= delivered, SETTLE, "handling the adverts")
    return delivered


async def path_round(
    running: Running,
    pairs: Sequence[tuple[BLEDevice, AdvertisementData]],
    broker_pid: int,
    count: int,
    seconds: float,
) -> tuple[float, float, float, float, int]:
    """CPU us per advert, adverts/s, broker CPU us per advert, messages per advert, adverts."""
    bridge = running.bridge
    sent, dropped = bridge.sent, bridge.dropped
    gc.collect()
    broker_before, cpu_before = run_seconds(broker_pid), time.process_time()
    start = time.perf_counter()
    done = await feed(running, lambda i: pairs[i % len(pairs)], count, seconds)
    await running.transport.flush()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    broker = run_seconds(broker_pid) - broker_before
    if bridge.dropped != dropped:
        print(f"  warning: {bridge.dropped - dropped} adverts dropped (queue full)", flush=True)
    return (
        cpu / done * 1e6,
        done / elapsed,
        broker / done * 1e6,
        (bridge.sent - sent) / done,
        done,
    )


def section_adopting(raw: Sequence[dict[str, Any]]) -> BleBridgeConfig:
    addresses = sorted({advert["address"] for advert in raw})
    roles = tuple((address, f"bench{i}") for i, address in enumerate(addresses))
    return BleBridgeConfig(enabled=True, period=60.0, roles=roles)


async def one_round(
    running: Running,
    raw: Sequence[dict[str, Any]],
    section: BleBridgeConfig,
    broker_pid: int,
    *,
    args: Any,
    stages: Stages,
) -> None:
    """``args.count`` adverts through each stage, in chunks of ``CHUNK``, the stages taking
    turns chunk by chunk so that each sees the same moments of a noisy machine; CPU totals
    divided by the adverts of each stage."""
    adverts = [parse_replay_line(json.dumps(r)) for r in raw]
    pairs = [bleak_pair(r) for r in raw]
    totals = dict.fromkeys(("floor", "decoder", "registry", "path", "broker", "wall"), 0.0)
    done = published = 0
    deadline = time.monotonic() + args.seconds
    while done < args.count and time.monotonic() < deadline:
        n = min(CHUNK, args.count - done)
        totals["floor"] += floor_stage(adverts, n, args.seconds) * n
        totals["decoder"] += decoder_stage(adverts, n, args.seconds) * n
        totals["registry"] += registry_stage(adverts, section, n, args.seconds) * n
        cpu, rate, broker_cpu, messages, handled = await path_round(
            running, pairs, broker_pid, n, args.seconds
        )
        totals["path"] += cpu * handled
        totals["broker"] += broker_cpu * handled
        totals["wall"] += handled / rate
        published += round(messages * handled)
        done += handled
    stages.floor.append(totals["floor"] / done)
    stages.decoder.append(totals["decoder"] / done)
    stages.registry.append(totals["registry"] / done)
    stages.path.append(totals["path"] / done)
    stages.broker.append(totals["broker"] / done)
    stages.rate.append(done / totals["wall"])
    stages.published.append(published / done)
    stages.counted.append(done)


async def throughput(
    broker: Mosquitto, args: Any
) -> tuple[dict[str, Stages], tuple[int, int], str | None]:
    """Every stage of both mixes, ``args.rounds`` times; the messages the bridge sent and those
    the subscriber counted; the profile's text if asked for."""
    all_raw = mixes()
    section = section_adopting(all_raw["changing"])
    results = {name: Stages() for name in all_raw}
    broker_pid = broker.pid or 0
    subscriber = CountingSubscriber(broker)
    profile_text = None
    try:
        subscriber.wait_ready()
        async with bridge_on(broker.url, section) as running:
            # Every sensor adopted and announced before anything is measured.
            await feed(running, lambda i: bleak_pair(all_raw["changing"][i]), 11, SETTLE)
            for round_number in range(args.rounds):
                for name, raw in all_raw.items():
                    stages = results[name]
                    await one_round(running, raw, section, broker_pid, args=args, stages=stages)
                    print(
                        f"round {round_number + 1} {name}: decodeBLE {stages.floor[-1]:.0f} us, "
                        f"Decoder.decode {stages.decoder[-1]:.0f} us, Registry.observe "
                        f"{stages.registry[-1]:.0f} us, bridge path {stages.path[-1]:.0f} us "
                        f"({stages.path[-1] / stages.floor[-1]:.2f}x), {stages.rate[-1]:.0f} "
                        f"adverts/s, broker {stages.broker[-1]:.0f} us, "
                        f"{stages.published[-1]:.2f} messages/advert",
                        flush=True,
                    )
            if args.profile:
                profile_text = await profiled(running, all_raw, broker_pid, args)
            sent = running.bridge.sent
        counted = await subscriber.wait_count(sent, SETTLE)
    finally:
        subscriber.close()
    return results, (sent, counted), profile_text


async def profiled(
    running: Running, all_raw: dict[str, list[dict[str, Any]]], broker_pid: int, args: Any
) -> str:
    """One more path round of each mix under cProfile: the top functions by own time."""
    out = io.StringIO()
    for name, raw in all_raw.items():
        pairs = [bleak_pair(r) for r in raw]
        profiler = cProfile.Profile()
        profiler.enable()
        await path_round(running, pairs, broker_pid, args.count, args.seconds)
        profiler.disable()
        out.write(f"\n### {name} (cProfile, one path round, by own time)\n\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
    return out.getvalue()


# -- memory, in a child process --------------------------------------------------------------------


def maker(kind: str, seed: int) -> Callable[[int], dict[str, Any]]:
    """Advert i of kind ``phones`` or ``sensors``, each from a distinct random address."""
    rng = random.Random(seed)
    raw = [v["advert"] for v in vectors()]
    if kind == "phones":
        return lambda i: phone(rng)
    return lambda i: sensor(rng, i, raw)


async def memory_child(url: str, kind: str, devices: int, seconds: float) -> dict[str, Any]:
    section = BleBridgeConfig(enabled=True, period=60.0)
    warm = [v["advert"] for v in vectors()] + [phone(random.Random(0))]
    checkpoints = sorted({devices // 5, devices // 2, devices})
    figures: dict[str, Any] = {"kind": kind, "devices": devices, "rss_mb": {}}
    async with bridge_on(url, section) as running:
        await feed(running, lambda i: bleak_pair(warm[i]), len(warm), SETTLE)
        gc.collect()
        figures["rss_mb"][0] = rss_mb_self()
        make = maker(kind, seed=16)
        done = 0
        start = time.monotonic()
        cpu = 0.0
        for checkpoint in checkpoints:
            left = seconds - (time.monotonic() - start)
            before = time.process_time()
            done += await feed(
                running, lambda i: bleak_pair(make(i)), checkpoint - done, max(left, 0.0)
            )
            cpu += time.process_time() - before
            gc.collect()
            figures["rss_mb"][done] = rss_mb_self()
        figures["cpu_us"] = cpu / max(done, 1) * 1e6
        figures["seconds"] = round(time.monotonic() - start, 1)
        figures["counts"] = running.bridge.counts()
        figures["seen"] = len(running.bridge.registry.seen(time.time()))
    figures["registry"] = traced_registry(section, warm, maker(kind, seed=16), devices)
    again = maker(kind, seed=16)
    same = [parse_replay_line(json.dumps(again(i))) for i in range(done)]
    figures["floor_us"] = floor_stage(same, len(same), seconds)
    return figures


def rss_mb_self() -> float:
    import os

    return rss_mb(os.getpid())


def traced_registry(
    section: BleBridgeConfig,
    warm: Sequence[dict[str, Any]],
    make: Callable[[int], dict[str, Any]],
    devices: int,
) -> dict[str, float]:
    """A fresh registry (warmed with the vectors: its decoder's model list) given ``devices``
    adverts under tracemalloc: KB it holds at the end, and at its peak."""
    registry = Registry(section)
    for raw in warm:
        registry.observe(parse_replay_line(json.dumps(raw)), 0.0)
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for i in range(devices):
        registry.observe(parse_replay_line(json.dumps(make(i))), float(i))
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"kept_kb": (current - base) / 1024, "peak_kb": (peak - base) / 1024}


def memory(broker: Mosquitto, args: Any) -> list[dict[str, Any]]:
    found = []
    for kind in ("phones", "sensors"):
        command = [sys.executable, "-m", "bench.ble", "--memory-child", kind, "--broker"]
        command += [broker.url, "--devices", str(args.devices), "--seconds", str(args.seconds)]
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=args.seconds * 3 + 60,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"memory child {kind} failed:\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"memory {kind}: {json.dumps(figures)}", flush=True)
        found.append(figures)
    return found


# -- report ----------------------------------------------------------------------------------------


def stage_table(results: dict[str, Stages]) -> str:
    rows = []
    for name, s in results.items():
        floor = median(s.floor)
        ratios = [p / f for p, f in zip(s.path, s.floor, strict=True)]
        rows.append(
            [
                name,
                f"{floor:.0f}",
                f"{median(s.decoder):.0f} ({median(s.decoder) / floor:.2f}x)",
                f"{median(s.registry):.0f} ({median(s.registry) / floor:.2f}x)",
                f"{median(s.path):.0f} ({median(ratios):.2f}x)",
                ", ".join(f"{r:.2f}" for r in ratios),
                f"{median(s.rate):,.0f}",
                f"{median(s.broker):.0f}",
                f"{median(s.published):.2f}",
            ]
        )
    head = [
        "mix",
        "decodeBLE us",
        "Decoder.decode us",
        "Registry.observe us",
        "bridge path us (ratio)",
        "path/decodeBLE per round",
        "path adverts/s",
        "broker CPU us",
        "messages/advert",
    ]
    return markdown_table(head, rows)


def memory_table(found: Sequence[dict[str, Any]]) -> str:
    rows = []
    for figures in found:
        rss = {int(k): v for k, v in figures["rss_mb"].items()}
        before = rss[0]
        steps = ", ".join(f"{n:,}: +{v - before:.1f}" for n, v in sorted(rss.items()) if n)
        counts = figures["counts"]
        rows.append(
            [
                figures["kind"],
                f"{before:.1f}",
                steps,
                f"{figures['registry']['kept_kb']:.0f}",
                f"{figures['registry']['peak_kb']:.0f}",
                str(figures["seen"]),
                f"{figures['cpu_us']:.0f} / {figures['floor_us']:.0f} "
                f"({figures['cpu_us'] / figures['floor_us']:.2f}x)",
                f"{counts['decoded']}/{counts['undecoded']}/{counts['private']}",
                f"{figures['seconds']}",
            ]
        )
    head = [
        "devices",
        "RSS before MB",
        "RSS after N devices (MB more)",
        "registry kept KB",
        "registry peak KB",
        "seen listed",
        "bridge / decodeBLE us per advert",
        "decoded/undecoded/private",
        "s",
    ]
    return markdown_table(head, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="adverts per stage and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the stages alternating")
    parser.add_argument("--devices", type=int, default=5000, help="distinct devices (memory)")
    parser.add_argument("--seconds", type=float, default=60.0, help="at most, per phase")
    parser.add_argument("--profile", type=int, default=0, help="cProfile: show this many rows")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 adverts, 1 round")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--memory-child", choices=("phones", "sensors"), help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.memory_child:
        figures = asyncio.run(
            memory_child(args.broker, args.memory_child, args.devices, args.seconds)
        )
        print(json.dumps(figures))
        return
    if args.quick:
        args.count, args.rounds, args.devices, args.seconds = 500, 1, 500, 10.0
    info = machine()
    with Mosquitto() as broker:
        results, (sent, counted), profile_text = asyncio.run(throughput(broker, args))
        found = memory(broker, args)
    print()
    print(
        f"{info['date']}, {info['nproc']} x {info['cpu']}, Python {info['python']}; "
        f"{args.count} adverts per stage, {args.rounds} round(s); medians (us are CPU per advert)"
    )
    print(stage_table(results))
    print(
        f"\nmessages the bridge published: {sent:,}; counted by a subscriber: {counted:,}. "
        "Bridge path CPU: this process (all threads), broker not included (its own column)."
    )
    print()
    print(memory_table(found))
    if profile_text:
        print(profile_text)
    if args.json:
        data = {
            "machine": info,
            "stages": {name: asdict(s) for name, s in results.items()},
            "published": sent,
            "counted": counted,
            "memory": list(found),
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
