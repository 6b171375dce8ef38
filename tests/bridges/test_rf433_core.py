"""The 433 MHz bridge's pure core: rtl_433's lines as events, device keys, adoption, repeats
collapsed, id swaps, the bounded heard list, the line splitter and rtl_433's command line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.bridges.rf433.child import LineSplitter, command_line
from gateway.bridges.rf433.events import MAX_LINE, BadEventError, RadioEvent, parse_line
from gateway.bridges.rf433.registry import Registry
from gateway.config import ConfigError, Rf433BridgeConfig, dump_config, parse_config
from gateway.config import values as v
from gateway.config.edit import check_device

NEXUS = {
    "time": "1700000000.123456",
    "protocol": 19,
    "model": "Nexus-TH",
    "id": 136,
    "channel": 1,
    "battery_ok": 1,
    "temperature_C": 21.5,
    "humidity": 40,
    "mod": "ASK",
    "freq": 433.92,
    "rssi": -0.1,
    "snr": 30.1,
    "noise": -30.2,
}


def line(**changes: Any) -> bytes:
    data = {**NEXUS, **changes}
    return json.dumps({k: val for k, val in data.items() if val is not None}).encode()


def event(**changes: Any) -> RadioEvent:
    return parse_line(line(**changes))


def registry(**settings: Any) -> Registry:
    return Registry(Rf433BridgeConfig(**settings))


# -- events ------------------------------------------------------------------------------------


def test_an_rtl_433_line_is_an_event_with_fields_apart_from_metadata() -> None:
    got = parse_line(line())
    assert got.key == "Nexus-TH/1/136"
    assert got.group == "Nexus-TH/1"
    assert got.values() == {"battery_ok": 1, "temperature_C": 21.5, "humidity": 40}
    assert got.time == pytest.approx(1700000000.123456)
    assert got.protocol == 19
    assert dict(got.levels) == {"rssi": -0.1, "snr": 30.1, "noise": -30.2, "freq": 433.92}
    assert got.details() == "battery_ok 1, temperature_C 21.5, humidity 40"


def test_keys_with_subtype_missing_parts_and_awkward_text() -> None:
    assert event(subtype="TH", channel="A").key == "Nexus-TH:TH/A/136"
    assert event(channel=None).key == "Nexus-TH/-/136"
    assert event(channel=None, id=None).key == "Nexus-TH/-/-"
    assert event(model="A/B C", id="x*/y").key == "A_B_C/1/x__y"
    assert v.is_rf433_key(event(model="A/B C", id="x*/y").key)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"Trying conf file", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"id": 1}', "no model"),
        (b'{"model": ""}', "no model"),
        (b'{"model": "X", "id": [1]}', "id"),
        (b'{"model": "X", "id": true}', "id"),
        (b'{"model": "X", "data": {"a": 1}}', "data is a JSON dict"),
        (b'{"model": "X", "t": NaN}', "not a finite number"),
        (json.dumps({"model": "X", **{f"f{n}": n for n in range(40)}}).encode(), "fields"),
        (b'{"model": "' + b"x" * MAX_LINE + b'"}', "bytes"),
    ],
)
def test_lines_that_are_not_packets_say_why(text: bytes, problem: str) -> None:
    with pytest.raises(BadEventError, match=problem):
        parse_line(text)


def test_device_keys_as_the_config_takes_them() -> None:
    for good in ("Nexus-TH/1/136", "Nexus-TH/1/*", "Oregon:THGR/-/-", "Kerui-Security/-/74565"):
        assert v.is_rf433_key(good), good
        check_device("rf433", good)
    for bad in ("Nexus-TH/1", "Nexus-TH/*/136", "*/1/2", "a/b/1*", "a/b/c/d", "a b/1/2", "a//1"):
        assert not v.is_rf433_key(bad), bad


# -- adoption and repeats ----------------------------------------------------------------------


def test_nothing_is_announced_unless_adopted_and_everything_heard_is_listed() -> None:
    reg = registry()
    assert reg.observe(event(), 0.0, 1000.0) is None
    (seen,) = reg.seen(0.0)
    assert (seen.bridge, seen.id, seen.model) == ("rf433", "Nexus-TH/1/136", "Nexus-TH")
    assert seen.details == "battery_ok 1, temperature_C 21.5, humidity 40"
    assert seen.adopt == 'bridges.rf433.roles: {"Nexus-TH/1/136": ROLE}'
    assert reg.seen(601.0) == []  # not heard within timeout


def test_an_adopted_sensor_has_one_outport_per_field() -> None:
    reg = registry(roles=(("Nexus-TH/1/136", "garden"),))
    report = reg.observe(event(), 0.0)
    assert report is not None and report.announce
    definition = report.adopted.definition
    assert definition is not None
    assert definition.component == "rf433/Nexus-TH"
    assert [p.id for p in definition.outports] == ["battery_ok", "temperature_c", "humidity"]
    assert dict(report.values) == {"battery_ok": b"1", "temperature_c": b"21.5", "humidity": b"40"}
    assert reg.seen(0.0) == []


def test_repeats_collapse_but_a_changed_value_in_the_window_is_sent() -> None:
    reg = registry(roles=(("Nexus-TH/1/136", "garden"),))
    assert reg.observe(event(), 0.0) is not None
    for t in (0.2, 0.4, 0.6):  # the same packet repeated, rssi and time differing
        repeat = reg.observe(event(rssi=-5.0 - t, time=str(1700000000 + t)), t)
        assert repeat is not None and repeat.values == () and not repeat.announce
    changed = reg.observe(event(temperature_C=21.6), 0.8)
    assert changed is not None
    assert dict(changed.values)["temperature_c"] == b"21.6"
    later = reg.observe(event(temperature_C=21.6), 0.8 + 1.6)  # past the window: a new reading
    assert later is not None and later.values
    assert reg.counts.repeats == 3


def test_the_window_slides_and_is_set_per_device() -> None:
    reg = registry(
        roles=(("Generic-Remote/-/4660", "door-bell"),), windows=(("Generic-Remote/-/*", 3.0),)
    )
    press = line(model="Generic-Remote", id=4660, channel=None, cmd=5)
    first = reg.observe(parse_line(press), 0.0)
    assert first is not None and first.values
    for t in (1.0, 2.5, 5.0, 7.9):  # held: each repeat within 3 s of the one before
        got = reg.observe(parse_line(press), t)
        assert got is not None and got.values == ()
    assert reg.window("Generic-Remote/-/4660") == 3.0
    assert reg.window("Nexus-TH/1/136") == 1.5


def test_a_new_field_extends_the_participant() -> None:
    reg = registry(roles=(("Nexus-TH/1/136", "garden"),))
    reg.observe(event(), 0.0)
    report = reg.observe(event(battery_ok=None, button=1), 5.0)
    assert report is not None and report.announce
    assert report.adopted.definition is not None
    assert [p.id for p in report.adopted.definition.outports][-1] == "button"


def test_a_wildcard_key_adopts_the_first_id_of_that_model_and_channel() -> None:
    reg = registry(roles=(("Nexus-TH/1/*", "garden"),))
    assert reg.observe(event(channel=2), 0.0) is None  # another channel
    report = reg.observe(event(id=77), 1.0)
    assert report is not None and report.adopted.holder == "Nexus-TH/1/77"
    assert reg.observe(event(id=78), 2.0) is None  # a second id: heard, not adopted
    assert {s.id for s in reg.seen(2.0)} == {"Nexus-TH/2/136", "Nexus-TH/1/78"}
    assert reg.role_for("Nexus-TH/1/5") == "garden"
    assert reg.role_for("Nexus-TH/2/5") is None


# -- id swaps ----------------------------------------------------------------------------------


def test_a_battery_swap_moves_the_role_to_the_new_id(caplog: pytest.LogCaptureFixture) -> None:
    reg = registry(roles=(("Nexus-TH/1/136", "garden"),), swap_after=60.0)
    assert reg.observe(event(), 0.0) is not None
    # battery out: 136 silent; 201 appears and keeps sending
    assert reg.observe(event(id=201), 30.0) is None
    assert reg.observe(event(id=201), 60.0) is None  # heard 30 s: not yet
    with caplog.at_level(logging.WARNING):
        moved = reg.observe(event(id=201, temperature_C=19.0), 95.0)
    assert moved is not None and moved.announce
    assert moved.adopted.holder == "Nexus-TH/1/201" and moved.adopted.role == "garden"
    assert dict(moved.values)["temperature_c"] == b"19.0"
    assert "takes role garden from Nexus-TH/1/136" in caplog.text
    assert '{"Nexus-TH/1/201": garden}' in caplog.text
    assert reg.counts.moved == 1
    # the configured id back: it takes its role back
    back = reg.observe(event(), 200.0)
    assert back is not None and back.adopted.holder == "Nexus-TH/1/136"


def test_a_neighbours_sensor_on_the_same_channel_never_takes_the_role() -> None:
    reg = registry(roles=(("Nexus-TH/1/136", "garden"),), swap_after=60.0)
    reg.observe(event(), 0.0)
    reg.observe(event(id=99), 10.0)  # the neighbour's, heard while ours sends
    reg.observe(event(), 40.0)
    for t in range(100, 1000, 30):  # ours dies; the neighbour's goes on
        assert reg.observe(event(id=99), float(t)) is None
    assert reg.counts.moved == 0


def test_no_swap_for_a_sensor_not_heard_in_this_run_or_two_new_ids() -> None:
    reg = registry(roles=(("Nexus-TH/1/136", "garden"),), swap_after=60.0)
    for t in range(0, 300, 30):
        assert reg.observe(event(id=5), float(t)) is None
    reg = registry(roles=(("Nexus-TH/1/136", "garden"),), swap_after=60.0)
    reg.observe(event(), 0.0)
    for t in range(30, 300, 30):
        assert reg.observe(event(id=5), float(t)) is None
        assert reg.observe(event(id=6), float(t) + 1) is None
    assert reg.counts.moved == 0 and reg.counts.ambiguous > 0
    reg = registry(roles=(("Nexus-TH/1/136", "garden"),), swap_after=None)
    reg.observe(event(), 0.0)
    assert all(reg.observe(event(id=5), float(t)) is None for t in range(30, 900, 30))


def test_the_heard_list_is_bounded() -> None:
    reg = registry(max_heard=50)
    for n in range(5000):
        reg.observe(event(id=n), float(n) / 100)
    assert reg.size()["heard"] == 50
    assert len(reg.seen(50.0)) == 50


# -- the child's input and command line --------------------------------------------------------


def test_lines_are_split_and_a_huge_one_is_dropped_without_being_held() -> None:
    splitter = LineSplitter(cap=10)
    assert splitter.feed(b"abc\nde") == [b"abc"]
    assert splitter.feed(b"f\n\n") == [b"def", b""]
    assert splitter.feed(b"0123456789AB") == [None]  # past the cap: reported once
    for _ in range(1000):
        assert splitter.feed(b"x" * 1000) == []
    assert len(splitter._buffer) == 0
    assert splitter.feed(b"yy\nok\n") == [b"ok"]


def test_the_command_line_from_the_section() -> None:
    section = Rf433BridgeConfig(device=":00000001", frequency="868.3M", protocols=(19, -30))
    argv = command_line(section)
    assert argv[0] == "rtl_433"
    assert argv[1:11] == [
        "-F",
        "json:/dev/stdout",
        "-M",
        "level",
        "-M",
        "protocol",
        "-M",
        "time:unix:usec",
        "-C",
        "si",
    ]
    assert argv[11:] == ["-R", "19", "-R", "-30", "-d", ":00000001", "-f", "868.3M"]
    replay = command_line(section, [Path("a.ook"), Path("b.ook")])
    assert replay[11:] == ["-R", "19", "-R", "-30", "-r", "a.ook", "-r", "b.ook"]


# -- the config section ------------------------------------------------------------------------


def test_the_section_is_read_with_line_numbers_for_problems() -> None:
    text = """
