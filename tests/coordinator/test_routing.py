"""Routing (pure): same-topic edges, fan-out, fan-in, chains and cycles."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.coordinator.routing import Route, RouteTable


def test_same_topic_edges_are_not_routes() -> None:
    table = RouteTable([Route("a", "a"), Route("a", "b")])
    assert len(table) == 1
    assert table.targets("a") == ("b",)


def test_fan_out_and_fan_in() -> None:
    table = RouteTable([Route("a", "x"), Route("a", "y"), Route("b", "x")])
    assert table.sources == {"a", "b"}
    assert table.targets("a") == ("x", "y")
    assert table.targets("b") == ("x",)
    assert table.targets("x") == ()


def test_chains_reach_their_end() -> None:
    # a -> b is one edge, b -> c another (b is both a target and a source topic).
    table = RouteTable([Route("a", "b"), Route("b", "c"), Route("c", "d")])
    assert table.targets("a") == ("b", "c", "d")
    assert table.targets("c") == ("d",)


def test_cycles_are_walked_once() -> None:
    table = RouteTable([Route("a", "b"), Route("b", "a"), Route("b", "c")])
    assert table.targets("a") == ("b", "c")
    assert table.targets("b") == ("a", "c")


def test_with_echoes_direct_targets_only_and_cycles_cut() -> None:
    # MQTT 3.1.1: the coordinator's own messages come back and carry chains on.
    routes = [Route("a", "b"), Route("b", "c"), Route("c", "b"), Route("c", "d")]
    table = RouteTable(routes, echoes=True)
    assert table.targets("a") == ("b",)
    assert table.cut == {Route("b", "c"), Route("c", "b")}
    assert table.targets("c") == ("d",) and table.targets("b") == ()


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("abcdef")), max_size=20))
def test_every_delivery_list_is_finite_unique_and_never_returns(
    pairs: list[tuple[str, str]],
) -> None:
    table = RouteTable(Route(s, t) for s, t in pairs)
    for source in table.sources:
        targets = table.targets(source)
        assert source not in targets
        assert len(targets) == len(set(targets))
        # Each direct target is delivered to.
        assert {t for s, t in pairs if s == source and t != source} <= set(targets)


def test_graph_index_by_role_and_downstream() -> None:
    from gateway.coordinator.wiring import GraphIndex
    from gateway.graph import parse_fbp

    graph = parse_fbp(
        "'x' -> IN a(A)\na OUT -> IN b(B)\nb OUT -> IN c(C)\nc OUT -> IN a\nd(D)", file="g.fbp"
    )
    index = GraphIndex.of(graph)
    assert [e.tgt.process for _, e in index.edges_by_role["b"]] == ["b", "c"]
    assert [i.tgt.process for i in index.initials_by_role["a"]] == ["a"]
    assert index.roles_downstream("a") == {"b", "c"}  # the cycle back to a is not counted
    assert index.roles_downstream("d") == set()


def test_graph_index_kinds_of_collapsed_edges() -> None:
    from gateway.coordinator.wiring import EdgeKind, GraphIndex
    from gateway.graph import parse_fbp

    graph = parse_fbp(
        "s(S) OUT -> IN rr(msgflo/RoundRobin)\nrr OUT -> IN w(W)\nrr DEADLETTER -> IN d(D)\n"
        "s OUT -> IN ps(msgflo/PubSub)\nps OUT -> IN x(X)\nw OUT -> IN x",
        file="g.fbp",
    )
    index = GraphIndex.of(graph)
    kinds = {(e.src.process, e.tgt.process): index.kind(i) for i, e in index.edges}
    assert kinds == {
        ("w", "x"): EdgeKind.PUBSUB,
        ("s", "x"): EdgeKind.PUBSUB,  # through msgflo/PubSub
        ("s", "w"): EdgeKind.ROUNDROBIN,
        ("w", "d"): EdgeKind.DEADLETTER,
    }
