"""The BLE bridge's pure core: adverts, Theengs Decoder on real sensor formats, adoption, what
is sent when, and memory that stays bounded among thousands of phones."""

from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from gateway.bridges.ble.advert import (
    MAX_DATA,
    Advert,
    BadAdvertError,
    make_advert,
    parse_replay_line,
    to_replay_line,
)
from gateway.bridges.ble.decode import Decoder, decoder_inputs
from gateway.bridges.ble.registry import NEGATIVE_CACHE, RSSI_STEP, Registry
from gateway.bridges.ble.sources import Trouble, duty_cycle_advice, trouble
from gateway.config import BleBridgeConfig
from gateway.config.model import BleAdoptRule

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "ble_adverts.json").read_text())[
    "vectors"
]
ATC = "A4:C1:38:D5:D4:98"
RUUVI = "CB:B8:33:4C:88:4F"


def vector(family_start: str) -> dict[str, Any]:
    return next(v for v in VECTORS if v["family"].startswith(family_start))


def advert_of(v: dict[str, Any], **changes: Any) -> Advert:
    raw = dict(v["advert"], **changes)
    return parse_replay_line(json.dumps(raw))


def phone(rng: random.Random) -> Advert:
    """A phone: a random (resolvable private) address, Apple continuity data, no name."""
    address = ":".join(f"{rng.randrange(256):02X}" for _ in range(6))
    return make_advert(
        address,
        rssi=-90,
        manufacturer_data={0x004C: bytes([0x10, 0x05]) + rng.randbytes(5)},
        time=1.0,
    )


# -- the decoder on real formats ----------------------------------------------------------------


@pytest.mark.parametrize("v", VECTORS, ids=[v["family"] for v in VECTORS])
def test_sensor_formats_decode_to_their_documented_values(v: dict[str, Any]) -> None:
    reading = Decoder().decode(advert_of(v))
    assert reading is not None
    assert reading.model.id == v["model_id"]
    expected = dict(v["documented"], **v.get("theengs", {}))
    for key, value in expected.items():
        assert reading.values[key] == pytest.approx(value, abs=1e-6), key
    assert not {"mac", "tempf", "id", "rssi", "brand", "model_id"} & set(reading.values)
    families = {v["family"].split(" ")[0] for v in VECTORS}
    assert len(families) >= 4  # ATC1441, pvvx, RuuviTag, Govee, SwitchBot


def test_the_decoder_input_is_theengs_json() -> None:
    ruuvi = advert_of(vector("RuuviTag data format 5 (RAWv2)"))
    (query,) = decoder_inputs(ruuvi)
    assert json.loads(query) == {
        "id": RUUVI,
        "rssi": -74,
        "manufacturerdata": "99040512fc5394c37c0004fffc040cac364200cdcbb8334c884f",
    }
    atc = advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)"))
    (query,) = decoder_inputs(atc)
    assert json.loads(query)["servicedatauuid"] == "0x181a"
    assert json.loads(query)["name"] == "ATC_D5D498"


def test_decoder_failures_are_counted_and_decode_nothing() -> None:
    def raising(_: str) -> str | None:
        raise RuntimeError("boom")

    atc = advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)"))
    for bad in (raising, lambda _: "not json", lambda _: "[1]", lambda _: '{"model":"x"}'):
        decoder = Decoder(decode_ble=bad, get_properties=lambda _: None)
        assert decoder.decode(atc) is None
        assert decoder.counts.errors == 1
        assert decoder.counts.decoded == 0


def test_phone_adverts_are_private_without_asking_the_decoder() -> None:
    asked: list[str] = []

    def counting(query: str) -> str | None:
        asked.append(query)
        return None

    decoder = Decoder(decode_ble=counting, get_properties=lambda _: None)
    microsoft = make_advert("11:22:33:44:55:66", manufacturer_data={0x0006: b"\x01\x09\x20"})
    for advert in (phone(random.Random(1)), microsoft):
        assert decoder.decode(advert) is None
    assert (decoder.counts.private, decoder.counts.undecoded, asked) == (2, 2, [])
    # An iBeacon is Apple's format too, and sensors send it: it is decoded.
    ibeacon = bytes.fromhex("0215e2c56db5dffb48d2b060d0f5a71096e000010002c5")
    beacon = make_advert("AA:BB:CC:DD:EE:FF", manufacturer_data={0x004C: ibeacon})
    reading = Decoder().decode(beacon)
    assert reading is not None and reading.model.id == "IBEACON"


