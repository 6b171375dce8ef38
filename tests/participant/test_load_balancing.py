"""Load-balanced roles and ack-after-processing, on a real RabbitMQ and a real mosquitto.

AMQP: the participants of a role consume one queue; a message is acked only after ``process``
returned, so a worker killed in the middle of a message loses nothing (the broker redelivers it
to another worker), and a ``process`` that raises dead-letters the message to ``dead-<queue>``.
MQTT: sharing is opt-in (MQTT 5 shared subscriptions); without it every participant of a role
gets every message, as in the original.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import textwrap
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path

import pytest

from gateway.broker import parse_broker_url
from gateway.errors import TransportError
from gateway.mosquitto import Mosquitto
from gateway.participant import Message, Participant, serve
from gateway.participant.participant import share_name
from gateway.transport import open_transport
from gateway.transport.mqtt import routing_filter
from tests.conftest import Probe
from tests.support.amqp_broker import RabbitMQ
from tests.support.inbox import Inbox
from tests.support.wait import until
from tests.transport.test_transport_amqp import amqp
from tests.transport.test_transport_contract import unique

pytestmark = pytest.mark.integration

MESSAGES = 200
REPO = Path(__file__).resolve().parents[2]


class Worker(Participant):
    """A Repeat that records what it processed; ``fail`` makes process raise."""

    def __init__(
        self, role: str, inq: str, outq: str, *, qos: int = 0, shared: bool = False
    ) -> None:
        super().__init__(
            {
                "component": "Worker",
                "inports": [{"id": "in", "queue": inq, "qos": qos}],
                "outports": [{"id": "out", "queue": outq, "qos": qos}],
            },
            role,
            shared=shared,
        )
        self.done: list[object] = []
        self.fail = False

    # Participant's return type, so a subclass may make process async (Busy below).
    def process(self, inport: str, msg: Message) -> Awaitable[None] | None:
        if self.fail:
            raise ValueError(f"cannot process {msg.data!r}")
        self.send("out", msg.data)
        self.done.append(msg.data)
        return None


@contextlib.asynccontextmanager
async def running(participants: Sequence[Participant], url: str) -> AsyncIterator[None]:
    """Each participant on a connection of its own, as separate worker processes would be."""
    tasks = [asyncio.create_task(serve([p], url, discovery_period=60)) for p in participants]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def processed(workers: Sequence[Worker]) -> Counter[object]:
    return Counter(item for worker in workers for item in worker.done)


# -- AMQP ---------------------------------------------------------------------------------------


async def consumers(rabbitmq: RabbitMQ, queue: str) -> int:
    out = await asyncio.to_thread(rabbitmq.ctl, "list_queues", "name", "consumers")
    for line in out.splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count)
    return 0


async def wait_consumers(rabbitmq: RabbitMQ, queue: str, count: int) -> None:
    async with asyncio.timeout(15):
        while await consumers(rabbitmq, queue) < count:
            await asyncio.sleep(0.2)


async def test_amqp_workers_of_a_role_share_one_queue(rabbitmq: RabbitMQ) -> None:
    role = unique("share")
    workers = [Worker(role, f"{role}.IN", f"{role}.OUT") for _ in range(3)]
    async with running(workers, rabbitmq.url), amqp(rabbitmq) as producer:
        await wait_consumers(rabbitmq, f"{role}.IN", len(workers))
        for n in range(MESSAGES):
            producer.publish(f"{role}.IN", str(n).encode())
        await asyncio.wait_for(producer.flush(), 5)
        await until(lambda: processed(workers).total() >= MESSAGES)
        await asyncio.sleep(0.3)  # time for a duplicate to show up, if there were one
    assert processed(workers) == Counter(range(MESSAGES))  # each message exactly once
    assert all(worker.done for worker in workers), [len(w.done) for w in workers]


async def test_amqp_a_raising_process_dead_letters_the_message(rabbitmq: RabbitMQ) -> None:
    role, dead = unique("raise"), Inbox()
    worker = Worker(role, f"{role}.IN", f"{role}.OUT")
    worker.fail = True
    async with amqp(rabbitmq) as probe, running([worker], rabbitmq.url):
        # As noflo-runtime-msgflo --deadletter: a queue dead-<queue> fed by the same-named
        # fanout exchange, which is <queue>'s dead-letter exchange.
        await probe.subscribe(f"dead-{role}.IN", dead)
        await wait_consumers(rabbitmq, f"{role}.IN", 1)
        probe.publish(f"{role}.IN", b'"poison"')
        assert await dead.wait_count(1) == [b'"poison"']
        assert worker.stats.failed == 1
        await asyncio.sleep(0.3)
    assert dead.got == [b'"poison"']  # dead-lettered once, not redelivered in a loop


async def test_amqp_a_busy_worker_holds_only_prefetch_messages(rabbitmq: RabbitMQ) -> None:
    role, gate = unique("busy"), asyncio.Event()

    class Busy(Worker):
        async def process(self, inport: str, msg: Message) -> None:
            await gate.wait()
            super().process(inport, msg)

    worker = Busy(role, f"{role}.IN", f"{role}.OUT")
    async with running([worker], rabbitmq.url), amqp(rabbitmq) as producer:
        await wait_consumers(rabbitmq, f"{role}.IN", 1)
        for n in range(10):
            producer.publish(f"{role}.IN", str(n).encode())
        await asyncio.wait_for(producer.flush(), 5)
        await asyncio.sleep(0.5)  # time for more to arrive, if prefetch did not bound them
        counts = await asyncio.to_thread(
            rabbitmq.ctl, "list_queues", "name", "messages_ready", "messages_unacknowledged"
        )
        assert f"{role}.IN\t8\t2" in counts.splitlines()  # prefetch 2: unacked until processed
        assert worker.stats.received == 2
        gate.set()
        await until(lambda: len(worker.done) == 10)
    assert worker.done == list(range(10))


SLOW_WORKER = """
    import asyncio
    import sys

    from gateway.participant import Message, Participant, engine


    class Slow(Participant):
        def __init__(self, role: str) -> None:
            queues = {"inports": [{"id": "in", "queue": role + ".IN"}],
                      "outports": [{"id": "out", "queue": role + ".OUT"}]}
            super().__init__({"component": "Slow", **queues}, role)

        async def process(self, inport: str, msg: Message) -> None:
            print("processing", msg.data, flush=True)
            if msg.data == "marker":
                await asyncio.sleep(3600)  # killed in here
            self.send("out", msg.data)


    sys.exit(engine.main(Slow))
