"""Fuzzing discovery messages (parse_discovery): a typed result
or a one-line own error, in bounded time and memory."""

from __future__ import annotations

import pytest

from gateway.errors import DiscoveryError
from gateway.participant.discovery import parse_discovery
from tests.fuzz.harness import one_line
from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS

TARGET = TARGETS["discovery"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=300)


@pytest.mark.parametrize("depth", [60_000, 100_000])
def test_deep_nesting_is_one_discovery_error(depth: int) -> None:
    # Reported: a 100,000-deep "[" gave a RecursionError traceback per message.
    with pytest.raises(DiscoveryError) as caught:
        parse_discovery(b"[" * depth)
    assert one_line(str(caught.value))


def test_a_huge_integer_is_one_discovery_error() -> None:
    with pytest.raises(DiscoveryError, match="not JSON") as caught:
        parse_discovery(b'{"protocol": "discovery", "payload": ' + b"9" * 5000 + b"}")
    assert one_line(str(caught.value))
