"""How the bridge notices devices come and go: udev events where udev runs and sees the globs,
else polling, said in one log line. Real udev events are not tested here (a netlink monitor
needs a running udevd, which the tests' machines lack); what an event does (a rescan) is
tested with a stand-in for pyudev's monitor on a socket pair."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.bridges.serial.bridge import SerialBridge
from gateway.bridges.serial.hotplug import Polling, UdevEvents, udev_managed, udev_monitor, watch
from gateway.broker import parse_broker_url
from gateway.transport import open_transport
from tests.bridges.test_serial_bridge import fast_config
from tests.support.tasks import background
from tests.support.wait import until

UDEV_RUNS = Path("/run/udev/control").exists()


def test_udev_is_used_only_for_globs_it_makes() -> None:
    assert udev_managed("/dev/serial/by-id/*") and udev_managed("/dev/ttyACM*")
    assert not udev_managed("/dev/pts/*") and not udev_managed("/tmp/devices/usb-*")
    polled = watch(("/dev/ttyACM*", "/tmp/x/*"), 0.5, udev_monitor)
    assert isinstance(polled, Polling)
    assert (
        polled.description == "hotplug: polling the globs every 0.5 s (udev does not see /tmp/x/*)"
    )
    assert watch(("/dev/ttyACM*",), 1.0, None).description.endswith("(udev not asked for)")


def test_a_monitor_that_cannot_be_made_means_polling() -> None:
    def broken() -> object:
        raise OSError("netlink refused")

    polled = watch(("/dev/serial/by-id/*",), 1.0, broken)
    assert (
        polled.description
        == "hotplug: polling the globs every 1 s (cannot watch udev: netlink refused)"
    )


@pytest.mark.skipif(UDEV_RUNS, reason="udev runs here: the monitor is made")
def test_without_udev_running_the_real_monitor_is_refused() -> None:
    with pytest.raises(OSError, match=r"udev is not running \(no /run/udev/control\)"):
        udev_monitor()


@pytest.mark.skipif(not UDEV_RUNS, reason="needs a running udevd")
async def test_where_udev_runs_its_events_are_watched() -> None:
    events = watch(("/dev/serial/by-id/*",), 1.0, udev_monitor)
    try:
        assert isinstance(events, UdevEvents)
    finally:
        events.close()


async def test_the_bridge_says_which_it_uses_in_one_line(
    memory_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> object:
        raise OSError("no netlink here")

    config = fast_config(tmp_path)
    config = type(config)(**{**config.__dict__, "globs": ("/dev/msgflo-test-absent/*",)})
    caplog.set_level(logging.INFO, "gateway.bridges.serial")
    async with open_transport(parse_broker_url(memory_url), client_id="bridge") as transport:
        bridge = SerialBridge(config, transport, monitor=broken)
        async with background(bridge.run()):
            await until(lambda: "hotplug:" in caplog.text)
            await asyncio.sleep(0.2)  # a few polls: still one line
    lines = [r.getMessage() for r in caplog.records if "hotplug" in r.getMessage()]
    assert lines == ["hotplug: polling the globs every 0.05 s (cannot watch udev: no netlink here)"]


class FakeMonitor:
    """pyudev's Monitor as UdevEvents uses it: a readable fd and poll(timeout=0)."""

    def __init__(self) -> None:
        self.ours, self.kernel = socket.socketpair()
        self.ours.setblocking(False)

    def fileno(self) -> int:
        return self.ours.fileno()

    def poll(self, timeout: float) -> object | None:
        assert timeout == 0
        try:
            return self.ours.recv(1) or None
        except BlockingIOError:
            return None

    def close(self) -> None:
        self.ours.close()
        self.kernel.close()


@pytest.fixture
def monitor() -> Iterator[FakeMonitor]:
    fake = FakeMonitor()
    yield fake
    fake.close()


async def test_each_burst_of_events_is_one_rescan(monitor: FakeMonitor) -> None:
    events = UdevEvents(monitor, rescan=30.0)
    try:
        monitor.kernel.send(b"abc")  # three events
        async with asyncio.timeout(5):
            await events.changed()
        assert events.events == 3
        waiting = asyncio.create_task(events.changed())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # nothing new: no rescan until the next event
        monitor.kernel.send(b"d")
        async with asyncio.timeout(5):
            await waiting
    finally:
        events.close()


async def test_without_events_it_rescans_now_and_then(monitor: FakeMonitor) -> None:
    events = UdevEvents(monitor, rescan=0.05)
    try:
        async with asyncio.timeout(5):
            await events.changed()
        assert events.events == 0
    finally:
        events.close()