"""


async def test_amqp_a_worker_killed_mid_message_does_not_lose_it(
    rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    role = unique("kill")
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(SLOW_WORKER))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    slow = await asyncio.create_subprocess_exec(
        sys.executable, str(script), role, "--broker", rabbitmq.url,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    other = Worker(role, f"{role}.IN", f"{role}.OUT")
    try:
        assert slow.stdout is not None
        async with amqp(rabbitmq) as producer:
            await wait_consumers(rabbitmq, f"{role}.IN", 1)
            producer.publish(f"{role}.IN", b'"marker"')
            async with asyncio.timeout(10):
                while b"processing marker" not in await slow.stdout.readline():
                    pass
            async with running([other], rabbitmq.url):
                await wait_consumers(rabbitmq, f"{role}.IN", 2)
                assert other.done == []  # the marker is still the killed worker's, unacked
                slow.send_signal(signal.SIGKILL)
                await until(lambda: bool(other.done))
                await asyncio.sleep(0.3)
    finally:
        with contextlib.suppress(ProcessLookupError):
            slow.kill()
        # communicate() reads the pipe to its end, so its transport is closed, not left to the gc.
        await asyncio.wait_for(slow.communicate(), 5)
    assert slow.returncode == -signal.SIGKILL
    assert other.done == ["marker"]


def announcements(probe: Probe, role: str) -> int:
    return len([d for d in probe.discovery() if d["payload"]["role"] == role])


# -- MQTT ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def start_workers(
    mosquitto: Mosquitto, probe: Probe, role: str, workers: Sequence[Worker]
) -> AsyncIterator[None]:
    await probe.watch("fbp")
    async with running(workers, mosquitto.url):
        # A participant subscribes before it announces, on one connection, so once its
        # discovery message is here its subscription is active.
        await until(lambda: announcements(probe, role) >= 2)
        for n in range(MESSAGES):
            probe.transport.publish(f"{role}/in", str(n).encode(), qos=1)
        yield


async def test_mqtt_shared_workers_split_the_messages(mosquitto: Mosquitto, probe: Probe) -> None:
    role = f"share{secrets.token_hex(3)}"
    workers = [Worker(role, f"{role}/in", f"{role}/out", qos=1, shared=True) for _ in range(2)]
    async with start_workers(mosquitto, probe, role, workers):
        await until(lambda: processed(workers).total() >= MESSAGES)
        await asyncio.sleep(0.3)
    assert processed(workers) == Counter(range(MESSAGES))  # each message exactly once
    assert all(worker.done for worker in workers), [len(w.done) for w in workers]
    # Discovery still names the plain topics, for the coordinator and the original tools.
    announced = [d["payload"] for d in probe.discovery() if d["payload"]["role"] == role]
    assert {p["queue"] for d in announced for p in d["inports"]} == {f"{role}/in"}


async def test_mqtt_without_the_opt_in_every_worker_gets_every_message(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    role = f"plain{secrets.token_hex(3)}"
    workers = [Worker(role, f"{role}/in", f"{role}/out", qos=1) for _ in range(2)]
    async with start_workers(mosquitto, probe, role, workers):
        await until(lambda: processed(workers).total() >= 2 * MESSAGES)
        await asyncio.sleep(0.3)
    for worker in workers:
        assert worker.done == list(range(MESSAGES))


TAGGER = """
    import os
    import sys

    from gateway.participant import Message, Participant, engine


    class Tagger(Participant):
        def __init__(self, role: str) -> None:
            queues = {"inports": [{"id": "in", "queue": role + "/in", "qos": 1}],
                      "outports": [{"id": "out", "queue": role + "/out", "qos": 1}]}
            super().__init__({"component": "Tagger", **queues}, role)

        def process(self, inport: str, msg: Message) -> None:
            self.send("out", [msg.data, os.getpid()])


    sys.exit(engine.main(Tagger))
