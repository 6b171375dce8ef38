"""The AMQP transport on a real RabbitMQ: the objects msgflo-nodejs declares, acks and
dead-lettering, prefetch, persistence, Nagle, credentials, and a participant on amqp://."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from gateway.broker import parse_broker_url
from gateway.participant import Message, Participant, serve
from gateway.transport import open_transport
from gateway.transport.amqp import AmqpTransport
from gateway.transport.backoff import Backoff
from gateway.transport.base import Delivery
from tests.support.amqp_broker import RabbitMQ
from tests.support.inbox import Inbox
from tests.transport.test_transport_contract import unique

pytestmark = pytest.mark.integration

FAST = Backoff(initial=0.1, maximum=0.5)


@contextlib.asynccontextmanager
async def amqp(rabbitmq: RabbitMQ, **kwargs: Any) -> AsyncIterator[AmqpTransport]:
    async with AmqpTransport(parse_broker_url(rabbitmq.url), backoff=FAST, **kwargs) as t:
        await asyncio.wait_for(t.wait_connected(), 10)
        yield t


def rows(text: str) -> set[tuple[str, ...]]:
    return {tuple(line.split("\t")) for line in text.splitlines() if line}


async def ctl(rabbitmq: RabbitMQ, *args: str) -> set[tuple[str, ...]]:
    return rows(await asyncio.to_thread(rabbitmq.ctl, *args))


async def test_amqp_urls_open_the_amqp_transport(rabbitmq: RabbitMQ) -> None:
    assert isinstance(open_transport(parse_broker_url(rabbitmq.url)), AmqpTransport)


async def test_declares_the_objects_msgflo_nodejs_declares(rabbitmq: RabbitMQ) -> None:
    inq, outq = unique("decl.IN"), unique("decl.OUT")
    async with amqp(rabbitmq) as t:
        await t.subscribe(inq, lambda d: None)
        t.publish(outq, b"x")
        t.publish("fbp", b"{}")
        await asyncio.wait_for(t.flush(), 5)
    queues = await ctl(rabbitmq, "list_queues", "name", "durable", "auto_delete", "arguments")
    assert (inq, "true", "false", f'[{{"x-dead-letter-exchange","dead-{inq}"}}]') in queues
    assert ("fbp", "true", "false", "[]") in queues
    assert not [q for q in queues if q[0] == outq]  # an outport is an exchange, not a queue
    exchanges = await ctl(rabbitmq, "list_exchanges", "name", "type", "durable", "auto_delete")
    assert (inq, "fanout", "true", "false") in exchanges
    assert (outq, "fanout", "true", "false") in exchanges
    bindings = await ctl(
        rabbitmq, "list_bindings", "source_name", "destination_name", "routing_key"
    )
    assert (inq, inq, "") in bindings


async def test_a_failing_handler_dead_letters_the_message(rabbitmq: RabbitMQ) -> None:
    name, dead = unique("dl"), Inbox()

    def fail(delivery: Delivery) -> None:
        raise ValueError(f"cannot handle {delivery.payload!r}")

    async with amqp(rabbitmq) as t:
        # As noflo-runtime-msgflo --deadletter: an inport queue named dead-<queue>, whose
        # same-named fanout exchange is the dead-letter exchange of <queue>.
        await t.subscribe(f"dead-{name}", dead)
        await t.subscribe(name, fail)
        t.publish(name, b"poison")
        assert await dead.wait_count(1) == [b"poison"]


async def test_prefetch_limits_unacknowledged_deliveries(rabbitmq: RabbitMQ) -> None:
    name, held = unique("prefetch"), []
    got = asyncio.Event()

    def hold(delivery: Delivery) -> None:
        held.append(delivery)
        got.set()

    async with amqp(rabbitmq) as pub, amqp(rabbitmq, prefetch=2) as sub:
        await sub.subscribe(name, hold, manual_ack=True)
        for n in range(10):
            pub.publish(name, str(n).encode())
        await asyncio.wait_for(pub.flush(), 5)
        await asyncio.sleep(0.5)  # time for more than two to arrive if prefetch were ignored
        assert [d.payload for d in held] == [b"0", b"1"]
        sub.ack(held[0])
        sub.ack(held[0])  # a second ack of the same delivery is ignored, not a channel error
        got.clear()
        await asyncio.wait_for(got.wait(), 5)
        await asyncio.sleep(0.3)
        assert [d.payload for d in held] == [b"0", b"1", b"2"]
        for delivery in held[1:]:
            sub.ack(delivery)
        async with asyncio.timeout(5):
            while len(held) < 10:
                sub.ack(held[-1])
                got.clear()
                await got.wait()
        assert sub.connected


async def test_prefetch_from_the_url_and_the_participant_flag(rabbitmq: RabbitMQ) -> None:
    url = parse_broker_url(rabbitmq.url).with_option("prefetch", "7")
    assert AmqpTransport(url).prefetch == 7
    assert AmqpTransport(url, prefetch=3).prefetch == 3  # given in code wins
    assert AmqpTransport(parse_broker_url(rabbitmq.url)).prefetch == 2  # msgflo-nodejs
    async with AmqpTransport(url, client_id="prefetch-7", backoff=FAST) as t:
        await asyncio.wait_for(t.wait_connected(), 10)
        await t.subscribe(unique("prefetch7"), lambda d: None)
        channels = await ctl(rabbitmq, "list_channels", "connection", "prefetch_count")
    assert any(count == "7" for _, count in channels)


async def test_persistent_messages_survive_a_broker_restart(rabbitmq: RabbitMQ) -> None:
    name, inbox = unique("persist"), Inbox()
    async with amqp(rabbitmq) as t:
        await t.subscribe(name, inbox)
        await t.unsubscribe(name)  # the durable queue stays and collects what follows
        t.publish(name, b"transient")
        t.publish(name, b"persistent", persistent=True)
        await asyncio.wait_for(t.flush(), 5)
    await rabbitmq.restart_async()
    async with amqp(rabbitmq) as t:
        await t.subscribe(name, inbox)
        assert await inbox.wait_count(1) == [b"persistent"]
        await asyncio.sleep(0.2)
    assert inbox.got == [b"persistent"]


async def test_sockets_to_the_broker_have_nagle_off(rabbitmq: RabbitMQ) -> None:
    async with amqp(rabbitmq):
        checked = broker_socket_nodelay(rabbitmq.port)
    assert checked and all(checked)


def broker_socket_nodelay(port: int) -> list[bool]:
    """TCP_NODELAY of every socket of this process connected to ``port`` (black box: the
    transport does not expose its socket)."""
    found = []
    for fd in map(int, os.listdir("/proc/self/fd")):
        with contextlib.suppress(OSError):
            sock = socket.socket(fileno=fd)
            try:
                if sock.family == socket.AF_INET and sock.getpeername()[1] == port:
                    found.append(bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
            finally:
                sock.detach()  # the descriptor belongs to the transport: never close it
    return found


async def test_wrong_password_is_refused_logged_and_retried(
    rabbitmq: RabbitMQ, caplog: pytest.LogCaptureFixture
) -> None:
    bad = parse_broker_url(f"amqp://{rabbitmq.user}:wrong-pw@127.0.0.1:{rabbitmq.port}/")
    async with AmqpTransport(bad, backoff=FAST) as t:
        await asyncio.sleep(1.0)
        assert not t.connected
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "retry in" in warnings[0]
    assert "wrong-pw" not in " ".join(warnings)


class Repeat(Participant):
    """As examples/repeat.py, with queue names of its own (the broker is shared)."""

    def __init__(self, role: str) -> None:
        super().__init__(
            {
                "component": "PythonRepeat",
                "inports": [{"id": "in", "queue": f"{role}.IN"}],
                "outports": [{"id": "out", "queue": f"{role}.OUT"}],
            },
            role,
        )

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", msg.data)
        self.ack(msg)


async def test_a_participant_on_amqp_answers_and_announces(rabbitmq: RabbitMQ) -> None:
    role = f"repeat-{secrets.token_hex(3)}"
    answers = Inbox()
    connection = await aio_pika.connect(rabbitmq.url)
    async with connection, amqp(rabbitmq) as probe:
        channel = await connection.channel()
        fbp = await channel.declare_queue("fbp", durable=True)
        # Read what the Repeat sends on its outport exchange through a queue of our own.
        await probe.subscribe(f"{role}.answers", answers)
        await channel.declare_exchange(f"{role}.OUT", aio_pika.ExchangeType.FANOUT, durable=True)
        await (await channel.get_queue(f"{role}.answers")).bind(f"{role}.OUT")
        task = asyncio.create_task(serve([Repeat(role)], rabbitmq.url, discovery_period=60))
        try:
            announced = await wait_discovery(fbp, role)
            probe.publish(f"{role}.IN", b'{"hello": [1, 2]}')
            assert await answers.wait_count(1) == [b'{"hello": [1, 2]}']
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert announced["protocol"] == "discovery"
    assert announced["command"] == "participant"
    ports = {p["id"]: p["queue"] for p in announced["payload"]["inports"]}
    assert ports == {"in": f"{role}.IN"}


async def wait_discovery(fbp: aio_pika.abc.AbstractQueue, role: str) -> dict[str, Any]:
    """The first discovery message of ``role`` on the ``fbp`` queue (others are acked past)."""
    async with asyncio.timeout(10), fbp.iterator() as messages:
        async for message in messages:
            await message.ack()
            announced: dict[str, Any] = json.loads(message.body)
            if announced.get("payload", {}).get("role") == role:
                return announced
    raise AssertionError("the fbp queue iterator ended")


async def test_subscribing_to_discovery_reads_what_participants_announce(
    rabbitmq: RabbitMQ,
) -> None:
    """``fbp`` is a plain durable queue on AMQP; a dead-letter argument would be refused."""
    got: asyncio.Queue[bytes] = asyncio.Queue()
    async with amqp(rabbitmq) as publisher, amqp(rabbitmq) as reader:
        await reader.subscribe("fbp", lambda d: got.put_nowait(d.payload))
        marker = f'{{"marker": "{secrets.token_hex(4)}"}}'.encode()
        publisher.publish("fbp", marker)
        async with asyncio.timeout(10):
            while await got.get() != marker:
                pass
        assert reader.connected


class Persistent(Participant):
    """A Repeat whose inport is ``persistent: false`` and outport ``persistent: true``."""

    def __init__(self, role: str) -> None:
        super().__init__(
            {
                "component": "PersistentRepeat",
                "inports": [{"id": "in", "queue": f"{role}.IN", "options": {"persistent": False}}],
                "outports": [
                    {"id": "out", "queue": f"{role}.OUT", "options": {"persistent": True}}
                ],
            },
            role,
        )

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", msg.data)
        self.ack(msg)


async def test_port_option_persistent_sets_declarations_and_delivery_mode(
    rabbitmq: RabbitMQ,
) -> None:
    role = unique("persistent-port")
    connection = await aio_pika.connect(rabbitmq.url)
    async with connection, amqp(rabbitmq) as probe:
        channel = await connection.channel()
        out = await channel.declare_exchange(
            f"{role}.OUT", aio_pika.ExchangeType.FANOUT, durable=True
        )
        answers = await channel.declare_queue(exclusive=True)
        await answers.bind(out)
        task = asyncio.create_task(serve([Persistent(role)], rabbitmq.url, discovery_period=60))
        try:
            async with asyncio.timeout(10):
                while (f"{role}.IN",) not in await ctl(rabbitmq, "list_queues", "name"):
                    await asyncio.sleep(0.05)
            queues = await ctl(rabbitmq, "list_queues", "name", "durable", "auto_delete")
            exchanges = await ctl(rabbitmq, "list_exchanges", "name", "durable", "auto_delete")
            probe.publish(f"{role}.IN", b'"kept"')
            async with asyncio.timeout(10), answers.iterator() as messages:
                async for message in messages:
                    answer = message
                    break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    # persistent: false, as msgflo-nodejs declares it: gone with its last user.
    assert (f"{role}.IN", "false", "true") in queues
    assert (f"{role}.IN", "false", "true") in exchanges
    # persistent: true: a durable exchange, and messages a durable queue keeps across restarts.
    assert (f"{role}.OUT", "true", "false") in exchanges
    assert (answer.body, answer.delivery_mode) == (b'"kept"', aio_pika.DeliveryMode.PERSISTENT)


async def test_publishing_to_a_port_declared_transient_by_its_owner(rabbitmq: RabbitMQ) -> None:
    """An IIP or a sent message for a msgflo-nodejs ``persistent: false`` inport: the sender
    uses the exchange as declared, instead of a durable declaration RabbitMQ would refuse."""
    name = unique("owned.IN")
    connection = await aio_pika.connect(rabbitmq.url)
    async with connection, amqp(rabbitmq) as sender:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=False, auto_delete=True)
        exchange = await channel.declare_exchange(
            name, aio_pika.ExchangeType.FANOUT, durable=False, auto_delete=True
        )
        await queue.bind(exchange)
        sender.publish(name, b'"iip"')
        # flush() means written to the socket, not yet routed: wait for the broker's delivery.
        async with asyncio.timeout(10), queue.iterator() as messages:
            async for message in messages:
                assert message.body == b'"iip"'
                break
        assert sender.connected


async def test_a_participant_redeclares_and_announces_again_after_a_broker_restart(
    rabbitmq: RabbitMQ,
) -> None:
    role = unique("reannounce")
    participant = Repeat(role)
    transport = AmqpTransport(parse_broker_url(rabbitmq.url), backoff=FAST)
    task = asyncio.create_task(serve([participant], transport=transport, discovery_period=600))
    try:
        async with asyncio.timeout(10):
            while participant.stats.announced < 1:
                await asyncio.sleep(0.02)
        await rabbitmq.restart_async()  # transient announcements are gone with it
        connection = await aio_pika.connect(rabbitmq.url)
        async with connection, amqp(rabbitmq) as probe:
            channel = await connection.channel()
            fbp = await channel.declare_queue("fbp", durable=True)
            announced = await wait_discovery(fbp, role)  # sent again at the reconnect
            answers = await channel.declare_queue(exclusive=True)
            await answers.bind(f"{role}.OUT")  # redeclared at the reconnect
            probe.publish(f"{role}.IN", b'"after"')
            async with asyncio.timeout(10), answers.iterator() as messages:
                async for message in messages:
                    assert message.body == b'"after"'
                    break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert announced["payload"]["role"] == role
    assert participant.stats.announced >= 2
