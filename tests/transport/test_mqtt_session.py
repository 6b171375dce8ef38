"""The MQTT session core without sockets: bytes and time in, bytes and notices out."""

from __future__ import annotations

import pytest

from gateway.errors import TransportError
from gateway.transport.mqtt.packets import (
    MQTT_5,
    MQTT_311,
    PUBACK,
    PUBCOMP,
    PUBREC,
    PUBREL,
    Decoder,
    MalformedPacketError,
    Publish,
    SubscriptionOptions,
    encode_ack,
    encode_connect,
    encode_publish,
    encode_subscribe,
    encode_varint,
)
from gateway.transport.mqtt.session import (
    Acknowledged,
    Closed,
    Connected,
    RefusedError,
    Session,
)


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def connack(version: int, present: bool = False, code: int = 0) -> bytes:
    props = b"\x00" if version == MQTT_5 else b""
    return packet(0x20, bytes([present, code]) + props)


def connected(version: int = MQTT_5, **kwargs: object) -> Session:
    session = Session("c", version=version, **kwargs)  # type: ignore[arg-type]
    session.connect(0.0)
    assert session.data_to_send(0.0) == encode_connect(
        "c", version=version, keepalive=session.keepalive
    )
    session.receive(connack(version))
    assert session.notices == [Connected(False)]
    session.notices.clear()
    return session


@pytest.mark.parametrize("version", [MQTT_311, MQTT_5])
def test_subscriptions_are_sent_and_replayed_after_a_reconnect(version: int) -> None:
    session = connected(version)
    options = SubscriptionOptions(1)
    assert session.subscribe("a/#", options) == 1
    assert session.data_to_send(1.0) == encode_subscribe(1, [("a/#", options)], version)
    session.receive(packet(0x90, b"\x00\x01" + (b"\x00" if version == MQTT_5 else b"") + b"\x01"))
    assert session.notices == [Acknowledged(1, ("a/#",), (1,), True)]
    session.connection_lost()
    session.connect(2.0)
    session.data_to_send(2.0)
    session.receive(connack(version))
    assert session.data_to_send(2.0) == encode_subscribe(2, [("a/#", options)], version)


def test_mqtt311_refuses_mqtt5_only_options() -> None:
    session = connected(MQTT_311)
    with pytest.raises(TransportError, match="no_local on 'a' needs MQTT 5"):
        session.subscribe("a", SubscriptionOptions(no_local=True))
    assert session.subscriptions == {}


@pytest.mark.parametrize("version", [MQTT_311, MQTT_5])
def test_qos1_and_qos2_out_and_resent_with_dup_after_a_reconnect(version: int) -> None:
    session = connected(version)
    assert session.publish("t", b"1", qos=1) and session.publish("t", b"2", qos=2)
    first = encode_publish("t", b"1", version=version, qos=1, packet_id=1)
    second = encode_publish("t", b"2", version=version, qos=2, packet_id=2)
    assert session.data_to_send(1.0) == first + second
    session.receive(encode_ack(PUBREC, 2))  # the broker has the QoS 2 one
    assert session.data_to_send(1.0) == encode_ack(PUBREL, 2)
    session.connection_lost()
    session.connect(2.0)
    session.data_to_send(2.0)
    session.receive(connack(version, present=True))
    dup = encode_publish("t", b"1", version=version, qos=1, packet_id=1, dup=True)
    assert session.data_to_send(2.0) == dup + encode_ack(PUBREL, 2)  # 4.4: in order
    session.receive(encode_ack(PUBACK, 1) + encode_ack(PUBCOMP, 2))
    assert session.outstanding() == []


