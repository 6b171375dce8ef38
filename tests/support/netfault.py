"""A network that fails on demand: a TCP proxy on loopback whose connections can be cut.

Network namespaces with netem would be the real thing, but these machines' kernels have no
``sch_netem`` ("Specified qdisc kind is unknown"); the proxy does what ``netem loss 100%``
would between one client and the broker, for tests and ``bench/faults.py``.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway.mosquitto import free_port

LOOPBACK = "127.0.0.1"


class Proxy:
    """A TCP proxy on loopback whose connections can be cut or slowed down."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = True
        self._delay = 0.0  # seconds each chunk waits before it is passed on, each way
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        self._close_all()

    async def cut(self, seconds: float) -> None:
        """Drop every connection and refuse new ones for ``seconds``."""
        self._open = False
        self._close_all()
        await asyncio.sleep(seconds)
        self._open = True

    async def slow(self, delay: float, seconds: float) -> None:
        """Hold every chunk ``delay`` seconds before passing it on, for ``seconds``: a slow,
        congested link (what ``netem delay`` would do, but chunk by chunk)."""
        self._delay = delay
        await asyncio.sleep(seconds)
        self._delay = 0.0

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        self._writers |= {writer, up_writer}
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._pipe(reader, up_writer))
            tasks.create_task(self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self._delay:
                    await asyncio.sleep(self._delay)
                if writer not in self._writers:
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
