"""``msgflo-graph`` as users run it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.graph import load_graph
from tests.support.cli import run_script

from .conftest import CORPUS


def test_validate_ok() -> None:
    done = run_script("msgflo-graph", "validate", CORPUS / "valid" / "60_bitraf.fbp")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok (88 processes, 139 edges, 11 IIPs)")
    assert done.stderr == ""


def test_validate_lists_every_problem_with_caret() -> None:
    done = run_script("msgflo-graph", "validate", "invalid/several_errors.fbp", cwd=CORPUS)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "invalid/several_errors.fbp:3:17: error: expected '(', '->', a port name or a process"
        " name, found '=>' (did you mean '->'?)"
    )
    assert lines[1:3] == ["    tick(Timer) OUT => IN hub", "                    ^"]
    headlines = [line for line in lines if line.startswith("invalid/")]
    assert len(headlines) == 3
    assert lines[-1] == "msgflo-graph: 3 problems, nothing done"
    assert "Traceback" not in done.stderr


def test_validate_brief_is_one_line_per_problem() -> None:
    done = run_script(
        "msgflo-graph", "validate", "--brief", "json_invalid/missing_process.json", cwd=CORPUS
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "json_invalid/missing_process.json:7:25: error: edge comes from 'dor', which is not a"
        " process in this graph (did you mean 'door'?)",
        "json_invalid/missing_process.json:8:36: error: IIP goes to 'lg', which is not a process"
        " in this graph (did you mean 'log'?)",
        "json_invalid/missing_process.json:10:35: error: exported inport 'open' refers to process"
        " 'doors', which is not a process in this graph (did you mean 'door'?)",
        "msgflo-graph: 3 problems, nothing done",
    ]


@pytest.mark.parametrize(
    "args",
    [(), ("validate",), ("frobnicate", "x.fbp"), ("convert", "only-one.fbp")],
    ids=["nothing", "no-file", "unknown-command", "missing-output"],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    done = run_script("msgflo-graph", *args)
    assert done.returncode == 2
    assert "usage:" in done.stderr


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    done = run_script("msgflo-graph", "validate", tmp_path / "nope.fbp")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"msgflo-graph: error: {tmp_path / 'nope.fbp'}: cannot read graph:"
        " No such file or directory"
    )


def test_convert_fbp_to_json_and_back(tmp_path: Path) -> None:
    source = CORPUS / "valid" / "27_node_metadata.fbp"
    as_json = tmp_path / "graph.json"
    assert run_script("msgflo-graph", "convert", source, as_json).returncode == 0
    data = json.loads(as_json.read_text())
    assert data["processes"]["n"] == {
        "component": "core/Comp",
        "metadata": {"key": "val", "x": 17, "y": 42},
    }
    back = tmp_path / "graph.fbp"
    done = run_script("msgflo-graph", "convert", as_json, back)
    assert done.returncode == 0, done.stderr
    assert load_graph(back) == load_graph(source)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "graph.fbp",
        "graph.json",
    ]  # no temp files


def test_convert_refuses_what_fbp_cannot_say(tmp_path: Path) -> None:
    out = tmp_path / "out.fbp"
    done = run_script("msgflo-graph", "convert", CORPUS / "json" / "cflo_style.json", out)
    assert done.returncode == 1
    assert "process name 'bitraf/guestbutton/lab'" in done.stderr
    assert not out.exists()


def test_convert_lossy_warns_about_what_it_drops(tmp_path: Path) -> None:
    out = tmp_path / "out.fbp"
    done = run_script(
        "msgflo-graph", "convert", "--lossy", CORPUS / "json" / "bitraf_style.json", out
    )
    assert done.returncode == 0, done.stderr
    assert "warning: groups[0]: dropped: group 'doors'" in done.stderr
    assert "'EDDT'" not in out.read_text()
    assert "\tfalse -> ENABLED counter" in out.read_text()


def test_show_prints_tables() -> None:
    done = run_script("msgflo-graph", "show", CORPUS / "json" / "c3flo_style.json")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "graph (runtime msgflo)"
    assert "processes (3):" in out
    assert "  airportweather     c3/Weather" in out
    assert "  clock.tick             ->  airportweather.fetch" in out
    assert '  "EDDT"  ->  airportweather.icao' in out
    assert "exports: none" in out


def test_case_sensitive_option() -> None:
    done = run_script(
        "msgflo-graph", "show", "--case-sensitive", CORPUS / "valid" / "03_uppercase_ports.fbp"
    )
    assert "hub.STATE  ->  lamp.LED" in done.stdout
