"""The serial link codec: the shared vectors, round trips, and garbage that never raises."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.bridges.serial.description import (
    DescriptionAssembler,
    DeviceDescription,
    PortSpec,
    parse_description,
)
from gateway.bridges.serial.link import (
    AVR_MAX_FRAME,
    MAX_BODY,
    MAX_FRAME,
    DescribeRequest,
    Description,
    DeviceError,
    ErrorCounters,
    Frame,
    Hello,
    LinkDecoder,
    LinkErrorKind,
    Ping,
    Pong,
    PortMessage,
    Received,
    cobs_decode,
    cobs_encode,
    crc16_ccitt_false,
    decode_frame,
    encode_frame,
    frame_size,
)
from gateway.errors import DescriptionError, FrameTooLargeError, SerialLinkError

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "serial_link.json").read_text(encoding="utf-8")
)


def test_the_vectors_file_is_what_its_generator_writes() -> None:
    path = Path(__file__).parents[1] / "vectors" / "make_serial_link_vectors.py"
    spec = importlib.util.spec_from_file_location("make_serial_link_vectors", path)
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render(generator.build()) == generator.OUT.read_text(encoding="utf-8")


def vector_id(case: dict[str, Any]) -> str:
    return str(case.get("name", case.get("input", "")))[:40]


def expected_frame(case: dict[str, Any]) -> Frame:  # noqa: PLR0911 (one return per type)
    fields = case["fields"]
    match case["kind"]:
        case "Hello":
            return Hello(fields["name"], fields["version"], fields["protocol"], fields["max_frame"])
        case "DescribeRequest":
            return DescribeRequest(fields["offset"])
        case "Description":
            return Description(fields["offset"], fields["total"], bytes.fromhex(fields["data"]))
        case "PortMessage":
            return PortMessage(fields["port"], bytes.fromhex(fields["payload"]))
        case "Ping":
            return Ping()
        case "Pong":
            return Pong(ErrorCounters(**fields["counters"]))
        case "DeviceError":
            return DeviceError(fields["code"], fields["text"])
    raise AssertionError(case["kind"])


def decode_all(data: bytes) -> list[Received | SerialLinkError]:
    return LinkDecoder().feed(data)


# -- the shared vectors --------------------------------------------------------------------------


def test_the_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@pytest.mark.parametrize("case", VECTORS["crc16"], ids=vector_id)
def test_crc_vectors(case: dict[str, Any]) -> None:
    assert crc16_ccitt_false(bytes.fromhex(case["input"])) == case["crc"]


@pytest.mark.parametrize("case", VECTORS["cobs"], ids=vector_id)
def test_cobs_vectors(case: dict[str, Any]) -> None:
    decoded, encoded = bytes.fromhex(case["decoded"]), bytes.fromhex(case["encoded"])
    assert cobs_encode(decoded) == encoded
    assert cobs_decode(encoded) == decoded
    assert 0 not in encoded


@pytest.mark.parametrize("case", VECTORS["frames"], ids=vector_id)
def test_frame_vectors_decode(case: dict[str, Any]) -> None:
    events = decode_all(bytes.fromhex(case["wire"]))
    assert events == [Received(expected_frame(case), case["seq"])]


@pytest.mark.parametrize(
    "case", [c for c in VECTORS["frames"] if "extra" not in c["name"]], ids=vector_id
)
def test_frame_vectors_encode(case: dict[str, Any]) -> None:
    frame = expected_frame(case)
    assert encode_frame(frame, case["seq"]).hex() == case["wire"]
    assert frame_size(frame) == len(bytes.fromhex(case["body"])) + 4


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=vector_id)
def test_invalid_vectors(case: dict[str, Any]) -> None:
    decoder = LinkDecoder()
    events = decoder.feed(bytes.fromhex(case["wire"]))
    assert len(events) == 1
    assert isinstance(events[0], SerialLinkError)
    assert events[0].kind == case["error"]
    assert decoder.stats.errors[LinkErrorKind(case["error"])] == 1
    assert decoder.stats.dropped == 1
    assert decoder.stats.frames == 0


def event_name(event: Received | SerialLinkError) -> str:
    if isinstance(event, SerialLinkError):
        return f"error:{event.kind}"
    return {Ping: "P", PortMessage: "M"}[type(event.frame)]


@pytest.mark.parametrize("case", VECTORS["streams"], ids=vector_id)
def test_stream_vectors(case: dict[str, Any]) -> None:
    assert [event_name(e) for e in decode_all(bytes.fromhex(case["wire"]))] == case["events"]


# -- encoding limits and errors ------------------------------------------------------------------


def test_a_frame_over_the_device_limit_is_refused() -> None:
    fits = PortMessage(0, bytes(AVR_MAX_FRAME - 5))
    assert frame_size(fits) == AVR_MAX_FRAME
    encode_frame(fits, 1, max_frame=AVR_MAX_FRAME)
    with pytest.raises(FrameTooLargeError, match="frame of 61 bytes exceeds the device's 60"):
        encode_frame(PortMessage(0, bytes(AVR_MAX_FRAME - 4)), 1, max_frame=AVR_MAX_FRAME)
    with pytest.raises(FrameTooLargeError):
        encode_frame(PortMessage(0, bytes(MAX_BODY)), 1)


@pytest.mark.parametrize(
    ("frame", "seq"),
    [
        (PortMessage(256, b""), 0),
        (PortMessage(0, b""), 256),
        (Hello("x" * 256, ""), 0),
        (DeviceError(-1), 0),
        (DescribeRequest(0x10000), 0),
        (Description(0, -1, b""), 0),
        (Pong(ErrorCounters(cobs=-1)), 0),
    ],
)
def test_values_out_of_range_are_refused(frame: Frame, seq: int) -> None:
    with pytest.raises(ValueError, match="must be 0"):
        encode_frame(frame, seq)


def test_decode_frame_raises_and_the_decoder_counts() -> None:
    with pytest.raises(SerialLinkError, match=r"dropped frame \(bad_cobs\)"):
        decode_frame(b"\x05\x01")
    decoder = LinkDecoder()
    decoder.feed(b"\x05\x01\x00\x01\x00" + encode_frame(Ping(), 3))
    assert decoder.stats.errors[LinkErrorKind.BAD_COBS] == 1
    assert decoder.stats.errors[LinkErrorKind.TOO_SHORT] == 1
    assert decoder.stats.frames == 1


def test_overflow_discards_until_the_next_zero() -> None:
    decoder = LinkDecoder()
    events = decoder.feed(b"\x01" * 255)
    assert events == []
    assert decoder.buffered == 255
    events = decoder.feed(b"\x01" + encode_frame(Ping(), 1))
    # The ping's own bytes come before its 0x00: part of the overflow, discarded with it.
    assert [event_name(e) for e in events] == ["error:too_long"]
    assert decoder.buffered == 0
    assert decoder.feed(encode_frame(Ping(), 2)) == [Received(Ping(), 2)]


def test_an_avr_sized_decoder_drops_frames_over_60_bytes() -> None:
    decoder = LinkDecoder(max_frame=AVR_MAX_FRAME)
    fits = encode_frame(PortMessage(0, bytes(AVR_MAX_FRAME - 5)), 1)
    too_long = encode_frame(PortMessage(0, bytes(AVR_MAX_FRAME - 4)), 2)
    events = decoder.feed(fits + too_long + encode_frame(Ping(), 3))
    assert [event_name(e) for e in events] == ["M", "error:too_long", "P"]
    assert decoder.stats.errors[LinkErrorKind.TOO_LONG] == 1
    with pytest.raises(ValueError, match=r"max_frame must be 4\.\.254"):
        LinkDecoder(max_frame=255)


# -- round trips ---------------------------------------------------------------------------------

# Descriptions hold no NUL (refused by the description parser), and no lone surrogates.
texts = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=40
).filter(lambda s: len(s.encode()) <= 80)
u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)


@st.composite
def descriptions(draw: st.DrawFn) -> Description:
    data = draw(st.binary(max_size=MAX_BODY - 4))
    offset = draw(st.integers(0, 0xFFFF - len(data)))
    return Description(offset, draw(st.integers(offset + len(data), 0xFFFF)), data)


frames: st.SearchStrategy[Frame] = st.one_of(
    st.builds(Hello, texts, texts, u8, u8),
    st.builds(DescribeRequest, u16),
    descriptions(),
    st.builds(PortMessage, u8, st.binary(max_size=MAX_BODY - 1)),
    st.just(Ping()),
    st.builds(Pong, st.builds(ErrorCounters, u16, u16, u16, u16)),
    st.builds(DeviceError, u8, st.text(max_size=100)),
)


@given(st.binary(max_size=600))
def test_cobs_round_trip(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + 1 + len(data) // 254
    assert cobs_decode(encoded) == data


@given(frames, u8)
def test_frame_round_trip(frame: Frame, seq: int) -> None:
    wire = encode_frame(frame, seq)
    assert wire.endswith(b"\x00")
    assert 0 not in wire[:-1]
    assert len(wire) <= MAX_FRAME + 2
    assert decode_all(wire) == [Received(frame, seq)]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.binary(max_size=300), frames, u8), max_size=8))
def test_garbage_between_frames(parts: list[tuple[bytes, Frame, int]]) -> None:
    """Every valid frame that follows a 0x00 is recovered, whatever came before it."""
    stream = b"".join(garbage + b"\x00" + encode_frame(frame, seq) for garbage, frame, seq in parts)
    decoder = LinkDecoder()
    events = decoder.feed(stream)
    received = [e for e in events if isinstance(e, Received)]
    wanted = [Received(frame, seq) for _, frame, seq in parts]
    # Garbage may itself decode into a valid frame (it is random bytes); the wanted frames are
    # there, in order, as a subsequence.
    it = iter(received)
    assert all(any(got == want for got in it) for want in wanted)
    assert decoder.stats.frames == len(received)
    assert decoder.stats.dropped == len(events) - len(received)


@settings(max_examples=200)
@given(st.binary(max_size=1500), st.lists(st.integers(0, 1500), max_size=10))
def test_splitting_the_stream_changes_nothing(data: bytes, cuts: list[int]) -> None:
    stream = data + b"".join(encode_frame(Ping(), n) for n in range(3))
    whole = decode_all(stream)
    decoder = LinkDecoder()
    pieces = []
    bounds = [0, *sorted(min(c, len(stream)) for c in cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        pieces += decoder.feed(stream[start:end])
    assert [repr(e) for e in pieces] == [repr(e) for e in whole]


# -- the describe JSON ---------------------------------------------------------------------------

BUTTON_LED = (
    b'{"component":"ButtonLed","label":"A button and a LED","icon":"lightbulb-o",'
    b'"inports":[{"id":"led","type":"boolean"}],"outports":[{"id":"button","type":"boolean"}],'
    b'"version":"1.0.0","future":42}'
)


def test_a_description_parses() -> None:
    assert parse_description(BUTTON_LED) == DeviceDescription(
        component="ButtonLed",
        label="A button and a LED",
        icon="lightbulb-o",
        inports=(PortSpec("led", "boolean"),),
        outports=(PortSpec("button", "boolean"),),
        version="1.0.0",
    )
    assert parse_description(b'{"component":"X","inports":[{"id":"in"}]}').inports == (
        PortSpec("in", "any"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BUTTON_LED[:60], r"invalid device description: not JSON \(truncated\?\): Expecting"),
        (
            BUTTON_LED[:100],
            r"invalid device description: not JSON \(truncated\?\): Unterminated string",
        ),
        (b"\xff{}", "not UTF-8 at byte 0"),
        (b"[1]", "must be a JSON object, not list"),
        (b"{}", "component: must be a non-empty string"),
        (b'{"component":""}', "component: must be a non-empty string"),
        (b'{"component":"X","label":3}', "label: must be a string"),
        (b'{"component":"X","inports":{}}', "inports: must be a list of ports"),
        (b'{"component":"X","inports":[1]}', r"inports\[0\]: must be an object"),
        (b'{"component":"X","outports":[{"id":""}]}', r"outports\[0\].id: '' is not a port"),
        (b'{"component":"X","outports":[{"id":"a b"}]}', r"outports\[0\].id: 'a b' is not"),
        (b'{"component":"X","inports":[{"id":"a","type":1}]}', r"inports\[0\].type: must be"),
        (
            b'{"component":"X","inports":[{"id":"a"},{"id":"a"}]}',
            r"inports\[1\].id: duplicate port 'a'",
        ),
        (b'{"component":"X"} x', r"not JSON: Extra data \(byte 18\)"),
    ],
)
def test_bad_descriptions_get_one_line(text: bytes, message: str) -> None:
    with pytest.raises(DescriptionError, match=message) as caught:
        parse_description(text)
    assert "\n" not in str(caught.value)


def test_the_assembler_joins_parts() -> None:
    assembler = DescriptionAssembler()
    total = len(BUTTON_LED)
    assert assembler.add(Description(0, total, BUTTON_LED[:100])) is None
    assert assembler.next_offset == 100
    assert assembler.add(Description(100, total, BUTTON_LED[100:])) == BUTTON_LED


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([Description(5, 10, b"x")], "reply at offset 5, 0 asked"),
        ([Description(0, 10, b"x"), Description(1, 11, b"x")], "total changed from 10 to 11"),
        ([Description(0, 5000, b"x")], "5000 bytes, at most 4096"),
        ([Description(0, 10, b"")], "empty reply at offset 0 of 10"),
    ],
)
def test_the_assembler_refuses_inconsistent_parts(parts: list[Description], message: str) -> None:
    assembler = DescriptionAssembler()
    with pytest.raises(DescriptionError, match=message):
        for part in parts:
            assembler.add(part)


def test_an_empty_description_text_is_complete_at_once() -> None:
    assert DescriptionAssembler().add(Description(0, 0, b"")) == b""


port_ids = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
port_lists = st.lists(st.builds(PortSpec, port_ids, texts.filter(bool)), max_size=6).map(
    lambda ports: tuple({port.id: port for port in ports}.values())
)


@given(
    st.builds(DeviceDescription, texts.filter(bool), texts, texts, port_lists, port_lists, texts),
    st.integers(1, MAX_BODY - 4),
)
def test_a_description_round_trips_through_paged_frames(
    description: DeviceDescription, page: int
) -> None:
    """The device side pages its JSON into D replies; the host side reassembles and parses."""
    ports = {
        key: [{"id": p.id, "type": p.type} for p in getattr(description, key)]
        for key in ("inports", "outports")
    }
    doc = {
        "component": description.component,
        "label": description.label,
        "icon": description.icon,
        "version": description.version,
        **ports,
    }
    text = json.dumps(doc).encode()
    assembler = DescriptionAssembler()
    decoder = LinkDecoder()
    result = None
    while result is None:
        start = assembler.next_offset
        reply = Description(start, len(text), text[start : start + page])
        [received] = decoder.feed(encode_frame(reply, 1))
        assert isinstance(received, Received)
        assert isinstance(received.frame, Description)
        result = assembler.add(received.frame)
    assert parse_description(result) == description
