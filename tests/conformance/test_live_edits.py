"""Graph edits through the runtime protocol change what flows on the broker, and the secret
guards every command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.mosquitto import Mosquitto, free_port
from gateway.runtime_protocol.client import RuntimeClient
from tests.conformance.test_fbp_protocol import SECRET, wait_listening
from tests.conftest import Probe
from tests.support.cli import BIN

pytestmark = pytest.mark.integration

GRAPH = "default/main"


@contextlib.asynccontextmanager
async def runtime(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "msgflo"), "--broker", mosquitto.url, "--port", str(port), "--secret", SECRET],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        await asyncio.to_thread(wait_listening, port, process)
        yield f"ws://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=30)


def node(name: str, component: str) -> dict[str, Any]:
    return {"id": name, "component": component, "metadata": {}, "graph": GRAPH}


def edge(src: str, tgt: str) -> dict[str, Any]:
    return {"src": {"node": src, "port": "out"}, "tgt": {"node": tgt, "port": "in"}, "graph": GRAPH}


async def test_protocol_edits_rewire_live_traffic(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await probe.watch("b/out")
    async with (
        runtime(mosquitto, tmp_path) as address,
        RuntimeClient(address, secret=SECRET) as client,
        asyncio.timeout(60),
    ):
        for name in ("a", "b"):
            reply = await client.request("graph", "addnode", node(name, "core/Repeat"))
            assert reply["command"] == "addnode", reply
        # Without the edge, a's output goes nowhere.
        probe.transport.publish("a/in", b'"before"')
        await probe.watch("a/out")
        await asyncio.sleep(0.3)
        assert probe.received["b/out"] == []
        reply = await client.request("graph", "addedge", edge("a", "b"))
        assert reply["command"] == "addedge", reply
        probe.transport.publish("a/in", b'"wired"')
        assert await probe.wait_count("b/out", 1) == [b'"wired"']
        reply = await client.request("graph", "removeedge", edge("a", "b"))
        assert reply["command"] == "removeedge", reply
        probe.transport.publish("a/in", b'"unwired"')
        await asyncio.sleep(0.3)
        await probe.watch("b/out")  # a round trip: nothing more is on its way
        assert probe.received["b/out"] == [b'"wired"']


async def test_every_command_needs_the_secret(mosquitto: Mosquitto, tmp_path: Path) -> None:
    commands = [
        ("graph", "addnode", node("x", "core/Repeat")),
        ("graph", "clear", {"id": "g", "main": True}),
        ("network", "start", {"graph": GRAPH}),
        ("network", "getstatus", {"graph": GRAPH}),
        ("component", "list", {}),
        ("component", "getsource", {"name": GRAPH}),
        ("runtime", "packet", {"port": "in", "event": "data", "payload": 1, "graph": GRAPH}),
    ]
    async with runtime(mosquitto, tmp_path) as address, asyncio.timeout(60):
        for secret in (None, "wrong"):
            async with RuntimeClient(address, secret=secret) as client:
                info = await client.request(
                    "runtime", "getruntime", expect=[("runtime", "runtime")]
                )
                assert info["payload"]["capabilities"] == []
                assert "protocol:graph" in info["payload"]["allCapabilities"]
                for protocol, command, payload in commands:
                    reply = await client.request(
                        protocol, command, payload, expect=[(protocol, "error")]
                    )
                    assert reply["command"] == "error", reply
                assert all(SECRET not in str(m) for m in client.received)


async def test_edge_selection_reports_data_and_survives_a_stop(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    async with (
        runtime(mosquitto, tmp_path) as address,
        RuntimeClient(address, secret=SECRET) as client,
        asyncio.timeout(60),
    ):
        for name in ("a", "b"):
            await client.request("graph", "addnode", node(name, "core/Repeat"))
        await client.request("graph", "addedge", edge("a", "b"))
        selection = {
            "graph": GRAPH,
            "edges": [{"src": {"node": "a", "port": "out"}, "tgt": {"node": "b", "port": "in"}}],
        }
        await client.request("network", "edges", selection)
        await client.request("network", "start", {"graph": GRAPH}, expect=[("network", "started")])
        await client.request("network", "stop", {"graph": GRAPH}, expect=[("network", "stopped")])
        mark = len(client.received)
        probe.transport.publish("a/in", b'{"seen": true}')
        data = await client.wait_for({("network", "data")}, since=mark)
    assert data["payload"]["id"] == "a() OUT -> IN b()"
    assert data["payload"]["data"] == {"seen": True}
