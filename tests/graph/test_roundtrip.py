"""Property tests: model -> .fbp -> model and model -> JSON -> model give the same graph."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.graph import (
    Edge,
    ExportedPort,
    Graph,
    Group,
    Initial,
    PortRef,
    Process,
    Properties,
    graph_to_dict,
    parse_fbp,
    parse_json,
    to_fbp,
    to_json,
)
from gateway.graph.model import FrozenJson, freeze

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAFE_INT = 2**53

# -- what .fbp can express (see fbp_format: names, components, metadata per the grammar) ----------

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
DIGITS = "0123456789"


def word(first: str, rest: str, max_size: int = 8) -> st.SearchStrategy[str]:
    """``first`` char then up to ``max_size`` of ``rest``: cheaper than st.from_regex."""
    return st.builds(
        lambda a, b: a + b, st.sampled_from(first), st.text(alphabet=rest, max_size=max_size)
    )


node_names = word(LOWER + UPPER + "_", LOWER + UPPER + DIGITS + "_-")
components = word(LOWER + UPPER + DIGITS + "/_-", LOWER + UPPER + DIGITS + "/_-", 11)
meta_words = st.text(alphabet=LOWER + UPPER + DIGITS + "/_", max_size=6)
meta_keys = word(LOWER + UPPER + DIGITS + "/_", LOWER + DIGITS + "/_", 5).filter(
    lambda k: k not in ("x", "y")
)
annotation_values = word(LOWER + UPPER + DIGITS + "-_.", LOWER + UPPER + DIGITS + "-_ .", 12)
annotation_keys = word(LOWER + DIGITS + "-_", LOWER + DIGITS + "-_", 7).filter(
    lambda k: k not in ("name", "environment", "runtime")
)
indices = st.none() | st.integers(min_value=0, max_value=SAFE_INT)


def port_names(case_sensitive: bool) -> st.SearchStrategy[str]:
    letters = LOWER + UPPER if case_sensitive else LOWER
    return word(letters + "_", letters + DIGITS + "._")


fbp_metadata = st.dictionaries(meta_keys, meta_words, max_size=3).flatmap(
    lambda meta: st.fixed_dictionaries(
        {}, optional={"x": st.integers(0, 10**6) | st.none(), "y": st.integers(0, 10**6)}
    ).map(lambda xy: {**meta, **xy})
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE_INT, max_value=SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
# Frozen as the model stores them (Initial, Process etc. would freeze plain lists and dicts the
# same way on construction), so the values have the model's FrozenJson type.
json_values: st.SearchStrategy[FrozenJson] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
).map(freeze)


@st.composite
def fbp_graphs(draw: st.DrawFn) -> Graph:
    case_sensitive = draw(st.booleans())
    ports = port_names(case_sensitive)
    names = draw(st.lists(node_names, min_size=1, max_size=8, unique=True))
    processes = {n: Process(draw(components), draw(fbp_metadata)) for n in names}
    node = st.sampled_from(names)

    def ref() -> PortRef:
        return PortRef(draw(node), draw(ports), draw(indices))

    connections: list[Edge | Initial] = []
    for _ in range(draw(st.integers(0, 10))):
        if draw(st.booleans()):
            connections.append(Edge(ref(), ref()))
        else:
            connections.append(Initial(draw(json_values), ref()))
    exports = st.dictionaries(ports, st.builds(ExportedPort, node, ports), max_size=3)
    props = Properties(
        name=draw(st.none() | annotation_values),
        environment=draw(st.just({}) | st.builds(lambda t: {"type": t}, annotation_values)),
        extra=draw(st.dictionaries(annotation_keys, annotation_values, max_size=2)),
    )
    return Graph(
        processes=processes,
        connections=tuple(connections),
        inports=draw(exports),
        outports=draw(exports),
        properties=props,
        case_sensitive=case_sensitive,
    )


def same(a: Graph, b: Graph) -> None:
    # Graph equality alone would let True == 1 and 1 == 1.0 slip through: compare JSON text too.
    assert b == a
    assert json.dumps(graph_to_dict(b), sort_keys=True) == json.dumps(
        graph_to_dict(a), sort_keys=True
    )


@SETTINGS
@given(fbp_graphs())
def test_fbp_round_trip(graph: Graph) -> None:
    text = to_fbp(graph)
    same(graph, parse_fbp(text, case_sensitive=graph.case_sensitive))


@SETTINGS
@given(st.text(max_size=30))
def test_any_string_iip_survives_fbp(data: str) -> None:
    graph = Graph(processes={"n": Process("C")}, connections=(Initial(data, PortRef("n", "in")),))
    assert parse_fbp(to_fbp(graph)).connections[0] == Initial(data, PortRef("n", "in"))


# -- JSON: anything the model can hold ---------------------------------------------------------

any_names = st.text(min_size=1, max_size=12)
json_metadata = st.dictionaries(st.text(max_size=6), json_values, max_size=3)


@st.composite
def json_graphs(draw: st.DrawFn) -> Graph:
    names = draw(st.lists(any_names, min_size=1, max_size=6, unique=True))
    node = st.sampled_from(names)
    port = st.text(min_size=1, max_size=8)
    processes = {
        n: Process(draw(st.text(min_size=1, max_size=10)), draw(json_metadata)) for n in names
    }

    def ref() -> PortRef:
        return PortRef(draw(node), draw(port), draw(indices))

    connections: list[Edge | Initial] = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            connections.append(Edge(ref(), ref(), draw(json_metadata)))
        else:
            connections.append(Initial(draw(json_values), ref(), draw(json_metadata)))
    exports = st.dictionaries(port, st.builds(ExportedPort, node, port, json_metadata), max_size=3)
    groups = st.lists(
        st.builds(Group, st.text(max_size=6), st.lists(node, max_size=3).map(tuple), json_metadata),
        max_size=2,
    )
    extra_keys = st.text(max_size=6).filter(lambda k: k not in ("name", "environment"))
    props = Properties(
        name=draw(st.none() | st.text(max_size=8)),
        environment=draw(json_metadata),
        extra=draw(st.dictionaries(extra_keys, json_values, max_size=2)),
    )
    return Graph(
        processes=processes,
        connections=tuple(connections),
        inports=draw(exports),
        outports=draw(exports),
        groups=tuple(draw(groups)),
        properties=props,
        case_sensitive=draw(st.booleans()),
    )


@SETTINGS
@given(json_graphs())
def test_json_round_trip_and_stable_bytes(graph: Graph) -> None:
    text = to_json(graph)
    again = parse_json(text)
    same(graph, again)
    assert to_json(again) == text


@SETTINGS
@given(fbp_graphs())
def test_fbp_graph_through_json_and_back_to_fbp(graph: Graph) -> None:
    again = parse_json(to_json(graph))
    assert to_fbp(again) == to_fbp(graph)
