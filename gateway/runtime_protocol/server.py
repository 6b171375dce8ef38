"""The runtime protocol's server: WebSocket (sub-protocol ``noflo``) and HTTP on one port.

A thin driver around the protocol core: it accepts connections, hands each text frame to the
core, and delivers what the core sends. Every client has a bounded send queue drained by its own
writer task, so a slow or dead client never blocks the coordinator or the other clients: a
client whose queue overflows is dropped with a log line. A plain HTTP GET shows what runtime
this is and how to connect.

It binds to the given host (the coordinator's default is 127.0.0.1) and refuses to listen beyond
loopback without a secret.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import itertools
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.errors import GatewayError
from gateway.runtime_protocol.core import BROADCAST, Broadcast

__all__ = ["BROADCAST", "RuntimeServer", "ServerInfo"]

log = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("noflo")
SEND_QUEUE = 1000  # messages waiting for one client before it is dropped as too slow
MAX_FRAME = 4 * 1024 * 1024


class ProtocolHandler(Protocol):
    """What the server needs from the protocol core."""

    def connected(self, client: str) -> None: ...

    def disconnected(self, client: str) -> None: ...

    def handle(self, client: str, text: str) -> Awaitable[None]:
        """Answer one frame; must never wait for the live system (the core queues changes)."""
        ...


@dataclass(frozen=True)
class ServerInfo:
    """What the HTTP page says."""

    runtime_id: str
    label: str = "msgflo-gateway"
    ide: str = "https://app.flowhub.io"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Client:
    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.queue: asyncio.Queue[str] = asyncio.Queue(SEND_QUEUE)
        self.dropped = False


class RuntimeServer:
    """Serves ``handler`` on ``host:port``; ``send`` is what the core calls to reply."""

    def __init__(
        self, host: str, port: int, info: ServerInfo, *, secret: str | None = None
    ) -> None:
        if not is_loopback(host) and not secret:
            raise GatewayError(
                f"refusing to serve the runtime protocol on {host} without a secret "
                "(--secret or $MSGFLO_SECRET); without one it only listens on loopback"
            )
        self.host, self.port, self.info = host, port, info
        self.handler: ProtocolHandler | None = None
        self._clients: dict[str, _Client] = {}
        self._ids = (str(n) for n in itertools.count(1))
        self._server: Server | None = None
        self._last_message: dict[str, Any] | None = None
        self._last_text = ""
        self.ready = asyncio.Event()

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    async def serve(self, handler: ProtocolHandler) -> None:
        """Serve until cancelled."""
        self.handler = handler
        async with serve(
            self._connection,
            self.host,
            self.port,
            subprotocols=[SUBPROTOCOL],
            select_subprotocol=_select_subprotocol,
            process_request=self._http,
            max_size=MAX_FRAME,
            compression=None,
        ) as server:
            self._server = server
            if self.port == 0:  # tests ask for any free port
                self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await server.serve_forever()

    def send(self, target: str | Broadcast, message: dict[str, Any]) -> None:
        """Queue ``message`` for one client, or for all with :data:`BROADCAST`."""
        # The core fans one event out to each authorized client with the same dict object:
        # encode it once, not once per client.
        if message is not self._last_message:
            self._last_message, self._last_text = message, json.dumps(message)
        text = self._last_text
        targets = list(self._clients) if isinstance(target, Broadcast) else [target]
        for client_id in targets:
            client = self._clients.get(client_id)
            if client is None or client.dropped:
                continue
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(client_id, client)

    def clients(self) -> list[str]:
        return list(self._clients)

    # -- connections ---------------------------------------------------------------------------

    async def _connection(self, connection: ServerConnection) -> None:
        assert self.handler is not None
        client_id = next(self._ids)
        client = _Client(connection)
        self._clients[client_id] = client
        log.info(
            "runtime protocol: client %s connected from %s", client_id, connection.remote_address
        )
        self.handler.connected(client_id)
        try:
            async with asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(self._write(client))
                await self._read(client_id, connection)
                writer.cancel()
        except* ConnectionClosed:
            pass  # a client going away, cleanly or not, is not an error
        finally:
            self._clients.pop(client_id, None)
            self.handler.disconnected(client_id)
            log.info("runtime protocol: client %s disconnected", client_id)

    async def _read(self, client_id: str, connection: ServerConnection) -> None:
        assert self.handler is not None
        async for frame in connection:
            text = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
            # Handled in order and inline: the core never waits for the live system (it
            # queues changes and answers them later), so reading never stalls.
            try:
                await self.handler.handle(client_id, text)
            except Exception:
                log.exception("runtime protocol: a message from client %s failed", client_id)

    async def _write(self, client: _Client) -> None:
        while True:
            text = await client.queue.get()
            await client.connection.send(text)

    def _drop(self, client_id: str, client: _Client) -> None:
        client.dropped = True
        log.warning(
            "runtime protocol: client %s does not keep up (%d messages waiting); dropping it",
            client_id,
            client.queue.qsize(),
        )
        client.connection.transport.abort()  # no closing handshake: it is not reading

    # -- HTTP ----------------------------------------------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        return connection.respond(HTTPStatus.OK, self._page())

    def _page(self) -> str:
        address = self.address
        flowhub = f"{self.info.ide}#runtime/endpoint?" + quote(
            f"protocol=websocket&address={address}&id={self.info.runtime_id}", safe=""
        )
        return (
            f"{self.info.label}: msgflo FBP runtime\n"
            f"runtime id: {self.info.runtime_id}\n"
            f"connect a websocket client to {address} with sub-protocol noflo\n"
            f"Flowhub: {html.escape(flowhub)}\n"
        )


def _select_subprotocol(connection: ServerConnection, offered: Any) -> Subprotocol | None:
    # Clients that offer no sub-protocol are served too (some tools omit it).
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
