"""One connection lifecycle for every transport: connect, back off, replay, announce, close.

A transport supplies what differs between brokers (how to connect, what to set up again on a
new connection, what to tidy when it is lost) and tells :meth:`Lifecycle.lost` when its
connection dies; everything else is here, once:

1. ``connect()``: open the connection and wait until the broker accepted it; an error in
   :data:`CONNECT_ERRORS` counts as a failed attempt, logged in one line, and is retried after
   a capped, jittered backoff.
2. ``replay()``: subscriptions, consumers and declared ports are set up again on the new
   connection, before anyone hears that it is up.
3. The connect listeners are called: participants announce themselves again.
4. Wait until :meth:`Lifecycle.lost`; ``cleanup()``; back off, then 1 again.

A connection that lasted :data:`STABLE_AFTER` seconds resets the backoff, so a broker that
accepts and then drops us at once (a duplicate client id, say) is not hammered.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable

from gateway.broker import BrokerUrl
from gateway.errors import TransportError
from gateway.transport.backoff import Backoff
from gateway.transport.base import ConnectListener, TransportStats

log = logging.getLogger("gateway.transport")

STABLE_AFTER = 10.0  # seconds a connection must last to reset the backoff
CONNECT_ERRORS = (OSError, ssl.SSLError, TransportError, TimeoutError)

Step = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class Lifecycle:
    """The life of one transport's connection; see the module docstring."""

    def __init__(
        self,
        url: BrokerUrl,
        *,
        connect: Step,
        replay: Step = _nothing,
        cleanup: Step = _nothing,
        backoff: Backoff | None = None,
        stats: TransportStats | None = None,
    ) -> None:
        self.url = url
        self.stats = stats or TransportStats()  # the transport's own: counts connects
        self._connect = connect
        self._replay = replay
        self._cleanup = cleanup
        self._backoff = backoff or Backoff()
        self._listeners: list[ConnectListener] = []
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closing = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def add_listener(self, listener: ConnectListener) -> None:
        """Call ``listener`` after each (re)connect, once :meth:`replay` is done."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start connecting in the background."""
        self._task = asyncio.create_task(self._run(), name=f"{self.url.scheme} {self.url}")

    def lost(self) -> None:
        """The connection died (or was refused): called by the transport's I/O callbacks."""
        self._connected.clear()
        self._lost.set()

    async def close(self) -> None:
        """Stop reconnecting and wait for the loop to end; the transport closes its
        connection itself (it knows how to say goodbye)."""
        self.closing = True
        self._connected.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        attempt = 0
        while not self.closing:
            self._lost.clear()
            try:
                await self._connect()
            except CONNECT_ERRORS as exc:
                delay = self._backoff.delay(attempt)
                attempt += 1
                log.warning(
                    "%s: cannot connect to %s: %s; retry in %.1f s",
                    self.url.scheme,
                    self.url,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            started = time.monotonic()
            await self._session()
            if time.monotonic() - started >= STABLE_AFTER:
                attempt = 0
            if not self.closing:
                delay = self._backoff.delay(attempt)
                attempt += 1
                log.warning(
                    "%s: lost connection to %s; reconnect in %.1f s",
                    self.url.scheme,
                    self.url,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        try:
            await self._replay()
        except CONNECT_ERRORS as exc:
            log.warning("%s: cannot set up %s again: %s", self.url.scheme, self.url, exc)
            self.lost()
        if not self._lost.is_set():
            self.stats.connects += 1
            log.info("%s: connected to %s", self.url.scheme, self.url)
            self._connected.set()
            self._tell_listeners()
            await self._lost.wait()
        self._connected.clear()
        await self._cleanup()

    def _tell_listeners(self) -> None:
        # One that fails is logged and does not stop the others.
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("%s: connect listener %r failed", self.url.scheme, listener)
