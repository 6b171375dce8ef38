"""A simulated device: the DEVICE side of the serial link, for tests and demos without hardware.

:class:`FakeDeviceCore` is pure (``boot() -> bytes``, ``feed(bytes) -> bytes``) so a session test
can wire it to :class:`~gateway.bridges.serial.session.DeviceSession` with no I/O, the way
h11's tests pair a client and a server. :class:`FakePort` is the bridge's port ABC with a core
behind it, in memory, for bridge tests that need no tty. :class:`PtyDevice` runs a core on the
master end of a pseudo-terminal so the bridge talks to it through a real tty, and can make its
path appear and disappear as a symlink (hotplug), stall, reset, or spew garbage.

It behaves like the firmware's repeat/echo example: a message on inport ``i`` comes back on
outport ``i`` (or with error NO_SUCH_PORT when there is none).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import tty
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from gateway.bridges.serial.link import (
    AVR_MAX_FRAME,
    MAX_BODY,
    DescribeRequest,
    Description,
    DeviceError,
    DeviceErrorCode,
    ErrorCounters,
    Frame,
    Hello,
    LinkDecoder,
    LinkErrorKind,
    Ping,
    Pong,
    PortMessage,
    Received,
    encode_frame,
)
from gateway.bridges.serial.port import SerialPort
from gateway.errors import SerialLinkError

ECHO_DESCRIPTION: dict[str, Any] = {
    "component": "Repeat",
    "label": "Sends back what it gets",
    "icon": "retweet",
    "inports": [{"id": "in", "type": "any"}],
    "outports": [{"id": "out", "type": "any"}],
    "version": "1.0.0",
}


def description_text(description: dict[str, Any]) -> bytes:
    return json.dumps(description, separators=(",", ":")).encode()


@dataclass
class FakeDeviceOptions:
    """How the simulated device behaves; tests flip these while it runs."""

    answer_pings: bool = True
    answer_describe: bool = True
    page_size: int = MAX_BODY - 4  # description bytes per D reply (at most 246)
    corrupt_next: int = 0  # this many following frames go out with a flipped CRC bit


class FakeDeviceCore:
    """The device's protocol logic; no I/O. Bytes in, bytes out."""

    def __init__(
        self,
        description: bytes = description_text(ECHO_DESCRIPTION),
        *,
        name: str = "fake-device",
        version: str = "1.0.0",
        max_frame: int = AVR_MAX_FRAME,
        protocol: int = 1,
        options: FakeDeviceOptions | None = None,
    ) -> None:
        self.description = description
        self.hello = Hello(name, version, protocol=protocol, max_frame=max_frame)
        self.options = options or FakeDeviceOptions()
        self.decoder = LinkDecoder(max_frame)
        self.received: list[Received] = []  # every frame the device accepted, in order
        self._seq = 0
        doc = json.loads(description) if _is_json(description) else {}
        self._outports = len(doc.get("outports", [])) if isinstance(doc, dict) else 0

    def boot(self) -> bytes:
        """What the device sends when it starts or resets: its hello."""
        self.decoder = LinkDecoder(self.hello.max_frame)
        return self._send(self.hello, self._next_seq())

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for event in self.decoder.feed(data):
            if isinstance(event, SerialLinkError):
                out += self._reject(event)
            else:
                self.received.append(event)
                out += self._answer(event)
        return bytes(out)

    def send(self, port: int, payload: bytes) -> bytes:
        """A message the device sends on its own from outport ``port``."""
        return self._send(PortMessage(port, payload), self._next_seq())

    @property
    def counters(self) -> ErrorCounters:
        errors = self.decoder.stats.errors
        rejected = errors[LinkErrorKind.TOO_SHORT] + errors[LinkErrorKind.UNKNOWN_TYPE]
        rejected += errors[LinkErrorKind.BAD_BODY]
        return ErrorCounters(
            cobs=errors[LinkErrorKind.BAD_COBS],
            crc=errors[LinkErrorKind.BAD_CRC],
            overflow=errors[LinkErrorKind.TOO_LONG],
            rejected=rejected,
        )

    def _answer(self, received: Received) -> bytes:
        frame, seq = received.frame, received.seq
        if isinstance(frame, DescribeRequest):
            return self._describe(frame.offset, seq) if self.options.answer_describe else b""
        if isinstance(frame, Ping):
            return self._send(Pong(self.counters), seq) if self.options.answer_pings else b""
        if isinstance(frame, PortMessage):
            return self._echo(frame, seq)
        return self._send(DeviceError(DeviceErrorCode.UNKNOWN_TYPE), seq)

    def _describe(self, offset: int, seq: int) -> bytes:
        total = len(self.description)
        page = self.description[offset : offset + self.options.page_size]
        return self._send(Description(min(offset, total), total, page), seq)

    def _echo(self, message: PortMessage, seq: int) -> bytes:
        if message.port >= self._outports:
            return self._send(DeviceError(DeviceErrorCode.NO_SUCH_PORT), seq)
        return self.send(message.port, message.payload)

    def _reject(self, error: SerialLinkError) -> bytes:
        if error.kind == LinkErrorKind.UNKNOWN_TYPE:
            return self._send(DeviceError(DeviceErrorCode.UNKNOWN_TYPE), self._next_seq())
        if error.kind == LinkErrorKind.BAD_BODY:
            return self._send(DeviceError(DeviceErrorCode.BAD_BODY), self._next_seq())
        return b""

    def _send(self, frame: Frame, seq: int) -> bytes:
        data = encode_frame(frame, seq)
        if self.options.corrupt_next > 0:
            self.options.corrupt_next -= 1
            return corrupt(data)
        return data

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq


def corrupt(wire: bytes) -> bytes:
    """``wire`` with one bit flipped before the delimiter (never making a 0x00): a CRC error."""
    data = bytearray(wire)
    pos = len(data) - 2
    data[pos] ^= 0x01 if data[pos] != 0x01 else 0x02
    return bytes(data)


def garbage(size: int, rng: random.Random) -> bytes:
    """Line noise: random bytes, zeros included."""
    return bytes(rng.randrange(256) for _ in range(size))


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, RecursionError):  # a hostile description may nest thousands deep
        return False
    return True


class PtyDevice:
    """A :class:`FakeDeviceCore` on the master side of a pty; the bridge opens :attr:`path`.

    ``async with PtyDevice(...) as device`` boots it (its hello waits in the tty until read).
    :meth:`plug` makes a symlink to the pty in a directory the bridge watches; :meth:`unplug`
    removes it. :meth:`close` closes the pty's master, so the bridge's reads fail as on a USB
    unplug. The slave end stays open here so the tty outlives the bridge closing its file.
    """

    def __init__(self, core: FakeDeviceCore | None = None, *, boot: bool = True) -> None:
        self.core = core or FakeDeviceCore()
        self._boot = boot
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes go through as they are
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._stalled = False
        self._links: list[Path] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = bytearray()
        self._closed = False

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._on_readable)
        if self._boot:
            self.write(self.core.boot())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        with contextlib.suppress(OSError):
            os.close(self._slave)

    @property
    def stalled(self) -> bool:
        """A stalled device reads and answers nothing, like a sketch stuck in a loop; what the
        bridge writes piles up in the tty until its buffer is full."""
        return self._stalled

    @stalled.setter
    def stalled(self, value: bool) -> None:
        self._stalled = value
        if self._loop is None or self._closed:
            return
        if value:
            self._loop.remove_reader(self._master)
        else:
            self._loop.add_reader(self._master, self._on_readable)

    def plug(self, directory: Path, name: str) -> Path:
        """Make ``directory/name`` point at the pty, as udev makes a by-id link."""
        link = directory / name
        link.symlink_to(self.path)
        self._links.append(link)
        return link

    def unplug(self) -> None:
        for link in self._links:
            link.unlink(missing_ok=True)
        self._links.clear()

    def reset(self) -> None:
        """Reboot the device: a fresh hello."""
        self.write(self.core.boot())

    def send(self, port: int, payload: bytes) -> None:
        self.write(self.core.send(port, payload))

    def write(self, data: bytes) -> None:
        """Raw bytes onto the line (garbage too); kept and retried while the tty is full."""
        if self._closed:
            return
        self._pending += data
        self._flush()

    def close(self) -> None:
        """Pull the plug: close the master end (the bridge's next read fails) and the link."""
        self.unplug()
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            self._loop.remove_reader(self._master)
            self._loop.remove_writer(self._master)
        os.close(self._master)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: nobody has the slave open; the fake keeps it open, so rare
            return
        self.write(self.core.feed(data))

    def _flush(self) -> None:
        try:
            written = os.write(self._master, self._pending)
        except BlockingIOError:
            written = 0
        del self._pending[:written]
        if self._loop is None:
            return
        if self._pending:
            self._loop.add_writer(self._master, self._flush)
        else:
            self._loop.remove_writer(self._master)


class FakePort(SerialPort):
    """A :class:`SerialPort` with a :class:`FakeDeviceCore` behind it, no tty involved.

    Use it as the bridge's opener: ``SerialBridge(..., opener=lambda path, baud: FakePort(core))``.
    The device boots when the port is opened, as an Uno does; :meth:`unplug` makes the next
    read fail as a USB unplug does.
    """

    def __init__(self, core: FakeDeviceCore, name: str = "fake", *, boot: bool = True) -> None:
        self.name = name
        self.core = core
        self.written = bytearray()
        self._incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        if boot:
            self._incoming.put_nowait(core.boot())

    async def read(self) -> bytes:
        data = await self._incoming.get()
        if data is None:
            self._incoming.put_nowait(None)
            raise OSError("device unplugged")
        return data

    def write(self, data: bytes) -> bool:
        self.written += data
        answer = self.core.feed(data)
        if answer:
            self._incoming.put_nowait(answer)
        return True

    def send(self, port: int, payload: bytes) -> None:
        """The device sends a message on its own."""
        self._incoming.put_nowait(self.core.send(port, payload))

    def unplug(self) -> None:
        self._incoming.put_nowait(None)

    def close(self) -> None:
        self.unplug()
