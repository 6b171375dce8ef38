"""Discovery messages: exact envelope, keys, round trips and lenient parsing (pure)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import DefinitionError, DiscoveryError
from gateway.participant.definition import ParticipantDefinition, PortDefinition, define
from gateway.participant.discovery import (
    announce_interval,
    encode_discovery,
    parse_discovery,
    period_from_env,
)

ORIGINAL_KEYS = {"id", "role", "component", "label", "icon", "inports", "outports"}
TEXT = st.text(
    alphabet=st.characters(blacklist_characters="+#\x00", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=20,
)
# Roles, ids and components are printable: no control, format or separator characters but " ".
NAME = st.text(
    alphabet=st.characters(blacklist_categories=["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"])
    | st.just(" "),
    min_size=1,
    max_size=20,
)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10)


@st.composite
def ports(draw: st.DrawFn) -> tuple[PortDefinition, ...]:
    ids = draw(st.lists(TEXT, max_size=4, unique=True))
    return tuple(
        PortDefinition(
            id=i,
            queue=draw(TEXT),
            type=draw(st.sampled_from(["any", "string", "number", "boolean", "object"])),
            description=draw(st.text(max_size=10)),
            options=draw(st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=2)),
        )
        for i in ids
    )


@st.composite
def definitions(draw: st.DrawFn) -> ParticipantDefinition:
    return ParticipantDefinition(
        role=draw(NAME),
        id=draw(NAME),
        component=draw(NAME),
        label=draw(st.text(max_size=20)),
        icon=draw(st.text(max_size=10)),
        inports=draw(ports()),
        outports=draw(ports()),
    )


def test_envelope_and_exact_keys_of_the_original_libraries() -> None:
    message = json.loads(encode_discovery(define("r", "Repeat", inports=["in"], outports=["out"])))
    assert set(message) == {"protocol", "command", "payload"}
    assert (message["protocol"], message["command"]) == ("discovery", "participant")
    assert set(message["payload"]) == ORIGINAL_KEYS
    assert message["payload"]["inports"] == [{"id": "in", "type": "any", "queue": "r/in"}]


def test_encoding_matches_msgflo_python_spacing() -> None:
    # python's json.dumps separators (", ", ": "), as the original library sends.
    raw = encode_discovery(define("soil", "SoilProbe", participant_id="soil4711"))
    assert raw.startswith(b'{"protocol": "discovery", "command": "participant", "payload": {')


@given(definitions())
def test_round_trip(definition: ParticipantDefinition) -> None:
    parsed = parse_discovery(encode_discovery(definition), lenient=False)
    assert parsed.definition == definition
    assert parsed.warnings == ()


def test_parses_msgflo_nodejs_announcement() -> None:
    raw = json.dumps(
        {
            "protocol": "discovery",
            "command": "participant",
            "payload": {
                "component": "garden/Pump",
                "label": "Water pump",
                "icon": "tint",
                "role": "pump",
                "id": "pump-0b6e8c1e",
                "inports": [{"id": "run", "type": "number", "hidden": False, "queue": "pump.RUN"}],
                "outports": [{"id": "state", "type": "boolean", "queue": "pump.STATE"}],
                "lwm2m": {"object": 3303},
            },
        }
    ).encode()
    d = parse_discovery(raw).definition
    assert d.inports[0].queue == "pump.RUN"
    assert d.extra == {"lwm2m": {"object": 3303}}


def test_lenient_mode_accepts_what_devices_send() -> None:
    raw = b'{"protocol":"discovery","command":"participant","payload":{"role":"button",'
    raw += (
        b'"component":"Button","outports":[{"id":"pressed","queue":"button/pressed"},{"id":"x"}]}}'
    )
    found = parse_discovery(raw)
    assert found.definition.id == "button"
    assert found.definition.inports == ()
    assert [p.id for p in found.definition.outports] == ["pressed"]
    assert len(found.warnings) == 3  # missing id, missing inports, port without queue
    with pytest.raises(DiscoveryError, match=r"payload\.id"):
        parse_discovery(raw, lenient=False)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"protocol": "runtime", "command": "x"}', "not a discovery/participant message"),
        (b'{"protocol": "discovery", "command": "participant", "payload": 3}', "payload must"),
        (b'{"protocol":"discovery","command":"participant","payload":{"id":"x"}}', "role"),
        (
            b'{"protocol":"discovery","command":"participant","payload":{"role":"r","inports":{}}}',
            "component",
        ),
        (
            b'{"protocol":"discovery","command":"participant","payload":'
            b'{"role":"r","component":"C","inports":{}}}',
            "inports must be a list",
        ),
        (b"{" + b" " * 300_000 + b"}", "larger than"),
    ],
)
def test_malformed_discovery_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DiscoveryError) as err:
        parse_discovery(raw)
    assert reason in err.value.reason
    assert "\n" not in str(err.value)


def test_period_and_interval() -> None:
    assert announce_interval(60) == pytest.approx(27.27, abs=0.01)
    assert period_from_env({}) == 60
    assert period_from_env({"MSGFLO_DISCOVERY_PERIOD": "11"}) == 11
    with pytest.raises(DefinitionError, match="MSGFLO_DISCOVERY_PERIOD"):
        period_from_env({"MSGFLO_DISCOVERY_PERIOD": "soon"})
    with pytest.raises(DefinitionError, match="positive"):
        period_from_env({"MSGFLO_DISCOVERY_PERIOD": "0"})


def announcement(role: str = "r", *, pid: str = "r1", queue: str = "r/in") -> bytes:
    payload = {"role": role, "id": pid, "component": "C", "inports": [{"id": "in", "queue": queue}]}
    message = {"protocol": "discovery", "command": "participant", "payload": payload}
    return json.dumps(message).encode("utf-8")


@pytest.mark.parametrize(
    ("queue", "reason"),
    [
        ("\udc80", r"contains '\udc80', which is not UTF-8"),
        ("q" * 65_536, "bytes is larger than 32768"),  # the whole message is bounded first
        ("a/+/b", "contains '+'"),
    ],
)
def test_a_queue_no_broker_could_carry_is_refused_at_discovery(queue: str, reason: str) -> None:
    # Such a queue made the MQTT encoder raise inside the coordinator, which then exited.
    with pytest.raises(DiscoveryError, match=re.escape(reason)):
        parse_discovery(announcement(queue=queue))


def test_the_longest_queue_mqtt_allows_is_accepted() -> None:
    found = define("r", "C", inports=[{"id": "in", "queue": "q" * 65_535}])
    assert found.inports[0].queue == "q" * 65_535


@pytest.mark.parametrize(
    ("role", "pid", "reason"),
    [
        ("r" * 257, "r1", "payload.role is 257 characters long, more than 256"),
        ("r\udc80", "r1", r"payload.role contains '\udc80'"),
        ("r", "id\x1b[2J", r"payload.id (role 'r') contains '\x1b'"),
    ],
)
def test_roles_and_ids_are_short_printable_names(role: str, pid: str, reason: str) -> None:
    with pytest.raises(DiscoveryError, match=re.escape(reason)):
        parse_discovery(announcement(role, pid=pid))


@pytest.mark.parametrize("queue", ["q" * 65_536, "\u00e9" * 32_768])
def test_a_queue_longer_than_an_mqtt_topic_is_refused(queue: str) -> None:
    with pytest.raises(DefinitionError, match="65536 bytes long, more than 65535"):
        define("r", "C", inports=[{"id": "in", "queue": queue}])
