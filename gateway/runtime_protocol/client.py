"""A small client for the FBP runtime protocol, for tests, ``msgflo-info`` and the dashboard.

    async with RuntimeClient("ws://127.0.0.1:3569", secret="...") as runtime:
        info = await runtime.request("runtime", "getruntime")

Every message the runtime sends is kept in arrival order; ``request`` sends one message and
waits for the first reply of the expected commands (by default the same protocol and command,
or that protocol's ``error``), so replies and broadcasts never get mixed up.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from gateway.errors import GatewayError
from gateway.runtime_protocol.wslog import quiet

Message = dict[str, Any]


class RuntimeClient:
    def __init__(self, address: str, *, secret: str | None = None) -> None:
        self.address = address
        self.secret = secret
        self.received: list[Message] = []
        self._connection: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> Self:
        try:
            self._connection = await connect(
                self.address,
                subprotocols=[Subprotocol("noflo")],
                max_size=None,
                logger=quiet("websockets.client"),  # its DEBUG lines show the secret
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            # WebSocketException: refused during the handshake (a runtime at its connection
            # limits resets new connections).
            raise GatewayError(f"cannot connect to {self.address}: {exc}") from None
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

    async def _read(self) -> None:
        assert self._connection is not None
        async for frame in self._connection:
            self.received.append(json.loads(frame))
            self._arrived.set()

    async def send(self, protocol: str, command: str, payload: Message | None = None) -> int:
        """Send a message; returns the index in ``received`` from which replies can come."""
        assert self._connection is not None
        body = dict(payload or {})
        message: Message = {"protocol": protocol, "command": command, "payload": body}
        if self.secret is not None:
            message["secret"] = self.secret
        mark = len(self.received)
        await self._connection.send(json.dumps(message))
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
