"""Semantic checks on a loaded graph, the same for both file formats.

The reference .fbp parser rejects a node without a component and edges or exports that name an
undeclared node (``validateContents`` in ``fbp/grammar/fbp.peg``), stopping at the first one.
These checks report every such problem, with a suggestion of the nearest declared name, and add
one the reference lacks: group members that are not processes (a warning; it does not affect
data flow). Problems carry key paths; the file format turns them into line and column.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.common.problems import did_you_mean
from gateway.graph.diagnostics import Problem, Severity
from gateway.graph.model import Edge, Graph, Initial


def check_graph(graph: Graph) -> list[Problem]:
    """Every problem in ``graph``, errors and warnings, in a stable order."""
    return [
        *_components(graph),
        *_exports(graph, "inports"),
        *_exports(graph, "outports"),
        *_connections(graph),
        *_groups(graph),
    ]


def _components(graph: Graph) -> Iterator[Problem]:
    for name, process in graph.processes.items():
        if not process.component:
            yield Problem(
                f"process {name!r} has no component",
                ("processes", name, "component"),
                hint=f"declare it once as {name}(Component)",
            )


def _missing(graph: Graph, name: str, what: str, path: tuple[str | int, ...]) -> Problem:
    return Problem(
        f"{what} {name!r}, which is not a process in this graph",
        path,
        hint=did_you_mean(name, graph.processes),
    )


def _exports(graph: Graph, kind: str) -> Iterator[Problem]:
    exports = graph.inports if kind == "inports" else graph.outports
    label = "inport" if kind == "inports" else "outport"
    for public, exp in exports.items():
        if exp.process not in graph.processes:
            what = f"exported {label} {public!r} refers to process"
            yield _missing(graph, exp.process, what, (kind, public, "process"))


def _connections(graph: Graph) -> Iterator[Problem]:
    for i, conn in enumerate(graph.connections):
        if conn.tgt.process not in graph.processes:
            what = "IIP goes to" if isinstance(conn, Initial) else "edge goes to"
            yield _missing(graph, conn.tgt.process, what, ("connections", i, "tgt", "process"))
        if isinstance(conn, Edge) and conn.src.process not in graph.processes:
            path = ("connections", i, "src", "process")
            yield _missing(graph, conn.src.process, "edge comes from", path)


def _groups(graph: Graph) -> Iterator[Problem]:
    for i, group in enumerate(graph.groups):
        for j, node in enumerate(group.nodes):
            if node not in graph.processes:
                problem = _missing(
                    graph, node, f"group {group.name!r} lists", ("groups", i, "nodes", j)
                )
                yield Problem(
                    problem.message, problem.path, hint=problem.hint, severity=Severity.WARNING
                )
