"""Snapshots of the error messages for every invalid corpus file (ESPHome-style: where, what,
the offending line with a caret, and a suggestion). Regenerate with UPDATE_SNAPSHOTS=1 after a
deliberate wording change, and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.errors import InvalidGraphError
from gateway.graph import load_graph, parse_fbp, parse_json

from .conftest import HERE, INVALID_FBP, INVALID_JSON

SNAPSHOTS = HERE / "snapshots"


def rendered(path: Path) -> str:
    relative = path.relative_to(HERE).as_posix()
    cwd = Path.cwd()
    try:
        os.chdir(HERE)  # so messages carry the short relative file name
        with pytest.raises(InvalidGraphError) as caught:
            load_graph(relative)
    finally:
        os.chdir(cwd)
    return "\n".join(p.render() for p in caught.value.problems) + "\n"


@pytest.mark.parametrize("path", [*INVALID_FBP, *INVALID_JSON], ids=lambda p: p.name)
def test_error_message_snapshot(path: Path) -> None:
    snapshot = SNAPSHOTS / f"{path.parent.name}__{path.stem}.txt"
    actual = rendered(path)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(actual, encoding="utf-8")
    assert snapshot.is_file(), f"no snapshot yet: run with UPDATE_SNAPSHOTS=1 and review {snapshot}"
    assert actual == snapshot.read_text(encoding="utf-8")


def test_every_error_is_collected_not_only_the_first() -> None:
    source = "a(A) => b(B)\nc(C) -> dd\n'open -> IN c\n"
    with pytest.raises(InvalidGraphError) as caught:
        parse_fbp(source, file="g.fbp")
    assert [p.headline() for p in caught.value.problems] == [
        "g.fbp:1:6: expected '(', '->', a port name, a process name, an IIP ('text' or JSON)"
        " or end of line, found '=>' (did you mean '->'?)",
        "g.fbp:2:9: edge goes to 'dd', which is not a process in this graph",
        "g.fbp:3:1: this IIP string is never closed"
        " (end it with ' (write a quote inside it as \\'))",
    ]
    assert str(caught.value).endswith("(and 2 more problems)")


def test_caret_sits_under_the_column() -> None:
    with pytest.raises(InvalidGraphError) as caught:
        parse_fbp("hub(Hub) OUT -> IN lgo\n", file="g.fbp")
    lines = caught.value.problems[0].render().splitlines()
    assert lines[1] == "    hub(Hub) OUT -> IN lgo"
    assert lines[2] == "    " + " " * lines[1][4:].index("lgo") + "^"


def test_names_on_broken_lines_are_not_called_undeclared() -> None:
    # "log" is declared on the line with the syntax error: only that error is reported.
    with pytest.raises(InvalidGraphError) as caught:
        parse_fbp("hub(Hub) OUT => IN log(Logger)\nhub ERR -> IN log\n")
    assert len(caught.value.problems) == 1


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", '{"processes": {"a": {"component": "A", "metadata": {"x": %s}}}}'),
        ("deep.fbp", "%s -> IN a(A)\n"),
    ],
)
def test_absurd_nesting_is_an_error_not_a_crash(name: str, text: str) -> None:
    nested = "[" * 50_000 + "]" * 50_000
    with pytest.raises(InvalidGraphError, match="nested too deeply"):
        load_source(name, text % nested)


def load_source(name: str, text: str) -> None:
    (parse_fbp if name.endswith(".fbp") else parse_json)(text, file=name)
