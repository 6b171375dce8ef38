"""The runtime protocol server as a driver: HTTP page, frames in and out, slow clients, and the
HTTP routes another component (the dashboard) adds on the same port."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.errors import GatewayError
from gateway.runtime_protocol.limits import AuthLimits, AuthThrottle, ConnectionLimits
from gateway.runtime_protocol.server import (
    BROADCAST,
    HttpRoutes,
    RuntimeServer,
    ServerInfo,
)
from tests.support.wait import until

SECRET = "s3cret-Ω-http"


class Echo:
    """A stand-in core: answers each frame to its sender and broadcasts a count."""

    def __init__(self, server: RuntimeServer) -> None:
        self.server = server
        self.events: list[str] = []
        self.peers: dict[str, str] = {}
        self.spoke: set[str] = set()  # clients that sent a frame: "authenticated"

    def connected(self, client: str, peer: str) -> None:
        self.events.append(f"+{client}")
        self.peers[client] = peer

    def authenticated(self, client: str) -> bool:
        return client in self.spoke

    def disconnected(self, client: str) -> None:
        self.events.append(f"-{client}")

    async def handle(self, client: str, text: str) -> None:
        message = json.loads(text)
        self.spoke.add(client)
        self.server.send(client, {"echo": message})
        if message.get("command") == "flood":
            # Events arrive over many loop iterations, as MQTT traffic does.
            for n in range(5000):
                self.server.send(BROADCAST, {"n": n, "pad": "x" * 1000})
                if n % 50 == 0:
                    await asyncio.sleep(0.001)


class Hello:
    """Trivial HTTP routes: JSON for authorized requests only."""

    def setup(self, app: web.Application, authorized: Callable[[web.Request], bool]) -> None:
        async def hello(request: web.Request) -> web.Response:
            if not authorized(request):
                return web.json_response({"error": "unauthorized"}, status=401)
            return web.json_response({"hello": "world"})

        app.router.add_get("/api/hello", hello)


@contextlib.asynccontextmanager
async def running(
    *,
    secret: str | None = None,
    http: HttpRoutes | None = None,
    auth: AuthThrottle | None = None,
    limits: ConnectionLimits | None = None,
    sockets: Sequence[socket.socket] = (),
) -> AsyncIterator[tuple[RuntimeServer, Echo]]:
    server = RuntimeServer(
        "127.0.0.1",
        0,
        ServerInfo(runtime_id="test-id"),
        secret=secret,
        http=http,
        auth=auth,
        limits=limits,
        sockets=sockets,
    )
    core = Echo(server)
    task = asyncio.create_task(server.serve(core))
    await asyncio.wait_for(server.ready.wait(), 5)
    try:
        yield server, core
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def websocket(address: str, **options: Any) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session, session.ws_connect(address, **options) as ws:
        yield ws


async def echoed(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send_str(json.dumps(message))
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.receive_str(), 5))
    return reply


async def stuck_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.socket()
    # A small fixed receive buffer (no autotuning, which on loopback takes megabytes), so that
    # what the server sends piles up in its own queue soon.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=16384)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        "".encode()
    )
    assert b" 101 " in await asyncio.wait_for(reader.readline(), 5)
    return reader, writer


async def get(url: str, secret: str | None = None) -> tuple[int, str]:
    """Status and body of a GET, with the secret as a bearer token (sent as UTF-8)."""
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_http_page_says_how_to_connect() -> None:
    async with running() as (server, _):
        for path in ("/", "/any/path"):
            url = f"http://127.0.0.1:{server.port}{path}"
            status, text = await get(url)
            assert status == 200
            assert f"ws://127.0.0.1:{server.port}" in text and "noflo" in text
            assert "test-id" in text


async def test_frames_are_answered_and_subprotocol_negotiated() -> None:
    async with running() as (server, core):
        async with websocket(server.address, protocols=["noflo"]) as ws:
            assert ws.protocol == "noflo"
            reply = await echoed(ws, {"protocol": "runtime", "command": "getruntime"})
            assert reply == {"echo": {"protocol": "runtime", "command": "getruntime"}}
        await until(lambda: len(core.events) == 2, 5, "the client to be gone")
    assert core.events == ["+1", "-1"]


@pytest.mark.parametrize("offered", [[], ["other"]])
async def test_clients_without_the_subprotocol_are_served(offered: list[str]) -> None:
    async with running() as (server, _), websocket(server.address, protocols=offered) as ws:
        assert ws.protocol is None
        assert await echoed(ws, {"command": "x"}) == {"echo": {"command": "x"}}


async def test_frames_are_handled_in_order() -> None:
    async with running() as (server, _), websocket(server.address) as ws:
        for n in range(50):
            await ws.send_str(json.dumps({"command": "n", "n": n}))
        got = [
            json.loads(await asyncio.wait_for(ws.receive_str(), 5))["echo"]["n"] for _ in range(50)
        ]
    assert got == list(range(50))


async def test_a_client_that_stops_reading_is_dropped_others_are_served() -> None:
    async with running() as (server, _), websocket(server.address) as healthy:
        _, stuck = await stuck_client(server.port)
        try:
            await until(lambda: len(server.clients()) == 2, 5, "the stuck client to connect")
            await healthy.send_str(json.dumps({"command": "flood"}))
            received = 0
            async with asyncio.timeout(20):
                while received < 5001:
                    await healthy.receive_str()
                    received += 1
            assert len(server.clients()) == 1  # the stuck one is gone
        finally:
            stuck.transport.abort()


def test_refuses_non_loopback_without_secret() -> None:
    with pytest.raises(GatewayError, match="without a secret"):
        RuntimeServer("0.0.0.0", 3569, ServerInfo(runtime_id="x"))
    RuntimeServer("0.0.0.0", 3569, ServerInfo(runtime_id="x"), secret="s3cret")
    RuntimeServer("::1", 3569, ServerInfo(runtime_id="x"))


async def test_http_routes_are_served_beside_the_protocol(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(secret=SECRET, http=Hello()) as (server, _):
        base = f"http://127.0.0.1:{server.port}"
        assert await get(f"{base}/api/hello", SECRET) == (
            200,
            '{"hello": "world"}',
        )
        for offered in (None, "wrong", f"{SECRET}x"):
            status, _ = await get(f"{base}/api/hello", offered)
            assert status == 401, offered
        status, page = await get(f"{base}/runtime")
        assert status == 200 and "sub-protocol noflo" in page
        assert (await get(f"{base}/"))[0] == 404  # the routes own the rest
        for path in ("/", "/some/where"):
            async with websocket(server.address + path, protocols=["noflo"]) as ws:
                assert ws.protocol == "noflo"
                assert await echoed(ws, {"command": path}) == {"echo": {"command": path}}
    assert SECRET not in caplog.text


async def test_a_socket_bound_by_someone_else_is_served_like_the_port() -> None:
    """As systemd hands the appliance's coordinator port 80: the protocol, the routes and the
    limits on a socket the server did not bind; the caller's socket stays the caller's."""
    limits = ConnectionLimits(max_per_peer=2)
    with socket.create_server(("127.0.0.1", 0)) as given:
        port = given.getsockname()[1]
        async with running(secret=SECRET, http=Hello(), limits=limits, sockets=[given]) as (
            server,
            _,
        ):
            assert port != server.port
            base = f"http://127.0.0.1:{port}"
            assert await get(f"{base}/api/hello", SECRET) == (200, '{"hello": "world"}')
            assert (await get(f"{base}/api/hello"))[0] == 401
            async with websocket(f"ws://127.0.0.1:{port}/", protocols=["noflo"]) as ws:
                assert await echoed(ws, {"command": "x"}) == {"echo": {"command": "x"}}
                # The doorman counts it with the server's own port's connections.
                async with websocket(server.address):
                    with pytest.raises(aiohttp.ClientError):
                        async with websocket(f"ws://127.0.0.1:{port}/"):
                            pass
            await until(lambda: server.open_connections() == 0, 5, "the clients to be gone")
        assert given.fileno() != -1  # still open: the caller closes it
    # Bound beyond loopback (not listening: nothing is exposed): only with a secret.
    with socket.socket() as beyond:
        beyond.bind(("0.0.0.0", 0))
        with pytest.raises(GatewayError, match=r"0\.0\.0\.0 without a secret"):
            RuntimeServer("127.0.0.1", 0, ServerInfo(runtime_id="x"), sockets=[beyond])
        RuntimeServer("127.0.0.1", 0, ServerInfo(runtime_id="x"), secret="s3cret", sockets=[beyond])


async def test_http_guesses_earn_the_back_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = AuthThrottle(AuthLimits(max_failures=3))  # the one the protocol core would share
    async with running(secret=SECRET, http=Hello(), auth=auth) as (server, _):
        url = f"http://127.0.0.1:{server.port}/api/hello"
        for n in range(3):
            assert (await get(url, f"guess-{n}"))[0] == 401
        assert auth.blocked("127.0.0.1") > 0
        # The right secret from that address now: refused without being compared.
        assert (await get(url, SECRET))[0] == 401
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "runtime protocol: 3 wrong secrets from 127.0.0.1 within 60 s (HTTP); "
        "refusing its attempts for 60 s"
    ]
    assert SECRET not in caplog.text and "guess-" not in caplog.text


async def test_without_a_secret_every_request_is_authorized() -> None:
    async with running(http=Hello()) as (server, _):
        url = f"http://127.0.0.1:{server.port}/api/hello"
        assert (await get(url))[0] == 200


async def test_an_http_connection_without_authorized_requests_is_closed_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    limits = ConnectionLimits(idle_timeout=0.5)
    async with (
        running(secret=SECRET, http=Hello(), limits=limits) as (server, _),
        aiohttp.ClientSession() as session,  # keeps its connection alive between requests
    ):
        async with session.get(f"http://127.0.0.1:{server.port}/runtime") as response:
            assert response.status == 200
        await until(lambda: server.open_connections() == 0, 5, "the idle timeout")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
