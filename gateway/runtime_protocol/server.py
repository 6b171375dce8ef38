"""The runtime protocol's server: WebSocket (sub-protocol ``noflo``) and HTTP on one port.

A thin driver around the protocol core: it accepts connections, hands each text frame to the
core, and delivers what the core sends. Every client has a bounded send queue drained by its own
writer task, so a slow or dead client never blocks the coordinator or the other clients: a
client whose queue overflows is dropped with a log line. A plain HTTP GET shows what runtime
this is and how to connect.

It binds to the given host (the coordinator's default is 127.0.0.1) and refuses to listen beyond
loopback without a secret.

Connections are limited (:class:`~gateway.runtime_protocol.limits.ConnectionLimits`): at most 64
open, at most 16 from one address, and each must send an authenticated message within 10 s of
being accepted (the WebSocket handshake included) or it is closed. The server accepts
connections itself (:class:`_Listener`), so that a connection beyond the limits is closed at
once, before anything is allocated for it, and so that running out of file descriptors
(``EMFILE``) refuses the connection and costs one log line per interval, not a traceback per
attempt (asyncio's own accept loop logs one per attempt, many times a second). Refusals and
timeouts are logged through :class:`~gateway.runtime_protocol.limits.ThrottledLog`.

websockets logs every frame at DEBUG, the secret included, and a line per connection at INFO:
it gets a logger that passes on warnings and errors only (:mod:`~gateway.runtime_protocol.wslog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import ipaddress
import itertools
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from gateway.errors import GatewayError
from gateway.runtime_protocol.core import BROADCAST, Broadcast
from gateway.runtime_protocol.limits import ConnectionGate, ConnectionLimits, ThrottledLog
from gateway.runtime_protocol.wslog import quiet

__all__ = ["BROADCAST", "ConnectionLimits", "RuntimeServer", "ServerInfo"]

log = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("noflo")
SEND_QUEUE = 1000  # messages waiting for one client before it is dropped as too slow
MAX_FRAME = 4 * 1024 * 1024
BACKLOG = 128
ACCEPT_BATCH = 64  # connections refused in one go before other work gets a turn
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class ProtocolHandler(Protocol):
    """What the server needs from the protocol core."""

    def connected(self, client: str, peer: str) -> None:
        """A client connected from address ``peer``."""
        ...

    def disconnected(self, client: str) -> None: ...

    def authenticated(self, client: str) -> bool:
        """Whether the client sent a message that passed the secret check."""
        ...

    def handle(self, client: str, text: str) -> Awaitable[None]:
        """Answer one frame; must never wait for the live system (the core queues changes)."""
        ...


WEBSOCKETS_LOG = quiet("websockets.server")  # never its frames: they carry the secret


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
    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.queue: asyncio.Queue[str] = asyncio.Queue(SEND_QUEUE)
        self.dropped = False


def _host(address: Any) -> str:
    """The address part of a socket address (``('127.0.0.1', 5555)`` → ``127.0.0.1``)."""
    if isinstance(address, tuple | list) and address:
        return str(address[0])
    return str(address or "unknown")


def _reset(connection: socket.socket) -> None:
    """Close a refused connection with a reset: nothing lingers on our side."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def _reserve() -> int | None:
    """A spare file descriptor, given up to refuse a connection when there are no others."""
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


class _Doorman:
    """Decides, as each connection is accepted, whether it may stay (see the module docs)."""

    def __init__(self, limits: ConnectionLimits, throttled: ThrottledLog) -> None:
        self.gate = ConnectionGate(limits)
        self._log = throttled
        self._spare = _reserve()

    def accept(self, accept: Callable[[], tuple[socket.socket, Any]]) -> tuple[socket.socket, Any]:
        for _ in range(ACCEPT_BATCH):
            try:
                connection, address = accept()  # BlockingIOError when nobody is waiting
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                if not self._refuse_without_resources(exc, accept):
                    raise BlockingIOError from None  # asyncio tries again on its next turn
                continue
            peer = _host(address)
            refusal = self.gate.refusal(peer)
            if refusal is None:
                self.gate.opened(connection.fileno(), peer)
                return connection, address
            _reset(connection)
            self._log.event(
                "refused", f"runtime protocol: refused a connection from {peer}: {refusal}"
            )
        raise BlockingIOError  # others get a turn; the rest are accepted on the next one

    def _refuse_without_resources(
        self, exc: OSError, accept: Callable[[], tuple[socket.socket, Any]]
    ) -> bool:
        """Accept and reset one waiting connection with the spare descriptor; False if none."""
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        self._log.event(
            "resources",
            f"runtime protocol: cannot accept connections ({code}: {os.strerror(exc.errno or 0)}); "
            "refusing them",
            logging.ERROR,
        )
        if self._spare is None:
            self._spare = _reserve()
            return False
        os.close(self._spare)
        self._spare = None
        try:
            connection, _ = accept()
        except OSError:
            return False
        else:
            _reset(connection)
            return True
        finally:
            self._spare = _reserve()

    def close(self) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None


class _Listener(socket.socket):
    """A listening socket whose ``accept`` asks the doorman (asyncio calls it)."""

    def __init__(self, bound: socket.socket, doorman: _Doorman) -> None:
        super().__init__(bound.family, bound.type, bound.proto, fileno=bound.detach())
        self.doorman = doorman

    def accept(self) -> tuple[socket.socket, Any]:
        return self.doorman.accept(super().accept)


