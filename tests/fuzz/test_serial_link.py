"""Fuzzing serial-link byte streams and frames (LinkDecoder, decode_frame): a typed result
or a one-line own error, in bounded time and memory."""

from __future__ import annotations

from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS

TARGET = TARGETS["serial_link"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=200)
