"""The runtime protocol's server: WebSocket (sub-protocol ``noflo``) and HTTP on one port, on
aiohttp.

A thin driver around the protocol core: it accepts connections, hands each text frame to the
core, and delivers what the core sends. Every client has a bounded send queue drained by its own
writer task, so a slow or dead client never blocks the coordinator or the other clients: a
client whose queue overflows is dropped with a log line.

One aiohttp application serves the port. A WebSocket upgrade request on any path is a protocol
client (a middleware takes it before routing); ``noflo`` is selected when offered, and clients
that offer no sub-protocol are served too. Other HTTP requests go to the routes of the
:class:`HttpRoutes` given to the server (the dashboard), whose ``authorized(request)`` checks
``Authorization: Bearer <secret>`` with the same per-address back-off as the protocol core when
both share one :class:`~gateway.runtime_protocol.limits.AuthThrottle`. A plain HTTP GET shows
what runtime this is and how to connect: on any path without routes, at ``/runtime`` with them.

It binds to the given host (the coordinator's default is 127.0.0.1) and refuses to listen beyond
loopback without a secret. It also serves listening sockets bound by someone else (``sockets``:
systemd's socket activation gives the appliance's coordinator port 80 without the privilege to
bind it), through the same doorman and the same rule about the secret.

Connections are limited (:class:`~gateway.runtime_protocol.limits.ConnectionLimits`): at most 64
open, at most 16 from one address, and each must, within 10 s of being accepted, send an
authenticated protocol message (the WebSocket handshake included) or make an HTTP request that
``authorized`` accepted, or it is closed. The server accepts connections itself
(:class:`_Listener`, in its own accept loop on any event loop, uvloop too), so that a
connection beyond the limits is closed at once, before anything is allocated for it, and so
that running out of file descriptors (``EMFILE``) refuses the connection and costs one log line
per interval, not a traceback per attempt (asyncio's own accept loop logs one per attempt, many
times a second). Refusals and timeouts are logged through
:class:`~gateway.runtime_protocol.limits.ThrottledLog`.

aiohttp logs no frames; its access log and error log are replaced
(:mod:`~gateway.runtime_protocol.http_server`) so that neither shows a header, a query or the
text of a malformed request, where a secret could be.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import html
import ipaddress
import itertools
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import WSCloseCode, WSMsgType, hdrs, web

from gateway.errors import GatewayError
from gateway.runtime_protocol.core import BROADCAST, Broadcast
from gateway.runtime_protocol.http_server import AccessLog, ErrorLog, Runner
from gateway.runtime_protocol.limits import (
    AuthThrottle,
    ConnectionGate,
    ConnectionLimits,
    ThrottledLog,
)

__all__ = ["BROADCAST", "ConnectionLimits", "HttpRoutes", "RuntimeServer", "ServerInfo"]

log = logging.getLogger(__name__)

SUBPROTOCOL = "noflo"
SEND_QUEUE = 1000  # messages waiting for one client before it is dropped as too slow
MAX_FRAME = 4 * 1024 * 1024
PING_INTERVAL = 20.0  # a client that does not answer a ping within half of it is closed
CLOSE_TIMEOUT = 5.0  # seconds a client gets to answer our closing handshake
SHUTDOWN_TIMEOUT = 5.0  # seconds HTTP handlers get to finish when the server stops
BACKLOG = 128
ACCEPT_BATCH = 64  # connections refused in one go before other work gets a turn
RETRY_ACCEPT = 0.5  # seconds before accepting again when no descriptor is left at all
PAGE_PATH = "/runtime"  # the text page, when HttpRoutes own the other paths
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


class HttpRoutes(Protocol):
    """More HTTP on the runtime's port (the dashboard).

    WebSocket upgrades on every path stay the runtime protocol's. A connection that has neither
    made a request that ``authorized`` accepted nor authenticated as a protocol client is closed
    ``idle_timeout`` seconds (10) after it was accepted, as an idle keep-alive connection may
    be: long-lived responses (streams) must check ``authorized``.
    """

    def setup(self, app: web.Application, authorized: Callable[[web.Request], bool]) -> None:
        """Add routes to the server's application; ``authorized(request)`` tells whether the
        request carries the runtime's secret (``Authorization: Bearer <secret>``, compared in
        constant time, with the protocol's wrong-secret back-off per address; always True when
        the runtime has no secret)."""
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


@dataclass(eq=False)
class _Connection:
    """One accepted connection, as counted against the limits."""

    transport: asyncio.Transport
    key: int
    peer: str
    deadline: asyncio.TimerHandle | None = None
    upgraded: bool = False  # a WebSocket handshake was completed
    requested: bool = False  # it made a plain HTTP request
    authenticated: bool = False


class _Client:
    def __init__(self, ws: web.WebSocketResponse, connection: _Connection) -> None:
        self.ws = ws
        self.connection = connection
        self.queue: asyncio.Queue[str] = asyncio.Queue(SEND_QUEUE)
        self.dropped = False


def _host(address: Any) -> str:
    """The address part of a socket address (``('127.0.0.1', 5555)`` → ``127.0.0.1``)."""
    if isinstance(address, tuple | list) and address:
        return str(address[0])
    return str(address or "unknown")


def _name(bound: socket.socket) -> str:
    """``host:port`` of a bound socket, for the log."""
    address = bound.getsockname()
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)


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


def _bearer(request: web.BaseRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>``, if the request has one."""
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _subprotocols(request: web.BaseRequest) -> tuple[str, ...]:
    """``noflo`` when the client offers it; nothing otherwise, so that aiohttp neither refuses
    the client nor logs a warning per connection about sub-protocols that do not match."""
    offered = request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "")
    return (SUBPROTOCOL,) if SUBPROTOCOL in (p.strip() for p in offered.split(",")) else ()


