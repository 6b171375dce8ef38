"""Fuzzing device descriptions (the ``D`` replies, assembled, then parse_description): a typed
result or a one-line DescriptionError, in bounded time and memory."""

from __future__ import annotations

from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS

TARGET = TARGETS["serial_description"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=300)
