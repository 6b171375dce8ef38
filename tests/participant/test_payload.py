"""Payload encoding and decoding (pure)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.participant.payload import Message, Raw, encode

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(JSON_VALUES)
def test_json_round_trip(value: object) -> None:
    message = Message.from_bytes(encode(value))
    assert message.data == value
    assert message.json == value
    assert message.is_json


@given(st.binary())
def test_raw_bytes_are_sent_and_received_unchanged(payload: bytes) -> None:
    assert encode(Raw(payload)) == payload
    message = Message.from_bytes(payload)
    assert message.buffer == payload
    # Received bytes that are not JSON come back as bytes, and re-sending them is byte-exact.
    assert encode(message.data) == payload or message.is_json


def test_device_payloads() -> None:
    assert encode(Raw("open")) == b"open"
    assert Message.from_bytes(b"true").data is True
    assert Message.from_bytes(b"0.00").data == 0.0
    assert Message.from_bytes(b"0.00").buffer == b"0.00"  # the exact bytes stay available
    opening = Message.from_bytes(b"opening")
    assert opening.data == b"opening"
    assert isinstance(opening.json, ValueError)  # msgflo-python keeps the decode error
    assert not opening.is_json
    assert encode("open") == json.dumps("open").encode()
