"""msgflo-nodejs 0.11.1 and our participants on one RabbitMQ (issue 8, item 4: interop on AMQP).

The Repeat example shipped in msgflo-nodejs runs unmodified under its own ``msgflo-nodejs``
command (with amqplib 0.5, the AMQP client it was written for), between two of our participants:
``first(Tag) -> nodejs(Repeat) -> last(Tag)``. There is no coordinator: on AMQP a participant
whose outport queue is named like another's inport queue publishes straight into it (the
outport's fanout exchange is the inport's exchange, bound to its queue), so giving ``first`` the
inport queue msgflo-nodejs announced, and ``last`` its outport queue, makes the chain with the
broker objects both libraries declare. One message crosses ours -> theirs and theirs -> ours.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from gateway.participant import Message, Participant
from tests.interop.support import (
    NODE_MODULES,
    Child,
    next_body,
    node_tools,
    our_participants,
    within,
)
from tests.support.amqp_broker import RabbitMQ
from tests.transport.test_transport_amqp import wait_discovery

pytestmark = pytest.mark.integration

SENT = {"path": [], "reading": 23.5, "ok": True, "unit": "°C"}
START_TIMEOUT = 40.0


class QueueTag(Participant):
    """Adds its role to ``path``; its queue names are given (they join the foreign ones)."""

    def __init__(self, role: str, inqueue: str, outqueue: str) -> None:
        super().__init__(
            {
                "component": "Tag",
                "inports": [{"id": "in", "type": "object", "queue": inqueue}],
                "outports": [{"id": "out", "type": "object", "queue": outqueue}],
            },
            role,
        )

    def process(self, inport: str, msg: Message) -> None:
        data = msg.data
        assert isinstance(data, dict), data
        self.send("out", {**data, "path": [*data.get("path", []), self.role]})
        self.ack(msg)


def ports(announced: dict[str, Any], kind: str) -> dict[str, str]:
    return {p["id"]: p["queue"] for p in announced["payload"][kind]}


async def test_nodejs_repeat_between_our_participants(rabbitmq: RabbitMQ, tmp_path: Path) -> None:
    tools = node_tools()
    assert (NODE_MODULES / "amqplib").is_dir(), "amqplib missing; ./bootstrap.sh setup installs it"
    token = secrets.token_hex(3)
    role = f"nodejs{token}"
    argv: list[str | Path] = [
        *(tools.node, tools.msgflo_nodejs),
        *("--name", role, "--broker", rabbitmq.url),
    ]
    nodejs = Child("nodejs", [*argv, tools.nodejs_repeat], workdir=tmp_path)
    connection = await within(20, aio_pika.connect(rabbitmq.url), "a connection to RabbitMQ")
    async with connection, nodejs:
        channel = await connection.channel()
        fbp = await channel.declare_queue("fbp", durable=True)
        announced = await within(START_TIMEOUT, wait_discovery(fbp, role), "discovery", [nodejs])
        assert announced["payload"]["component"] == "Repeat"
        inqueue, outqueue = ports(announced, "inports")["in"], ports(announced, "outports")["out"]
        first = QueueTag("first", f"first{token}.IN", inqueue)
        last = QueueTag("last", outqueue, f"last{token}.OUT")
        # Our probe: a queue of its own on last's outport exchange, and first's inport exchange.
        answers = await channel.declare_queue(f"answers{token}", exclusive=True)
        out = await channel.declare_exchange(
            f"last{token}.OUT", aio_pika.ExchangeType.FANOUT, durable=True
        )
        await answers.bind(out)
        inport = await channel.declare_exchange(
            f"first{token}.IN", aio_pika.ExchangeType.FANOUT, durable=True
        )
        async with our_participants(rabbitmq.url, first, last):
            await inport.publish(aio_pika.Message(json.dumps(SENT).encode()), routing_key="")
            answer = await within(30, next_body(answers), "the answer of last", [nodejs])
    assert json.loads(answer) == {**SENT, "path": ["first", "last"]}