class _OutOfDescriptorsError(BlockingIOError):
    """No descriptor to accept a connection with, not even the spare: try again later."""


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
                    raise _OutOfDescriptorsError from None
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
    """A listening socket whose ``accept`` asks the doorman (:func:`_accepting` calls it)."""

    def __init__(self, bound: socket.socket, doorman: _Doorman) -> None:
        super().__init__(bound.family, bound.type, bound.proto, fileno=bound.detach())
        self.doorman = doorman

    def accept(self) -> tuple[socket.socket, Any]:
        return self.doorman.accept(super().accept)


@contextlib.contextmanager
def _accepting(listener: _Listener, server: web.Server, throttled: ThrottledLog) -> Iterator[None]:
    """Accept connections on ``listener`` (through its doorman) and hand them to ``server``.

    The server's own accept loop, not the event loop's: uvloop accepts in libuv without calling
    the listener's ``accept``, which would bypass the doorman and its limits.
    """
    loop = asyncio.get_running_loop()
    handshakes: set[asyncio.Task[Any]] = set()

    def ready() -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                connection, _ = listener.accept()
            except _OutOfDescriptorsError:
                # The backlog stays readable: wait instead of spinning on it.
                loop.remove_reader(listener.fileno())
                loop.call_later(RETRY_ACCEPT, loop.add_reader, listener.fileno(), ready)
                return
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while it waited in the backlog
            except OSError as exc:
                throttled.event("accept", f"runtime protocol: cannot accept a connection: {exc}")
                return
            connection.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(server, connection))
            handshakes.add(task)
            task.add_done_callback(handshakes.discard)

    listener.setblocking(False)
    loop.add_reader(listener.fileno(), ready)
    try:
        yield
    finally:
        loop.remove_reader(listener.fileno())
        listener.close()
        for task in handshakes:
            task.cancel()


