"""``msgflo-ble``: announce adopted BLE sensors as msgflo participants; ``msgflo-ble scan``.

    msgflo-ble --broker mqtt://localhost --config /etc/msgflo/gateway.yaml
    msgflo-ble scan --seconds 30
    msgflo-ble --replay examples/ble-replay.jsonl --loop     # no radio: recorded adverts

The first runs the bridge with the ``bridges.ble`` section of ``gateway.yaml`` (without
``--config``, the defaults: nothing is adopted, devices are only listed as seen), through
``gateway.bridges.run`` as the appliance's ``msgflo-bridge@ble`` does. ``scan`` needs no
broker: it prints each device whose adverts decode, once, with the config line that adopts it.
``--replay FILE`` feeds recorded adverts (JSON lines, docs/ble.md) through the same pipeline
instead of the radio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from gateway.bridges import run
from gateway.bridges.ble import device_side
from gateway.bridges.ble.advert import Advert
from gateway.bridges.ble.decode import details
from gateway.bridges.ble.registry import Registry
from gateway.bridges.ble.sources import BleakSource, ReplaySource, Source
from gateway.bridges.host import BridgeHost
from gateway.bridges.seen import adopt_line
from gateway.broker import BrokerUrl, resolve_broker
from gateway.cli.options import (
    add_broker_option,
    add_config_option,
    add_flag,
    run_bridge_tool,
)
from gateway.common.signals import run_daemon
from gateway.config import BleBridgeConfig, load_config
from gateway.errors import GatewayError
from gateway.transport import open_transport

PROG = "msgflo-ble"
SCAN_SECONDS = 30.0
MAX_LISTED = 10_000  # devices one scan prints (each once)


def _common(p: argparse.ArgumentParser) -> None:
    add_config_option(p, "ble")
    p.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="recorded adverts (JSON lines) instead of the Bluetooth adapter",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="replay this many times faster than recorded (default 1)",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Announce adopted BLE sensors as msgflo participants "
        "('msgflo-ble scan': list the sensors around, no broker needed).",
    )
    add_broker_option(p)
    _common(p)
    add_flag(p, "--loop", "replay the file over and over")
    return p


def scan_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} scan",
        description="Print each BLE device whose adverts decode, with the config line that "
        "adopts it.",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=SCAN_SECONDS,
        help=f"how long to listen (default {SCAN_SECONDS:g}; a replay ends at its end)",
    )
    _common(p)
    return p


def ble_config(config: Path | None) -> BleBridgeConfig:
    return load_config(config).bridges.ble if config else BleBridgeConfig()


def source_for(section: BleBridgeConfig, args: argparse.Namespace, *, loop: bool = False) -> Source:
    if args.replay is None:
        return BleakSource(section)
    if not args.replay.is_file():
        raise GatewayError(f"--replay {args.replay}: no such file")
    if not args.speed > 0:
        raise GatewayError(f"--speed {args.speed:g}: expected a number above 0")
    return ReplaySource(args.replay, repeat=loop, speed=args.speed)


async def serve(section: BleBridgeConfig, broker: BrokerUrl, source: Source) -> None:
    """``gateway.bridges.run.serve`` with another advert source (a replay)."""
    async with open_transport(broker, client_id=run.client_id("ble")) as transport:
        await BridgeHost("ble", transport, period=section.period).run(device_side(section, source))


async def scan(
    section: BleBridgeConfig, source: Source, seconds: float, out: TextIO | None = None
) -> int:
    """Print each device that decodes, once; the number printed."""
    out = out or sys.stdout
    registry = Registry(section)
    listed: set[str] = set()

    def heard(advert: Advert) -> None:
        assert out is not None
        if advert.address in listed or len(listed) >= MAX_LISTED:
            return
        reading = registry.decoder.decode(advert)
        if reading is None:
            return
        listed.add(advert.address)
        role = registry.role_for(advert, reading.model.id)
        name = f" {advert.name!r}" if advert.name else ""
        values = details(reading, advert.rssi)
        print(f"{advert.address} {reading.model.id}{name}: {values}", file=out)
        if role is None:
            print(f"  adopt with: {adopt_line('ble', advert.address)}", file=out)
        else:
            print(f"  adopted by the config as {role}", file=out)
        out.flush()

    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await source.run(heard)
    print(f"{len(listed)} decodable device(s) in {time.monotonic() - started:.0f} s", file=out)
    return len(listed)


def main(argv: Sequence[str] | None = None) -> int:
    def scan_job(args: argparse.Namespace) -> int:
        section = ble_config(args.config)
        source = source_for(section, args)
        asyncio.run(scan(section, source, args.seconds))
        return 0

    def job(args: argparse.Namespace) -> int:
        section = ble_config(args.config)
        broker = resolve_broker(args.broker)
        if args.replay is None:
            run.run_bridge("ble", section, broker)
        else:
            run_daemon(serve(section, broker, source_for(section, args, loop=args.loop)))
        return 0

    return run_bridge_tool(PROG, argv, (parser(), job), ("scan", scan_parser(), scan_job))
