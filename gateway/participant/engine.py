"""Running participants on a broker: ``serve`` (asyncio), ``run`` (blocking), ``main`` (scripts).

All participants of one process share one broker connection, as in msgflo-python.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from gateway.broker import BrokerUrl, resolve_broker
from gateway.common.logs import configure_logging
from gateway.common.signals import run_daemon
from gateway.errors import GatewayError
from gateway.participant.definition import Json
from gateway.participant.discovery import period_from_env
from gateway.participant.participant import Participant
from gateway.transport import Transport, open_transport

log = logging.getLogger(__name__)

ENV_SHARED = "MSGFLO_SHARED"  # 1: share the role's messages with its other participants


async def serve(
    participants: Sequence[Participant],
    broker: str | BrokerUrl | None = None,
    *,
    iips: Mapping[str, Json] | None = None,
    discovery_period: float | None = None,
    transport: Transport | None = None,
) -> None:
    """Connect to ``broker`` and run ``participants`` until cancelled.

    ``broker`` defaults to ``$MSGFLO_BROKER``, then ``mqtt://localhost``; ``discovery_period``
    to ``$MSGFLO_DISCOVERY_PERIOD``, then 60 s. ``iips`` are delivered to every participant once,
    after it first connected. A ``transport`` given by the caller (not yet entered) is used
    instead of opening one for ``broker``, e.g. to tune its reconnect backoff.

    On MQTT the connection speaks MQTT 5 (shared participants, :meth:`Participant.share`,
    need it) unless the URL says ``protocolVersion=4`` or the broker knows only 3.1.1.
    """
    period = discovery_period if discovery_period is not None else period_from_env()
    if transport is None:
        url = broker if isinstance(broker, BrokerUrl) else resolve_broker(broker)
        first = participants[0].role if participants else "msgflo"
        client_id = f"{first}-%i"  # a persistent session resumes: see mqtt_client_id
        transport = open_transport(url, client_id=client_id)
    async with transport, asyncio.TaskGroup() as tg:
        for participant in participants:
            coro = participant.run_on(transport, discovery_period=period, iips=iips)
            tg.create_task(coro, name=participant.role)


def run(
    participants: Participant | Sequence[Participant],
    broker: str | BrokerUrl | None = None,
    *,
    iips: Mapping[str, Json] | None = None,
    discovery_period: float | None = None,
) -> None:
    """Blocking: run ``participants`` until SIGINT or SIGTERM, then disconnect cleanly."""
    group = [participants] if isinstance(participants, Participant) else list(participants)
    job = serve(group, broker, iips=iips, discovery_period=discovery_period)
    run_daemon(job)


def main(
    factory: Callable[[str], Participant],
    role: str | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Command-line entry for a participant script: ``python repeat.py ROLE [-i IIPS]``.

    Unlike msgflo-python, the program name is not mistaken for the role.
    """
    args = _parser(role is None).parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        iips = _parse_iips(args.iips)
        participant = factory(role or args.role)
        if args.shared or _env_flag(ENV_SHARED):
            participant.share()
        url = resolve_broker(args.broker)
        if args.prefetch is not None:
            url = url.with_option("prefetch", str(args.prefetch))
        period = args.discovery_period or period_from_env()
    except GatewayError as exc:
        print(f"{_prog()}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{participant.role}({participant.spec.component}) running on {url}", flush=True)
    run([participant], url, iips=iips, discovery_period=period)
    return 0


def _parser(needs_role: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_prog(), description="Run a msgflo participant.")
    if needs_role:
        parser.add_argument("role", help="the participant's role (its node name in the graph)")
    parser.add_argument("-i", "--iips", default="{}", help='initial packets: {"inport": data}')
    parser.add_argument("--broker", help="broker URL (default: $MSGFLO_BROKER or mqtt://localhost)")
    parser.add_argument("--discovery-period", type=float, help="seconds (default 60)")
    parser.add_argument(
        "--shared",
        action="store_true",
        help="share the work with the role's other participants (MQTT 5 shared subscription; "
        f"on AMQP they share the queue anyway); also ${ENV_SHARED}=1",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        help="AMQP: messages held unacknowledged at a time (default 2, as msgflo-nodejs); "
        "the same as ?prefetch=N in the broker URL",
    )
    return parser


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _parse_iips(text: str) -> dict[str, Json]:
    try:
        iips = json.loads(text)
    except ValueError as exc:
        raise GatewayError(f"--iips is not valid JSON: {exc}") from None
    if not isinstance(iips, dict):
        raise GatewayError('--iips must be a JSON object: {"inport": data}')
    return iips


def _prog() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "msgflo-python"
