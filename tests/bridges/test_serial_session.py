"""The device session core paired with the fake device core: no ports, no loop, a fake clock."""

from __future__ import annotations

import json
import logging
import random

import pytest

from gateway.bridges.serial.fake_device import (
    ECHO_DESCRIPTION,
    FakeDeviceCore,
    FakeDeviceOptions,
    corrupt,
    description_text,
    garbage,
)
from gateway.bridges.serial.link import (
    DescribeRequest,
    Description,
    LinkDecoder,
    LinkErrorKind,
    Ping,
    PortMessage,
    Received,
    encode_frame,
)
from gateway.bridges.serial.session import (
    Action,
    Announce,
    DeviceSession,
    LogLine,
    Publish,
    Reopen,
    SessionConfig,
    State,
    Withdraw,
    Write,
)

CONFIG = SessionConfig(role="echo1", hello_timeout=2.0, ping_interval=5.0, max_missed_pongs=3)


class Pair:
    """A session and a fake device wired back to back, with a clock the test moves."""

    def __init__(self, device: FakeDeviceCore, config: SessionConfig = CONFIG) -> None:
        self.device = device
        self.now = 100.0
        self.session = DeviceSession(config, self.now)
        self.actions: list[Action] = []
        self.to_device: list[bytes] = []
        self.run(self.session.start())

    def run(self, actions: list[Action], rounds: int = 20) -> None:
        """Carry out actions; bytes written go to the device, its answers back to the session."""
        for _ in range(rounds):
            self.actions += actions
            wire = b"".join(a.data for a in actions if isinstance(a, Write))
            if wire:
                self.to_device.append(wire)
            answer = self.device.feed(wire) if wire else b""
            if not answer:
                return
            actions = self.session.feed(answer, self.now)
        raise AssertionError("the session and the device never went quiet")

    def boot(self) -> None:
        self.run(self.session.feed(self.device.boot(), self.now))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.run(self.session.tick(self.now))

    def of(self, kind: type) -> list[Action]:
        return [a for a in self.actions if isinstance(a, kind)]

    def logs(self) -> list[str]:
        return [a.message for a in self.actions if isinstance(a, LogLine)]


def sent_frames(pair: Pair) -> list[Received]:
    decoder = LinkDecoder()
    return [e for e in decoder.feed(b"".join(pair.to_device)) if isinstance(e, Received)]


def test_hello_then_describe_then_ready_and_announced() -> None:
    pair = Pair(FakeDeviceCore())
    assert pair.to_device[0] == b"\x00"  # a lone delimiter first
    pair.boot()
    assert pair.session.state is State.READY
    (announce,) = pair.of(Announce)
    assert isinstance(announce, Announce)
    payload = announce.definition.to_discovery()
    assert payload["role"] == "echo1"
    assert payload["id"] == "echo1"
    assert payload["component"] == "Repeat"
    assert payload["icon"] == "retweet"
    assert payload["inports"] == [{"id": "in", "type": "any", "queue": "echo1/in"}]
    assert payload["outports"] == [{"id": "out", "type": "any", "queue": "echo1/out"}]
    assert pair.session.max_frame == 60


def test_without_a_hello_describe_requests_are_retried_with_growing_intervals() -> None:
    device = FakeDeviceCore(options=FakeDeviceOptions(answer_describe=False))
    pair = Pair(device)
    times = []
    for _ in range(80):  # 0.5 s steps, 40 s: bounded
        before = pair.session.stats.describe_requests
        pair.advance(0.5)
        if pair.session.stats.describe_requests > before:
            times.append(round(pair.now - 100.0, 1))
    assert times[:6] == [2.0, 2.5, 3.5, 5.5, 9.5, 17.5]  # 0.5, 1, 2, 4, 8, then capped at 8
    assert times[6] - times[5] == pytest.approx(8.0)
    assert "no hello within 2 s" in pair.logs()[0]
    # The device starts answering (it was in its bootloader): the next request gets it described.
    device.options.answer_describe = True
    pair.advance(8.0)
    assert pair.session.state is State.READY
    assert pair.session.max_frame == 60  # no hello: the AVR default holds


