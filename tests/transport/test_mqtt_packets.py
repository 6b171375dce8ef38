"""The MQTT codec, both protocol versions: exact bytes, round trips, one-line errors only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import TransportError
from gateway.transport.base import Will
from gateway.transport.mqtt.packets import (
    DO_NOT_SEND_RETAINED,
    MQTT_5,
    MQTT_311,
    PUBACK,
    PUBREL,
    SUBACK,
    UNSUBACK,
    Ack,
    ConnAck,
    Decoder,
    Disconnect,
    MalformedPacketError,
    PingResp,
    Publish,
    SubAck,
    SubscriptionOptions,
    encode_ack,
    encode_connect,
    encode_publish,
    encode_string,
    encode_subscribe,
    encode_unsubscribe,
    encode_varint,
)


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def test_connect_minimal_in_both_versions() -> None:
    assert encode_connect("c1") == b"\x10\x0f\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x02c1"
    assert encode_connect("c1", version=MQTT_311) == (
        b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1"
    )


def test_connect_with_will_credentials_and_a_persistent_session() -> None:
    will = Will("dev/status", b"gone", qos=1, retain=True)
    v5 = encode_connect("id", username="u", password="p", will=will, session_expiry=300)
    assert v5[9] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04  # no Clean Start
    assert v5[12:18] == b"\x05\x11\x00\x00\x01\x2c"  # Session Expiry Interval 300
    v4 = encode_connect("id", version=MQTT_311, will=will, session_expiry=300)
    assert v4[9] == 0x20 | 0x08 | 0x04  # Clean Session 0, no properties anywhere
    assert v4.endswith(encode_string("id") + encode_string("dev/status") + b"\x00\x04gone")


def test_subscribe_options_only_in_mqtt5() -> None:
    options = SubscriptionOptions(2, True, True, DO_NOT_SEND_RETAINED)
    assert encode_subscribe(7, [("a/+", options)]) == b"\x82\x09\x00\x07\x00\x00\x03a/+\x2e"
    plain = SubscriptionOptions(1)
    assert encode_subscribe(7, [("a", plain)], MQTT_311) == b"\x82\x06\x00\x07\x00\x01a\x01"
    assert options.needs_v5 == "no_local"
    assert SubscriptionOptions(retain_as_published=True).needs_v5 == "retain_as_published"
    assert plain.needs_v5 is None


def test_unsubscribe_acks_and_publish() -> None:
    assert encode_unsubscribe(9, ["a"]) == b"\xa2\x06\x00\x09\x00\x00\x01a"
    assert encode_unsubscribe(9, ["a"], MQTT_311) == b"\xa2\x05\x00\x09\x00\x01a"
    assert encode_ack(PUBACK, 1) == b"\x40\x02\x00\x01"
    assert encode_ack(PUBREL, 3) == b"\x62\x02\x00\x03"
    assert encode_publish("t", b"x") == b"\x30\x05\x00\x01t\x00x"
    assert encode_publish("t", b"x", version=MQTT_311) == b"\x30\x04\x00\x01tx"
    assert encode_publish("t", b"x", qos=1, packet_id=5, dup=True, retain=True) == (
        b"\x3b\x07\x00\x01t\x00\x05\x00x"
    )


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "a\0b"])
def test_publishing_to_a_filter_is_refused(topic: str) -> None:
    with pytest.raises(TransportError, match="cannot publish to"):
        encode_publish(topic, b"")


@given(
    st.text(min_size=1, max_size=40).filter(lambda t: not set(t) & set("+#\0")),
    st.binary(max_size=300),
    st.sampled_from([0, 1, 2]),
    st.booleans(),
    st.sampled_from([MQTT_311, MQTT_5]),
)
def test_publish_round_trip(topic: str, payload: bytes, qos: int, retain: bool, v: int) -> None:
    data = encode_publish(topic, payload, version=v, qos=qos, retain=retain, packet_id=qos * 7)
    assert Decoder(v).feed(data) == [Publish(topic, payload, qos, retain, qos * 7)]


def test_byte_by_byte_feeding_gives_the_same_packets() -> None:
    data = encode_publish("a", b"1") + packet(0x40, b"\x00\x02") + packet(0xD0, b"")
    decoder = Decoder()
    events = [e for i in range(len(data)) for e in decoder.feed(data[i : i + 1])]
    assert events == [Publish("a", b"1"), Ack(PUBACK, 2), PingResp()]
    assert decoder.buffered == 0


def test_connack_in_both_versions() -> None:
    props = b"\x21\x00\x0a\x13\x00\x1e"  # Receive Maximum 10, Server Keep Alive 30
    data = packet(0x20, b"\x01\x00" + encode_varint(len(props)) + props)
    assert Decoder().feed(data) == [ConnAck(0, True, 10, 30)]
    assert Decoder(MQTT_311).feed(packet(0x20, b"\x00\x05")) == [ConnAck(0x87)]  # not authorized
    # A 3.1.1 broker answers an MQTT 5 CONNECT with its return code 1.
    assert Decoder().feed(packet(0x20, b"\x00\x01")) == [ConnAck(0x84)]


def test_suback_unsuback_and_disconnect() -> None:
    assert Decoder().feed(packet(0x90, b"\x00\x01\x00\x01\x80")) == [SubAck(SUBACK, 1, (1, 0x80))]
    assert Decoder(MQTT_311).feed(packet(0x90, b"\x00\x01\x02")) == [SubAck(SUBACK, 1, (2,))]
    assert Decoder(MQTT_311).feed(packet(0xB0, b"\x00\x01")) == [SubAck(UNSUBACK, 1, ())]
    reason = b"\x1f\x00\x03bye"
    assert Decoder().feed(packet(0xE0, b"\x8e" + encode_varint(len(reason)) + reason)) == [
        Disconnect(0x8E, "bye")
    ]


@pytest.mark.parametrize(
    ("version", "data", "why"),
    [
        (MQTT_5, packet(0x36, b"\x00\x01t\x00\x01"), "QoS 3"),
        (MQTT_5, packet(0x32, b"\x00\x01t\x00\x00\x00"), "packet identifier 0"),
        (MQTT_5, packet(0x30, b"\x00\x09t"), "ends inside"),
        (MQTT_5, packet(0x30, b"\x00\x01t\x05"), "properties run past"),
        (MQTT_5, packet(0x30, b"\x00\x02\xff\xfe\x00"), "not valid UTF-8"),
        (MQTT_5, packet(0x10, b""), "does not send CONNECT"),
        (MQTT_5, packet(0x41, b"\x00\x01"), "invalid fixed header flags"),
        (MQTT_5, packet(0xD0, b"\x00"), "PINGRESP with a body"),
        (MQTT_5, b"\x30\xff\xff\xff\xff\x7f", "longer than four bytes"),
        (MQTT_5, b"\x30\xff\xff\xff\x7f", "larger than the maximum"),
        (MQTT_311, packet(0xE0, b""), "3.1.1 server does not send DISCONNECT"),
        (MQTT_311, packet(0x40, b"\x00\x01\x00"), "longer than two bytes"),
        (MQTT_311, packet(0x90, b"\x00\x01"), "SUBACK without reason codes"),
    ],
)
def test_malformed_packets_are_one_line_errors(version: int, data: bytes, why: str) -> None:
    decoder = Decoder(version, max_packet_size=1 << 20)
    good = encode_publish("ok", b"1", version=version)
    with pytest.raises(MalformedPacketError, match=why) as err:
        decoder.feed(good + data)
    assert "\n" not in str(err.value)
    assert err.value.events == [Publish("ok", b"1")]  # what came before it


def test_an_incomplete_packet_cannot_grow_past_the_maximum() -> None:
    decoder = Decoder(max_packet_size=100)
    with pytest.raises(MalformedPacketError, match="larger than the maximum"):
        decoder.feed(b"\x30\xc8\x01" + b"x" * 50)  # announces 200 bytes
