"""Fuzzing .fbp graph files (read_graph on *.fbp): a typed result
or a one-line own error, in bounded time and memory."""

from __future__ import annotations

from gateway.graph import Edge, Initial, parse_fbp, to_json
from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS

TARGET = TARGETS["graph_fbp"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=200)


def test_a_5000_digit_iip_number_loads_as_javascript_reads_it() -> None:
    # JSON.parse gives Infinity, which JSON.stringify (and so the reference's output) writes
    # as null; int() would have refused the digits with a traceback.
    graph = parse_fbp("9" * 5000 + " -> IN a(R)\n" + "-" + "1" * 400 + " -> IN b(R)\n")
    assert [c.data for c in graph.connections if isinstance(c, Initial)] == [None, None]
    assert '"data": null' in to_json(graph)


def test_huge_port_indices_round_like_parse_int() -> None:
    graph = parse_fbp("a(R) OUT[" + "9" * 5000 + "] -> IN[00000000000000000000012] b(R)\n")
    (edge,) = graph.connections
    assert isinstance(edge, Edge)
    assert edge.src.index is None  # parseInt: Infinity, written as null
    assert edge.tgt.index == 12
    graph = parse_fbp("a(R) OUT[100000000000000000000] -> IN b(R)\n")
    assert graph.connections[0].tgt.index is None
    assert isinstance(graph.connections[0], Edge)
    assert graph.connections[0].src.index == 10**20
