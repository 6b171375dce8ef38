"""Who a serial device is: pyserial's list_ports entries (built directly, as ``comports()``
builds them from sysfs) joined with by-id links, the roles configured by serial number, VID:PID,
link name or path, and what the bridge publishes for a board without a role."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo  # type: ignore[import-untyped]

from gateway.bridges.seen import parse_seen
from gateway.bridges.serial.bridge import SEEN_TOPIC, SerialBridge
from gateway.bridges.serial.fake_device import FakeDeviceCore, FakePort
from gateway.bridges.serial.hotplug import by_id_links, identities
from gateway.bridges.serial.roles import PortIdentity, PortInfo, RoleMap, identify
from gateway.broker import parse_broker_url
from gateway.config import values
from gateway.transport import open_transport
from gateway.transport.memory import MemoryTransport
from tests.bridges.test_serial_bridge import BY_ID, fast_config
from tests.support.inbox import watch
from tests.support.tasks import background
from tests.support.wait import until

UNO_LINK = "/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_75833353035351A0C1E1-if00"
CH340_LINK = "/dev/serial/by-id/usb-1a86_USB2.0-Serial-if00-port0"


def usb_port(
    device: str,
    vid: int,
    pid: int,
    *,
    serial: str | None,
    product: str | None = None,
    manufacturer: str | None = None,
) -> PortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial
    info.product, info.manufacturer = product, manufacturer
    found: PortInfo = info
    return found


UNO = usb_port(
    "/dev/ttyACM0",
    0x2341,
    0x0043,
    serial="75833353035351A0C1E1",
    product="Arduino Uno",
    manufacturer="Arduino (www.arduino.cc)",
)
CH340 = usb_port(
    "/dev/ttyUSB0", 0x1A86, 0x7523, serial=None, product="USB2.0-Serial", manufacturer="QinHeng"
)
UART = ListPortInfo("/dev/ttyAMA0", skip_link_detection=True)  # on the board: no USB at all


def test_a_usb_device_is_known_by_its_descriptors_and_its_by_id_link() -> None:
    found = identify(UNO_LINK, "/dev/ttyACM0", [UART, CH340, UNO])
    assert found == PortIdentity(
        UNO_LINK,
        usb_serial="75833353035351A0C1E1",
        vid_pid="2341:0043",
        usb_product="Arduino Uno",
        manufacturer="Arduino (www.arduino.cc)",
        link=Path(UNO_LINK).name,
    )
    assert (found.config_key, found.derived_role) == (("75833353035351A0C1E1",) * 2)
    assert found.product == "Arduino Uno"
    assert found.describe() == "2341:0043 Arduino (www.arduino.cc)"


def test_a_node_found_by_its_own_name_gets_its_by_id_link_from_the_links() -> None:
    links = {"/dev/ttyACM0": Path(UNO_LINK).name}
    found = identify("/dev/ttyACM0", "/dev/ttyACM0", [UNO], links)
    assert found.link == Path(UNO_LINK).name
    assert RoleMap({Path(UNO_LINK).name: "lamp"}).role_for(found) == "lamp"


def test_without_a_serial_number_the_link_then_vid_pid_name_the_device() -> None:
    by_link = identify(CH340_LINK, "/dev/ttyUSB0", [CH340])
    assert (by_link.config_key, by_link.derived_role) == (
        Path(CH340_LINK).name,
        "1a86_USB2.0-Serial",
    )
    by_node = identify("/dev/ttyUSB0", "/dev/ttyUSB0", [CH340])  # a glob of /dev/ttyUSB*
    assert (by_node.config_key, by_node.derived_role) == ("1a86:7523", "1a86_7523")
    assert by_node.product == "USB2.0-Serial"


def test_a_path_without_usb_descriptors_is_known_by_its_name_as_before() -> None:
    pty = identify("/tmp/devices/usb-Fake_Device_C1-if00", "/dev/pts/7", [UNO, UART])
    assert pty == PortIdentity.of("/tmp/devices/usb-Fake_Device_C1-if00")
    assert (pty.serial, pty.config_key, pty.product) == ("C1", "C1", "Fake_Device")
    uart = identify("/dev/ttyAMA0", "/dev/ttyAMA0", [UART])
    assert (uart.vid_pid, uart.config_key, uart.derived_role) == (None, "ttyAMA0", "ttyAMA0")


@pytest.mark.parametrize(
    ("key", "role"),
    [
        ("75833353035351A0C1E1", "by-serial"),
        ("2341:0043", "by-model"),
        ("2341:0043".upper(), "by-model"),
        (Path(UNO_LINK).name, "by-link"),
        (UNO_LINK, "by-path"),
    ],
)
def test_a_role_is_configured_by_serial_vid_pid_link_name_or_path(key: str, role: str) -> None:
    assert RoleMap({key: role}).role_for(identify(UNO_LINK, "/dev/ttyACM0", [UNO])) == role
    assert values.is_serial(key)  # gateway.yaml and --role take it


def test_the_most_specific_configured_key_wins() -> None:
    uno = identify(UNO_LINK, "/dev/ttyACM0", [UNO])
    roles = RoleMap({"2341:0043": "any-uno", "75833353035351A0C1E1": "this-uno", UNO_LINK: "path"})
    assert roles.role_for(uno) == "this-uno"
    other = dataclasses.replace(uno, usb_serial="OTHER", link=None, path="/dev/ttyACM1")
    assert roles.role_for(other) == "any-uno"
    assert roles.configured(identify(CH340_LINK, "/dev/ttyUSB0", [CH340])) is None


def test_by_id_links_and_identities_read_the_links_and_the_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = tmp_path / "ttyACM0"
    node.touch()
    link = tmp_path / "by-id" / Path(UNO_LINK).name
    link.parent.mkdir()
    link.symlink_to(node)
    assert by_id_links(link.parent) == {str(node): link.name}
    assert by_id_links(tmp_path / "absent") == {}

    def lister() -> Iterable[PortInfo]:
        return [usb_port(str(node), 0x2341, 0x0043, serial="S1", product="Uno")]

    found = identities([str(link)], lister)
    assert (found[str(link)].serial, found[str(link)].vid_pid) == ("S1", "2341:0043")

    def broken() -> Iterable[PortInfo]:
        raise OSError("sysfs changed under us")

    found = identities([str(link)], broken)  # still known, by its link name
    assert found[str(link)] == PortIdentity.of(str(link))
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert line == "cannot list the USB serial ports: sysfs changed under us"


async def test_a_board_without_a_role_is_seen_with_its_usb_identity_and_one_with_one_is_not(
    memory_url: str, memory_client: MemoryTransport, tmp_path: Path
) -> None:
    """Two boards (fake ports) whose nodes pyserial lists as USB devices: the one adopted by
    VID:PID is announced under its role; the other is on the seen list, by serial number, with
    its USB product as model and its component in the details, and the list is emptied on a
    clean stop."""
    nodes = {}
    for serial in ("SEEN1", "MODEL1"):
        nodes[serial] = tmp_path / BY_ID.format(serial=serial)
        nodes[serial].touch()

    def lister() -> Iterable[PortInfo]:
        return [
            usb_port(
                os.path.realpath(nodes["SEEN1"]),
                0x2341,
                0x0043,
                serial="SEEN1",
                product="Uno",
                manufacturer="Arduino",
            ),
            usb_port(os.path.realpath(nodes["MODEL1"]), 0x2E8A, 0x000A, serial="MODEL1"),
        ]

    def opener(path: str, baud: int) -> FakePort:
        return FakePort(FakeDeviceCore(), path)

    config = fast_config(tmp_path, {"2e8a:000a": "pico"})
    fbp, seen = await watch(memory_client, "fbp", SEEN_TOPIC)
    async with open_transport(parse_broker_url(memory_url), client_id="bridge") as transport:
        bridge = SerialBridge(config, transport, opener=opener, lister=lister)
        async with background(bridge.run()):
            await until(lambda: {d.role for d in bridge.announced.values()} == {"pico", "SEEN1"})

            def listed() -> list[dict[str, object]]:
                entries: list[dict[str, object]] = json.loads(seen.got[-1]) if seen.got else []
                return entries

            await until(lambda: bool(listed()) and "component" in str(listed()[0]["details"]))
            (entry,) = listed()
            assert {k: entry[k] for k in ("id", "model", "name", "details")} == {
                "id": "SEEN1",
                "model": "Uno",
                "name": "SEEN1",
                "details": "component Repeat, 2341:0043 Arduino",
            }
            assert entry["adopt"] == 'bridges.serial.roles: {"SEEN1": ROLE}'
            assert [d.id for d in parse_seen("serial", seen.got[-1])] == ["SEEN1"]
            assert memory_client.broker.retained[SEEN_TOPIC][0] == seen.got[-1]
            nodes["SEEN1"].unlink()  # unplugged: off the list
            await until(lambda: seen.got[-1] == b"[]")
            count = len(seen.got)
        await until(lambda: len(seen.got) > count)  # stopped: the list is emptied again
        assert seen.got[-1] == b"[]"
        assert memory_client.broker.retained[SEEN_TOPIC][0] == b"[]"
    announced = {json.loads(m)["payload"]["role"] for m in fbp.got}
    assert announced == {"pico", "SEEN1"}