def test_decoded_values_that_are_not_plain_json_are_dropped() -> None:
    answer = json.dumps(
        {"model_id": "X", "tempc": 1.5, "big": 2**60, "text": "x" * 500, "list": [1], "batt": 9}
    )
    decoder = Decoder(decode_ble=lambda _: answer, get_properties=lambda _: None)
    reading = decoder.decode(make_advert(ATC, name="x"))
    assert reading is not None
    assert dict(reading.values) == {"tempc": 1.5, "batt": 9}


# -- adverts: what is not one -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"address": "nope"}', "six hex pairs"),
        ('{"address": "A4:C1:38:D5:D4:98", "rssi": "-70"}', "rssi"),
        ('{"address": "A4:C1:38:D5:D4:98", "rssi": 999}', "rssi"),
        ('{"address": "A4:C1:38:D5:D4:98", "name": 5}', "name"),
        ('{"address": "A4:C1:38:D5:D4:98", "service_data": {"181a": "zz"}}', "not hex"),
        ('{"address": "A4:C1:38:D5:D4:98", "service_data": {"xyz": "00"}}', "UUID"),
        ('{"address": "A4:C1:38:D5:D4:98", "manufacturer_data": {"0x1ffff": "00"}}', "16 bits"),
        ('{"address": "A4:C1:38:D5:D4:98", "manufacturer_data": [1]}', "not a mapping"),
        ('{"address": "A4:C1:38:D5:D4:98", "time": "now"}', "time"),
        ('{"address": "A4:C1:38:D5:D4:98", "colour": 1}', "unknown key"),
    ],
)
def test_bad_replay_lines_say_what_is_wrong(line: str, problem: str) -> None:
    with pytest.raises(BadAdvertError, match=problem):
        parse_replay_line(line)


def test_an_rssi_not_available_is_the_lowest() -> None:
    # HCI reports 127 when a controller has no signal strength (BlueZ's emulator always).
    assert make_advert("AA:BB:CC:DD:EE:FF", rssi=127).rssi == -127


def test_oversized_adverts_are_refused() -> None:
    with pytest.raises(BadAdvertError, match="255"):
        make_advert(ATC, manufacturer_data={0x004C: bytes(MAX_DATA + 1)})
    with pytest.raises(BadAdvertError, match="entries"):
        make_advert(ATC, service_data={f"{n:04x}": b"" for n in range(20)})
    with pytest.raises(BadAdvertError, match="name"):
        make_advert(ATC, name="x" * 300)


def test_replay_lines_round_trip() -> None:
    for v in VECTORS:
        advert = advert_of(v, time=12.5)
        assert parse_replay_line(to_replay_line(advert)) == advert
    assert advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)")).short_id == "d5d498"
    low = make_advert(ATC.lower(), service_data={"0x181A": b"\x01"})
    assert low.address == ATC
    assert list(low.service_data) == ["0000181a-0000-1000-8000-00805f9b34fb"]


# -- adoption and reporting ---------------------------------------------------------------------


def section(**changes: Any) -> BleBridgeConfig:
    return BleBridgeConfig(enabled=True, **changes)


def test_nothing_is_announced_unless_adopted_and_the_unadopted_are_listed_as_seen() -> None:
    registry = Registry(section())
    atc = advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)"), time=1000.0)
    assert registry.observe(atc, 0.0) is None
    (seen,) = registry.seen(1000.0)
    assert seen.id == ATC
    assert seen.model == "LYWSD03MMC/MJWSD05MMC_ATC"
    assert seen.name == "ATC_D5D498"
    assert seen.details == "temperature 32.5, humidity 62, battery 81, voltage 2.939, rssi -67"
    assert seen.adopt == 'bridges.ble.roles: {"A4:C1:38:D5:D4:98": ROLE}'
    assert registry.seen(1000.0 + section().timeout + 1) == []  # gone quiet: not listed


