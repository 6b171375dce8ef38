"""``msgflo-register``: announce foreign participants described in YAML (protocol.md 5, 7.2).

    msgflo-register --role door:components/DoorLock.yml --role vacuum:components/Vacuum.yml

Sends each role's discovery message every ``--interval / 2.2`` seconds, forever unless
``--forever false`` (then once). Unlike the original, ``--forever=false`` means false.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from gateway.broker import BrokerUrl, resolve_broker
from gateway.cli.options import EXIT_FAILURE, add_broker_option, boolean, run_tool
from gateway.common.logs import configure_logging
from gateway.common.signals import run_daemon
from gateway.errors import GatewayError
from gateway.participant.definition import ParticipantDefinition
from gateway.participant.discovery import DISCOVERY_TOPIC, announce_interval, encode_discovery
from gateway.participant.foreign import load_foreign
from gateway.transport import open_transport

PROG = "msgflo-register"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Announce foreign participants.")
    add_broker_option(p)
    p.add_argument(
        "--role",
        action="append",
        required=True,
        metavar="ROLE:FILE.yaml",
        help="a role and its YAML description (repeatable)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=60.0,
        help="discovery period in seconds; sent every interval/2.2 (default 60)",
    )
    p.add_argument(
        "--forever",
        type=boolean,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="keep announcing (default true); false: send once",
    )
    return p


def definitions(specs: Sequence[str]) -> list[ParticipantDefinition]:
    found = []
    for spec in specs:
        role, sep, file = spec.partition(":")
        if not sep or not role or not file:
            raise GatewayError(f"--role {spec!r}: expected ROLE:FILE.yaml")
        found.append(load_foreign(Path(file), role))
    return found


async def announce(
    url: BrokerUrl, found: list[ParticipantDefinition], args: argparse.Namespace
) -> int:
    messages = [(d.id, encode_discovery(d)) for d in found]
    async with open_transport(url, client_id=f"{PROG}-%i") as transport:
        try:
            async with asyncio.timeout(30):
                await transport.wait_connected()
        except TimeoutError:
            print(f"{PROG}: error: could not reach {url} within 30 s", flush=True)
            return EXIT_FAILURE
        while True:
            for participant_id, message in messages:
                transport.publish(DISCOVERY_TOPIC, message, qos=1)
                print(f"Sent discovery message for {participant_id}", flush=True)
            await transport.flush()
            if not args.forever:
                return 0
            await asyncio.sleep(announce_interval(args.interval))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()

    def job() -> int:
        url = resolve_broker(args.broker)
        found = definitions(args.role)
        status = [0]

        async def run() -> None:
            status[0] = await announce(url, found, args)

        run_daemon(run())
        return status[0]

    return run_tool(PROG, job)
