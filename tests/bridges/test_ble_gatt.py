"""GATT devices in the BLE bridge: the encodings (Hypothesis round trips), and a simulated device
behind bleak's own client and bleak-retry-connector (a ``BaseBleakClient`` subclass given as
bleak's ``backend=``), on the memory:// broker and on a real mosquitto: discovery, notify to
MQTT, MQTT to a write characteristic, bad payloads, a full write queue, disconnects and
devices that cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str
from hypothesis import given
from hypothesis import strategies as st

from gateway.bridges.ble.encoding import INTEGERS, MAX_VALUE, Codec, EncodingError
from gateway.bridges.ble.gatt import GattDevice, configured_devices, default_role, run_gatt_device
from gateway.bridges.host import BridgeHost
from gateway.broker import parse_broker_url
from gateway.config import ConfigError, parse_config
from gateway.config.model import BleBridgeConfig, GattPort
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from gateway.transport.backoff import Backoff
from gateway.transport.memory import MemoryTransport
from tests.conftest import Probe
from tests.support.inbox import watch
from tests.support.tasks import background
from tests.support.wait import until

ADDRESS = "AA:BB:CC:DD:EE:01"
SENSOR = "2a6e"  # notify: a temperature in hundredths of a degree
COLOR = "0000ff01-0000-1000-8000-00805f9b34fb"  # write without response: an RGB LED strip
BUZZER = "0000ff02-0000-1000-8000-00805f9b34fb"  # write with response: on/off
BATTERY = "2a19"  # read: a percentage
PORTS = (
    GattPort("temperature", SENSOR, "notify", "int16le", 0.01),
    GattPort("color", COLOR, "write", "raw"),
    GattPort("buzzer", BUZZER, "write", "uint8"),
    GattPort("battery", BATTERY, "read", "uint8", poll=0.05),
)
FAST = Backoff(initial=0.02, maximum=0.1, jitter=0.0)


# -- encodings (pure) ----------------------------------------------------------------------------

scales = st.sampled_from([1.0, 10.0, 0.1, 0.01, 0.25, 0.5, 0.001, -1.0, 3.0])


@given(st.sampled_from(sorted(INTEGERS)), scales, st.data())
def test_integers_survive_bytes_to_json_to_bytes(encoding: str, scale: float, data: Any) -> None:
    size, _ = INTEGERS[encoding]
    raw = data.draw(st.binary(min_size=size, max_size=size))
    codec = Codec(encoding, scale)
    assert codec.from_mqtt(codec.to_mqtt(raw)) == raw


@given(st.sampled_from(sorted(INTEGERS)), st.integers(min_value=-(2**40), max_value=2**40))
def test_an_integer_out_of_range_is_an_error_and_one_in_range_round_trips(
    encoding: str, number: int
) -> None:
    size, signed = INTEGERS[encoding]
    low, high = (
        (-(2 ** (8 * size - 1)), 2 ** (8 * size - 1) - 1) if signed else (0, 2 ** (8 * size) - 1)
    )
    codec = Codec(encoding)
    if low <= number <= high:
        assert json.loads(codec.to_mqtt(codec.from_mqtt(str(number).encode()))) == number
    else:
        with pytest.raises(EncodingError, match="out of range"):
            codec.from_mqtt(str(number).encode())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)


@given(json_values)
def test_json_values_round_trip(value: Any) -> None:
    codec = Codec("json")
    try:
        written = codec.from_mqtt(json.dumps(value).encode())
    except EncodingError as error:
        assert "do not fit" in str(error)  # longer than a characteristic holds
        return
    assert json.loads(codec.to_mqtt(written)) == value


@given(st.text(max_size=100))
def test_text_round_trips_as_a_json_string(text: str) -> None:
    codec = Codec("utf8")
    sent = codec.to_mqtt(text.encode())
    assert json.loads(sent) == text
    assert codec.from_mqtt(sent) == text.encode()


@given(st.binary(max_size=MAX_VALUE))
def test_raw_bytes_pass_unchanged(data: bytes) -> None:
    codec = Codec("raw")
    assert codec.to_mqtt(data) == data
    assert codec.from_mqtt(data) == data


@pytest.mark.parametrize(
    ("codec", "payload", "message"),
    [
        (Codec("uint8"), b"256", "uint8: 256 is out of range 0..255"),
        (Codec("int16le", 0.01), b"400", "int16le: 400 / 0.01 = 40000 is out of range"),
        (Codec("uint8"), b'"on"', "expected a number, got 'on'"),
        (Codec("uint8"), b"on", "the message is not JSON"),
        (Codec("int8"), b"NaN", "NaN is not JSON"),
        (Codec("uint8", 0.0), b"1", "scale 0"),
        (Codec("json"), b"{", "the message is not JSON"),
        (Codec("utf8"), b"\xff", "not UTF-8"),
        (Codec("raw"), bytes(MAX_VALUE + 1), "do not fit a characteristic"),
    ],
)
def test_a_payload_that_does_not_encode_is_a_one_line_error(
    codec: Codec, payload: bytes, message: str
) -> None:
    with pytest.raises(EncodingError, match=message.replace(".", r"\.")) as caught:
        codec.from_mqtt(payload)
    assert "\n" not in str(caught.value)


def test_values_from_the_device() -> None:
    assert Codec("int16le", 0.01).to_mqtt((2137).to_bytes(2, "little")) == b"21.37"
    assert Codec("int16le", 0.01).to_mqtt((-5).to_bytes(2, "little", signed=True)) == b"-0.05"
    assert Codec("uint8").to_mqtt(b"\xff") == b"255"
    assert Codec("uint16le", 10).to_mqtt(b"\x01\x00") == b"10"
    assert Codec("utf8").to_mqtt("héllo".encode()) == '"héllo"'.encode()
    assert Codec("json").to_mqtt(b'{ "a": [1, 2] }') == b'{"a":[1,2]}'
    assert Codec("uint8").from_mqtt(b"true") == b"\x01"
    assert Codec("utf8").from_mqtt(b"bare text") == b"bare text"
    with pytest.raises(EncodingError, match="expected 2 bytes, got 3"):
        Codec("int16le").to_mqtt(b"\x00\x00\x00")
    with pytest.raises(EncodingError, match="not JSON"):
        Codec("json").to_mqtt(b"{")


def test_roles_of_configured_devices() -> None:
    config = BleBridgeConfig(
        roles=((ADDRESS, "lab/strip"),),
        gatt=((ADDRESS, PORTS), ("11:22:33:44:55:AB", PORTS[:1])),
    )
    assert default_role("11:22:33:44:55:AB") == "ble-4455ab"
    assert configured_devices(config) == [
        (ADDRESS, "lab/strip", PORTS),
        ("11:22:33:44:55:AB", "ble-4455ab", PORTS[:1]),
    ]


DOCS_EXAMPLE = """
bridges:
  ble:
    enabled: true
    roles:
      "AA:BB:CC:00:11:22": living/strip
    gatt:
      "AA:BB:CC:00:11:22":
        - {port: color, uuid: 0000fff3-0000-1000-8000-00805f9b34fb, access: write}
        - {port: brightness, uuid: FFF4, access: write, encoding: uint8, scale: 0.01}
      "AA:BB:CC:00:11:44":
        - {port: temperature, uuid: 2a6e, access: notify, encoding: int16le, scale: 0.01}
        - {port: battery, uuid: 2a19, access: read, encoding: uint8, poll: 600}
