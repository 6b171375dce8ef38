"""Reconnect backoff: grows, is capped, and is jittered within bounds (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.transport.backoff import Backoff


def test_grows_then_caps() -> None:
    backoff = Backoff(initial=0.5, maximum=8, factor=2, jitter=0)
    assert [backoff.delay(n) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]


@given(attempt=st.integers(0, 10_000), r=st.floats(0, 1, exclude_max=True))
def test_jitter_stays_within_bounds(attempt: int, r: float) -> None:
    backoff = Backoff(initial=0.5, maximum=30, jitter=0.5)
    delay = backoff.delay(attempt, rng=lambda: r)
    base = min(30, 0.5 * 2 ** min(attempt, 64))
    assert base * 0.5 <= delay <= base