class RuntimeServer:
    """Serves ``handler`` on ``host:port``; ``send`` is what the core calls to reply.

    ``auth`` is the wrong-secret back-off of ``http``'s ``authorized``: give it the protocol
    core's so that guesses over HTTP and over the protocol count together. ``sockets`` are
    listening sockets bound already, served like ``host:port``; the caller keeps them (the
    server serves duplicates and closes those when it stops).
    """

    def __init__(
        self,
        host: str,
        port: int,
        info: ServerInfo,
        *,
        secret: str | None = None,
        limits: ConnectionLimits | None = None,
        auth: AuthThrottle | None = None,
        http: HttpRoutes | None = None,
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        hosts = [host, *(_host(bound.getsockname()) for bound in sockets)]
        beyond = next((where for where in hosts if not is_loopback(where)), None)
        if beyond is not None and not secret:
            raise GatewayError(
                f"refusing to serve the runtime protocol on {beyond} without a secret "
                "(--secret or $MSGFLO_SECRET); without one it only listens on loopback"
            )
        self.host, self.port, self.info = host, port, info
        self.limits = limits or ConnectionLimits()
        self.handler: ProtocolHandler | None = None
        self._secret = None if secret is None else secret.encode("utf-8", "surrogatepass")
        self._auth = auth or AuthThrottle()
        self._http = http
        self._sockets = tuple(sockets)
        self._clients: dict[str, _Client] = {}
        self._connections: dict[object, _Connection] = {}  # aiohttp's handler -> connection
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
        runner = Runner(
            self._application(),
            self,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            logger=ErrorLog(log, self._throttled),
            access_log=log,
            access_log_class=AccessLog,
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                listeners = self._listen(doorman)
                for listener in listeners:
                    stack.callback(listener.close)  # if setting up fails before it is served
                await runner.setup()
                stack.push_async_callback(runner.cleanup)
                assert runner.server is not None
                for listener in listeners:
                    stack.enter_context(_accepting(listener, runner.server, self._throttled))
                log.info("runtime protocol: listening on %s", self.address)
                for bound in self._sockets:
                    log.info("runtime protocol: also listening on %s", _name(bound))
                self.ready.set()
                await asyncio.Future()  # until cancelled
        finally:
            doorman.close()

    def _application(self) -> web.Application:
        app = web.Application(middlewares=[self._upgrades])
        app.on_shutdown.append(self._close_clients)
        if self._http is None:
            app.router.add_get("/{path:.*}", self._page)
        else:
            self._http.setup(app, self.authorized)  # first: its routes take precedence
            app.router.add_get(PAGE_PATH, self._page)
        return app

    def _listen(self, doorman: _Doorman) -> list[_Listener]:
        """Bound listening sockets for every address of ``host`` (one port for all), and for
        the ``sockets`` given."""
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
            # Duplicates: a listener detaches the socket it wraps, and closes it when it stops.
            listeners.extend(_Listener(given.dup(), doorman) for given in self._sockets)
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

    # -- connections (aiohttp's Runner reports them) --------------------------------------------

    def opened(self, handler: object, transport: asyncio.Transport) -> None:
        sock = transport.get_extra_info("socket")
        connection = _Connection(
            transport,
            key=sock.fileno() if sock is not None else -1,
            peer=_host(transport.get_extra_info("peername")),
        )
        loop = asyncio.get_running_loop()
        connection.deadline = loop.call_later(self.limits.idle_timeout, self._idle, connection)
        self._connections[handler] = connection

    def closed(self, handler: object) -> None:
        connection = self._connections.pop(handler, None)
        if connection is None:
            return
        if connection.deadline is not None:
            connection.deadline.cancel()
        if self._doorman is not None:
            self._doorman.gate.closed(connection.key)

    def _connection(self, request: web.BaseRequest) -> _Connection:
        found = self._connections.get(request.protocol)
        if found is None:
            # Closed while the request waited to be handled; aiohttp ends it quietly.
            raise ConnectionResetError("the connection is closed")
        return found

    def _authenticated(self, connection: _Connection) -> None:
        connection.authenticated = True
        if connection.deadline is not None:
            connection.deadline.cancel()

    def _idle(self, connection: _Connection) -> None:
        if connection.authenticated:
            return
        if connection.upgraded:
            what = "no authenticated message"
        elif connection.requested:
            # An HTTP keep-alive connection that only fetched public pages: closing it is
            # ordinary HTTP (a browser opens another), not worth a warning.
            log.debug("runtime protocol: closed an idle HTTP connection from %s", connection.peer)
            connection.transport.abort()
            return
        else:
            what = "no WebSocket handshake"
        self._throttled.event(
            "idle",
            f"runtime protocol: closed a connection from {connection.peer}: {what} "
            f"within {self.limits.idle_timeout:g} s",
        )
        connection.transport.abort()

    # -- the runtime protocol --------------------------------------------------------------------

    @web.middleware
    async def _upgrades(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Middleware: a WebSocket upgrade on any path is a protocol client."""
        if request.headers.get(hdrs.UPGRADE, "").strip().lower() == "websocket":
            return await self._websocket(request)
        self._connection(request).requested = True
        return await handler(request)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        assert self.handler is not None
        connection = self._connection(request)
        ws = web.WebSocketResponse(
            protocols=_subprotocols(request),
            max_msg_size=MAX_FRAME,
            compress=False,
            heartbeat=PING_INTERVAL,
            timeout=CLOSE_TIMEOUT,
        )
        await ws.prepare(request)
        connection.upgraded = True
        client_id = next(self._ids)
        client = _Client(ws, connection)
        self._clients[client_id] = client
        log.debug("runtime protocol: client %s connected from %s", client_id, connection.peer)
        self.handler.connected(client_id, connection.peer)
        try:
            async with asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(self._write(client))
                await self._read(client_id, client)
                writer.cancel()
        except* ConnectionError:
            pass  # a client going away, cleanly or not, is not an error
        finally:
            self._clients.pop(client_id, None)
            self.handler.disconnected(client_id)
            level = logging.INFO if connection.authenticated else logging.DEBUG
            log.log(level, "runtime protocol: client %s disconnected", client_id)
        return ws

    async def _read(self, client_id: str, client: _Client) -> None:
        assert self.handler is not None
        connection = client.connection
        async for frame in client.ws:
            if frame.type is WSMsgType.TEXT:
                text: str = frame.data
            elif frame.type is WSMsgType.BINARY:
                text = frame.data.decode("utf-8", errors="replace")
            else:
                return  # ERROR: aiohttp has closed the connection (a frame too big...)
            # Handled in order and inline: the core never waits for the live system (it
            # queues changes and answers them later), so reading never stalls.
            try:
                await self.handler.handle(client_id, text)
            except Exception:
                log.exception("runtime protocol: a message from client %s failed", client_id)
            if not connection.authenticated and self.handler.authenticated(client_id):
                self._authenticated(connection)
                log.info(
                    "runtime protocol: client %s connected from %s", client_id, connection.peer
                )

    async def _write(self, client: _Client) -> None:
        while True:
            text = await client.queue.get()
            await client.ws.send_str(text)

    def _drop(self, client_id: str, client: _Client) -> None:
        client.dropped = True
        log.warning(
            "runtime protocol: client %s does not keep up (%d messages waiting); dropping it",
            client_id,
            client.queue.qsize(),
        )
        client.connection.transport.abort()  # no closing handshake: it is not reading

    async def _close_clients(self, _: web.Application) -> None:
        """On shutdown: the closing handshake with every client, all at once."""
        closing = [
            client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"runtime stopping")
            for client in self._clients.values()
        ]
        await asyncio.gather(*closing, return_exceptions=True)

    # -- HTTP ----------------------------------------------------------------------------------

    def authorized(self, request: web.Request) -> bool:
        """Whether ``request`` carries the secret (see :class:`HttpRoutes`); a request that does
        exempts its connection from the idle timeout."""
        connection = self._connection(request)
        if not self._secret_ok(request, connection):
            return False
        self._authenticated(connection)
        return True

    def _secret_ok(self, request: web.Request, connection: _Connection) -> bool:
        if self._secret is None:
            return True
        offered = _bearer(request)
        if offered is None:
            return False
        peer = connection.peer
        if not connection.authenticated and self._auth.blocked(peer):
            return False  # backing off: not compared
        if hmac.compare_digest(offered.encode("utf-8", "surrogatepass"), self._secret):
            self._auth.succeeded(peer)
            return True
        if self._auth.failed(peer):
            limits = self._auth.limits
            log.warning(
                "runtime protocol: %d wrong secrets from %s within %g s (HTTP); "
                "refusing its attempts for %g s",
                limits.max_failures,
                peer,
                limits.window,
                limits.backoff,
            )
        return False

    async def _page(self, _: web.Request) -> web.Response:
        return web.Response(text=self._text_page())

    def _text_page(self) -> str:
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
