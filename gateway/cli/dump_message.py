"""``msgflo-dump-message``: print the next message(s) arriving on a queue, then exit.

    msgflo-dump-message --queue repeat/out               # one JSON value
    msgflo-dump-message --queue repeat/out --amount 3    # a JSON array of three

Payloads that are not JSON are printed as JSON strings (bytes decoded as UTF-8, invalid bytes
replaced), so the output is always one valid JSON document. On AMQP the queue name is an
outport's exchange (or an inport's): a private queue bound to it receives copies, so the tool
takes nothing from the participants and leaves no queue behind (the exchange of a port that
does not exist yet is declared, durable, as its participant will declare it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from gateway.broker import BrokerUrl, resolve_broker
from gateway.cli.options import EXIT_FAILURE, add_broker_option, run_tool
from gateway.participant.definition import Json
from gateway.participant.payload import Message
from gateway.transport import Delivery, open_transport

PROG = "msgflo-dump-message"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Print messages arriving on a queue.")
    add_broker_option(p)
    p.add_argument("--queue", required=True, help="queue (MQTT topic; wildcards allowed)")
    p.add_argument("--amount", type=int, default=1, help="how many messages (default 1)")
    p.add_argument("--timeout", type=float, help="give up after this many seconds (exit 1)")
    return p


def printable(payload: bytes) -> Json:
    message = Message.from_bytes(payload)
    return message.data if message.is_json else payload.decode("utf-8", errors="replace")


async def dump(url: BrokerUrl, args: argparse.Namespace) -> int:
    values: list[Json] = []
    done = asyncio.Event()

    def collect(delivery: Delivery) -> None:
        if len(values) < args.amount:
            values.append(printable(delivery.payload))
        if len(values) >= args.amount:
            done.set()

    async with open_transport(url, client_id="msgflo-dump-message-%i") as transport:
        # Observed, not consumed: on AMQP the port's own queue keeps its messages for its
        # participants (protocol.md 4.2: the original dump tool fails on an outport's exchange).
        await transport.observe(args.queue, collect, qos=1)
        try:
            async with asyncio.timeout(args.timeout):
                await done.wait()
        except TimeoutError:
            print(
                f"{PROG}: error: {len(values)} of {args.amount} messages on {args.queue!r} "
                f"within {args.timeout:g} s",
                file=sys.stderr,
            )
            return EXIT_FAILURE
    print(json.dumps(values[0] if args.amount == 1 else values))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.amount < 1:
        parser().error("--amount must be at least 1")
    return run_tool(PROG, lambda: asyncio.run(dump(resolve_broker(args.broker), args)))
