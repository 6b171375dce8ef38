"""Participants on a real mosquitto: exchange, discovery, reconnect, bad input, QoS, sources."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.participant import Message, Participant, Raw, serve
from gateway.transport import open_transport
from gateway.transport.backoff import Backoff
from tests.conftest import Probe
from tests.support.wait import until

pytestmark = pytest.mark.integration

ORIGINAL_KEYS = {"id", "role", "component", "label", "icon", "inports", "outports"}


class Repeat(Participant):
    def __init__(self, role: str, qos: int = 0) -> None:
        super().__init__(
            {
                "component": "Repeat",
                "inports": [{"id": "in", "qos": qos}],
                "outports": [{"id": "out", "qos": qos}],
            },
            role,
        )

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", msg.data)
        self.ack(msg)


class Doubler(Participant):
    """Async process function; fails on input that is not a number."""

    def __init__(self, role: str) -> None:
        super().__init__({"component": "Doubler"}, role)

    async def process(self, inport: str, msg: Message) -> None:
        await asyncio.sleep(0)
        if isinstance(msg.data, bytes):  # not JSON: answer with the text
            self.send("out", msg.data.decode(errors="replace"))
        else:
            self.send("out", msg.data * 2)


@contextlib.asynccontextmanager
async def running(
    participants: Sequence[Participant], url: str, **kwargs: Any
) -> AsyncIterator[None]:
    task = asyncio.create_task(serve(participants, url, **kwargs))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_two_participants_exchange_messages(mosquitto: Mosquitto, probe: Probe) -> None:
    # a -> b wired by hand: b listens on a's outport topic.
    a = Repeat("a")
    b = Participant(
        {"component": "Upper", "inports": [{"id": "in", "queue": "a/out"}]},
        "b",
        process=lambda port, msg: b.send("out", str(msg.data).upper()),
    )
    await probe.watch("b/out")
    await probe.watch("fbp")
    async with running([a, b], mosquitto.url):
        await probe.wait_count("fbp", 2)
        probe.transport.publish("a/in", b'"hello"')
        assert await probe.next_json("b/out") == "HELLO"


async def test_discovery_has_exactly_the_original_keys(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("fbp")
    async with running([Repeat("rep")], mosquitto.url):
        message = await probe.next_json("fbp")
    assert message["protocol"] == "discovery" and message["command"] == "participant"
    assert set(message["payload"]) == ORIGINAL_KEYS
    assert message["payload"]["role"] == "rep"
    assert message["payload"]["inports"] == [{"id": "in", "type": "any", "queue": "rep/in"}]


async def test_announces_periodically(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("fbp")
    async with running([Repeat("rep")], mosquitto.url, discovery_period=0.22):
        started = asyncio.get_running_loop().time()
        await probe.wait_count("fbp", 4)
        elapsed = asyncio.get_running_loop().time() - started
    # first at connect, then every 0.22 / 2.2 = 0.1 s
    assert elapsed < 2.0


async def test_source_without_inports_announces_and_sends(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    class Clock(Participant):
        def __init__(self, role: str) -> None:
            super().__init__({"component": "Clock", "inports": [], "outports": ["tick"]}, role)

        async def started(self) -> None:
            for n in range(3):
                self.send("tick", n)
                await asyncio.sleep(0.01)

    await probe.watch("fbp")
    await probe.watch("clock/tick")
    async with running([Clock("clock")], mosquitto.url):
        ticks = await probe.wait_count("clock/tick", 3)
        announced = probe.discovery()[0]["payload"]
    assert [json.loads(t) for t in ticks] == [0, 1, 2]
    assert announced["inports"] == []


async def test_raw_payloads_pass_byte_for_byte(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("rep/out")
    device_payloads = [
        b"true",
        b"0.00",
        b"open",
        b"Precondition failed: x",
        b"\x00\xff",
        b'{"x": 1}',
    ]
    async with running([Repeat("rep")], mosquitto.url):
        await asyncio.sleep(0.2)
        for payload in device_payloads:
            probe.transport.publish("rep/in", payload)
        got = await probe.wait_count("rep/out", len(device_payloads))
    # JSON payloads are re-encoded from the decoded value; everything else is untouched.
    assert got[2:5] == device_payloads[2:5]
    assert [json.loads(g) for g in got[:2]] == [True, 0.0]


async def test_raw_send_and_explicit_queue(mosquitto: Mosquitto, probe: Probe) -> None:
    lamp = Participant(
        {"component": "Lamp", "inports": [], "outports": [{"id": "state", "queue": "/lab/#ROLE"}]},
        "lamp",
    )
    await probe.watch("/lab/lamp")
    async with running([lamp], mosquitto.url):
        lamp.send("state", Raw("on"))
        assert await probe.wait_count("/lab/lamp", 1) == [b"on"]


async def test_malformed_input_is_logged_and_does_not_stop_the_participant(
    mosquitto: Mosquitto, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    await probe.watch("dbl/out")
    async with running([Doubler("dbl")], mosquitto.url):
        await asyncio.sleep(0.2)
        probe.transport.publish("dbl/in", b"\xff\xfe not json")  # delivered as raw bytes
        probe.transport.publish("dbl/in", b'{"a": 1}')  # dict * 2 raises TypeError
        probe.transport.publish("dbl/in", b"21")
        got = await probe.wait_count("dbl/out", 2)
    assert json.loads(got[0]) == "\ufffd\ufffd not json"
    assert json.loads(got[1]) == 42
    failures = [r for r in caplog.records if "process('in') failed" in r.getMessage()]
    assert len(failures) == 1


async def test_survives_broker_restart(
    mosquitto: Mosquitto, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # The participant waits a fixed 2 s before reconnecting, so the probe (default backoff,
    # under 0.5 s) is back and listening before the participant re-announces.
    transport = open_transport(
        parse_broker_url(mosquitto.url), backoff=Backoff(initial=2.0, jitter=0)
    )
    await probe.watch("fbp")
    await probe.watch("rep/out")
    async with running([Repeat("rep")], mosquitto.url, transport=transport):
        await probe.wait_count("fbp", 1)

        mosquitto.kill()
        await until(lambda: not probe.transport.connected and not transport.connected)
        mosquitto.start()  # same port
        await until(lambda: probe.transport.connected)
        await probe.watch("fbp")  # subscriptions were replayed; this proves they are active
        assert not transport.connected

        # The participant reconnects, re-announces ...
        await probe.wait_count("fbp", 2, timeout=10)
        # ... and has resubscribed its inport.
        probe.transport.publish("rep/in", b'"after restart"')
        assert await probe.next_json("rep/out") == "after restart"
    assert any("lost connection" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("qos", [0, 1])
async def test_qos_per_port(mosquitto: Mosquitto, probe: Probe, qos: int) -> None:
    await probe.watch("rep/out", qos=1)
    async with running([Repeat("rep", qos=qos)], mosquitto.url):
        await asyncio.sleep(0.2)
        for n in range(200):
            probe.transport.publish("rep/in", str(n).encode(), qos=1)
        got = await probe.wait_count("rep/out", 200)
    assert [int(g) for g in got] == list(range(200))  # in order, none lost


async def test_iips_are_delivered_once_at_start(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("rep/out")
    async with running([Repeat("rep")], mosquitto.url, iips={"in": 0}):
        assert await probe.next_json("rep/out") == 0  # falsy values too


async def test_backpressure_keeps_every_message(mosquitto: Mosquitto, probe: Probe) -> None:
    class Slow(Repeat):
        async def process(self, inport: str, msg: Message) -> None:  # type: ignore[override]
            await asyncio.sleep(0.0005)
            self.send("out", msg.data)

    slow = Slow("slow", qos=1)
    await probe.watch("slow/out", qos=1)
    async with running([slow], mosquitto.url):
        await asyncio.sleep(0.2)
        for n in range(3000):  # three times the inbox
            probe.transport.publish("slow/in", str(n).encode(), qos=1)
        got = await probe.wait_count("slow/out", 3000, timeout=30)
    assert [int(g) for g in got] == list(range(3000))
    assert slow.stats.pauses >= 1  # the inbox filled up and reading was paused
    assert slow.stats.dropped == 0


async def test_a_restarted_participant_resumes_its_persistent_session(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    """With ``?sessionExpiry=N`` (as the appliance runs them) the broker keeps the session of a
    stopped participant under its client id; the restarted one asks for the same id, so the
    QoS 1 messages sent while it was away reach it."""
    url = f"{mosquitto.url}?sessionExpiry=60"
    await probe.watch("rep/out", qos=1)
    await probe.watch("fbp")
    async with running([Repeat("rep", qos=1)], url):
        await probe.wait_count("fbp", 1)
    for n in range(5):
        probe.transport.publish("rep/in", str(n).encode(), qos=1)
    await probe.transport.flush()
    async with running([Repeat("rep", qos=1)], url):
        got = await probe.wait_count("rep/out", 5)
    assert [int(g) for g in got] == list(range(5))
