"""``msgflo-rf433``: announce adopted 433 MHz devices as msgflo participants; ``heard``.

    msgflo-rf433 --broker mqtt://localhost --config /etc/msgflo-gateway/gateway.yaml
    msgflo-rf433 heard --seconds 120
    msgflo-rf433 --replay samples/weather.ook            # no dongle: recorded samples, looped

The first runs the bridge with the ``bridges.rf433`` section of ``gateway.yaml`` (without
``--config``, the defaults: nothing is adopted, devices are only listed as heard) through
``gateway.bridges.run``, as the appliance's ``msgflo-bridge@rf433`` does. ``heard`` needs no
broker: it runs rtl_433 and prints each device heard, once, with the config line that adopts it
(or the role the config gives it). ``--replay FILE...`` makes rtl_433 read sample files
(``-r``) instead of the dongle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from gateway.bridges import run
from gateway.bridges.rf433.child import Rtl433
from gateway.bridges.rf433.events import RadioEvent
from gateway.bridges.rf433.registry import Registry
from gateway.bridges.seen import adopt_line
from gateway.broker import resolve_broker
from gateway.cli.options import add_broker_option, add_config_option, run_bridge_tool
from gateway.config import Rf433BridgeConfig, load_config
from gateway.errors import GatewayError

PROG = "msgflo-rf433"
HEARD_SECONDS = 120.0  # weather sensors send every 30-60 s; two rounds of them
MAX_LISTED = 10_000


def _common(p: argparse.ArgumentParser) -> None:
    add_config_option(p, "rf433")
    p.add_argument(
        "--replay",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="sample files rtl_433 reads (-r) instead of the dongle",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Announce adopted 433 MHz devices as msgflo participants "
        "('msgflo-rf433 heard': list the devices around, no broker needed).",
    )
    add_broker_option(p)
    _common(p)
    return p


def heard_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} heard",
        description="Print each 433 MHz device heard, with the config line that adopts it.",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=HEARD_SECONDS,
        help=f"how long to listen (default {HEARD_SECONDS:g}; a replay ends at its end)",
    )
    _common(p)
    return p


def rf433_config(config: Path | None, replay: Sequence[Path] | None) -> Rf433BridgeConfig:
    section = load_config(config).bridges.rf433 if config else Rf433BridgeConfig()
    for path in replay or ():
        if not path.is_file():
            raise GatewayError(f"--replay {path}: no such file")
    return dataclasses.replace(section, replay=tuple(replay)) if replay else section


async def heard(
    section: Rf433BridgeConfig, seconds: float, out: TextIO | None = None, *, once: bool = False
) -> int:
    """Print each device heard, once; the number printed. ``once``: a replay's single pass."""
    out = out or sys.stdout
    registry = Registry(section)
    listed: set[str] = set()

    def deliver(event: RadioEvent) -> None:
        assert out is not None
        key = event.key
        if key in listed or len(listed) >= MAX_LISTED:
            return
        listed.add(key)
        role = registry.role_for(key)
        print(f"{key} {event.model}: {event.details()}", file=out)
        if role is None:
            print(f"  adopt with: {adopt_line('rf433', key)}", file=out)
        else:
            print(f"  adopted by the config as {role}", file=out)
        out.flush()

    child = Rtl433(section)
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            if once:
                await child.run_once(deliver)
            else:
                await child.run(deliver)
    print(f"{len(listed)} device(s) heard in {time.monotonic() - started:.0f} s", file=out)
    return len(listed)


def main(argv: Sequence[str] | None = None) -> int:
    def heard_job(args: argparse.Namespace) -> int:
        section = rf433_config(args.config, args.replay)
        asyncio.run(heard(section, args.seconds, once=bool(section.replay)))
        return 0

    def job(args: argparse.Namespace) -> int:
        section = rf433_config(args.config, args.replay)
        run.run_bridge("rf433", section, resolve_broker(args.broker))
        return 0

    return run_bridge_tool(PROG, argv, (parser(), job), ("heard", heard_parser(), heard_job))
