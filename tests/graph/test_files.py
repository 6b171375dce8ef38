"""Graph files: format by extension, atomic writes that never leave half a graph behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.errors import GraphError, InvalidGraphError
from gateway.graph import Graph, PortRef, Process, load_graph, save_graph
from gateway.graph.files import write_graph_file
from gateway.graph.model import Edge

GRAPH = Graph(
    processes={"a": Process("A"), "b": Process("B")},
    connections=(Edge(PortRef("a", "out"), PortRef("b", "in")),),
)


@pytest.mark.parametrize("name", ["g.json", "g.fbp", "G.FBP", "graph"])
def test_save_and_load_by_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    save_graph(GRAPH, path)
    assert load_graph(path) == GRAPH
    looks_fbp = name.lower().endswith(".fbp")
    assert path.read_text().startswith("a(A)" if looks_fbp else "{")


def test_overwrite_keeps_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text("old")
    path.chmod(0o600)
    save_graph(GRAPH, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_new_file_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    save_graph(GRAPH, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_unwritable_graph_leaves_old_file(tmp_path: Path) -> None:
    path = tmp_path / "g.fbp"
    path.write_text("a(A)\n")
    bad = Graph(processes={"a/b": Process("A")})
    with pytest.raises(InvalidGraphError):
        save_graph(bad, path)
    assert path.read_text() == "a(A)\n"
    assert [p.name for p in tmp_path.iterdir()] == ["g.fbp"]


def test_write_into_missing_directory_is_a_graph_error(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="cannot write graph"):
        write_graph_file(tmp_path / "missing" / "g.json", b"{}")


def test_replacing_a_directory_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "g.json"
    target.mkdir()
    with pytest.raises(GraphError, match="cannot write graph"):
        write_graph_file(target, b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="No such file"):
        load_graph(tmp_path / "none.fbp")
    latin1 = tmp_path / "l.fbp"
    latin1.write_bytes(b"'T\xfcr' -> IN a(A)\n")
    with pytest.raises(GraphError, match="cannot read graph"):
        load_graph(latin1)


@pytest.mark.parametrize("name", ["g.fbp", "g.json"])
def test_byte_order_mark_is_ignored(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    save_graph(GRAPH, path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_graph(path) == GRAPH
