"""Participant definitions: defaults, naming schemes, validation (pure, no I/O)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import DefinitionError
from gateway.participant.definition import QueueNaming, define, from_dict
from gateway.transport.base import Persistence

ROLES = st.text(
    alphabet=st.characters(blacklist_characters="+#\x00", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=30,
)
PORT_IDS = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)


def test_msgflo_python_defaults() -> None:
    d = from_dict({"component": "Repeat"}, "repeater", rng=random.Random(1))
    assert d.role == "repeater"
    assert d.id.startswith("repeater") and d.id[len("repeater") :].isdigit()
    assert d.icon == "file-word-o"
    assert d.label == ""
    assert [(p.id, p.queue, p.type) for p in d.inports] == [("in", "repeater/in", "any")]
    assert [(p.id, p.queue, p.type) for p in d.outports] == [("out", "repeater/out", "any")]


def test_empty_port_lists_are_kept_not_replaced_by_defaults() -> None:
    # msgflo-python tested truthiness; [] must mean "no ports", e.g. a pure source.
    d = from_dict({"component": "Clock", "inports": [], "outports": [{"id": "tick"}]}, "clock")
    assert d.inports == ()
    assert [p.queue for p in d.outports] == ["clock/tick"]


def test_nodejs_naming() -> None:
    d = define("pump", "garden/Pump", inports=["run"], naming=QueueNaming.NODEJS)
    assert d.inports[0].queue == "pump.RUN"
    assert d.id.startswith("pump-") and len(d.id) == len("pump-") + 36


def test_explicit_queue_wins_and_role_is_substituted() -> None:
    d = from_dict(
        {"component": "Door", "inports": [{"id": "open", "queue": "/bitraf/#ROLE/open"}]},
        "door/2floor",
    )
    assert d.inports[0].queue == "/bitraf/door/2floor/open"


@pytest.mark.parametrize(
    "role",
    ["bitraf/guestbutton/lab", "xdk.8c8b83e15a2a", "/leading/slash", "AlienAlarmOnScreen", "a:b"],
)
def test_roles_are_used_verbatim(role: str) -> None:
    d = define(role, "C", inports=["in"])
    assert d.role == role
    assert d.inports[0].queue == f"{role}/in"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"component": ""}, "component: must be a non-empty string"),
        ({"component": "C", "inports": "in"}, "inports: expected a list of ports, got str"),
        ({"component": "C", "inports": [{"type": "any"}]}, "inports[0].id: must be a non-empty"),
        ({"component": "C", "inports": [{"id": "a"}, {"id": "a"}]}, "duplicate port id 'a'"),
        ({"component": "C", "inports": [{"id": "a", "queue": "x/#"}]}, "unsubstituted #ROLE"),
        ({"component": "C", "outports": [{"id": "a", "queue": "x/+/y"}]}, "contains '+'"),
        ({"component": "C", "outports": [{"id": "a", "qos": 3}]}, "must be 0, 1 or 2"),
        ({"component": "C", "id": ""}, "id: must be a non-empty string"),
        ({"component": "C", "outports": [{"id": "a", "hidden": "no"}]}, "expected true or false"),
        (
            {"component": "C", "inports": [{"id": "a", "options": {"persistent": "no"}}]},
            "inports[0].options.persistent: expected true or false, got 'no'",
        ),
    ],
)
def test_invalid_definitions_name_the_key_path(spec: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError) as err:
        from_dict(spec, "r")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("options", "persistence"),
    [
        ({}, Persistence.DURABLE),
        ({"persistent": False}, Persistence.TRANSIENT),
        ({"persistent": True}, Persistence.PERSISTENT),
    ],
)
def test_port_option_persistent(options: dict[str, object], persistence: Persistence) -> None:
    d = from_dict({"component": "C", "inports": [{"id": "a", "options": options}]}, "r")
    assert d.inports[0].persistence is persistence
    assert d.to_discovery()["inports"][0].get("options", {}) == options  # announced as given


def test_missing_role_is_an_error() -> None:
    with pytest.raises(DefinitionError, match="role: must be a non-empty string"):
        from_dict({"component": "C"})


def test_hidden_ports_have_no_queue_and_are_not_announced() -> None:
    d = from_dict(
        {"component": "C", "outports": [{"id": "tick", "hidden": True}, {"id": "x"}]}, "r"
    )
    assert d.outports[0].queue == ""
    assert [p["id"] for p in d.to_discovery()["outports"]] == ["x"]


def test_unknown_keys_pass_through_to_discovery() -> None:
    d = from_dict(
        {
            "component": "C",
            "description": "a thing",
            "inports": [{"id": "in", "schema": "https://example/schema.json", "default": 3}],
        },
        "r",
    )
    payload = d.to_discovery()
    assert payload["description"] == "a thing"
    assert payload["inports"][0]["schema"] == "https://example/schema.json"
    assert payload["inports"][0]["default"] == 3


@given(role=ROLES, port=PORT_IDS)
def test_default_queue_naming_for_any_role(role: str, port: str) -> None:
    python = define(role, "C", inports=[port])
    nodejs = define(role, "C", inports=[port], naming=QueueNaming.NODEJS)
    assert python.inports[0].queue == f"{role}/{port}"
    assert nodejs.inports[0].queue == f"{role}.{port.upper()}"
    assert python.id and nodejs.id
