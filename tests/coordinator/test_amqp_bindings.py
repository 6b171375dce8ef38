"""The coordinator's record of its AMQP bindings: format and refusals (pure, no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.broker import parse_broker_url
from gateway.coordinator.amqp_bindings import (
    RECORD_PREFIX,
    Binding,
    decode_record,
    encode_record,
    record_queue,
)
from gateway.coordinator.service import ServiceConfig, deployment_name
from gateway.graph import parse_fbp

NAMES = st.text(min_size=1, max_size=40)
BINDINGS = st.sets(st.builds(Binding, NAMES, NAMES, st.booleans()), max_size=20)


@given(BINDINGS)
def test_a_record_round_trips(bindings: set[Binding]) -> None:
    assert decode_record(encode_record(bindings)) == bindings


def test_the_record_is_small_sorted_json() -> None:
    body = encode_record({Binding("b/out", "c/in"), Binding("dead-w/in", "d/in", dead=True)})
    assert body == b'{"bindings":[["b/out","c/in",false],["dead-w/in","d/in",true]]}'


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not a bindings record"),
        (b"\xff\xfe", "not a bindings record"),
        (b"[]", "not a bindings record"),
        (b'{"bindings": {}}', "'bindings' is not a list"),
        (b'{"bindings": [["a", "b"]]}', "bad binding ['a', 'b']"),
        (b'{"bindings": [["a", 1, false]]}', "bad binding ['a', 1, False]"),
        (b'{"bindings": [["a", "b", "no"]]}', "bad binding ['a', 'b', 'no']"),
    ],
)
def test_a_bad_record_is_one_line_saying_what_is_wrong(body: bytes, problem: str) -> None:
    with pytest.raises(ValueError) as err:
        decode_record(body)
    assert problem in str(err.value)
    assert "\n" not in str(err.value)


@given(st.binary(max_size=200))
def test_garbage_is_refused_with_value_error_or_read_as_bindings(body: bytes) -> None:
    try:
        found = decode_record(body)
    except ValueError:
        return
    assert all(isinstance(b, Binding) for b in found)


def test_record_queue_names_fit_amqp() -> None:
    assert record_queue("main") == f"{RECORD_PREFIX}main"
    assert len(record_queue("x" * 400)) == 255


def deployment(graph_file: str | None, fbp: str = "a(A)") -> str | None:
    path = Path(graph_file) if graph_file is not None else None
    config = ServiceConfig(broker=parse_broker_url("amqp://rabbit"), graph_path=path)
    return deployment_name(config, parse_fbp(fbp))


def test_a_deployment_is_the_graph_name_else_its_file() -> None:
    assert deployment("/srv/a/main.fbp", "# @name doorbell\na(A)") == "doorbell"
    one, other = deployment("/srv/a/main.fbp"), deployment("/srv/b/main.fbp")
    assert one is not None and one.startswith("main-") and one != other
    assert deployment("/srv/a/main.fbp") == one  # the same file: the same deployment
    assert deployment(None) is None  # no file, no name: no record, nothing unbound
