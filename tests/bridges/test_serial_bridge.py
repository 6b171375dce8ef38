"""The serial bridge with fake devices on real ptys and a real mosquitto: discovery, echo both
ways, several devices (one stalled, one noisy), unplug and replug."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.bridges import host
from gateway.bridges.serial.bridge import MAX_ABSENT, BridgeConfig, SerialBridge
from gateway.bridges.serial.fake_device import (
    ECHO_DESCRIPTION,
    FakeDeviceCore,
    FakeDeviceOptions,
    FakePort,
    PtyDevice,
    description_text,
    garbage,
)
from gateway.bridges.serial.port import PortOpener, TtyPort
from gateway.bridges.serial.roles import RoleMap
from gateway.bridges.serial.session import DeviceSession, SessionConfig, State
from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.transport import open_transport
from gateway.transport.backoff import Backoff
from tests.conftest import Probe
from tests.support.wait import until

pytestmark = pytest.mark.integration

BY_ID = "usb-Arduino__www.arduino.cc__0043_{serial}-if00"


def fast_config(directory: Path, roles: dict[str, str] | None = None) -> BridgeConfig:
    return BridgeConfig(
        globs=(str(directory / "usb-*"),),
        roles=RoleMap(roles or {}),
        period=1.1,  # announced every 0.5 s
        poll_interval=0.05,
        session=SessionConfig(role="-", hello_timeout=0.5, ping_interval=0.2, max_missed_pongs=3),
        reopen=Backoff(initial=0.05, maximum=0.2, jitter=0.0),
    )


@contextlib.asynccontextmanager
async def running(
    mosquitto: Mosquitto, config: BridgeConfig, opener: PortOpener = TtyPort.open
) -> AsyncIterator[SerialBridge]:
    url = parse_broker_url(mosquitto.url)
    async with open_transport(url, client_id="msgflo-serial-test") as transport:
        async with asyncio.timeout(5):
            await transport.wait_connected()
        bridge = SerialBridge(config, transport, opener=opener)
        task = asyncio.create_task(bridge.run())
        try:
            yield bridge
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def link_session(bridge: SerialBridge, path: str) -> DeviceSession | None:
    """The serial-link session of the device at ``path`` (not one in line mode)."""
    session = bridge.devices[path].session
    assert session is None or isinstance(session, DeviceSession)
    return session


def announcements(probe: Probe, role: str) -> list[dict[str, Any]]:
    return [m["payload"] for m in probe.discovery() if m["payload"]["role"] == role]


async def test_a_device_is_announced_and_echoes_byte_exact(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    await probe.watch("lab/echo/out")
    config = fast_config(tmp_path, {"ECHO0001": "lab/echo"})
    async with PtyDevice() as device, running(mosquitto, config) as bridge:
        device.plug(tmp_path, BY_ID.format(serial="ECHO0001"))
        await until(lambda: bool(announcements(probe, "lab/echo")))
        payload = announcements(probe, "lab/echo")[0]
        assert payload == {
            "component": "Repeat",
            "label": "Sends back what it gets",
            "icon": "retweet",
            "role": "lab/echo",
            "id": "lab/echo",
            "inports": [{"id": "in", "type": "any", "queue": "lab/echo/in"}],
            "outports": [{"id": "out", "type": "any", "queue": "lab/echo/out"}],
        }
        message = bytes([0, 1, 2, 0xFF, 0]) + b'{"x": 1}'
        probe.transport.publish("lab/echo/in", message)
        assert (await probe.wait_count("lab/echo/out", 1)) == [message]
        # Oversize for an Uno-sized device: refused, never written; the device keeps working.
        probe.transport.publish("lab/echo/in", b"z" * 100)
        probe.transport.publish("lab/echo/in", b"after")
        assert (await probe.wait_count("lab/echo/out", 2))[1] == b"after"
        session = link_session(bridge, str(tmp_path / BY_ID.format(serial="ECHO0001")))
        assert session is not None
        assert session.stats.refused == 1
        # Announced again periodically.
        await until(lambda: len(announcements(probe, "lab/echo")) >= 3)


async def test_the_role_defaults_to_the_usb_serial_number_and_messages_from_the_device(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    await probe.watch("75833353035351A0C1E1/out")
    async with PtyDevice() as device, running(mosquitto, fast_config(tmp_path)):
        device.plug(tmp_path, BY_ID.format(serial="75833353035351A0C1E1"))
        await until(lambda: bool(announcements(probe, "75833353035351A0C1E1")))
        device.send(0, b"pressed")
        assert await probe.wait_count("75833353035351A0C1E1/out", 1) == [b"pressed"]


async def test_a_device_without_a_hello_is_described_after_retries(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    async with PtyDevice(boot=False) as device, running(mosquitto, fast_config(tmp_path)):
        device.plug(tmp_path, BY_ID.format(serial="NOHELLO1"))
        await until(lambda: bool(announcements(probe, "NOHELLO1")))


async def test_a_stalled_device_and_a_noisy_one_do_not_stop_a_good_one(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    await probe.watch("good/out")
    rng = random.Random(3)
    async with (
        PtyDevice() as good,
        PtyDevice() as stalled,
        PtyDevice() as noisy,
        running(mosquitto, fast_config(tmp_path)) as bridge,
    ):
        for device, serial in ((good, "good"), (stalled, "stalled"), (noisy, "noisy")):
            device.plug(tmp_path, BY_ID.format(serial=serial))
        await until(lambda: all(announcements(probe, r) for r in ("good", "stalled", "noisy")))
        stalled.stalled = True
        for n in range(200):  # fill the stalled device's tty and the bridge's cap for it
            probe.transport.publish("stalled/in", b"%d" % n)
        for n in range(20):
            noisy.write(garbage(300, rng))
            probe.transport.publish("good/in", b"msg %d" % n)
            await asyncio.sleep(0.01)
        got = await probe.wait_count("good/out", 20)
        assert got == [b"msg %d" % n for n in range(20)]
        noisy_session = link_session(bridge, str(tmp_path / BY_ID.format(serial="noisy")))
        assert noisy_session is not None
        assert noisy_session.decoder.stats.dropped > 0
        # The stalled device stops answering pings: it is no longer announced, the others are.
        await until(lambda: {d.role for d in bridge.announced.values()} == {"good", "noisy"})


async def test_unplug_stops_announcing_and_replug_brings_the_same_role_back(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    await probe.watch("door/out")
    config = fast_config(tmp_path, {"DOOR42": "door"})
    name = BY_ID.format(serial="DOOR42")
    async with running(mosquitto, config) as bridge:
        async with PtyDevice() as first:
            first.plug(tmp_path, name)
            await until(lambda: bool(announcements(probe, "door")))
            first.close()  # pulled out: reads fail and the by-id link goes away
            await until(lambda: not bridge.announced)
        await asyncio.sleep(1.2)  # any announcement already under way has arrived
        count = len(announcements(probe, "door"))
        await asyncio.sleep(1.2)  # more than two announce intervals
        assert len(announcements(probe, "door")) == count
        async with PtyDevice() as second:  # plugged in again (another pty, the same serial)
            second.plug(tmp_path, name)
            await until(lambda: len(announcements(probe, "door")) > count)
            again = announcements(probe, "door")[-1]
            assert again["id"] == "door"
            assert again["inports"][0]["queue"] == "door/in"
            probe.transport.publish("door/in", b"open")
            assert await probe.wait_count("door/out", 1) == [b"open"]


async def test_removing_the_link_alone_is_an_unplug(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    async with PtyDevice() as device, running(mosquitto, fast_config(tmp_path)) as bridge:
        device.plug(tmp_path, BY_ID.format(serial="LINK1"))
        await until(lambda: bool(bridge.announced))
        device.unplug()
        await until(lambda: not bridge.announced)
        device.plug(tmp_path, BY_ID.format(serial="LINK1"))
        await until(lambda: bool(bridge.announced))
        assert [d.role for d in bridge.announced.values()] == ["LINK1"]


async def test_a_reset_device_is_described_again_and_announced_again(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    options = FakeDeviceOptions(page_size=20)  # a multi-page description over the tty
    async with (
        PtyDevice(FakeDeviceCore(options=options)) as device,
        running(mosquitto, fast_config(tmp_path)) as bridge,
    ):
        device.plug(tmp_path, BY_ID.format(serial="RESET1"))
        await until(lambda: bool(bridge.announced))
        path = str(tmp_path / BY_ID.format(serial="RESET1"))
        first = link_session(bridge, path)
        device.reset()
        await until(lambda: len(announcements(probe, "RESET1")) >= 3)
        assert link_session(bridge, path) is first
        assert first is not None
        assert first.state is State.READY
        assert json.dumps(announcements(probe, "RESET1")[-1])


async def test_in_memory_fake_ports_read_errors_reopen_and_a_vanished_path_withdraws(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("fbp")
    await probe.watch("mem/out")
    opened: list[FakePort] = []

    def opener(path: str, baud: int) -> FakePort:
        opened.append(FakePort(FakeDeviceCore(), path))
        return opened[-1]

    link = tmp_path / BY_ID.format(serial="MEM1")
    link.touch()
    config = fast_config(tmp_path, {"MEM1": "mem"})
    async with running(mosquitto, config, opener) as bridge:
        await until(lambda: bool(bridge.announced))
        probe.transport.publish("mem/in", b"one")
        assert await probe.wait_count("mem/out", 1) == [b"one"]
        opened[0].unplug()  # a read error while the path is still there: reopened
        await until(lambda: len(opened) == 2 and bool(bridge.announced))
        opened[1].send(0, b"two")
        assert await probe.wait_count("mem/out", 2) == [b"one", b"two"]
        link.unlink()
        await until(lambda: not bridge.announced)
        assert bridge.devices[str(link)].stats.opens == 2


async def test_a_bug_met_by_one_device_does_not_take_the_bridge_down(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await probe.watch("fbp")
    calls: list[str] = []

    def opener(path: str, baud: int) -> FakePort:
        calls.append(path)
        if "BROKEN" in path:
            raise RuntimeError("driver bug")
        return FakePort(FakeDeviceCore(), path)

    for serial in ("BROKEN", "WORKS"):
        (tmp_path / BY_ID.format(serial=serial)).touch()
    async with running(mosquitto, fast_config(tmp_path), opener) as bridge:
        await until(lambda: bool(announcements(probe, "WORKS")))
        await until(lambda: "unexpected error" in caplog.text)
        assert [d.role for d in bridge.announced.values()] == ["WORKS"]


async def test_two_devices_with_one_role_are_reported(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def opener(path: str, baud: int) -> FakePort:
        return FakePort(FakeDeviceCore(), path)

    for serial in ("TWIN1", "TWIN2"):
        (tmp_path / BY_ID.format(serial=serial)).touch()
    config = fast_config(tmp_path, {"TWIN1": "twin", "TWIN2": "twin"})
    async with running(mosquitto, config, opener) as bridge:
        await until(lambda: len(bridge.announced) == 2)
        assert "role 'twin' is already the role of" in caplog.text


def ports(n: int) -> list[dict[str, str]]:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return [{"id": digits[i // 36] + digits[i % 36]} for i in range(n)]


def lines_about(caplog: pytest.LogCaptureFixture, path: Path, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(f"{path}: ") and r.levelno >= level
    ]


async def test_hostile_devices_get_one_line_each_and_a_good_one_goes_on(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await probe.watch("fbp")
    await probe.watch("good/out")
    rng = random.Random(11)
    deep = b'{"component":"x","inports":' + b"[" * 4000  # a RecursionError once
    many = description_text(dict(ECHO_DESCRIPTION, inports=ports(250)))
    surrogate = description_text(dict(ECHO_DESCRIPTION, component="\udc80"))
    hostile = {
        "deep": FakeDeviceCore(deep, max_frame=254),
        "many": FakeDeviceCore(many, max_frame=254),
        "surrogate": FakeDeviceCore(surrogate),
        "noisy": FakeDeviceCore(),
        "storm": FakeDeviceCore(),
    }
    async with contextlib.AsyncExitStack() as stack:
        good = await stack.enter_async_context(PtyDevice())
        devices = {n: await stack.enter_async_context(PtyDevice(c)) for n, c in hostile.items()}
        bridge = await stack.enter_async_context(running(mosquitto, fast_config(tmp_path)))
        good.plug(tmp_path, BY_ID.format(serial="good"))
        for name, device in devices.items():
            device.plug(tmp_path, BY_ID.format(serial=name))
        await until(lambda: bool(announcements(probe, "good")) and "noisy" in roles(bridge))
        for _ in range(200):  # a device rebooting in a loop
            devices["storm"].reset()
        for _ in range(20):  # huge frames (no delimiter for 2 MB), then line noise
            devices["noisy"].write(b"\x55" * 100_000)
        devices["noisy"].write(garbage(50_000, rng))
        for n in range(20):
            probe.transport.publish("good/in", b"msg %d" % n)
        assert await probe.wait_count("good/out", 20) == [b"msg %d" % n for n in range(20)]
        noisy = link_session(bridge, str(tmp_path / BY_ID.format(serial="noisy")))
        await until(lambda: noisy is not None and noisy.decoder.stats.dropped >= 20, timeout=20)
        assert noisy is not None
        assert noisy.decoder.buffered <= 255  # never more than one frame held
        storm = link_session(bridge, str(tmp_path / BY_ID.format(serial="storm")))
        await until(lambda: storm is not None and storm.stats.hellos >= 201)
        await asyncio.sleep(0.5)  # a few more pings, announcements and scans
        assert roles(bridge) == {"good", "noisy"}
    for name, expected in (
        ("deep", "nested more than 16 levels deep"),
        ("many", "250 ports, at most 64 per device"),
        ("surrogate", "component: lone surrogate"),
    ):
        (line,) = lines_about(caplog, tmp_path / BY_ID.format(serial=name), logging.ERROR)
        assert expected in line
    storm_lines = lines_about(caplog, tmp_path / BY_ID.format(serial="storm"), logging.WARNING)
    assert sum("restarting in a loop" in line for line in storm_lines) == 1
    assert len(storm_lines) <= 2
    assert not [r for r in caplog.records if r.exc_info]


def roles(bridge: SerialBridge) -> set[str]:
    return {d.role for d in bridge.announced.values()}


async def test_rapid_replug_keeps_the_bridge_bounded(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    def opener(path: str, baud: int) -> FakePort:
        return FakePort(FakeDeviceCore(), path)

    def opens(bridge: SerialBridge, link: Path) -> int:
        device = bridge.devices.get(str(link))
        return 0 if device is None else device.stats.opens

    async with running(mosquitto, fast_config(tmp_path), opener) as bridge:
        same = tmp_path / BY_ID.format(serial="SAME")
        for n in range(30):  # the same device, in and out
            same.touch()
            await until(lambda: opens(bridge, same) > n)  # noqa: B023 (awaited here)
            await until(lambda: bool(bridge.announced))
            same.unlink()
            await until(lambda: not bridge.announced)
        # a device that comes back under a new name each time (or many devices, once each)
        for n in range(MAX_ABSENT + 20):
            link = tmp_path / BY_ID.format(serial=f"NEW{n}")
            link.touch()
            await until(lambda: opens(bridge, link) > 0)  # noqa: B023 (awaited here)
            link.unlink()
        await until(lambda: len(bridge.devices) <= MAX_ABSENT)
        assert opens(bridge, link) == 1  # the latest ones are kept


async def test_a_bug_met_again_and_again_logs_one_traceback(
    mosquitto: Mosquitto,
    probe: Probe,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(host, "RESTART_AFTER_BUG", 0.05)  # the host's pause, 10 s, made short

    def opener(path: str, baud: int) -> FakePort:
        raise RuntimeError("driver bug")

    (tmp_path / BY_ID.format(serial="BROKEN")).touch()
    async with running(mosquitto, fast_config(tmp_path), opener):
        await until(lambda: caplog.text.count("unexpected error") >= 4)
    records = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert [bool(r.exc_info) for r in records[:4]] == [True, False, False, False]
    assert "unexpected error again (4 times): RuntimeError('driver bug')" in records[3].getMessage()