def test_a_long_description_arrives_in_pages_and_is_reassembled() -> None:
    big = dict(ECHO_DESCRIPTION, label="x" * 600)
    device = FakeDeviceCore(description_text(big), options=FakeDeviceOptions(page_size=100))
    pair = Pair(device)
    pair.boot()
    assert pair.session.state is State.READY
    assert pair.session.description is not None
    assert pair.session.description.label == "x" * 600
    offsets = [r.frame.offset for r in device.received if isinstance(r.frame, DescribeRequest)]
    assert offsets == list(range(0, len(description_text(big)), 100))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (description_text(ECHO_DESCRIPTION)[:-9], "truncated"),
        (b'{"label": "no component"}', "component"),
        (b'{"component": "X", "inports": [{"id": "a b"}]}', "inports[0].id"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_a_bad_description_is_an_error_state_with_one_clear_line(
    text: bytes, expected: str
) -> None:
    pair = Pair(FakeDeviceCore(text))
    pair.boot()
    assert pair.session.state is State.FAILED
    assert not pair.of(Announce)
    errors = [a.message for a in pair.actions if isinstance(a, LogLine) and a.level >= 40]
    assert len(errors) == 1
    assert expected in errors[0]
    assert "invalid device description" in errors[0]


def test_messages_both_ways_byte_exact() -> None:
    pair = Pair(FakeDeviceCore())
    pair.boot()
    payload = bytes(range(55))  # zeros and all: binary-safe; 5 + 55 bytes fill a 60-byte frame
    pair.run(pair.session.on_mqtt("echo1/in", payload, pair.now))
    assert pair.of(Publish) == [Publish("echo1/out", payload)]
    assert PortMessage(0, payload) in [r.frame for r in pair.device.received]
    assert pair.session.stats.to_device == 1
    assert pair.session.stats.to_mqtt == 1


def test_an_oversize_mqtt_payload_is_refused_and_never_written() -> None:
    pair = Pair(FakeDeviceCore())
    pair.boot()
    before = len(pair.to_device)
    actions = pair.session.on_mqtt("echo1/in", b"x" * 56, pair.now)  # 61 bytes > 60
    assert not [a for a in actions if isinstance(a, Write)]
    (line,) = actions
    assert isinstance(line, LogLine)
    assert "echo1/in" in line.message
    assert "56-byte" in line.message
    assert pair.session.stats.refused == 1
    assert len(pair.to_device) == before
    pair.run(pair.session.on_mqtt("echo1/in", b"x" * 55, pair.now))  # exactly 60: sent
    assert len(pair.to_device) == before + 1
    assert pair.of(Publish) == [Publish("echo1/out", b"x" * 55)]


def test_a_device_with_a_bigger_limit_takes_bigger_messages() -> None:
    pair = Pair(FakeDeviceCore(max_frame=254))
    pair.boot()
    pair.run(pair.session.on_mqtt("echo1/in", b"y" * 249, pair.now))
    assert pair.of(Publish) == [Publish("echo1/out", b"y" * 249)]


def test_messages_before_ready_are_dropped_and_counted() -> None:
    pair = Pair(FakeDeviceCore())
    actions = pair.session.on_mqtt("echo1/in", b"early", pair.now)
    assert not [a for a in actions if isinstance(a, Write)]
    assert pair.session.stats.dropped_while_not_ready == 1


def test_pings_and_pongs_keep_it_alive_missed_pongs_withdraw_and_reopen() -> None:
    device = FakeDeviceCore()
    pair = Pair(device)
    pair.boot()
    for _ in range(5):
        pair.advance(5.0)
    assert pair.session.stats.pings == 5
    assert pair.session.stats.pongs == 5
    assert not pair.of(Reopen)
    device.options.answer_pings = False
    for _ in range(10):
        pair.advance(5.0)
        if pair.of(Reopen):
            break
    assert pair.session.state is State.CLOSED
    (withdraw,) = pair.of(Withdraw)
    assert isinstance(withdraw, Withdraw)
    assert withdraw.definition.role == "echo1"
    assert "3 pings without a pong" in pair.logs()[-1]
    # After closing, nothing more happens.
    assert pair.session.tick(pair.now + 100) == []
    assert pair.session.next_deadline() == float("inf")


def test_garbage_and_corrupted_frames_are_counted_logged_at_a_bounded_rate_and_survived() -> None:
    device = FakeDeviceCore()
    pair = Pair(device)
    pair.boot()
    rng = random.Random(7)
    for _ in range(50):
        pair.run(pair.session.feed(garbage(40, rng) + b"\x00", pair.now))
        device.options.corrupt_next = 1
        pair.run(pair.session.on_mqtt("echo1/in", b"lost", pair.now))
        pair.run(pair.session.on_mqtt("echo1/in", b"kept", pair.now))
    assert pair.of(Publish) == [Publish("echo1/out", b"kept")] * 50
    assert pair.session.decoder.stats.errors[LinkErrorKind.BAD_CRC] >= 50
    assert pair.session.decoder.stats.dropped >= 100
    warnings = [m for m in pair.logs() if m.startswith("dropped frames")]
    assert len(warnings) == 1  # the first at once, the rest summarised later
    pair.advance(31.0)
    summary = [m for m in pair.logs() if m.startswith("dropped frames")]
    assert len(summary) == 2
    assert "more in the last 30 s" in summary[1]
    assert "bad_crc" in summary[1]
    assert pair.session.state is State.READY


def test_pong_counters_changes_are_logged() -> None:
    device = FakeDeviceCore()
    pair = Pair(device)
    pair.boot()
    pair.run([Write(corrupt(encode_frame(Ping(), 9)))])  # the device counts a CRC error
    pair.advance(5.0)
    assert any("device counts dropped frames: cobs 0, crc 1" in m for m in pair.logs())


def test_a_new_hello_means_a_restart_and_the_device_is_described_again() -> None:
    device = FakeDeviceCore()
    pair = Pair(device)
    pair.boot()
    device.description = description_text(dict(ECHO_DESCRIPTION, component="Repeat2"))
    pair.boot()
    kinds = [type(a).__name__ for a in pair.actions if isinstance(a, Announce | Withdraw)]
    assert kinds == ["Announce", "Withdraw", "Announce"]
    last = pair.of(Announce)[-1]
    assert isinstance(last, Announce)
    assert last.definition.component == "Repeat2"


def test_another_protocol_version_is_not_described_or_announced() -> None:
    pair = Pair(FakeDeviceCore(protocol=2))
    pair.boot()
    assert pair.session.state is State.INCOMPATIBLE
    assert not pair.of(Announce)
    assert "protocol 2" in pair.logs()[-1]
    assert not [r for r in sent_frames(pair) if isinstance(r.frame, DescribeRequest)]


def test_late_or_unrequested_description_replies_are_ignored() -> None:
    pair = Pair(FakeDeviceCore())
    pair.boot()
    stray = encode_frame(Description(0, 5, b'{"a":'), 200)
    assert pair.session.feed(stray, pair.now) == []
    assert pair.session.state is State.READY


def test_device_messages_for_a_missing_outport_are_dropped() -> None:
    device = FakeDeviceCore()
    pair = Pair(device)
    pair.boot()
    pair.run(pair.session.feed(device.send(3, b"nope"), pair.now))
    assert not pair.of(Publish)
    assert pair.session.stats.unknown_outport == 1


def test_the_discovery_of_a_ready_device_is_json_serialisable() -> None:
    pair = Pair(FakeDeviceCore())
    pair.boot()
    (announce,) = pair.of(Announce)
    assert isinstance(announce, Announce)
    assert json.loads(json.dumps(announce.definition.to_discovery()))["role"] == "echo1"
    assert logging.INFO in [a.level for a in pair.actions if isinstance(a, LogLine)]


def test_a_flood_of_oversize_messages_is_logged_once_then_summarised() -> None:
    pair = Pair(FakeDeviceCore())
    pair.boot()
    for _ in range(100):
        pair.run(pair.session.on_mqtt("echo1/in", b"x" * 100, pair.now))
    refused = [m for m in pair.logs() if m.startswith("refused messages")]
    assert len(refused) == 1
    assert "100-byte payload refused" in refused[0]
    pair.advance(31.0)
    refused = [m for m in pair.logs() if m.startswith("refused messages")]
    assert refused[1] == "refused messages: 99 more in the last 30 s (too large: 99)"
    assert pair.session.stats.refused == 100
    assert not [r for r in pair.device.received if isinstance(r.frame, PortMessage)]
