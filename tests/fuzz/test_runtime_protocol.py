"""Fuzzing runtime-protocol frames (parse_frame, parse_request): a typed result
or a one-line own error, in bounded time and memory."""

from __future__ import annotations

from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS

TARGET = TARGETS["runtime_protocol"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=300)
