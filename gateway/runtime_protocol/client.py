"""A small client for the FBP runtime protocol, for tests, ``msgflo-info`` and the dashboard.

    async with RuntimeClient("ws://127.0.0.1:3569", secret="...") as runtime:
        info = await runtime.request("runtime", "getruntime")

Every message the runtime sends is kept in arrival order; ``request`` sends one message and
waits for the first reply of the expected commands (by default the same protocol and command,
or that protocol's ``error``), so replies and broadcasts never get mixed up.

It runs on aiohttp's client WebSocket, which logs no frames: the secret in each message is never
in a log line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import aiohttp

from gateway.errors import GatewayError

Message = dict[str, Any]

# Connecting and the handshake each get 10 s; once open, the connection has no read timeout.
CONNECT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=10)
PING_INTERVAL = 20.0  # a runtime that does not answer a ping within half of it is gone


class RuntimeClient:
    def __init__(self, address: str, *, secret: str | None = None) -> None:
        self.address = address
        self.secret = secret
        self.received: list[Message] = []
        self._session: aiohttp.ClientSession | None = None
        self._connection: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(timeout=CONNECT_TIMEOUT)
        try:
            self._connection = await self._session.ws_connect(
                self.address,
                protocols=["noflo"],
                max_msg_size=0,  # no limit: a runtime's graph or component list can be big
                compress=0,
                heartbeat=PING_INTERVAL,
            )
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            # ClientError: refused during the handshake (a runtime at its connection limits
            # resets new connections), or not a WebSocket server.
            await self._session.close()
            raise GatewayError(f"cannot connect to {self.address}: {exc}") from None
        except BaseException:
            await self._session.close()  # cancelled: no unclosed session left behind
            raise
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._connection is not None:
            await self._connection.close()
        if self._session is not None:
            await self._session.close()

    async def wait_closed(self) -> None:
        """Until the runtime has closed the connection."""
        if self._reader is not None:
            await asyncio.shield(self._reader)

    async def _read(self) -> None:
        assert self._connection is not None
        async for frame in self._connection:
            if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break  # ERROR: the connection is gone
            self.received.append(json.loads(frame.data))
            self._arrived.set()

    async def send(self, protocol: str, command: str, payload: Message | None = None) -> int:
        """Send a message; returns the index in ``received`` from which replies can come."""
        assert self._connection is not None
        body = dict(payload or {})
        message: Message = {"protocol": protocol, "command": command, "payload": body}
        if self.secret is not None:
            message["secret"] = self.secret
        mark = len(self.received)
        await self._connection.send_str(json.dumps(message))
        return mark

    async def request(
        self,
        protocol: str,
        command: str,
        payload: Message | None = None,
        *,
        expect: Iterable[tuple[str, str]] | None = None,
    ) -> Message:
        """Send and wait for the first matching reply (bound it with ``asyncio.timeout``)."""
        wanted = set(expect or [(protocol, command)]) | {(protocol, "error")}
        mark = await self.send(protocol, command, payload)
        return await self.wait_for(wanted, since=mark)

    async def wait_for(self, wanted: set[tuple[str, str]], *, since: int = 0) -> Message:
        """The first message at or after index ``since`` whose (protocol, command) is wanted."""
        return self.received[await self._index_of(wanted, since)]

    async def _index_of(self, wanted: set[tuple[str, str]], since: int) -> int:
        index = since
        while True:
            while index < len(self.received):
                message = self.received[index]
                if (message.get("protocol"), message.get("command")) in wanted:
                    return index
                index += 1
            self._arrived.clear()
            await self._arrived.wait()

    async def collect(
        self, protocol: str, command: str, payload: Message | None, until: tuple[str, str]
    ) -> list[Message]:
        """Send, then gather every message until one matching ``until`` (included)."""
        mark = await self.send(protocol, command, payload)
        end = await self._index_of({until, (protocol, "error")}, mark)
        return self.received[mark : end + 1]
