"""The BLE bridge end to end on a real broker, the radio faked where bleak lets it be: a
``BaseBleakScanner`` subclass given as BleakScanner's ``backend``, calling the detection
callbacks as bleak's own backends do."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from gateway.bridges.ble.bridge import BleBridge
from gateway.bridges.ble.sources import BleakSource
from gateway.bridges.host import BridgeHost
from gateway.bridges.seen import parse_seen, seen_topic
from gateway.broker import parse_broker_url
from gateway.config import BleBridgeConfig
from gateway.config.model import BleAdoptRule
from gateway.coordinator.coordinator import Coordinator, CoordinatorOptions
from gateway.graph import parse_fbp
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from gateway.transport.backoff import Backoff
from tests.bridges.test_ble_core import ATC, phone, vector
from tests.conftest import Probe
from tests.support.participants import Relay, serving
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration

PERIOD = 1.1


class FakeRadio:
    """The air: adverts the test hands it reach every started fake scanner."""

    def __init__(self) -> None:
        self.scanners: list[BaseBleakScanner] = []
        self.failures: list[Exception] = []  # raised by the next starts, in order
        self.passive = True  # whether passive scanning starts

    def backend(self) -> type[BaseBleakScanner]:
        radio = self

        class FakeScanner(BaseBleakScanner):
            def __init__(
                self, detection_callback: Any, service_uuids: Any, scanning_mode: str, **kw: Any
            ) -> None:
                super().__init__(detection_callback, service_uuids)
                self.mode = scanning_mode
                self.bluez = kw.get("bluez", {})

            async def start(self) -> None:
                if radio.failures:
                    raise radio.failures.pop(0)
                if self.mode == "passive" and not radio.passive:
                    raise BleakError("passive scanning on Linux requires BlueZ >= 5.56")
                self.seen_devices = {}
                radio.scanners.append(self)

            async def stop(self) -> None:
                radio.scanners.remove(self)

        return FakeScanner

    def advertise(self, raw: dict[str, Any]) -> None:
        """One advert, in replay-line form (hex strings), as bleak's BlueZ backend reports it."""
        service = {
            f"0000{uuid[-4:]}-0000-1000-8000-00805f9b34fb": bytes.fromhex(data)
            for uuid, data in raw.get("service_data", {}).items()
        }
        makers = {
            int(cid, 0): bytes.fromhex(data)
            for cid, data in raw.get("manufacturer_data", {}).items()
        }
        data = AdvertisementData(
            local_name=raw.get("name"),
            manufacturer_data=makers,
            service_data=service,
            service_uuids=list(service),
            tx_power=None,
            rssi=raw.get("rssi", -60),
            platform_data=(),
        )
        for scanner in list(self.scanners):
            address = raw["address"]
            device = scanner.create_or_update_device(address, address, raw.get("name"), None, data)
            scanner.call_detection_callbacks(device, data)


def ble_section(**changes: Any) -> BleBridgeConfig:
    return BleBridgeConfig(enabled=True, period=PERIOD, **changes)


@contextlib.asynccontextmanager
async def bridge_running(
    url: str, section: BleBridgeConfig, radio: FakeRadio, **source: Any
) -> AsyncIterator[BleBridge]:
    source_options: dict[str, Any] = {"main_conf": None, "backend": radio.backend()}
    source_options.update(source)
    bridge = BleBridge(section, BleakSource(section, **source_options), seen_every=0.2)
    async with open_transport(parse_broker_url(url), client_id="msgflo-ble-test") as transport:
        host = BridgeHost("ble", transport, period=section.period)
        async with background(host.run(bridge.run)):
            await until(lambda: bool(radio.scanners), what="the scanner started")
            yield bridge


def adverts_are(bridge: BleBridge, count: int) -> bool:
    return bridge.counts()["adverts"] == count


def announced(probe: Probe, role: str) -> list[dict[str, Any]]:
    return [d["payload"] for d in probe.discovery() if d["payload"]["role"] == role]


