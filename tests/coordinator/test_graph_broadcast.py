"""A participant the graph does not have announces itself (``msgflo-register``, as a device
appearing would): the coordinator makes it a node and every runtime protocol client is told
with ``graph:addnode``, as if an edit had added it; the graph they fetch agrees."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.mosquitto import Mosquitto
from gateway.runtime_protocol.client import RuntimeClient
from tests.conformance.test_fbp_protocol import SECRET
from tests.conformance.test_live_edits import GRAPH, runtime
from tests.support.cli import BIN

pytestmark = pytest.mark.integration


async def register(mosquitto: Mosquitto, role: str, definition: Path) -> None:
    """``msgflo-register`` announcing ``role`` once, as a device outside the graph would."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "msgflo-register"),
        "--broker",
        mosquitto.url,
        "--forever",
        "false",
        "--role",
        f"{role}:{definition}",
    )
    assert await process.wait() == 0


async def test_a_participant_appearing_is_broadcast_as_addnode(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    definition = tmp_path / "door.yml"
    definition.write_text("component: test/Door\nicon: bell\ninports: {}\n")
    async with (
        runtime(mosquitto, tmp_path) as address,
        RuntimeClient(address, secret=SECRET) as editor,
        RuntimeClient(address, secret=SECRET) as watcher,
        asyncio.timeout(30),
    ):
        for client in (editor, watcher):
            # Authorized from its first message with the secret: it gets the broadcasts.
            await client.request("runtime", "getruntime", expect=[("runtime", "runtime")])
        mark = len(watcher.received)
        await register(mosquitto, "door", definition)
        added = await watcher.wait_for({("graph", "addnode")}, since=mark)
        assert added["payload"] == {
            "id": "door",
            "component": "test/Door",
            "metadata": {},
            "graph": GRAPH,
        }
        assert (await editor.wait_for({("graph", "addnode")}, since=mark)) == added

        # Announcing again changes nothing: no second addnode, and the graph has it once.
        await register(mosquitto, "door", definition)
        source = await watcher.request(
            "component", "getsource", {"name": GRAPH}, expect=[("component", "source")]
        )
        graph = json.loads(source["payload"]["code"])
        assert graph["processes"] == {"door": {"component": "test/Door"}}
        for client in (editor, watcher):
            assert [m for m in client.received if m["command"] == "addnode"] == [added]
