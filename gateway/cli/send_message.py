"""``msgflo-send-message``: publish one message to a queue and exit.

    msgflo-send-message --queue repeat/in --json '{"hello": "world"}'
    msgflo-send-message --queue lamp/on --raw true        # bytes as given, no JSON encoding

Works, unlike the original's (msgflo/msgflo#180). Exits 1 if the broker cannot be reached within
``--timeout`` seconds, 2 on invalid input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from gateway.broker import BrokerUrl, resolve_broker
from gateway.cli.options import EXIT_FAILURE, add_broker_option, run_tool
from gateway.errors import GatewayError
from gateway.participant.definition import check_queue
from gateway.transport import open_transport

PROG = "msgflo-send-message"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Send one message to a queue.")
    add_broker_option(p)
    p.add_argument("--queue", required=True, help="queue (MQTT topic) to send to")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--json", help="message as JSON text; sent JSON-encoded")
    data.add_argument("--raw", help="message text sent byte-for-byte (e.g. true, 23.5, open)")
    p.add_argument("--qos", type=int, choices=(0, 1, 2), default=1, help="MQTT QoS (default 1)")
    p.add_argument("--retain", action="store_true", help="ask the broker to retain it")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to reach the broker")
    return p


def payload_of(args: argparse.Namespace) -> bytes:
    if args.raw is not None:
        return str(args.raw).encode("utf-8")
    try:
        value = json.loads(args.json)
    except ValueError as exc:
        raise GatewayError(f"--json is not valid JSON: {exc}") from None
    return json.dumps(value).encode("utf-8")


async def send(url: BrokerUrl, queue: str, payload: bytes, args: argparse.Namespace) -> int:
    async with open_transport(url, client_id="msgflo-send-message-%i") as transport:
        try:
            async with asyncio.timeout(args.timeout):
                await transport.wait_connected()
                transport.publish(queue, payload, qos=args.qos, retain=args.retain)
                await transport.flush()
        except TimeoutError:
            print(
                f"{PROG}: error: could not deliver to {url} within {args.timeout:g} s",
                file=sys.stderr,
            )
            return EXIT_FAILURE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def job() -> int:
        url = resolve_broker(args.broker)
        queue = check_queue(args.queue, "--queue")
        return asyncio.run(send(url, queue, payload_of(args), args))

    return run_tool(PROG, job)
