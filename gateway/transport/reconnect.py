"""The reconnect loop every transport runs: connect, stay connected, back off, again.

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

log = logging.getLogger("gateway.transport")

STABLE_AFTER = 10.0  # seconds a connection must last to reset the backoff
CONNECT_ERRORS = (OSError, ssl.SSLError, TransportError, TimeoutError)


async def keep_connected(
    url: BrokerUrl,
    backoff: Backoff,
    connect: Callable[[], Awaitable[None]],
    stay_connected: Callable[[], Awaitable[None]],
    closing: Callable[[], bool],
) -> None:
    """Until ``closing()``: ``connect()`` (raising on failure), then ``stay_connected()``
    (returning when the connection is lost), with one warning per failed attempt or loss."""
    attempt = 0
    while not closing():
        try:
            await connect()
        except CONNECT_ERRORS as exc:
            delay = backoff.delay(attempt)
            attempt += 1
            log.warning(
                "%s: cannot connect to %s: %s; retry in %.1f s", url.scheme, url, exc, delay
            )
            await asyncio.sleep(delay)
            continue
        started = time.monotonic()
        await stay_connected()
        if time.monotonic() - started >= STABLE_AFTER:
            attempt = 0
        if not closing():
            delay = backoff.delay(attempt)
            attempt += 1
            log.warning("%s: lost connection to %s; reconnect in %.1f s", url.scheme, url, delay)
            await asyncio.sleep(delay)