def test_a_role_by_address_adopts_with_one_outport_per_property_and_rssi() -> None:
    registry = Registry(section(roles=((ATC, "kitchen"),)))
    outcome = registry.observe(advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)")), 0.0)
    assert outcome is not None
    assert outcome.announce
    definition = outcome.adopted.definition
    assert definition.role == "kitchen"
    assert definition.component == "ble/LYWSD03MMC/MJWSD05MMC_ATC"
    assert definition.inports == ()
    assert [p.id for p in definition.outports] == ["tempc", "hum", "batt", "volt", "rssi"]
    assert definition.outports[0].queue == "kitchen/tempc"
    assert definition.outports[0].description == "temperature (°C)"
    assert dict(outcome.values) == {
        "tempc": b"32.5",
        "hum": b"62",
        "batt": b"81",
        "volt": b"2.939",
        "rssi": b"-67",
    }
    assert registry.seen(0.0) == []


def test_adopt_rules_match_model_and_name_globs_and_fill_in_the_id() -> None:
    rules = (
        BleAdoptRule(model="LYWSD03MMC*", name="ATC_*", role="thermo-{id}"),
        BleAdoptRule(model="RuuviTag_RAWv2", role="tag-{id}"),
    )
    registry = Registry(section(adopt=rules))
    atc = registry.observe(advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)")), 0.0)
    ruuvi = registry.observe(advert_of(vector("RuuviTag data format 5 (RAWv2)")), 0.0)
    nameless = registry.observe(advert_of(vector("pvvx custom firmware, below zero")), 0.0)
    assert atc is not None and atc.adopted.role == "thermo-d5d498"
    assert ruuvi is not None and ruuvi.adopted.role == "tag-4c884f"
    assert nameless is None  # the name glob ATC_* does not match an advert without a name
    assert [s.id for s in registry.seen(0.0)] == ["A4:C1:38:CF:01:56"]


def test_values_are_sent_when_they_change_and_again_after_the_report_interval() -> None:
    registry = Registry(section(roles=((ATC, "kitchen"),), report_interval=300.0))
    warm = advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)"))
    cold = advert_of(vector("ATC1441 custom firmware, below zero"))
    registry.observe(warm, 0.0)
    same = registry.observe(warm, 10.0)
    assert same is not None and same.values == () and not same.announce
    changed = registry.observe(cold, 20.0)
    assert changed is not None and changed.values == (("tempc", b"-4.5"),)  # rssi: -67 -> -70
    late = registry.observe(cold, 330.0)  # tempc sent at 20, the rest at 0
    assert late is not None and {p for p, _ in late.values} == {
        "tempc",
        "hum",
        "batt",
        "volt",
        "rssi",
    }


def test_rssi_is_sent_only_when_it_moved_by_a_step() -> None:
    registry = Registry(section(roles=((ATC, "kitchen"),)))
    v = vector("ATC1441 custom firmware (LYWSD03MMC)")
    registry.observe(advert_of(v, rssi=-67), 0.0)
    jitter = registry.observe(advert_of(v, rssi=-67 - RSSI_STEP + 1), 1.0)
    moved = registry.observe(advert_of(v, rssi=-67 - RSSI_STEP), 2.0)
    assert jitter is not None and jitter.values == ()
    assert moved is not None and moved.values == (("rssi", str(-67 - RSSI_STEP).encode()),)


def test_an_adopted_device_decoding_as_another_model_changes_nothing() -> None:
    registry = Registry(section(roles=((ATC, "kitchen"),)))
    registry.observe(advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)")), 0.0)
    switchbot = advert_of(vector("SwitchBot Meter"), address=ATC)
    assert registry.observe(switchbot, 1.0) is None
    assert registry.counts.mismatched == 1
    assert registry.sensors[ATC].model.id == "LYWSD03MMC/MJWSD05MMC_ATC"