"""


async def test_mqtt_shared_opt_in_from_the_command_line_and_the_environment(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    role = f"cli{secrets.token_hex(3)}"
    script = tmp_path / "tagger.py"
    script.write_text(textwrap.dedent(TAGGER))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    await probe.watch("fbp")
    await probe.watch(f"{role}/out", qos=1)
    argv = [sys.executable, str(script), role, "--broker", mosquitto.url]
    workers = [
        await asyncio.create_subprocess_exec(*argv, "--shared", env=env, cwd=REPO),
        await asyncio.create_subprocess_exec(*argv, env={**env, "MSGFLO_SHARED": "1"}, cwd=REPO),
    ]
    try:
        await until(lambda: announcements(probe, role) >= 2)
        for n in range(MESSAGES):
            probe.transport.publish(f"{role}/in", str(n).encode(), qos=1)
        await probe.wait_count(f"{role}/out", MESSAGES, timeout=10)
        await asyncio.sleep(0.3)  # time for a duplicate to show up, if there were one
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.terminate()
        await asyncio.wait_for(asyncio.gather(*(w.wait() for w in workers)), 10)
    results = [json.loads(m) for m in probe.received[f"{role}/out"]]
    assert sorted(n for n, _ in results) == list(range(MESSAGES))  # each message exactly once
    assert {pid for _, pid in results} == {w.pid for w in workers}  # each worker got a share


def test_shared_subscription_names() -> None:
    assert routing_filter("$share/grp/a/b/in") == "a/b/in"
    assert routing_filter("/a/b") == "/a/b"
    assert routing_filter("$share/no-filter") == "$share/no-filter"
    assert share_name("bitraf/door+x#") == "bitraf_door_x_"
    url = parse_broker_url("mqtt://localhost")
    assert open_transport(url).shared_subscription("/t/in", "g") == "$share/g//t/in"
    mqtt311 = open_transport(parse_broker_url("mqtt://localhost?protocolVersion=4"))
    with pytest.raises(TransportError, match="MQTT 5"):
        mqtt311.shared_subscription("t/in", "g")
    with pytest.raises(TransportError, match="share name"):
        open_transport(url).shared_subscription("t/in", "a/b")
    # On AMQP the role's participants share the inport queue itself.
    assert open_transport(parse_broker_url("amqp://localhost")).shared_subscription("q", "g") == "q"