@pytest.mark.parametrize("version", [MQTT_311, MQTT_5])
def test_qos1_and_qos2_in(version: int) -> None:
    session = connected(version)
    data = encode_publish("t", b"x", version=version, qos=2, packet_id=9)
    [message] = session.receive(data)
    assert session.accept(message)
    assert session.data_to_send(1.0) == encode_ack(PUBREC, 9)
    [again] = session.receive(encode_publish("t", b"x", version=version, qos=2, packet_id=9))
    assert not session.accept(again)  # a duplicate: acknowledged, not delivered twice
    session.receive(packet(0x62, b"\x00\x09"))
    assert session.data_to_send(1.0) == encode_ack(PUBREC, 9) + encode_ack(PUBCOMP, 9)
    [once] = session.receive(encode_publish("t", b"y", version=version, qos=1, packet_id=3))
    assert session.accept(once)
    assert session.data_to_send(1.0) == encode_ack(PUBACK, 3)


def test_receive_maximum_and_the_offline_queue() -> None:
    session = Session("c", max_queued=2)
    assert not session.publish("t", b"lost")  # QoS 0 while not connected
    assert session.publish("t", b"1", qos=1) and session.publish("t", b"2", qos=1)
    assert not session.publish("t", b"3", qos=1)  # past max_queued
    session.connect(0.0)
    session.data_to_send(0.0)
    props = b"\x03\x21\x00\x01"  # Receive Maximum 1
    session.receive(packet(0x20, b"\x00\x00" + props))
    assert session.data_to_send(0.0) == encode_publish("t", b"1", qos=1, packet_id=1)
    session.receive(encode_ack(PUBACK, 1))
    assert session.data_to_send(0.0) == encode_publish("t", b"2", qos=1, packet_id=2)


def test_keepalive_pings_and_declares_a_silent_broker_dead() -> None:
    session = connected(keepalive=10)
    assert session.next_tick() == 10.0
    session.tick(9.0)
    assert session.data_to_send(9.0) == b""
    session.tick(10.0)
    assert session.data_to_send(10.0) == b"\xc0\x00"  # PINGREQ
    session.receive(b"\xd0\x00")  # PINGRESP
    assert session.next_tick() == 20.0
    session.tick(20.0)
    session.data_to_send(20.0)
    session.tick(30.0)
    assert session.notices == [Closed("no PINGRESP within 10 s")]


def test_the_server_keep_alive_wins() -> None:
    session = Session("c", keepalive=60)
    session.connect(0.0)
    session.receive(packet(0x20, b"\x00\x00\x03\x13\x00\x05"))
    assert session.keepalive == 5 and session.next_tick() == 5.0


@pytest.mark.parametrize(
    ("version", "data", "name"),
    [
        (MQTT_5, packet(0x20, b"\x00\x87\x00"), "Not authorized"),
        (MQTT_311, packet(0x20, b"\x00\x04"), "Bad User Name or Password"),
        (MQTT_5, packet(0x20, b"\x00\x01"), "Unsupported Protocol Version"),
    ],
)
def test_refusals_are_named(version: int, data: bytes, name: str) -> None:
    session = Session("c", version=version)
    session.connect(0.0)
    with pytest.raises(RefusedError, match=name):
        session.receive(data)
    assert not session.connected


def test_a_broker_disconnect_closes() -> None:
    session = connected()
    session.receive(packet(0xE0, b"\x8e\x00"))
    assert session.notices == [Closed("the broker disconnected us: Session taken over")]


def test_falling_back_to_mqtt311() -> None:
    session = Session("c")
    session.use_version(MQTT_311)
    session.connect(0.0)
    assert session.data_to_send(0.0) == encode_connect("c", version=MQTT_311)
    session.receive(connack(MQTT_311))
    assert session.publish("t", b"x")
    assert session.data_to_send(0.0) == encode_publish("t", b"x", version=MQTT_311)


def test_malformed_input_keeps_the_good_messages_before_it() -> None:
    session = connected()
    with pytest.raises(MalformedPacketError) as err:
        session.receive(encode_publish("ok", b"1") + packet(0x10, b""))
    assert err.value.events == [Publish("ok", b"1")]
    assert Decoder().buffered == 0
