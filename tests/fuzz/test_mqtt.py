"""Fuzzing MQTT packets from the broker (the MQTT 5 Decoder): a typed result
or a one-line own error, in bounded time and memory."""

from __future__ import annotations

from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS

TARGET = TARGETS["mqtt"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=200)
