"""Our .fbp parser against the reference (npm fbp 1.8.0) on every corpus file: identical JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidGraphError
from gateway.graph import Edge, Initial, graph_to_dict, parse_fbp, to_fbp
from gateway.graph.fbp_parser import parse_fbp_text

from .conftest import (
    INVALID_FBP,
    REFERENCE_MODULE,
    REFERENCE_SCRIPT,
    VALID_FBP,
    job_key,
    read_source,
)
from .test_roundtrip import fbp_graphs

pytestmark = pytest.mark.integration

JS_SAFE_INT = 2**53
T = TypeVar("T")


def as_js(value: Any) -> Any:
    """Numbers as JavaScript holds them: integers beyond 2**53 are doubles."""
    if isinstance(value, dict):
        return {k: as_js(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_js(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > JS_SAFE_INT:
        return float(value)
    return value


def ours(path: Path, case_sensitive: bool) -> Any:
    graph = parse_fbp(read_source(path), file=str(path), case_sensitive=case_sensitive)
    # Through JSON text, exactly as the reference's output arrives.
    return as_js(json.loads(json.dumps(graph_to_dict(graph))))


def test_corpus_is_big_enough() -> None:
    assert len(VALID_FBP) >= 50


@pytest.mark.parametrize("case_sensitive", [False, True], ids=["default", "case-sensitive"])
@pytest.mark.parametrize("path", VALID_FBP, ids=lambda p: p.name)
def test_same_graph_as_reference(
    path: Path, case_sensitive: bool, reference: dict[str, Any]
) -> None:
    expected = reference[job_key(path, case_sensitive)]
    assert "error" not in expected, f"reference rejects a corpus file: {expected.get('error')}"
    assert ours(path, case_sensitive) == as_js(expected["graph"])


@pytest.mark.parametrize("path", INVALID_FBP, ids=lambda p: p.name)
def test_invalid_files_rejected_like_reference(path: Path, reference: dict[str, Any]) -> None:
    with pytest.raises(InvalidGraphError):
        parse_fbp(read_source(path), file=path.name)
    verdict = reference[job_key(path, False)]
    if path.name.startswith("strict_"):
        # Checks the reference lacks (duplicate exports: it keeps the last one silently).
        assert "graph" in verdict
    else:
        assert "error" in verdict


def _feature_counts() -> dict[str, int]:
    texts = {p.name: read_source(p) for p in VALID_FBP}
    graphs = [parse_fbp(read_source(p)) for p in VALID_FBP]
    found: dict[str, int] = {}

    def count(name: str, hit: bool) -> None:
        found[name] = found.get(name, 0) + int(hit)

    for text in texts.values():
        lines = text.splitlines()
        count("namespaced component", "/" in text and "(" in text)
        count("anonymous node", "-> (" in text)
        count("node metadata", any(":" in line and "=" in line and "(" in line for line in lines))
        count("port index", "[" in text and "]" in text)
        count("INPORT=", "INPORT=" in text)
        count("OUTPORT=", "OUTPORT=" in text)
        count("@runtime", "# @runtime" in text)
        count("@name", "# @name" in text)
        count("comment", any(line.strip().startswith("#") and "@" not in line for line in lines))
        count("comma", any(", " in line and "->" in line for line in lines))
        count("chained", any(line.count("->") >= 2 for line in lines))
        count("escaped quote", "\\'" in text)
        count("DEFAULT_INPORT", "DEFAULT_INPORT=" in text)
        count("CRLF", "\r\n" in text)
        count("leading empty line", text.startswith("\n"))
        count(
            "declaration only",
            any(line and "->" not in line and line.endswith(")") for line in lines),
        )
    for graph in graphs:
        edges = [c for c in graph.connections if isinstance(c, Edge)]
        srcs = [(e.src.process, e.src.port) for e in edges]
        tgts = [(e.tgt.process, e.tgt.port) for e in edges]
        count("self loop", any(e.src.process == e.tgt.process for e in edges))
        count("fan-out", len(set(srcs)) < len(srcs))
        count("fan-in", len(set(tgts)) < len(tgts))
        count("60+ nodes", len(graph.processes) >= 60)
        count(
            "JSON IIP",
            any(isinstance(c, Initial) and not isinstance(c.data, str) for c in graph.connections),
        )
        count("omitted ports", any(p in ("in", "out") for s in [*srcs, *tgts] for p in s[1:]))
        count("upper-case ports lowered", any(p != p.upper() for s in srcs for p in s[1:]))
    return found


def test_corpus_exercises_every_feature() -> None:
    found = _feature_counts()
    missing = sorted(name for name, n in found.items() if n == 0)
    assert not missing, f"no corpus file exercises: {missing}"
    assert found["60+ nodes"] >= 4


# -- generated sources, all checked in one more node run ----------------------------------------

TOKENS = [
    "a",
    "b",
    "hub",
    "Node_1",
    "x-y",
    "b(B)",
    "c(ns/C)",
    "(C)",
    "(ns/D)",
    "d(D:x=1,k=v)",
    "()",
    " ",
    "  ",
    "->",
    " -> ",
    "IN",
    "OUT",
    "[0]",
    "[12]",
    "'x'",
    "'it\\'s'",
    "''",
    ",",
    ", ",
    "# note",
    "\n",
    "\r\n",
    "INPORT=",
    "OUTPORT=",
    ".",
    ":",
    "5",
    "-1.5",
    '{"k": [1, true]}',
    '"s"',
    "\ttrue",
    "DEFAULT_INPORT=",
    "DEFAULT_OUTPORT=",
    "# @runtime msgflo\n",
    "# @name g\n",
]


def _collect(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """Draw ``count`` examples up front, so one node process can check them all."""
    found: list[T] = []

    @settings(max_examples=count, deadline=None, database=None, derandomize=True)
    @given(strategy)
    def gather(example: T) -> None:
        found.append(example)

    gather()
    return found


def _reference_many(sources: list[str], case: list[bool] | None = None) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is not installed: run ./bootstrap.sh setup"
    flags = case or [False] * len(sources)
    jobs = {
        str(i): {"source": s, "caseSensitive": cs}
        for i, (s, cs) in enumerate(zip(sources, flags, strict=True))
    }
    done = subprocess.run(
        [node, str(REFERENCE_SCRIPT), str(REFERENCE_MODULE)],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    results = json.loads(done.stdout)
    return [results[str(i)] for i in range(len(sources))]


def _strict_only(error: InvalidGraphError) -> bool:
    """True if every problem is one the reference does not check (duplicate exports)."""
    return all("exported twice" in p.problem for p in error.problems)


def test_token_soup_agrees_with_reference() -> None:
    """Random token sequences, valid or not: accepted alike and parsed to the same graph."""
    soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14).map("".join)
    sources = _collect(soup, 1000)
    accepted = 0
    for source, verdict in zip(sources, _reference_many(sources), strict=True):
        try:
            graph = parse_fbp(source)
        except InvalidGraphError as exc:
            assert "error" in verdict or _strict_only(exc), (source, verdict)
            continue
        assert "graph" in verdict, (source, verdict["error"])
        assert as_js(json.loads(json.dumps(graph_to_dict(graph)))) == as_js(verdict["graph"]), (
            source
        )
        accepted += 1
    assert accepted >= 50  # the soup must not be all syntax errors


def test_written_fbp_reads_the_same_in_reference() -> None:
    """What ``to_fbp`` writes, the reference parser reads back to the same graph."""
    graphs = _collect(fbp_graphs(), 200)
    texts = [to_fbp(g) for g in graphs]
    verdicts = _reference_many(texts, [g.case_sensitive for g in graphs])
    for graph, text, verdict in zip(graphs, texts, verdicts, strict=True):
        assert "graph" in verdict, (text, verdict["error"])
        expected = as_js(json.loads(json.dumps(graph_to_dict(graph))))
        assert as_js(verdict["graph"]) == expected, text


def test_fast_path_changes_nothing() -> None:
    """The one-regex shortcut for common lines gives exactly what the grammar alone gives."""
    soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14).map("".join)
    sources = [read_source(p) for p in [*VALID_FBP, *INVALID_FBP]] + _collect(soup, 600)
    for source in sources:
        for case_sensitive in (False, True):
            fast = parse_fbp_text(source, case_sensitive=case_sensitive)
            slow = parse_fbp_text(source, case_sensitive=case_sensitive, fast=False)
            assert (fast.nodes, fast.inports, fast.outports) == (
                slow.nodes,
                slow.inports,
                slow.outports,
            )
            assert fast.connections == slow.connections, source
            assert fast.properties == slow.properties
            assert [p.offset for p in fast.problems] == [p.offset for p in slow.problems], source