def test_garbage_adverts_change_nothing() -> None:
    registry = Registry(section(roles=((ATC, "kitchen"),)))
    v = vector("ATC1441 custom firmware (LYWSD03MMC)")
    registry.observe(advert_of(v), 0.0)
    before = dict(registry.sensors[ATC].sent)
    data = bytes.fromhex(v["advert"]["service_data"]["181a"])
    garbage = [
        make_advert(ATC, name="ATC_D5D498", service_data={"181a": data[:5]}),  # truncated
        make_advert(ATC, name="ATC_D5D498", service_data={"181a": data + bytes(40)}),  # long
        make_advert(ATC, service_data={"fe95": bytes(range(20))}),  # nonsense MiBeacon
        make_advert(ATC, manufacturer_data={0xFFFF: b"\xff" * 3}),
    ]
    for advert in garbage:
        assert registry.observe(advert, 1.0) is None
    assert registry.decoder.counts.undecoded == len(garbage)
    assert registry.sensors[ATC].sent == before
    assert registry.seen(1.0) == []


def test_five_thousand_phones_announce_nothing_and_memory_stays_bounded() -> None:
    rng = random.Random(16)
    registry = Registry(section(adopt=(BleAdoptRule(model="*"),)))
    tracemalloc.start()
    try:
        # Full, and its table grown to what evictions need, from here on.
        for _ in range(2 * NEGATIVE_CACHE):
            assert registry.observe(phone(rng), 0.0) is None
        full, _ = tracemalloc.get_traced_memory()
        for _ in range(5000):
            assert registry.observe(phone(rng), 0.0) is None
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert registry.size() == {"sensors": 0, "seen": 0, "undecodable": NEGATIVE_CACHE}
    assert full < 512 * 1024, f"{full} bytes for a full negative cache"
    assert after - full < 16 * 1024, f"grew by {after - full} bytes over 5,000 more phones"
    assert registry.seen(0.0) == []
    counts = registry.decoder.counts
    assert counts.undecoded == counts.private == 2 * NEGATIVE_CACHE + 5000  # phones, all


def test_the_seen_list_keeps_the_most_recent_max_seen() -> None:
    registry = Registry(section(max_seen=3))
    v = vector("SwitchBot Meter")
    for n in range(10):
        registry.observe(advert_of(v, address=f"D4:E4:A3:11:22:{n:02X}", time=float(n)), 0.0)
    assert [s.id for s in registry.seen(10.0)] == [f"D4:E4:A3:11:22:{n:02X}" for n in (7, 8, 9)]


def test_a_repeated_undecodable_advert_is_decoded_once() -> None:
    registry = Registry(section())
    rng = random.Random(1)
    advert = phone(rng)
    for _ in range(50):
        registry.observe(advert, 0.0)
    assert registry.decoder.counts.undecoded == 1
    assert registry.counts.repeats == 49


# -- BlueZ ---------------------------------------------------------------------------------------


def test_bluez_trouble_is_told_apart() -> None:
    assert trouble(Exception("[org.bluez.Error.InProgress] Operation already in progress")) is (
        Trouble.BUSY
    )
    assert trouble(Exception("adapter 'hci1' not found")) is Trouble.NO_ADAPTER
    assert trouble(Exception("[org.bluez.Error.NotReady] Resource Not Ready")) is Trouble.OFF
    assert trouble(FileNotFoundError(2, "No such file", "/run/dbus")) is Trouble.NO_BLUEZ
    assert trouble(Exception("[org.freedesktop.DBus.Error.ServiceUnknown] x")) is Trouble.NO_BLUEZ
    assert trouble(Exception("passive scanning on Linux requires BlueZ >= 5.56")) is Trouble.OTHER


def test_the_duty_cycle_advice_names_bluez_settings_in_slots() -> None:
    ours = section()  # 30 of every 300 ms: 48 and 480 slots of 0.625 ms
    advice = duty_cycle_advice("", ours, "active")
    assert advice is not None and "ScanWindowDiscovery=48, ScanIntervalDiscovery=480" in advice
    assert "ScanWindowAdvMonitor=48" in (duty_cycle_advice("[General]\n", ours, "passive") or "")
    conf = "[LE]\nScanWindowDiscovery=48\nScanIntervalDiscovery=0x1e0\n"
    assert duty_cycle_advice(conf, ours, "active") is None


def test_the_adverts_of_a_gatt_device_are_left_to_its_own_task() -> None:
    registry = Registry(section(roles=((ATC, "kitchen"),), gatt=((ATC, ()),)))
    assert registry.observe(advert_of(vector("ATC1441 custom firmware (LYWSD03MMC)")), 0.0) is None
    assert registry.sensors == {}
    assert registry.seen(0.0) == []
