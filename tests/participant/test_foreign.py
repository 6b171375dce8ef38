"""Foreign participants from YAML: map and list forms, #ROLE, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.common.yaml12 import load_yaml
from gateway.errors import DefinitionError
from gateway.participant.foreign import foreign_definition, load_foreign

VACUUM = """\
component: c-base/Vacuum
label: Vacuum cleaner
icon: trash
source: https://example.org/vacuum
inports:
  on: {queue: "c-base/#ROLE/on", type: boolean}
  off: {queue: "#ROLE.OFF"}
outports:
  yes:
    queue: /c-base/#ROLE/state
    type: object
    datatype: "http://example.org#state"
  no: {queue: 1234}
"""


def test_map_form_keeps_on_off_yes_no_as_port_ids() -> None:
    d = foreign_definition(load_yaml(VACUUM, "vacuum.yml"), "vacuum")
    assert [p.id for p in d.inports] == ["on", "off"]
    assert [p.id for p in d.outports] == ["yes", "no"]
    assert [p.queue for p in d.inports] == ["c-base/vacuum/on", "vacuum.OFF"]
    assert d.outports[0].queue == "/c-base/vacuum/state"
    assert d.outports[1].queue == "1234"
    assert d.outports[0].extra == {"datatype": "http://example.org#state"}
    assert d.id == "vacuum"
    assert d.extra == {"source": "https://example.org/vacuum"}


def test_list_form_uses_each_items_id() -> None:
    text = "component: ToggleSwitch\ninports: [{id: toggle, queue: sw/#ROLE}]\noutports: []\n"
    d = foreign_definition(load_yaml(text, "t.yml"), "hall")
    assert [(p.id, p.queue) for p in d.inports] == [("toggle", "sw/hall")]
    assert d.outports == ()


def test_empty_ports_and_explicit_id() -> None:
    d = foreign_definition(load_yaml("component: X\nid: x-1\ninports: {}\n", "x.yml"), "r")
    assert d.id == "x-1"
    assert d.inports == () and d.outports == ()


def test_invalid_description_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("label: no component\n")
    with pytest.raises(DefinitionError, match=r"bad\.yml: must be a non-empty string"):
        load_foreign(tmp_path / "bad.yml", "r")
    with pytest.raises(DefinitionError, match="cannot read"):
        load_foreign(tmp_path / "missing.yml", "r")
