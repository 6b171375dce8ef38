"""The sans-I/O MQTT 5 codec: exact bytes, round trips, and no exception but its own."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.transport.base import Will
from gateway.transport.mqtt5_codec import (
    ConnAck,
    Decoder,
    Disconnect,
    Event,
    MalformedPacketError,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    RetainHandling,
    SubAck,
    UnsubAck,
    decode_varint,
    reason_name,
)
from gateway.transport.mqtt5_encoder import (
    PublishEncoder,
    SubscriptionOptions,
    encode_binary,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_puback,
    encode_pubcomp,
    encode_publish,
    encode_pubrec,
    encode_pubrel,
    encode_string,
    encode_subscribe,
    encode_unsubscribe,
    encode_varint,
)

# -- what a server would send (the codec only encodes what a client sends) ---------------------


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def connack(reason: int = 0, session: bool = False, props: bytes = b"") -> bytes:
    return packet(0x20, bytes([int(session), reason]) + encode_varint(len(props)) + props)


def suback(packet_id: int, *codes: int) -> bytes:
    return packet(0x90, packet_id.to_bytes(2, "big") + b"\x00" + bytes(codes))


def unsuback(packet_id: int, *codes: int) -> bytes:
    return packet(0xB0, packet_id.to_bytes(2, "big") + b"\x00" + bytes(codes))


def publish_with_properties(topic: str, payload: bytes, props: bytes) -> bytes:
    body = encode_string(topic) + encode_varint(len(props)) + props + payload
    return packet(0x30, body)


def decode_all(data: bytes) -> list[Event]:
    decoder = Decoder()
    events = decoder.feed(data)
    assert decoder.buffered == 0
    return events


# -- encoders: exact bytes ---------------------------------------------------------------------


def test_connect_minimal() -> None:
    assert encode_connect("c1", keepalive=60) == (
        b"\x10\x0f\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x02c1"
    )


def test_connect_with_will_and_credentials() -> None:
    will = Will("dev/status", b"gone", qos=1, retain=True)
    data = encode_connect("id", keepalive=30, username="u", password="p", will=will)
    flags = data[9]
    assert flags == 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02
    assert data.endswith(
        encode_string("id") + b"\x00" + encode_string("dev/status") + encode_binary(b"gone")
        + encode_string("u") + encode_binary(b"p")
    )  # fmt: skip


def test_subscribe_options_byte() -> None:
    options = SubscriptionOptions(
        qos=2,
        no_local=True,
        retain_as_published=True,
        retain_handling=RetainHandling.DO_NOT_SEND,
    )
    data = encode_subscribe(7, [("a/+", options), ("b", SubscriptionOptions())])
    assert data == b"\x82\x0d\x00\x07\x00" + b"\x00\x03a/+\x2e" + b"\x00\x01b\x00"


def test_unsubscribe() -> None:
    assert encode_unsubscribe(9, ["a", "b/#"]) == b"\xa2\x0b\x00\x09\x00\x00\x01a\x00\x03b/#"


def test_small_packets() -> None:
    assert encode_puback(1) == b"\x40\x02\x00\x01"
    assert encode_pubrec(258) == b"\x50\x02\x01\x02"
    assert encode_pubrel(3) == b"\x62\x02\x00\x03"
    assert encode_pubcomp(4) == b"\x70\x02\x00\x04"
    assert encode_pingreq() == b"\xc0\x00"
    assert encode_disconnect() == b"\xe0\x00"
    assert encode_disconnect(0x04) == b"\xe0\x01\x04"


def test_publish_bytes() -> None:
    assert encode_publish("t", b"hi") == b"\x30\x06\x00\x01t\x00hi"
    assert encode_publish("t", b"", qos=1, packet_id=5, retain=True, dup=True) == (
        b"\x3b\x06\x00\x01t\x00\x05\x00"
    )


def test_publish_encoder_reuses_the_encoded_topic() -> None:
    encoder = PublishEncoder()
    first = encoder.topic_bytes("a/b")
    assert encoder.topic_bytes("a/b") is first
    out = bytearray()
    encoder.write(out, "a/b", b"x" * 200)
    assert bytes(out) == encode_publish("a/b", b"x" * 200)
    assert out[1:3] == encode_varint(206)


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_publish("a/#", b""),
        lambda: encode_publish("", b""),
        lambda: encode_publish("a", b"", qos=1),  # no packet id
        lambda: encode_publish("a", b"", qos=3, packet_id=1),
        lambda: encode_subscribe(0, [("a", SubscriptionOptions())]),
        lambda: encode_subscribe(1, []),
        lambda: encode_unsubscribe(70000, ["a"]),
        lambda: encode_connect("c", keepalive=70000),
        lambda: encode_string("x" * 70000),
        lambda: encode_varint(-1),
    ],
)
def test_encoders_refuse_what_cannot_be_sent(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


# -- decoder -----------------------------------------------------------------------------------


def test_decode_each_packet_a_server_sends() -> None:
    props = b"\x21\x00\x0a" + b"\x13\x00\x05" + b"\x12" + encode_string("gen-1")
    stream = (
        connack(0, True, props)
        + suback(1, 0, 1, 0x87)
        + unsuback(2, 0)
        + encode_publish("a/b", b"payload", qos=2, packet_id=9, retain=True)
        + b"\x40\x02\x00\x03"
        + b"\x50\x03\x00\x04\x10"
        + b"\x62\x04\x00\x05\x92\x00"
        + b"\x70\x02\x00\x06"
        + b"\xd0\x00"
        + packet(0xE0, b"\x8b" + encode_varint(6) + b"\x1f" + encode_string("bye"))
    )
    assert decode_all(stream) == [
        ConnAck(0, True, receive_maximum=10, server_keep_alive=5, assigned_client_id="gen-1"),
        SubAck(1, (0, 1, 0x87)),
        UnsubAck(2, (0,)),
        Publish("a/b", b"payload", qos=2, retain=True, packet_id=9),
        PubAck(3),
        PubRec(4, 0x10),
        PubRel(5, 0x92),
        PubComp(6),
        PingResp(),
        Disconnect(0x8B, "bye"),
    ]


def test_publish_properties_are_skipped() -> None:
    props = b"\x01\x01" + b"\x03" + encode_string("application/json") + b"\x23\x00\x01"
    assert decode_all(publish_with_properties("t/1", b"{}", props)) == [Publish("t/1", b"{}")]
    big = b"\x26" + encode_string("k") + encode_string("v" * 200)  # property length >= 128
    assert decode_all(publish_with_properties("t/2", b"z", big)) == [Publish("t/2", b"z")]


def test_partial_packets_wait_for_the_rest() -> None:
    data = encode_publish("topic", b"x" * 300) + encode_pingreq().replace(b"\xc0", b"\xd0")
    decoder = Decoder()
    got: list[Event] = []
    for i in range(len(data)):
        got += decoder.feed(data[i : i + 1])
    assert got == [Publish("topic", b"x" * 300), PingResp()]
    assert decoder.buffered == 0


def test_connack_refusal_and_reason_names() -> None:
    assert decode_all(connack(0x87)) == [ConnAck(0x87)]
    assert reason_name(0x87) == "Not authorized"
    assert reason_name(0x86) == "Bad User Name or Password"
    assert reason_name(0x7E) == "reason code 0x7E"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x10\x00", "does not send CONNECT"),
        (b"\x00\x00", "reserved type 0"),
        (b"\xf0\x00", "does not send AUTH"),
        (b"\x41\x02\x00\x01", "invalid fixed header flags"),
        (b"\x36\x05\x00\x01t\x00\x00", "QoS 3"),
        (b"\x32\x06\x00\x01t\x00\x00\x00", "packet identifier 0"),
        (b"\x30\x03\x00\x05t", "PUBLISH ends inside"),
        (b"\x30\x01\x00", "too short"),
        (b"\x30\x05\x00\x01t\x05x", "properties run past"),
        (b"\x30\x05\x00\x01\xff\x00x", "not valid UTF-8"),
        (b"\x30\xff\xff\xff\xff\x01", "longer than four bytes"),
        (b"\x40\x01\x00", "two byte integer"),
        (b"\x40\x02\x00\x00", "packet identifier 0"),
        (b"\x90\x03\x00\x01\x00", "without reason codes"),
        (b"\x20\x02\x02\x00", "reserved flags"),
        (b"\x20\x01\x00", "CONNACK too short"),
        (b"\x20\x05\x00\x00\x02\x7f\x00", "unknown property"),
        (b"\xd0\x01\x00", "PINGRESP with a body"),
        (b"\xe0\x02\x00\x05", "properties run past"),
    ],
)
def test_malformed_packets(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacketError, match=message):
        Decoder().feed(data)


def test_good_packets_before_a_bad_one_come_with_the_error() -> None:
    with pytest.raises(MalformedPacketError) as err:
        Decoder().feed(encode_publish("a", b"1") + b"\xd0\x00" + b"\x00\x00")
    assert err.value.events == [Publish("a", b"1"), PingResp()]


def test_packet_size_limit() -> None:
    decoder = Decoder(max_packet_size=1000)
    with pytest.raises(MalformedPacketError, match="larger than the maximum of 1000"):
        decoder.feed(b"\x30\xe9\x07")


# -- properties --------------------------------------------------------------------------------

topics = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="+#\x00"),
    min_size=1,
    max_size=60,
)


@given(st.integers(min_value=0, max_value=268_435_455))
def test_varint_round_trip(value: int) -> None:
    data = encode_varint(value)
    assert len(data) == 1 + (value >= 128) + (value >= 16_384) + (value >= 2_097_152)
    assert decode_varint(data + b"junk", 0, len(data) + 4) == (value, len(data))
    assert decode_varint(data[:-1], 0, len(data) - 1) is None


@given(
    topic=topics,
    payload=st.binary(max_size=400),
    qos=st.sampled_from([0, 1, 2]),
    retain=st.booleans(),
    packet_id=st.integers(min_value=1, max_value=65_535),
    dup=st.booleans(),
)
def test_publish_round_trip(
    *, topic: str, payload: bytes, qos: int, retain: bool, packet_id: int, dup: bool
) -> None:
    packet_id = packet_id if qos else 0
    data = encode_publish(topic, payload, qos=qos, retain=retain, packet_id=packet_id, dup=dup)
    assert decode_all(data) == [Publish(topic, payload, qos, retain, packet_id, dup)]


def server_packets() -> st.SearchStrategy[bytes]:
    ids = st.integers(min_value=1, max_value=65_535)
    return st.one_of(
        st.builds(
            lambda t, p, q, i: encode_publish(t, p, qos=q, packet_id=i if q else 0),
            topics,
            st.binary(max_size=300),
            st.sampled_from([0, 1, 2]),
            ids,
        ),
        st.builds(encode_puback, ids),
        st.builds(encode_pubrec, ids),
        st.builds(encode_pubrel, ids),
        st.builds(encode_pubcomp, ids),
        st.builds(lambda i: suback(i, 0, 2), ids),
        st.builds(lambda i: unsuback(i, 0), ids),
        st.just(connack()),
        st.just(b"\xd0\x00"),
        st.just(b"\xe0\x00"),
    )


def decode_in_pieces(data: bytes, cuts: list[int]) -> tuple[list[Event], bool, int]:
    """Events, whether the decoder raised, and what it holds when fed in pieces."""
    decoder = Decoder()
    events: list[Event] = []
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    try:
        for start, stop in itertools.pairwise(bounds):
            events += decoder.feed(data[start:stop])
    except MalformedPacketError as exc:
        return events + exc.events, True, 0
    return events, False, decoder.buffered


@given(st.lists(server_packets(), max_size=12), st.lists(st.integers(min_value=0), max_size=10))
def test_valid_streams_decode_the_same_however_split(packets: list[bytes], cuts: list[int]) -> None:
    data = b"".join(packets)
    whole = decode_all(data)
    assert len(whole) == len(packets)
    assert decode_in_pieces(data, cuts) == (whole, False, 0)


@given(
    st.lists(st.one_of(server_packets(), st.binary(max_size=40)), max_size=8),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_any_bytes_raise_only_the_codec_error_and_splitting_changes_nothing(
    pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    whole, whole_raised, whole_left = decode_in_pieces(data, [])
    split, split_raised, split_left = decode_in_pieces(data, cuts)
    # On an error, the good packets before the bad one come with the exception.
    assert (split, split_raised, split_left) == (whole, whole_raised, whole_left)