async def test_an_adopted_sensor_is_announced_and_sends_its_values(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    section = ble_section(
        roles=((ATC, "kitchen"),), adopt=(BleAdoptRule(model="RuuviTag_RAWv2", role="tag-{id}"),)
    )
    for topic in ("fbp", "kitchen/tempc", "kitchen/rssi", "tag-4c884f/pres", seen_topic("ble")):
        await probe.watch(topic)
    radio = FakeRadio()
    async with bridge_running(mosquitto.url, section, radio) as bridge:
        radio.advertise(vector("ATC1441 custom firmware (LYWSD03MMC)")["advert"])
        assert json.loads((await probe.wait_count("kitchen/tempc", 1))[0]) == 32.5
        assert json.loads((await probe.wait_count("kitchen/rssi", 1))[0]) == -67
        (kitchen, *_) = announced(probe, "kitchen")
        assert kitchen["component"] == "ble/LYWSD03MMC/MJWSD05MMC_ATC"
        assert kitchen["inports"] == []
        assert [p["id"] for p in kitchen["outports"]] == ["tempc", "hum", "batt", "volt", "rssi"]
        radio.advertise(vector("ATC1441 custom firmware, below zero")["advert"])
        assert await probe.next_json("kitchen/tempc") == -4.5
        radio.advertise(vector("RuuviTag data format 5 (RAWv2)")["advert"])
        assert await probe.next_json("tag-4c884f/pres") == 1000.44
        # Not adopted: listed as seen (the retained list), never announced.
        radio.advertise(vector("SwitchBot Meter")["advert"])

        def seen_ids() -> list[str]:
            lists = probe.received[seen_topic("ble")]
            return [d.id for d in parse_seen("ble", lists[-1])] if lists else []

        await until(lambda: seen_ids() == ["D4:E4:A3:11:22:33"], what="the seen list")
        assert {d["payload"]["role"] for d in probe.discovery()} == {"kitchen", "tag-4c884f"}
        assert bridge.counts()["bad"] == 0
    assert radio.scanners == []  # stopped with the bridge


async def test_garbage_and_phones_change_nothing(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("fbp")
    await probe.watch("kitchen/tempc")
    radio = FakeRadio()
    async with bridge_running(mosquitto.url, ble_section(roles=((ATC, "kitchen"),)), radio) as b:
        good = vector("ATC1441 custom firmware (LYWSD03MMC)")["advert"]
        radio.advertise(good)
        assert json.loads((await probe.wait_count("kitchen/tempc", 1))[0]) == 32.5
        data = good["service_data"]["181a"]
        garbage = [
            dict(good, service_data={"181a": data[:10]}),  # truncated
            dict(good, manufacturer_data={"0x004c": "00" * 300}),  # longer than an AD holds
            dict(good, name=12345),  # not a name
            dict(good, rssi="loud"),  # not a number
            {"address": "12:34:56:78:9A:BC", "manufacturer_data": {"0x004c": "1005031c5b2a81"}},
        ]
        for raw in garbage:
            radio.advertise(raw)
        await until(lambda: b.counts()["adverts"] + b.counts()["bad"] == 1 + len(garbage))
        counts = b.counts()
        assert counts["bad"] == 3  # oversized, name, rssi: refused before decoding
        assert counts["undecoded"] == 2  # truncated, the phone
        assert counts["sent"] == 5  # the first advert's values, nothing since
        radio.advertise(good)  # the same values again: nothing to send
        await until(lambda: b.counts()["adverts"] == 3)
    assert len(probe.received["kitchen/tempc"]) == 1
    assert {d["payload"]["role"] for d in probe.discovery()} == {"kitchen"}


async def test_five_thousand_phones_announce_nothing(mosquitto: Mosquitto, probe: Probe) -> None:
    await probe.watch("fbp")
    rng = random.Random(5)
    radio = FakeRadio()
    async with bridge_running(mosquitto.url, ble_section(), radio) as bridge:
        for batch in range(50):
            for _ in range(100):
                advert = phone(rng)
                radio.advertise(
                    {
                        "address": advert.address,
                        "manufacturer_data": {
                            f"0x{cid:04x}": data.hex()
                            for cid, data in advert.manufacturer_data.items()
                        },
                    }
                )
            await until(functools.partial(adverts_are, bridge, (batch + 1) * 100))
        assert bridge.registry.size()["seen"] == 0
        assert bridge.registry.size()["undecodable"] <= 2048
        assert bridge.counts()["dropped"] == 0
    assert probe.discovery() == []


async def test_passive_scanning_falls_back_to_active_and_bluez_trouble_is_retried(
    mosquitto: Mosquitto, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gateway.bridges.ble")
    await probe.watch("kitchen/tempc")
    radio = FakeRadio()
    radio.passive = False
    radio.failures = [
        BleakError("[org.bluez.Error.NotReady] Resource Not Ready"),
        BleakError("[org.bluez.Error.NotReady] Resource Not Ready"),
        BleakError("[org.bluez.Error.InProgress] Operation already in progress"),
    ]
    fast = Backoff(initial=0.01, maximum=0.05)
    section = ble_section(roles=((ATC, "kitchen"),))
    async with bridge_running(mosquitto.url, section, radio, backoff=fast):
        (scanner,) = radio.scanners
        assert scanner.mode == "active"  # type: ignore[attr-defined]
        radio.advertise(vector("ATC1441 custom firmware (LYWSD03MMC)")["advert"])
        assert await probe.next_json("kitchen/tempc") == 32.5
    text = caplog.text
    assert text.count("Resource Not Ready") == 1  # logged once per kind of trouble
    assert "rfkill unblock bluetooth" in text
    assert "another program is scanning" in text
    assert text.count("passive scanning is not available") == 1
    assert "scanning again (active)" in text


async def test_passive_scanning_asks_bluez_for_patterns(mosquitto: Mosquitto) -> None:
    radio = FakeRadio()
    async with bridge_running(mosquitto.url, ble_section(adapter="hci1"), radio):
        (scanner,) = radio.scanners
        assert scanner.mode == "passive"  # type: ignore[attr-defined]
        bluez = scanner.bluez  # type: ignore[attr-defined]
        assert bluez["adapter"] == "hci1"
        assert bluez["or_patterns"]


async def test_a_silent_scanner_is_restarted(mosquitto: Mosquitto) -> None:
    radio = FakeRadio()
    async with bridge_running(mosquitto.url, ble_section(), radio, silence=0.3):
        source = radio.scanners[0]
        await until(lambda: bool(radio.scanners) and radio.scanners[0] is not source)


async def test_a_ble_sensor_feeds_a_graph_run_by_the_coordinator(
    mosquitto: Mosquitto, probe: Probe
) -> None:
    graph = "kitchen(ble/LYWSD03MMC/MJWSD05MMC_ATC) TEMPC -> IN r(Relay)"
    await probe.watch("r/out")
    radio = FakeRadio()
    section = ble_section(roles=((ATC, "kitchen"),))
    url = parse_broker_url(mosquitto.url)
    async with (
        open_transport(url, client_id="coordinator") as transport,
        serving(mosquitto.url, [Relay("r")], discovery_period=PERIOD),
        bridge_running(mosquitto.url, section, radio),
    ):
        coordinator = Coordinator(transport, parse_fbp(graph), options=CoordinatorOptions(1.5))
        async with background(coordinator.run()):
            atc = vector("ATC1441 custom firmware (LYWSD03MMC)")["advert"]
            radio.advertise(atc)
            await until(lambda: sum(s.resolved for s in coordinator.edge_states()) == 1)
            cold = vector("ATC1441 custom firmware, below zero")["advert"]
            radio.advertise(cold)
            assert await probe.next_json("r/out") == "-4.5>r"
            radio.advertise(atc)
            assert await probe.next_json("r/out") == "32.5>r"