bridges:
  rf433:
    enabled: true
    device: 0
    frequency: 433920000
    protocols: [19, -30]
    windows: {"Generic-Remote/-/*": 3}
    swap_after: null
    roles: {"Nexus-TH/1/136": garden, "Kerui-Security/-/*": door}
    replay: [samples/weather.ook]
"""
    section = parse_config(text, "/etc/gw/gateway.yaml").bridges.rf433
    assert section.enabled and section.device == "0" and section.frequency == "433920000"
    assert section.protocols == (19, -30)
    assert section.windows == (("Generic-Remote/-/*", 3.0),)
    assert section.swap_after is None
    assert section.roles == (("Kerui-Security/-/*", "door"), ("Nexus-TH/1/136", "garden"))
    assert section.replay == (Path("/etc/gw/samples/weather.ook"),)
    assert parse_config(dump_config(parse_config(text, "x.yaml")), "x.yaml").bridges.rf433 == (
        parse_config(text, "x.yaml").bridges.rf433
    )
    bad = """
bridges:
  rf433:
    frequency: 433.92 MHz
    protocols: [0]
    roles: {"Nexus-TH/1": garden}
"""
    with pytest.raises(ConfigError) as problems:
        parse_config(bad, "gw.yaml")
    text_of = "\n".join(problems.value.problems)
    assert "gw.yaml:4: bridges.rf433.frequency" in text_of
    assert "gw.yaml:5:" in text_of and "protocol 0" in text_of
    assert "gw.yaml:6:" in text_of and "433 MHz device key" in text_of
