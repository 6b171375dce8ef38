"""msgflo-send-message and msgflo-dump-message on AMQP, as processes against the session's
RabbitMQ: dumping observes through a private queue, takes nothing and leaves nothing behind."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.cli.test_cli import EXAMPLES, start, stop
from tests.support.amqp_broker import RabbitMQ
from tests.support.cli import run_script

pytestmark = pytest.mark.integration

WAIT = 20.0


def observers(rabbitmq: RabbitMQ, exchange: str) -> int:
    """How many private (server-named) queues are bound to ``exchange``."""
    out = rabbitmq.ctl("list_bindings", "source_name", "destination_name")
    rows = (line.split("\t") for line in out.splitlines())
    return sum(1 for row in rows if row[0] == exchange and row[1].startswith("amq.gen-"))


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {WAIT:g} s"
        time.sleep(0.1)


def dump(rabbitmq: RabbitMQ, queue: str) -> subprocess.Popen[str]:
    return start(
        "msgflo-dump-message", "--broker", rabbitmq.url, "--queue", queue, "--timeout", "20"
    )


def test_dump_observes_inport_and_outport_without_taking_messages(rabbitmq: RabbitMQ) -> None:
    role = f"rep{secrets.token_hex(3)}"
    repeat = start("msgflo-python", str(EXAMPLES / "repeat.py"), role, "--broker", rabbitmq.url)
    inport, outport = f"{role}/in", f"{role}/out"
    try:
        wait_for("inport queue", lambda: inport in rabbitmq.ctl("list_queues", "name"))
        dumps = [dump(rabbitmq, inport), dump(rabbitmq, outport)]
        wait_for(
            "observers", lambda: observers(rabbitmq, inport) + observers(rabbitmq, outport) == 2
        )
        sent = run_script(
            "msgflo-send-message", "--broker", rabbitmq.url, "--queue", inport, "--json", '{"n": 1}'
        )
        assert sent.returncode == 0, sent.stderr
        outputs = [d.communicate(timeout=25)[0] for d in dumps]
    finally:
        log = stop(repeat)
    # The inport's dump saw the message and the participant still got it (its output arrived).
    assert [json.loads(o) for o in outputs] == [{"n": 1}, {"n": 1}], log
    queues = rabbitmq.ctl("list_queues", "name").split()
    assert outport not in queues  # the original's dump left a durable queue named like the port
    assert observers(rabbitmq, inport) == observers(rabbitmq, outport) == 0


def test_participant_prefetch_flag(rabbitmq: RabbitMQ) -> None:
    role = f"pf{secrets.token_hex(3)}"
    args = [str(EXAMPLES / "repeat.py"), role, "--broker", rabbitmq.url, "--prefetch", "5"]
    repeat = start("msgflo-python", *args)

    def prefetch_5() -> bool:
        out = rabbitmq.ctl("list_channels", "prefetch_count")
        return "5" in out.split()

    try:
        wait_for("a channel with prefetch 5", prefetch_5)
    finally:
        stop(repeat)
    bad = run_script("msgflo-python", *args[:-1], "0")
    assert bad.returncode == 2
    assert "prefetch must be 1..65535 messages, not '0'" in bad.stderr
