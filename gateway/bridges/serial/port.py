"""Serial ports for the bridge: a small ABC and the pyserial driver behind it.

pyserial opens the port (``serial.Serial(path, baud, timeout=0, exclusive=True)``): it sets raw
8N1 and the baud rate (standard or not), takes an exclusive lock so that two bridges, or a
bridge and a terminal, never share a board, and raises the DTR line that resets an Uno. The
bytes then go through its file descriptor, watched with the event loop's ``add_reader`` and
``add_writer``: no thread per device, and a port never blocks the loop. Reading and writing the
descriptor directly rather than through ``Serial.read``/``write``: those ``select()`` again on
each call, and ``write`` blocks until everything is written.

pyserial's open discards what the tty received before it (``reset_input_buffer``); the
bridge's does not (:class:`_KeepingInput`): a hello that is already waiting is the quickest
way to the device's description (without it the session waits ``hello_timeout``, then asks).
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Callable
from typing import Any

import serial  # type: ignore[import-untyped]

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


class _KeepingInput(serial.Serial):  # type: ignore[misc]
    """pyserial's port without the flush of the input at open (see the module docstring)."""

    def _reset_input_buffer(self) -> None:
        pass


class TtyPort(SerialPort):
    """A tty opened by pyserial, non-blocking and exclusive, read and written through the
    event loop."""

    def __init__(self, serial: Any, name: str, max_pending: int = MAX_PENDING) -> None:
        self.name = name
        self._serial = serial  # a serial.Serial (pyserial has no type information)
        self._fd: int = serial.fileno()
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
        """Open ``path`` (raises OSError: missing, busy, not a tty; ValueError: a baud rate
        the system cannot set)."""
        # serial.SerialException is an OSError; pyserial raises ValueError for a bad baud rate.
        port = _KeepingInput(path, baud, timeout=0, exclusive=True)
        return cls(port, path)

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
        self._serial.close()
