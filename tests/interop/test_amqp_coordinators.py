"""Coordinators on one RabbitMQ, both ways: ours wiring msgflo-nodejs, the original wiring ours.

1. Our coordinator (``CoordinatorService`` in-process, amqp URL) on the graph
   ``first(Tag) -> nodejs(Repeat) -> last(Tag)``: ``nodejs`` is the unmodified Repeat example of
   msgflo-nodejs 0.11.1 under its ``msgflo-nodejs`` command (amqplib 0.5); ``first`` and
   ``last`` are our in-process participants with their default queue names (``role/port``),
   so only the coordinator's bindings can join them to nodejs's ``role.PORT`` names. Checked:
   a message published to first's inport comes out of last tagged ``first``, ``last``; the two
   bindings ``first/out -> nodejs.IN`` and ``nodejs.OUT -> last/in`` exist on the broker.
2. The original coordinator (npm msgflo 0.12.3, ``--broker amqp://...``) on the graph
   ``'hello' -> IN b(PythonRepeat)``, ``a(PythonRepeat) OUT -> IN b``; ``a`` and ``b`` are
   examples/repeat.py under our ``msgflo-python``. Checked: the original binds ``a/out`` to
   ``b/in``, the IIP and then a message published to a's inport come out of b's outport, and
   nobody crashed. The original binds an edge as soon as both ends are discovered, and dies
   on the 404 if the source exchange does not exist yet (amqplib channel error, rethrown):
   the test declares nothing of a's, so a must have declared its outport before announcing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import aio_pika
import pytest

from gateway.broker import parse_broker_url
from gateway.coordinator.service import CoordinatorService, ServiceConfig
from gateway.graph import parse_fbp
from gateway.mosquitto import LOOPBACK, free_port
from tests.coordinator.test_amqp_coordinator import bound, running
from tests.interop.support import (
    NODE_MODULES,
    Child,
    Tag,
    next_body,
    node_tools,
    our_participants,
    python_repeats,
    within,
)
from tests.support.amqp_broker import RabbitMQ

pytestmark = pytest.mark.integration

SENT = {"path": [], "reading": 23.5, "ok": True, "unit": "°C"}
START_TIMEOUT = 40.0  # node loads msgflo-nodejs / msgflo in seconds on a busy machine
DISCOVERY_PERIOD = 2  # seconds, for our msgflo-python participants
WAIT_TIMEOUT = 30  # the original's --wait-timeout, seconds


async def tap(channel: aio_pika.abc.AbstractChannel, exchange: str) -> aio_pika.abc.AbstractQueue:
    """An exclusive queue of the test's own on the outport (fanout exchange) ``exchange``,
    declared durable as its participant declares it."""
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.FANOUT, durable=True)
    )
    return queue


async def test_our_coordinator_wires_a_nodejs_participant(
    rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    tools = node_tools()
    assert (NODE_MODULES / "amqplib").is_dir(), "amqplib missing; ./bootstrap.sh setup installs it"
    token = secrets.token_hex(3)
    first, nodejs, last = f"first{token}", f"nodejs{token}", f"last{token}"
    graph = parse_fbp(f"{first}(Tag) OUT -> IN {nodejs}(Repeat)\n{nodejs} OUT -> IN {last}(Tag)")
    argv: list[str | Path] = [tools.node, tools.msgflo_nodejs, "--name", nodejs]
    argv += ["--broker", rabbitmq.url, tools.nodejs_repeat]
    child = Child("nodejs", argv, workdir=tmp_path)
    service = CoordinatorService(ServiceConfig(broker=parse_broker_url(rabbitmq.url)), graph)
    connection = await within(20, aio_pika.connect(rabbitmq.url), "a connection to RabbitMQ")
    async with (
        connection,
        child,
        our_participants(rabbitmq.url, Tag(first), Tag(last)),
        running(service) as coordinator,
    ):
        channel = await connection.channel()
        answers = await tap(channel, f"{last}/out")
        # node loads msgflo-nodejs in seconds: wait for its discovery as long as for a start.
        waiting = bound(coordinator, 2, timeout=START_TIMEOUT + 5)
        await within(START_TIMEOUT, waiting, "both edges bound", [child])
        queues = {
            (s.edge.src.process, s.edge.tgt.process): (s.src_queue, s.tgt_queue)
            for s in coordinator.edge_states()
        }
        # msgflo-nodejs names its queues role.PORT; ours are role/port.
        assert queues == {
            (first, nodejs): (f"{first}/out", f"{nodejs}.IN"),
            (nodejs, last): (f"{nodejs}.OUT", f"{last}/in"),
        }
        inport = await channel.declare_exchange(
            f"{first}/in", aio_pika.ExchangeType.FANOUT, durable=True
        )
        await inport.publish(aio_pika.Message(json.dumps(SENT).encode()), routing_key="")
        answer = await within(30, next_body(answers), "the answer of last", [child])
        assert child.running, child.describe()
        assert json.loads(answer) == {**SENT, "path": [first, last]}
        found = await asyncio.to_thread(rabbitmq.bindings)
    assert {(f"{first}/out", f"{nodejs}.IN"), (f"{nodejs}.OUT", f"{last}/in")} <= found


def original_coordinator(rabbitmq: RabbitMQ, workdir: Path, graph: str) -> tuple[Child, str]:
    """The original coordinator on ``graph``, and the line it prints once the graph is set up."""
    (workdir / "graph.fbp").write_text(graph)
    # Its component library is read from package.json in the working directory; this one
    # declares no components, so the original starts nothing and waits for discovery.
    (workdir / "package.json").write_text('{"name": "msgflo-gateway-interop"}\n')
    port = free_port()
    args = ["--graph", "graph.fbp", "--broker", rabbitmq.url, "--host", LOOPBACK]
    args += ["--port", str(port), "--wait-timeout", str(WAIT_TIMEOUT)]
    tools = node_tools()
    child = Child("msgflo-original", [tools.node, tools.msgflo, *args], workdir=workdir)
    return child, f"msgflo started on ws://{LOOPBACK}:{port}"


async def until_started(original: Child, started: str) -> None:
    while started not in original.output():
        if not original.running:
            cause = ""
            if "NOT_FOUND - no exchange" in original.output():
                cause = " (it binds an outport exchange as soon as its owner is discovered)"
            pytest.fail(f"the original exited{cause}\n{original.describe()}")
        await asyncio.sleep(0.05)


async def test_the_original_coordinator_wires_our_participants(
    rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    token = secrets.token_hex(3)
    a, b = f"a{token}", f"b{token}"
    graph = f"'hello' -> IN {b}(PythonRepeat)\n{a}(PythonRepeat) OUT -> IN {b}\n"
    original, started = original_coordinator(rabbitmq, tmp_path, graph)
    ours = python_repeats(rabbitmq.url, (a, b), tmp_path, DISCOVERY_PERIOD)
    children = [original, *ours]
    connection = await within(20, aio_pika.connect(rabbitmq.url), "a connection to RabbitMQ")
    async with connection:
        channel = await connection.channel()
        # The original reads every announcement left in the shared fbp queue by earlier tests
        # and binds any two ports with one queue name: only this test's announcements count.
        await (await channel.declare_queue("fbp", durable=True)).purge()
        # Nothing here declares a's outport exchange: the original's bind needs a's own.
        from_b = await tap(channel, f"{b}/out")
        async with original, ours[0], ours[1]:
            await within(WAIT_TIMEOUT + 10, until_started(original, started), started, children)
            found = await asyncio.to_thread(rabbitmq.bindings)
            assert (f"{a}/out", f"{b}/in") in found
            # The IIP went to b's inport queue when b was discovered.
            echo = await within(20, next_body(from_b), "the IIP's echo on b's outport", children)
            assert json.loads(echo) == "hello"
            sent = {**SENT, "token": token}
            message = aio_pika.Message(json.dumps(sent).encode())
            await channel.default_exchange.publish(message, routing_key=f"{a}/in")
            through = await within(20, next_body(from_b), "a's message on b's outport", children)
            assert json.loads(through) == sent
            for child in children:
                assert child.running, child.describe()
    for child in ours:
        assert "Traceback" not in child.output(), child.describe()
