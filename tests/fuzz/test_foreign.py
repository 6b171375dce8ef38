"""Fuzzing foreign-participant YAML for msgflo-register (definitions, load_foreign): a typed result
or a one-line own error, in bounded time and memory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.cli.register import main
from gateway.common.yaml12 import MAX_YAML_VALUES, load_yaml
from gateway.errors import DefinitionError, YamlError
from gateway.participant.foreign import foreign_definition, load_foreign
from tests.fuzz.harness import one_line
from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS, billion_laughs

TARGET = TARGETS["foreign"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=100)


def test_billion_laughs_is_refused_fast_for_msgflo_register(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Reported: nested aliases ran for 52 s into a MemoryError.
    path = tmp_path / "laughs.yaml"
    path.write_bytes(billion_laughs())
    start = time.process_time()
    status = main(["--role", f"door:{path}", "--broker", "mqtt://127.0.0.1:1", "--forever=false"])
    assert time.process_time() - start < 2.0
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"msgflo-register: error: invalid participant definition: {path}:")
    assert f"aliases expand to more than {MAX_YAML_VALUES} values" in err


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(YamlError, match="refers to a value that contains it"):
        load_yaml("component: X\ninports: &a [*a]\n", "self.yaml")


def test_deep_nesting_and_long_integers_are_one_line(tmp_path: Path) -> None:
    for text in ("inports: " + "[" * 5000, "component: X\nid: " + "9" * 5000 + "\n"):
        with pytest.raises(YamlError) as caught:
            load_yaml(text, "f.yaml")
        assert one_line(str(caught.value))
        assert "f.yaml:" in str(caught.value)


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"component: X\nlabel: caf\xe9\n")
    with pytest.raises(DefinitionError, match=rf"{path}:2: not UTF-8 text \(byte 23\)"):
        load_foreign(path, "r")


def test_shared_port_definitions_by_alias_still_work() -> None:
    text = (
        "component: X\ninports:\n  a: &port {queue: x/#ROLE/a, type: number}\n"
        "outports:\n  b: *port\n"
    )
    definition = foreign_definition(load_yaml(text, "ok.yaml"), "r")
    assert definition.outports[0].queue == definition.inports[0].queue == "x/r/a"


def test_a_port_id_with_a_line_separator_stays_on_one_line() -> None:
    # Found by bench/fuzz.py: "\x1c" (a line break to str.splitlines) in a port id was echoed.
    with pytest.raises(DefinitionError) as caught:
        foreign_definition({"component": "X", "outports": {"a\x1cb": 1}}, "r", "f.yaml")
    assert str(caught.value) == (
        "invalid participant definition: outports.'a\\x1cb': f.yaml: expected a port mapping"
    )
