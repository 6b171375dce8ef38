"""The one YAML loader: YAML 1.2 scalars, one-line errors naming file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.common.yaml12 import dump_yaml, load_yaml
from gateway.errors import YamlError


def test_yaml12_scalars() -> None:
    assert load_yaml("a: on\nb: yes\nc: true\nd: 0755\ne: 0o17\nf: 0x1f\ng: NO\n", "s") == {
        "a": "on",
        "b": "yes",
        "c": True,
        "d": 755,
        "e": 15,
        "f": 31,
        "g": "NO",
    }


def test_syntax_errors_name_file_line_and_column() -> None:
    with pytest.raises(YamlError) as err:
        load_yaml("component: X\ninports: {on: [}\n", "bad.yml")
    assert err.value.where == "bad.yml:2:16"
    assert str(err.value).startswith("bad.yml:2:16: ")
    assert "\n" not in str(err.value)


def test_a_control_character_names_its_line_and_not_the_text() -> None:
    with pytest.raises(YamlError) as err:
        load_yaml("a: 1\nsecret: hunter2\x07\n", "p.yaml")
    assert str(err.value) == "p.yaml:2: character #x0007 is not allowed"


def test_dump_quotes_what_either_yaml_version_misreads(tmp_path: Path) -> None:
    data = {"a": ["on", "NO", "0x10", "0o7", "true", "yes", "1.5", "null"], "b": "plain"}
    text = dump_yaml(data)
    assert load_yaml(text, "x") == data
    assert "b: plain\n" in text
