"""The device session core paired with the fake device core: no ports, no loop, a fake clock."""

from __future__ import annotations

import json
import logging
import random
import re

import pytest

from gateway.bridges.serial.description import MAX_DESCRIPTION, check_topic, parse_description
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
from gateway.errors import DescriptionError

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


# -- hostile devices -----------------------------------------------------------------------------


def error_lines(pair: Pair) -> list[str]:
    return [a.message for a in pair.actions if isinstance(a, LogLine) and a.level >= 40]


def ports(n: int) -> list[dict[str, str]]:
    """``n`` ports with short distinct ids, so that many fit in a description."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return [{"id": digits[i // 36] + digits[i % 36]} for i in range(n)]


@pytest.mark.parametrize(
    "text",
    [
        # 4,000 levels deep (unclosed, as a device cut short would send it): once a RecursionError
        b'{"component":"x","inports":' + b"[" * 4000,
        b'{"component":"x","a":' + b"[" * 2000 + b"]" * 2000 + b"}",
        b'{"component":"x","a":' + b'{"a":' * 17 + b"1" + b"}" * 17 + b"}",
    ],
)
def test_a_deeply_nested_description_is_one_line_not_a_recursion_error(text: bytes) -> None:
    assert len(text) <= MAX_DESCRIPTION
    with pytest.raises(DescriptionError, match="nested more than 16 levels deep"):
        parse_description(text)
    pair = Pair(FakeDeviceCore(text, max_frame=254))
    pair.boot()
    assert pair.session.state is State.FAILED
    assert len(error_lines(pair)) == 1
    assert "nested more than 16 levels deep" in error_lines(pair)[0]


def test_nesting_inside_strings_does_not_count() -> None:
    text = description_text(dict(ECHO_DESCRIPTION, label="[{" * 500 + '\\"'))
    assert parse_description(text).label == "[{" * 500 + '\\"'


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (dict(ECHO_DESCRIPTION, inports=ports(65), outports=[]), "inports: 65 ports, at most 64"),
        (dict(ECHO_DESCRIPTION, inports=ports(250), outports=[]), "250 ports, at most 64"),
        (dict(ECHO_DESCRIPTION, inports=ports(40), outports=ports(40)), "80 ports in all"),
        (dict(ECHO_DESCRIPTION, component="\udc80"), "component: lone surrogate"),
        (dict(ECHO_DESCRIPTION, label="a\x00b"), "label: contains NUL"),
        (dict(ECHO_DESCRIPTION, outports=[{"id": "o", "type": "x\ud800"}]), "outports[0].type"),
    ],
)
def test_descriptions_a_host_cannot_use_are_refused_with_one_line(
    description: dict[str, object], expected: str
) -> None:
    text = description_text(description)  # json.dumps escapes lone surrogates: \udc80
    pair = Pair(FakeDeviceCore(text, max_frame=254))
    pair.boot()
    assert pair.session.state is State.FAILED
    assert not pair.of(Announce)
    (line,) = error_lines(pair)
    assert expected in line


def test_sixty_four_ports_are_accepted() -> None:
    text = description_text(dict(ECHO_DESCRIPTION, inports=ports(32), outports=ports(32)))
    pair = Pair(FakeDeviceCore(text, max_frame=254))
    pair.boot()
    assert pair.session.state is State.READY


def test_a_description_longer_than_the_limit_is_refused_before_it_is_collected() -> None:
    pair = Pair(FakeDeviceCore(b" " * 5000 + description_text(ECHO_DESCRIPTION), max_frame=254))
    pair.boot()
    assert pair.session.state is State.FAILED
    (line,) = error_lines(pair)
    assert "at most 4096" in line
    requests = [r for r in pair.device.received if isinstance(r.frame, DescribeRequest)]
    assert len(requests) == 1  # nothing collected past the first reply


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("lab/\udc80", "inports[0].queue"),
        ("r" * 70_000, "65535"),
        ("a\x00b", "'\\x00'"),
        ("lab/+", "'+'"),
        ("lab/#", "'#'"),
    ],
)
def test_a_role_that_makes_queue_names_mqtt_cannot_carry_is_one_line(
    role: str, expected: str
) -> None:
    pair = Pair(FakeDeviceCore(), SessionConfig(role=role))
    pair.boot()
    assert pair.session.state is State.FAILED
    assert not pair.of(Announce)
    (line,) = error_lines(pair)
    assert "cannot announce the device as role" in line
    assert expected in line
    assert len(line) < 300
    line.encode()  # a log handler can write it


def test_a_device_restarting_in_a_loop_is_described_once_it_is_quiet() -> None:
    device = FakeDeviceCore()
    pair = Pair(device)
    for _ in range(1000):  # a hello storm: a device in a reset loop, or a hostile one
        pair.boot()
        pair.now += 0.01
    announces = pair.of(Announce)
    assert len(announces) == CONFIG.restart_burst - 1  # described at each of the first hellos
    assert len(pair.logs()) < 2 * CONFIG.restart_burst + 2
    assert sum("restarting in a loop" in m for m in pair.logs()) == 1
    assert pair.session.stats.hellos_held_off == 1000 - CONFIG.restart_burst + 1
    assert pair.session.state is State.DESCRIBING
    requests = pair.session.stats.describe_requests
    pair.advance(CONFIG.restart_holdoff - 1)
    assert pair.session.stats.describe_requests == requests
    pair.advance(1.5)  # quiet for the hold-off: described and announced again
    assert pair.session.state.name == "READY"
    assert len(pair.of(Announce)) == len(announces) + 1


def test_a_flood_of_unrequested_descriptions_is_ignored() -> None:
    device = FakeDeviceCore()
    pair = Pair(device)
    pair.boot()
    flood = b"".join(
        encode_frame(Description(0, 4096, b"[" * 200), seq % 256) for seq in range(2000)
    )
    assert pair.session.feed(flood, pair.now) == []
    assert pair.session.state is State.READY


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("a/\udc80", "lone surrogate at character 2"),
        ("x" * 65_536, "65536-byte queue name, at most 65535"),
        ("a\x00", "contains '\\x00'"),
        ("a/+", "contains '+'"),
        ("a/#", "contains '#'"),
        ("", "empty"),
    ],
)
def test_check_topic_refuses_what_the_mqtt_encoder_cannot_carry(topic: str, expected: str) -> None:
    with pytest.raises(DescriptionError, match=re.escape(expected)):
        check_topic(topic, "inports[0].queue")


def test_check_topic_takes_the_longest_name_mqtt_carries() -> None:
    assert check_topic("é" * 32_767 + "x") == "é" * 32_767 + "x"  # 65,535 bytes
