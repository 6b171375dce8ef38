"""Serial ports for the bridge: a small ABC and the termios driver behind it.

Raw termios on a non-blocking file descriptor, watched with ``loop.add_reader``/``add_writer``,
instead of pyserial: the bridge needs only open, raw 8N1 at a baud rate, read and write, all of
which the standard library does, and the fd plugs straight into the event loop, so no thread
and no new dependency. pyserial's blocking ``read`` would need a thread per device.
"""

from __future__ import annotations

import abc
import asyncio
import os
import termios
from collections.abc import Callable

READ_CHUNK = 4096
MAX_PENDING = 4096  # bytes the bridge holds for a device that does not read (then drops)
MAX_RECEIVED = 65536  # bytes read ahead of the session before reading pauses


class SerialPort(abc.ABC):
    """One open serial device."""

    name: str

    @abc.abstractmethod
    async def read(self) -> bytes:
        """The next bytes; raises :class:`OSError` when the device is gone (EIO, EOF)."""

    @abc.abstractmethod
    def write(self, data: bytes) -> bool:
        """Queue ``data`` and return at once; ``False`` if dropped because the device is not
        reading and too much is already waiting for it."""

    @abc.abstractmethod
    def close(self) -> None: ...


PortOpener = Callable[[str, int], SerialPort]


def _configure(fd: int, baud: int) -> None:
    speed = getattr(termios, f"B{baud}", None)
    if speed is None:
        os.close(fd)
        raise ValueError(f"unsupported baud rate {baud}")
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP)
    iflag &= ~(termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB | termios.CRTSCTS)
    cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    # TCSANOW, not TCSAFLUSH: a hello that is already waiting must not be thrown away.
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])


class TtyPort(SerialPort):
    """A tty opened non-blocking, raw 8N1, read and written through the event loop."""

    def __init__(self, fd: int, name: str, max_pending: int = MAX_PENDING) -> None:
        self.name = name
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._pending = bytearray()
        self._max_pending = max_pending
        self._closed = False
        # The fd stays registered while the port is open: re-registering it for every read
        # cost two epoll_ctl calls and a future per read, at a read per USB frame (1 ms).
        self._received = bytearray()
        self._error: OSError | None = None
        self._arrived = asyncio.Event()
        self._reading = False
        self._watch()

    @classmethod
    def open(cls, path: str, baud: int) -> TtyPort:
        """Open ``path`` (raises OSError, or ValueError for a baud rate termios lacks)."""
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            _configure(fd, baud)
        except termios.error as error:
            os.close(fd)
            raise OSError(f"{path}: not a tty ({error})") from None
        return cls(fd, path)

    async def read(self) -> bytes:
        while not self._received:
            if self._error is not None:
                raise self._error
            self._arrived.clear()
            await self._arrived.wait()
        data = bytes(self._received)
        self._received.clear()
        self._watch()  # reading again if a backlog had paused it
        return data

    def _watch(self) -> None:
        if not self._reading and not self._closed and self._error is None:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _unwatch(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as error:  # EIO: the device is gone
            data, self._error = b"", error
        if not data and self._error is None:
            self._error = OSError("end of file (device gone)")
        self._received += data
        if self._error is not None or len(self._received) >= MAX_RECEIVED:
            self._unwatch()  # gone, or the session is behind: the kernel buffers meanwhile
        self._arrived.set()

    def write(self, data: bytes) -> bool:
        if self._closed:
            return False
        if len(self._pending) + len(data) > self._max_pending:
            return False
        was_waiting = bool(self._pending)
        self._pending += data
        if not was_waiting:
            self._flush()
        return True

    def _flush(self) -> None:
        try:
            written = os.write(self._fd, self._pending)
        except BlockingIOError:
            written = 0
        except OSError:  # the device is gone: the reader finds out and ends the session
            written = len(self._pending)
        del self._pending[:written]
        if self._pending:
            self._loop.add_writer(self._fd, self._flush)
        else:
            self._loop.remove_writer(self._fd)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._unwatch()
        self._loop.remove_writer(self._fd)
        os.close(self._fd)
