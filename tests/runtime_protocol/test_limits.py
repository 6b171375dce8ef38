"""The server's limits against a local attacker: idle connections, connections beyond the caps,
running out of file descriptors, and the secret kept out of every log line, reply and page.

The attacker's connections come from other loopback addresses (127.0.0.2 and up: all of
127.0.0.0/8 is loopback on Linux) so that the per-address share can be told from the total.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import uvloop

from gateway.cli.info import gather
from gateway.errors import GatewayError
from gateway.runtime_protocol.client import RuntimeClient
from gateway.runtime_protocol.core import ProtocolCore
from gateway.runtime_protocol.limits import ConnectionLimits
from gateway.runtime_protocol.replies import CAPABILITIES
from gateway.runtime_protocol.server import RuntimeServer, ServerInfo
from tests.runtime_protocol.conftest import INFO, SECRET, FakeEnvironment

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter | None]
MAIN = "default/main"


@contextlib.asynccontextmanager
async def runtime(limits: ConnectionLimits | None = None) -> AsyncIterator[RuntimeServer]:
    """The protocol core with a secret, on the fake environment, served on a free port."""
    server = RuntimeServer("127.0.0.1", 0, ServerInfo("limits"), secret=SECRET, limits=limits)
    core = ProtocolCore(FakeEnvironment(), INFO, SECRET, server.send)
    tasks = [asyncio.create_task(core.run()), asyncio.create_task(server.serve(core))]
    await asyncio.wait_for(server.ready.wait(), 5)
    try:
        yield server
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def idle(port: int, sources: list[str], each: int) -> AsyncIterator[list[Connection]]:
    """``each`` raw TCP connections from every address in ``sources`` that send nothing; one
    reset before ``connect`` returned is there as an ended reader without a writer."""
    connections: list[Connection] = []
    try:
        for source in sources:
            for _ in range(each):
                try:
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", port, local_addr=(source, 0)
                    )
                except ConnectionError:
                    reader, writer = asyncio.StreamReader(), None
                    reader.feed_eof()
                connections.append((reader, writer))
        yield connections
    finally:
        for _, writer in connections:
            if writer is not None:
                writer.transport.abort()


async def _ended(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        await reader.read(1)


async def closed_by_server(connections: list[Connection], count: int) -> None:
    """Wait until the server has closed (or reset) ``count`` of ``connections``."""
    reads = [asyncio.create_task(_ended(reader)) for reader, _ in connections]
    try:
        while sum(task.done() for task in reads) < count:
            await asyncio.wait([t for t in reads if not t.done()], return_when="FIRST_COMPLETED")
    finally:
        for task in reads:
            task.cancel()


async def answers(server: RuntimeServer) -> None:
    """An authorized client from 127.0.0.1 connects and is served."""
    async with RuntimeClient(server.address, secret=SECRET) as client:
        reply = await client.request("runtime", "getruntime", expect=[("runtime", "runtime")])
        assert reply["payload"]["capabilities"] == list(CAPABILITIES)
        status = await client.request(
            "network", "getstatus", {"graph": MAIN}, expect=[("network", "status")]
        )
        assert status["command"] == "status"


def assert_quiet_log(caplog: pytest.LogCaptureFixture, most: int) -> list[str]:
    """No tracebacks, and at most ``most`` lines from the server; returns them."""
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gateway.")]
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text
    assert len(lines) <= most, "\n".join(lines)
    return lines


async def test_idle_connections_from_one_address_leave_room_for_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _one_address_takes_its_share(caplog)


def test_the_limits_hold_on_uvloop(caplog: pytest.LogCaptureFixture) -> None:
    # The daemons run on uvloop, which accepts connections in libuv unless the server runs
    # its own accept loop: the caps must hold there too.
    uvloop.run(_one_address_takes_its_share(caplog))


async def _one_address_takes_its_share(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with runtime() as server, asyncio.timeout(30):  # default limits: 64, 16 per address
        began = time.monotonic()
        async with idle(server.port, ["127.0.0.2"], 300) as attack:
            await closed_by_server(attack, 300 - 16)  # refused as they were accepted
            refused_in = time.monotonic() - began
            assert server.open_connections() == 16
            await answers(server)
            served_in = time.monotonic() - began
    print(
        f"300 idle connections: 284 refused within {refused_in:.2f} s, served at {served_in:.2f} s"
    )
    lines = assert_quiet_log(caplog, most=6)
    assert any(
        "refused a connection from 127.0.0.2: 16 connections open from it" in line for line in lines
    ), lines


async def test_a_full_server_refuses_at_once_and_recovers_when_idle_ones_time_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    limits = ConnectionLimits(idle_timeout=3.0)
    sources = [f"127.0.0.{n}" for n in range(2, 7)]  # 5 addresses, 16 each: 80 > 64
    async with (
        runtime(limits) as server,
        asyncio.timeout(30),
        idle(server.port, sources, 16) as attack,
    ):
        await closed_by_server(attack, 80 - 64)
        assert server.open_connections() == 64
        with pytest.raises(GatewayError, match="cannot connect"):
            await answers(server)
        began = time.monotonic()
        await closed_by_server(attack, 80)  # the idle timeout closes the rest
        await answers(server)
        print(f"served {time.monotonic() - began:.2f} s after the server was full")
    lines = assert_quiet_log(caplog, most=8)
    assert any("no WebSocket handshake within 3 s" in line for line in lines), lines
    assert any("64 connections open, the most allowed" in line for line in lines), lines


@pytest.mark.parametrize("offered", [None, "wrong"])
async def test_a_websocket_client_that_never_authenticates_is_closed(
    offered: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with (
        runtime(ConnectionLimits(idle_timeout=1.0)) as server,
        asyncio.timeout(20),
        RuntimeClient(server.address, secret=SECRET) as good,  # connects first
        RuntimeClient(server.address, secret=offered) as bad,
    ):
        await good.request("runtime", "getruntime", expect=[("runtime", "runtime")])
        runtime_info = await bad.request("runtime", "getruntime", expect=[("runtime", "runtime")])
        assert runtime_info["payload"]["capabilities"] == []
        await bad.wait_closed()
        # The good client's deadline passed before the bad one's: it stays, and is served.
        status = await good.request(
            "network", "getstatus", {"graph": MAIN}, expect=[("network", "status")]
        )
        assert status["command"] == "status"
    lines = assert_quiet_log(caplog, most=4)
    assert "no authenticated message within 1 s" in "\n".join(lines)


async def test_the_secret_is_in_no_log_line_reply_page_or_link(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, aiohttp's included
    guesses = [f"{SECRET}-guess-{n}" for n in range(7)]
    async with runtime() as server, asyncio.timeout(20):
        async with RuntimeClient(server.address, secret=SECRET) as client:
            await client.request("runtime", "getruntime", expect=[("runtime", "runtime")])
            await client.collect("component", "list", {}, until=("component", "componentsready"))
            await client.request("graph", "addnode", {"graph": MAIN, "id": "n", "component": "x"})
            received = list(client.received)
        info = await gather(server.address, SECRET)  # msgflo-info
        for guess in guesses:  # enough to earn a back-off
            async with RuntimeClient(server.address, secret=guess) as wrong:
                received.append(await wrong.request("graph", "clear", {"id": "x"}))
        # The right secret from that address now: refused without being compared.
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(server.address, protocols=["noflo"]) as raw,
        ):
            await raw.send_str(f'{{"protocol": "runtime", "command": "x", "secret": "{SECRET}"}}')
            received.append({"raw": await raw.receive_str()})
        url = f"http://127.0.0.1:{server.port}/"
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    assert "too many wrong secrets from your address" in str(received[-1])
    assert any(line.startswith("nodes:") for line in info)
    said = "\n".join([caplog.text, str(received), page.decode(), *info])
    assert SECRET not in said
    assert not [guess for guess in guesses if guess in said]
    assert "runtime/endpoint?" in page.decode()  # the Flowhub link: address and id only
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "runtime protocol: 5 wrong secrets from 127.0.0.1 within 60 s (client 7); "
        "refusing its attempts for 60 s"
    ]


def test_running_out_of_file_descriptors_costs_a_line_not_a_traceback_per_connection(
    tmp_path: Path,
) -> None:
    # A server with 24 descriptors to spare, limits that do not protect it, and a 2 s idle
    # timeout; 200 idle connections exhaust it (EMFILE). It must refuse the excess, log that
    # once, and serve an authorized client again once the idle ones have timed out.
    log_file = tmp_path / "server.log"
    with (
        log_file.open("w") as log,
        subprocess.Popen(
            [sys.executable, "-m", "tests.runtime_protocol.emfile_runtime", "24", "2"],
            cwd=Path(__file__).parents[2],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None and process.stdin is not None
        try:
            port = int(process.stdout.readline())
            served_after = asyncio.run(_exhaust(port))
            print(f"200 idle connections, 24 spare descriptors: served after {served_after:.2f} s")
        finally:
            process.stdin.close()  # the server stops
            process.wait(timeout=20)
    text = log_file.read_text()
    assert "Traceback" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert 1 <= len(lines) <= 8, text[-3000:]
    assert any("cannot accept connections (EMFILE" in line for line in lines), text[-3000:]
    assert SECRET not in text


async def _exhaust(port: int) -> float:
    async with asyncio.timeout(40), idle(port, ["127.0.0.2"], 200) as attack:
        await closed_by_server(attack, 150)  # refused for want of descriptors
        began = time.monotonic()
        address = f"ws://127.0.0.1:{port}"
        while True:
            try:
                async with RuntimeClient(address, secret=SECRET) as client:
                    reply = await client.request(
                        "runtime", "getruntime", expect=[("runtime", "runtime")]
                    )
                    assert reply["payload"]["capabilities"] == list(CAPABILITIES)
                    return time.monotonic() - began
            except GatewayError:
                # Refused while the idle connections hold every descriptor; they time out.
                await closed_by_server(attack, 200)
