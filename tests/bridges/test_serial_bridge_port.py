"""The pyserial port on a real pty: what waited before the open is read, bytes go both ways
through the event loop, a second opener is refused (exclusive), a pulled device (the master
closed: EIO) ends reading, writes to a device that does not read are capped; and a device in
line mode behind the bridge, opened at its own baud rate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.bridges.serial.bridge import BridgeConfig, SerialBridge
from gateway.bridges.serial.port import MAX_PENDING, SerialPort, TtyPort
from gateway.broker import parse_broker_url
from gateway.config.model import LineDevice, LinePort
from gateway.transport import open_transport
from gateway.transport.memory import MemoryTransport
from tests.bridges.test_serial_bridge import fast_config
from tests.support.inbox import watch
from tests.support.tasks import background
from tests.support.wait import until


@contextlib.contextmanager
def pty() -> Iterator[tuple[int, str]]:
    """A pty's master (non-blocking) and the path of its slave, raw, as a device would be."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    try:
        yield master, os.ttyname(slave)
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


async def read_master(master: int, count: int) -> bytes:
    got = bytearray()
    async with asyncio.timeout(5):
        while len(got) < count:
            try:
                got += os.read(master, 4096)
            except BlockingIOError:
                await asyncio.sleep(0.01)
    return bytes(got)


@contextlib.contextmanager
def opened(path: str, baud: int = 115_200) -> Iterator[SerialPort]:
    port = TtyPort.open(path, baud)
    try:
        yield port
    finally:
        port.close()


async def test_bytes_waiting_before_the_open_are_read_and_writes_reach_the_device() -> None:
    with pty() as (master, path):
        os.write(master, b"\x00hello\x00")  # a hello said before the bridge opened the port
        with opened(path) as port:
            assert port.name == path
            async with asyncio.timeout(5):
                assert await port.read() == b"\x00hello\x00"
            assert port.write(b"\x01\x02")
            assert await read_master(master, 2) == b"\x01\x02"
            os.write(master, b"more")
            async with asyncio.timeout(5):
                assert await port.read() == b"more"


async def test_a_second_opener_is_refused_while_the_bridge_has_the_port() -> None:
    with pty() as (_, path), opened(path), pytest.raises(OSError, match="exclusively lock"):
        TtyPort.open(path, 115_200)


async def test_the_device_pulled_out_ends_reading_with_an_os_error() -> None:
    with pty() as (master, path), opened(path) as port:
        os.close(master)  # what a USB unplug does to the tty: reads fail (EIO)
        with pytest.raises(OSError):
            async with asyncio.timeout(5):
                await port.read()
        assert not port.write(b"x") or True  # never raises; the reader has said it is gone


async def test_writes_to_a_device_that_does_not_read_are_capped() -> None:
    with pty() as (_, path), opened(path) as port:
        accepted = 0
        for _ in range(10_000):  # bounded: the kernel's buffer, then MAX_PENDING, then refusals
            if not port.write(b"x" * 100):
                break
            accepted += 100
        assert not port.write(b"x" * 100)
        assert accepted >= MAX_PENDING  # the kernel took some, the port holds the rest


async def test_a_path_that_is_no_tty_or_a_bad_baud_rate_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "file"
    plain.touch()
    with pytest.raises(OSError):
        TtyPort.open(str(plain), 115_200)
    with pytest.raises(OSError):
        TtyPort.open(str(tmp_path / "absent"), 115_200)
    with pty() as (_, path), pytest.raises(ValueError):
        TtyPort.open(path, -1)


async def test_a_device_in_line_mode_is_opened_at_its_baud_and_its_lines_published(
    memory_url: str, memory_client: MemoryTransport, tmp_path: Path
) -> None:
    line = LineDevice(
        baud=9600,
        role="greenhouse",
        outports=(LinePort(port="temp", key="temp"),),
        inports=("cmd",),
    )
    config: BridgeConfig = fast_config(tmp_path)
    config = BridgeConfig(**{**config.__dict__, "lines": (("LINES1", line),)})
    fbp, temp = await watch(memory_client, "fbp", "greenhouse/temp")
    with pty() as (master, path):
        (tmp_path / "usb-Arduino__www.arduino.cc__0043_LINES1-if00").symlink_to(path)
        async with open_transport(parse_broker_url(memory_url), client_id="bridge") as transport:
            bridge = SerialBridge(config, transport)
            async with background(bridge.run()):
                await until(lambda: bool(bridge.announced))
                (device,) = bridge.devices.values()
                assert (device.baud, device.role) == (9600, "greenhouse")
                announced = json.loads((await fbp.wait_count(1))[0])["payload"]
                assert announced["component"] == "SerialLines"
                os.write(master, b"boot banner\r\ntemp=21.5\r\n")
                assert await temp.wait_count(1) == [b"21.5"]
                memory_client.publish("greenhouse/cmd", b'"on"')
                assert await read_master(master, 3) == b"on\n"
