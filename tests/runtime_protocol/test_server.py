"""The runtime protocol server as a driver: HTTP page, frames in and out, slow clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from gateway.errors import GatewayError
from gateway.runtime_protocol.server import BROADCAST, RuntimeServer, ServerInfo


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


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[tuple[RuntimeServer, Echo]]:
    server = RuntimeServer("127.0.0.1", 0, ServerInfo(runtime_id="test-id"))
    core = Echo(server)
    task = asyncio.create_task(server.serve(core))
    await asyncio.wait_for(server.ready.wait(), 5)
    try:
        yield server, core
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_http_page_says_how_to_connect() -> None:
    async with running() as (server, _):
        url = f"http://127.0.0.1:{server.port}/"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    text = body.decode()
    assert f"ws://127.0.0.1:{server.port}" in text and "noflo" in text and "test-id" in text


async def test_frames_are_answered_and_subprotocol_negotiated() -> None:
    async with running() as (server, core):
        async with connect(server.address, subprotocols=["noflo"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "noflo"
            await ws.send(json.dumps({"protocol": "runtime", "command": "getruntime"}))
            reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply == {"echo": {"protocol": "runtime", "command": "getruntime"}}
        async with asyncio.timeout(5):
            while len(core.events) < 2:
                await asyncio.sleep(0.01)
    assert core.events == ["+1", "-1"]


async def test_frames_are_handled_in_order() -> None:
    async with running() as (server, _), connect(server.address) as ws:
        for n in range(50):
            await ws.send(json.dumps({"command": "n", "n": n}))
        got = [json.loads(await asyncio.wait_for(ws.recv(), 5))["echo"]["n"] for _ in range(50)]
    assert got == list(range(50))


async def test_a_client_that_stops_reading_is_dropped_others_are_served() -> None:
    async with (
        running() as (server, _),
        connect(server.address, max_queue=1, close_timeout=0.5) as stuck,  # never reads
        connect(server.address) as healthy,
    ):
        stuck.transport.pause_reading()
        await healthy.send(json.dumps({"command": "flood"}))
        received = 0
        async with asyncio.timeout(20):
            while received < 5001:
                await healthy.recv()
                received += 1
        assert len(server.clients()) == 1  # the stuck one is gone


def test_refuses_non_loopback_without_secret() -> None:
    with pytest.raises(GatewayError, match="without a secret"):
        RuntimeServer("0.0.0.0", 3569, ServerInfo(runtime_id="x"))
    RuntimeServer("0.0.0.0", 3569, ServerInfo(runtime_id="x"), secret="s3cret")
    RuntimeServer("::1", 3569, ServerInfo(runtime_id="x"))