"""


def test_gatt_ports_in_gateway_yaml() -> None:
    ble = parse_config(DOCS_EXAMPLE, "gateway.yaml").bridges.ble
    assert configured_devices(ble) == [
        (
            "AA:BB:CC:00:11:22",
            "living/strip",
            (
                GattPort("color", "0000fff3-0000-1000-8000-00805f9b34fb", "write"),
                GattPort("brightness", "fff4", "write", "uint8", 0.01),
            ),
        ),
        (
            "AA:BB:CC:00:11:44",
            "ble-001144",
            (
                GattPort("temperature", "2a6e", "notify", "int16le", 0.01),
                GattPort("battery", "2a19", "read", "uint8", poll=600.0),
            ),
        ),
    ]


def test_a_gatt_port_without_its_uuid_is_a_problem_with_its_line() -> None:
    text = DOCS_EXAMPLE.replace("uuid: 2a6e, ", "")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gateway.yaml")
    assert caught.value.problems == (
        "gateway.yaml:12: bridges.ble.gatt.AA:BB:CC:00:11:44[0]: missing key 'uuid'",
    )


def test_two_ports_of_a_device_with_one_name_are_a_problem() -> None:
    text = DOCS_EXAMPLE.replace("port: battery", "port: temperature")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gateway.yaml")
    assert caught.value.problems == (
        "gateway.yaml:13: bridges.ble.gatt.AA:BB:CC:00:11:44[1].port: duplicate port "
        "'temperature' (first at line 12)",
    )


# -- a simulated device behind bleak -------------------------------------------------------------


class Peripheral:
    """The simulated device: what outlives each connection (bleak makes a new backend object
    for every BleakClient)."""

    def __init__(
        self, address: str, characteristics: dict[str, list[CharacteristicPropertyName]]
    ) -> None:
        self.address = address
        self.characteristics = characteristics  # uuid -> properties
        self.reachable = True
        self.connects = 0
        self.written: list[tuple[str, bytes, bool]] = []
        self.values: dict[str, bytes] = {BATTERY: b"\x50"}
        self.write_gate: asyncio.Event | None = None  # given: writes stall until it is set
        self.writing = 0  # writes begun
        self.client: FakeClient | None = None

    def notify(self, uuid: str, data: bytes) -> None:
        assert self.client is not None and self.client.is_connected
        self.client.notify(normalize_uuid_str(uuid), data)

    def drop(self) -> None:
        """The device goes out of range."""
        assert self.client is not None
        self.client.lost()


class FakeClient(BaseBleakClient):
    """A bleak backend talking to :class:`Peripheral` objects of its subclass's ``peripherals``."""

    peripherals: ClassVar[dict[str, Peripheral]] = {}

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self.peripheral = self.peripherals[self.address]
        self._connected = False
        self._callbacks: dict[str, NotifyCallback] = {}

    @property
    def mtu_size(self) -> int:
        return 23

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        if not self.peripheral.reachable:
            raise BleakError(f"Device with address {self.address} was not reached")
        services = BleakGATTServiceCollection()
        service = BleakGATTService(None, 1, normalize_uuid_str("ffe0"))
        services.add_service(service)
        for handle, (uuid, properties) in enumerate(self.peripheral.characteristics.items(), 2):
            services.add_characteristic(
                BleakGATTCharacteristic(
                    None, handle, normalize_uuid_str(uuid), properties, lambda: 20, service
                )
            )
        self.services = services
        self._connected = True
        self.peripheral.connects += 1
        self.peripheral.client = self

    async def disconnect(self) -> None:
        self._connected = False

    def lost(self) -> None:
        self._connected = False
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    def notify(self, uuid: str, data: bytes) -> None:
        self._callbacks[uuid](bytearray(data))

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def unpair(self) -> None:
        raise NotImplementedError

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        self._check()
        return bytearray(self.peripheral.values[_short(characteristic.uuid)])

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        raise NotImplementedError

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        self._check()
        self.peripheral.writing += 1
        if self.peripheral.write_gate is not None:
            await self.peripheral.write_gate.wait()
        self.peripheral.written.append((characteristic.uuid, bytes(data), response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise NotImplementedError

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        self._check()
        self._callbacks[characteristic.uuid] = callback

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._callbacks.pop(characteristic.uuid, None)

    def _check(self) -> None:
        if not self._connected:
            raise BleakError("Not connected")


def _short(uuid: str) -> str:
    """The 16-bit spelling of a Bluetooth base UUID, as the peripherals' tables use."""
    return (
        uuid[4:8] if uuid.endswith("-0000-1000-8000-00805f9b34fb") and uuid[:4] == "0000" else uuid
    )


def backend_for(*peripherals: Peripheral) -> type[FakeClient]:
    """A backend class of the test's own, so no two tests share devices."""
    return type("TestClient", (FakeClient,), {"peripherals": {p.address: p for p in peripherals}})


def strip() -> Peripheral:
    return Peripheral(
        ADDRESS,
        {
            SENSOR: ["read", "notify"],
            COLOR: ["write-without-response"],
            BUZZER: ["write"],
            BATTERY: ["read"],
        },
    )


@contextlib.asynccontextmanager
async def hosting(
    url: str, device: Callable[[BridgeHost], GattDevice]
) -> AsyncIterator[GattDevice]:
    """A BridgeHost on ``url`` running one GATT device made by ``device``."""
    made: list[GattDevice] = []

    async def main(host: BridgeHost) -> None:
        made.append(device(host))
        await made[0].run()

    async with open_transport(parse_broker_url(url), client_id="msgflo-ble-test") as transport:
        async with asyncio.timeout(5):
            await transport.wait_connected()
        host = BridgeHost("ble", transport, period=1.1)
        async with background(host.run(main)):
            await until(lambda: bool(made), what="the device task")
            yield made[0]


def gatt(peripheral: Peripheral, **options: Any) -> Callable[[BridgeHost], GattDevice]:
    def make(host: BridgeHost) -> GattDevice:
        return GattDevice(
            host,
            peripheral.address,
            "lab/strip",
            PORTS,
            "hci0",
            asyncio.Lock(),
            backend=backend_for(peripheral),
            reconnect=FAST,
            attempts=1,
            **options,
        )

    return make


def announced(host: BridgeHost, address: str = ADDRESS) -> bool:
    return address in host.announced()


# -- on the memory:// broker ---------------------------------------------------------------------


async def test_a_full_write_queue_drops_and_counts_with_one_log_line(
    memory_url: str, memory_client: MemoryTransport, caplog: pytest.LogCaptureFixture
) -> None:
    peripheral = strip()
    peripheral.write_gate = asyncio.Event()  # the strip takes no writes for now
    async with hosting(memory_url, gatt(peripheral, max_pending=2)) as device:
        await until(lambda: announced(device.host), what="announced")
        memory_client.publish("lab/strip/buzzer", b"0")
        await until(lambda: peripheral.writing == 1, what="the first write to stall")
        for value in range(1, 6):
            memory_client.publish("lab/strip/buzzer", str(value).encode())
        await until(lambda: device.stats.write_drops == 3, what="3 drops")  # 2 queued
        drops = [r.getMessage() for r in caplog.records if "not keeping up" in r.getMessage()]
        assert drops == [
            f"BLE {ADDRESS} (lab/strip): the device is not keeping up with writes; dropping "
            "messages (1 so far)"
        ]
        peripheral.write_gate.set()
        await until(lambda: len(peripheral.written) == 3, what="the queued writes")
        assert [data for _, data, _ in peripheral.written] == [b"\x00", b"\x01", b"\x02"]
        # Once it keeps up again, the next overload is one line again.
        peripheral.write_gate.clear()
        memory_client.publish("lab/strip/buzzer", b"6")
        await until(lambda: peripheral.writing == 4, what="the next write to stall")
        for value in range(7, 10):
            memory_client.publish("lab/strip/buzzer", str(value).encode())
        await until(lambda: device.stats.write_drops == 4, what="the next drop")
        drops = [r.getMessage() for r in caplog.records if "not keeping up" in r.getMessage()]
        assert len(drops) == 2 and drops[1].endswith("(4 so far)")
        peripheral.write_gate.set()


async def test_a_characteristic_the_device_lacks_is_logged_and_the_rest_work(
    memory_url: str, memory_client: MemoryTransport, caplog: pytest.LogCaptureFixture
) -> None:
    peripheral = strip()
    del peripheral.characteristics[BUZZER]
    (out,) = await watch(memory_client, "lab/strip/battery")
    async with hosting(memory_url, gatt(peripheral)) as device:
        await until(lambda: announced(device.host), what="announced")
        assert await out.wait_count(2) == [b"80", b"80"]  # polled
        assert device.stats.missing == 1
        assert "port 'buzzer' (GATT 0000ff02" in caplog.text
        memory_client.publish("lab/strip/buzzer", b"1")  # announced, but goes nowhere
        memory_client.publish("lab/strip/color", b"\x01\x02\x03")
        await until(lambda: len(peripheral.written) == 1, what="the colour")
        assert peripheral.written == [(COLOR, b"\x01\x02\x03", False)]


async def test_run_gatt_device_keeps_trying_a_device_that_cannot_be_reached(
    memory_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    peripheral = strip()
    peripheral.reachable = False
    lock = asyncio.Lock()
    caplog.set_level(logging.INFO, logger="gateway")

    async def main(host: BridgeHost) -> None:
        await run_gatt_device(
            host,
            ADDRESS,
            "lab/strip",
            PORTS,
            adapter="hci0",
            connect_lock=lock,
            backend=backend_for(peripheral),
            reconnect=FAST,
            attempts=1,
        )

    async with open_transport(parse_broker_url(memory_url), client_id="ble") as transport:
        host = BridgeHost("ble", transport, period=1.1)
        async with background(host.run(main)):
            await until(lambda: "cannot connect" in caplog.text, what="the first failure")
            await until(lambda: "still unreachable after 10 attempts" in caplog.text)
            assert not host.announced()
            failures = [r.getMessage() for r in caplog.records if r.name.endswith(".gatt")]
            assert failures == [
                f"BLE {ADDRESS} (lab/strip): cannot connect: lab/strip - {ADDRESS}: Failed to "
                f"connect after 1 attempt(s): Device with address {ADDRESS} was not reached "
                "(retrying)",
                f"BLE {ADDRESS} (lab/strip): still unreachable after 10 attempts",
            ]
            peripheral.reachable = True
            await until(lambda: announced(host), what="announced once reachable")
            assert peripheral.connects == 1


# -- on a real broker ----------------------------------------------------------------------------


def discovered(probe: Probe, role: str) -> list[dict[str, Any]]:
    return [m["payload"] for m in probe.discovery() if m["payload"]["role"] == role]


@pytest.mark.integration
async def test_a_gatt_device_is_a_participant_while_connected(
    mosquitto: Mosquitto, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    await probe.watch("fbp")
    await probe.watch("lab/strip/temperature")
    await probe.watch("lab/strip/battery")
    peripheral = strip()
    async with hosting(mosquitto.url, gatt(peripheral)) as device:
        await until(lambda: bool(discovered(probe, "lab/strip")), what="discovery")
        first = discovered(probe, "lab/strip")[0]
        assert (first["component"], first["id"]) == ("ble/gatt", "lab/strip")
        assert first["inports"] == [
            {"id": "color", "type": "any", "queue": "lab/strip/color",
             "description": f"GATT {COLOR}, write, raw"},
            {"id": "buzzer", "type": "number", "queue": "lab/strip/buzzer",
             "description": f"GATT {BUZZER}, write, uint8"},
        ]  # fmt: skip
        assert [(p["id"], p["type"], p["queue"]) for p in first["outports"]] == [
            ("temperature", "number", "lab/strip/temperature"),
            ("battery", "number", "lab/strip/battery"),
        ]
        assert (await probe.wait_count("lab/strip/battery", 1))[0] == b"80"

        # A notification arrives decoded on the outport's topic.
        peripheral.notify(SENSOR, (2137).to_bytes(2, "little"))
        assert await probe.wait_count("lab/strip/temperature", 1) == [b"21.37"]

        # Messages on the inports reach the characteristics encoded, each with its write type.
        probe.transport.publish("lab/strip/color", b"\xff\x00\x80")
        probe.transport.publish("lab/strip/buzzer", b"1")
        await until(lambda: len(peripheral.written) == 2, what="two writes")
        assert peripheral.written == [(COLOR, b"\xff\x00\x80", False), (BUZZER, b"\x01", True)]

        # A payload that does not encode: one log line naming the topic, nothing else changes.
        probe.transport.publish("lab/strip/buzzer", b"300")
        await until(lambda: device.stats.bad_payloads == 1, what="the bad payload counted")
        refused = [r for r in caplog.records if "refused" in r.getMessage()]
        assert [r.getMessage() for r in refused] == [
            f"BLE {ADDRESS} (lab/strip): message on lab/strip/buzzer refused: "
            "uint8: 300 is out of range 0..255"
        ]
        probe.transport.publish("lab/strip/buzzer", b"0")
        await until(lambda: len(peripheral.written) == 3, what="the next write")
        assert peripheral.written[2] == (BUZZER, b"\x00", True)
        assert device.participant.present and device.stats.connects == 1

        # Out of range: withdrawn; back: announced again with the same role and id.
        peripheral.reachable = False
        peripheral.drop()
        await until(lambda: not announced(device.host), what="withdrawn")
        assert device.stats.disconnects == 1
        count = len(discovered(probe, "lab/strip"))
        await until(lambda: device.stats.connect_failures >= 2, what="reconnect attempts")
        assert len(discovered(probe, "lab/strip")) == count  # not announced while away
        probe.transport.publish("lab/strip/buzzer", b"1")  # nobody listens for it now
        peripheral.reachable = True
        await until(lambda: len(discovered(probe, "lab/strip")) > count, what="announced again")
        again = discovered(probe, "lab/strip")[-1]
        assert again == first
        assert peripheral.connects == 2
        peripheral.notify(SENSOR, (-50).to_bytes(2, "little", signed=True))
        assert (await probe.wait_count("lab/strip/temperature", 2))[1] == b"-0.5"
        probe.transport.publish("lab/strip/buzzer", b"1")
        await until(lambda: len(peripheral.written) == 4, what="a write after the reconnect")
        assert peripheral.written[3] == (BUZZER, b"\x01", True)
