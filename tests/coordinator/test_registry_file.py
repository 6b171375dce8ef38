"""The registry file: what a restarted coordinator reads back (pure encode/decode, and a file)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.coordinator.registry import Registry
from gateway.coordinator.registry_file import (
    decode_registry,
    encode_registry,
    read_registry,
    write_registry,
)
from gateway.errors import GatewayError
from gateway.participant.definition import define


def test_live_participants_round_trip_in_the_order_first_seen() -> None:
    registry = Registry(expiry=10)
    registry.observe(define("b", "B", inports=[{"id": "in", "queue": "hw/b"}]), now=0)
    registry.observe(define("a", "A", outports=["out"], participant_id="a-1"), now=1)
    registry.observe(define("quiet", "Q", outports=["out"]), now=-20)
    registry.expire(now=2)
    back = decode_registry(encode_registry(registry), "f")
    assert [d.role for d in back] == ["b", "a"]  # the quiet one is not kept
    assert back[0].inports[0].queue == "hw/b"
    assert back[1].id == "a-1"


def test_a_bad_entry_is_skipped_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    good = define("a", "A", outports=["out"]).to_discovery()
    data = {"version": 1, "participants": [{"role": "x"}, good, {"role": 1}]}
    with caplog.at_level(logging.WARNING):
        back = decode_registry(json.dumps(data).encode(), "reg.json")
    assert [d.role for d in back] == ["a"]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["reg.json"] * 2
    assert all("\n" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "data", [b"", b"[", b"[]", b'{"version": 2, "participants": []}', b"[" * 100_000]
)
def test_what_is_not_a_registry_file_says_so(data: bytes) -> None:
    with pytest.raises(GatewayError, match="f: not a"):
        decode_registry(data, "f")


def test_a_damaged_file_starts_empty_and_is_replaced_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "participants.json"
    path.write_bytes(b'{"version": 1, "partici')  # cut by a power loss, say
    with caplog.at_level(logging.WARNING):
        assert read_registry(path) == []
    assert "starting without it" in caplog.text
    registry = Registry()
    registry.observe(define("a", "A", outports=["out"]), now=0)
    write_registry(path, encode_registry(registry))
    assert [d.role for d in read_registry(path)] == ["a"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_registry(tmp_path / "missing.json") == []