class _Connection(ServerConnection):
    """A connection that counts itself in the doorman's gate and is closed if it stays idle;
    ``owner`` is set on a subclass per server."""

    owner: RuntimeServer
    key: int = -1
    peer = "unknown"
    authenticated = False
    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.owner._opened(self, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._closed(self)
        super().connection_lost(exc)


class RuntimeServer:
    """Serves ``handler`` on ``host:port``; ``send`` is what the core calls to reply."""

    def __init__(
        self,
        host: str,
        port: int,
        info: ServerInfo,
        *,
        secret: str | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        if not is_loopback(host) and not secret:
            raise GatewayError(
                f"refusing to serve the runtime protocol on {host} without a secret "
                "(--secret or $MSGFLO_SECRET); without one it only listens on loopback"
            )
        self.host, self.port, self.info = host, port, info
        self.limits = limits or ConnectionLimits()
        self.handler: ProtocolHandler | None = None
        self._clients: dict[str, _Client] = {}
        self._ids = (str(n) for n in itertools.count(1))
        self._throttled = ThrottledLog(log)
        self._doorman: _Doorman | None = None
        self._last_message: dict[str, Any] | None = None
        self._last_text = ""
        self.ready = asyncio.Event()

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def open_connections(self) -> int:
        """Connections counted against the limits (accepted and not yet closed)."""
        return len(self._doorman.gate) if self._doorman is not None else 0

    async def serve(self, handler: ProtocolHandler) -> None:
        """Serve until cancelled."""
        self.handler = handler
        doorman = self._doorman = _Doorman(self.limits, self._throttled)
        connection_class: type[_Connection] = type("_Connection", (_Connection,), {"owner": self})
        try:
            async with contextlib.AsyncExitStack() as stack:
                for listener in self._listen(doorman):
                    stack.callback(listener.close)  # if serve() below never took it over
                    server = await stack.enter_async_context(
                        serve(
                            self._connection,
                            sock=listener,
                            subprotocols=[SUBPROTOCOL],
                            select_subprotocol=_select_subprotocol,
                            process_request=self._http,
                            max_size=MAX_FRAME,
                            compression=None,
                            open_timeout=self.limits.idle_timeout,
                            create_connection=connection_class,
                            logger=WEBSOCKETS_LOG,
                        )
                    )
                log.info("runtime protocol: listening on %s", self.address)
                self.ready.set()
                await server.serve_forever()
        finally:
            doorman.close()

    def _listen(self, doorman: _Doorman) -> list[_Listener]:
        """Bound listening sockets for every address of ``host`` (one port for all)."""
        found = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        listeners: list[_Listener] = []
        try:
            for family, address in dict.fromkeys((f[0], f[4]) for f in found):
                # With port 0 the other addresses take the port the first one got.
                where = (address[0], self.port, *address[2:]) if listeners else address
                bound = socket.create_server(where, family=family, backlog=BACKLOG)
                listeners.append(_Listener(bound, doorman))
                self.port = listeners[0].getsockname()[1]
        except BaseException:
            for listener in listeners:
                listener.close()
            raise
        return listeners

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

    def _opened(self, connection: _Connection, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        connection.key = sock.fileno() if sock is not None else -1
        connection.peer = _host(transport.get_extra_info("peername"))
        loop = asyncio.get_running_loop()
        connection.deadline = loop.call_later(self.limits.idle_timeout, self._idle, connection)

    def _closed(self, connection: _Connection) -> None:
        if connection.deadline is not None:
            connection.deadline.cancel()
        if self._doorman is not None:
            self._doorman.gate.closed(connection.key)

    def _idle(self, connection: _Connection) -> None:
        if connection.authenticated:
            return
        if connection.protocol.state is State.CONNECTING:
            what = "no WebSocket handshake"
        else:
            what = "no authenticated message"
        self._throttled.event(
            "idle",
            f"runtime protocol: closed a connection from {connection.peer}: {what} "
            f"within {self.limits.idle_timeout:g} s",
        )
        connection.transport.abort()

    async def _connection(self, connection: ServerConnection) -> None:
        assert self.handler is not None and isinstance(connection, _Connection)
        client_id = next(self._ids)
        client = _Client(connection)
        self._clients[client_id] = client
        log.debug("runtime protocol: client %s connected from %s", client_id, connection.peer)
        self.handler.connected(client_id, connection.peer)
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
            level = logging.INFO if connection.authenticated else logging.DEBUG
            log.log(level, "runtime protocol: client %s disconnected", client_id)

    async def _read(self, client_id: str, connection: _Connection) -> None:
        assert self.handler is not None
        async for frame in connection:
            text = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
            # Handled in order and inline: the core never waits for the live system (it
            # queues changes and answers them later), so reading never stalls.
            try:
                await self.handler.handle(client_id, text)
            except Exception:
                log.exception("runtime protocol: a message from client %s failed", client_id)
            if not connection.authenticated and self.handler.authenticated(client_id):
                connection.authenticated = True
                if connection.deadline is not None:
                    connection.deadline.cancel()
                log.info(
                    "runtime protocol: client %s connected from %s",
                    client_id,
                    connection.remote_address,
                )

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
