"""What the coordinator binds on AMQP, and its record of it on the broker.

A binding is durable: it outlives the coordinator that made it. So that a coordinator started
on an edited graph removes the edges the previous one bound and the new graph no longer has,
the coordinator keeps the set of bindings it made in a record on the broker itself: one
persistent message in the durable queue ``.msgflo-coordinator-bindings-<name>`` (``x-max-length``
1, so each new record replaces the last). ``name`` is the deployment's (the graph's name), so
coordinators of different graphs on one vhost leave each other's bindings alone. On the broker
rather than on disk because a cloud coordinator often has no disk that survives it.

The record's format (pure functions, tested without a broker): a JSON object
``{"bindings": [[exchange, queue, dead], ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel

from gateway.coordinator.wiring import EdgeKind, EdgeState
from gateway.transport.amqp import PERSISTENT, dead_letter_exchange

RECORD_PREFIX = ".msgflo-coordinator-bindings-"


@dataclass(frozen=True, order=True)
class Binding:
    """Queue ``queue`` bound to fanout exchange ``exchange`` with routing key ``''``.
    ``dead``: the exchange is a dead-letter exchange the coordinator declared."""

    exchange: str
    queue: str
    dead: bool = False


def binding_of(state: EdgeState) -> Binding | None:
    """The broker binding that carries a resolved edge (``None``: nothing to bind)."""
    if state.src_queue is None or state.tgt_queue is None:
        return None
    if state.kind is EdgeKind.DEADLETTER:
        return Binding(dead_letter_exchange(state.src_queue), state.tgt_queue, dead=True)
    if state.same_topic:  # the inport's own exchange already feeds its queue
        return None
    return Binding(state.src_queue, state.tgt_queue)


def record_queue(name: str) -> str:
    return f"{RECORD_PREFIX}{name}"[:255]  # AMQP short string


def encode_record(bindings: Iterable[Binding]) -> bytes:
    rows = [[b.exchange, b.queue, b.dead] for b in sorted(bindings)]
    return json.dumps({"bindings": rows}, separators=(",", ":")).encode()


def decode_record(body: bytes) -> set[Binding]:
    """The bindings in a record; ``ValueError`` saying what is wrong with it."""
    try:
        rows = json.loads(body)["bindings"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a bindings record ({exc!r})") from None
    if not isinstance(rows, list):
        raise ValueError("'bindings' is not a list")
    found = set()
    for row in rows:
        ok = isinstance(row, list) and len(row) == 3
        if not ok or not (isinstance(row[0], str) and isinstance(row[1], str)):
            raise ValueError(f"bad binding {row!r}")
        if not isinstance(row[2], bool):
            raise ValueError(f"bad binding {row!r}")
        found.add(Binding(row[0], row[1], row[2]))
    return found


async def _declare_record(channel: AbstractChannel, name: str) -> aio_pika.abc.AbstractQueue:
    return await channel.declare_queue(
        record_queue(name), durable=True, arguments={"x-max-length": 1}
    )


async def read_record(channel: AbstractChannel, name: str) -> bytes | None:
    """The last record's body, left in its queue; None when there is none."""
    queue = await _declare_record(channel, name)
    message = await queue.get(no_ack=False, fail=False)
    if message is None:
        return None
    await message.nack(requeue=True)
    return message.body


async def write_record(channel: AbstractChannel, name: str, bindings: Iterable[Binding]) -> None:
    """Replace the record (the queue keeps only the newest message)."""
    queue = await _declare_record(channel, name)
    message = aio_pika.Message(encode_record(bindings), delivery_mode=PERSISTENT)
    await channel.default_exchange.publish(message, routing_key=queue.name)
