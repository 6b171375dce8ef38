"""Fuzzing FBP JSON graph files (read_graph on *.json): a typed result
or a one-line own error, in bounded time and memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import GraphError, InvalidGraphError
from gateway.graph import parse_json, read_graph
from tests.fuzz.harness import one_line
from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS

TARGET = TARGETS["graph_json"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=200)


def test_a_5000_digit_integer_is_one_graph_error(tmp_path: Path) -> None:
    # Reported: Python's int max-str-digits ValueError came out as a traceback.
    path = tmp_path / "big.json"
    path.write_text(
        '{"processes": {"a": {"component": "R"}},\n "connections": [{"data": '
        + "9" * 5000
        + ', "tgt": {"process": "a", "port": "in"}}]}\n'
    )
    with pytest.raises(GraphError) as caught:
        read_graph(path)
    message = str(caught.value)
    assert one_line(message)
    assert message == f"{path}:2:27: an integer of 5000 digits is too long (at most 4300 digits)"


def test_long_integers_elsewhere_are_each_reported() -> None:
    numbers = f'"x": -{"1" * 4301}, "y": [{"2" * 9000}]'
    text = '{"processes": {"a": {"component": "R", "metadata": {' + numbers + "}}}}"
    with pytest.raises(InvalidGraphError) as caught:
        parse_json(text, file="g.json")
    problems = [p.problem for p in caught.value.problems]
    assert problems == [
        "an integer of 4301 digits is too long (at most 4300 digits)",
        "an integer of 9000 digits is too long (at most 4300 digits)",
    ]


def test_integers_up_to_the_limit_still_load() -> None:
    graph = parse_json(
        '{"processes": {"a": {"component": "R", "metadata": {"n": %s}}}}' % ("7" * 4300)
    )
    assert graph.processes["a"].metadata["n"] == int("7" * 4300)
