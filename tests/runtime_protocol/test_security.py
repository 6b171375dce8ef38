"""The secret (fbp-protocol 0.8): required on every message, compared in constant time, and
never sent back or logged. Without it a client only learns what the runtime could do."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.runtime_protocol.core import BROADCAST
from gateway.runtime_protocol.replies import CAPABILITIES
from tests.runtime_protocol.conftest import SECRET, Harness, Schemas, payloads

MAIN = "default/main"


def every_command(schemas: Schemas) -> list[tuple[str, str]]:
    """Every input command fbp-protocol defines, plus two it does not."""
    known = [
        (protocol, command)
        for protocol in ("runtime", "graph", "network", "component", "trace")
        for command in schemas.root[protocol]["input"]
    ]
    return [*known, ("graph", "frobnicate"), ("runtime", "")]


@pytest.mark.parametrize("offered", [None, "wrong", SECRET.upper(), SECRET + " ", "", "\udcff"])
async def test_every_command_is_refused_without_the_secret(
    secured: Harness, schemas: Schemas, offered: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for protocol, command in every_command(schemas):
        if (protocol, command) == ("runtime", "getruntime"):
            continue
        payload = {"graph": MAIN, "id": "n", "component": "core/Drop", "name": "core/Repeat"}
        await secured.send(protocol, command, payload, secret=offered)
        await secured.settle()
        (reply,) = secured.take()
        expected = "secret required" if offered is None else "invalid secret"
        assert reply == {
            "protocol": protocol,
            "command": "error",
            "payload": {"message": f"{protocol}:{command}: {expected}"},
        }
    assert secured.env.calls == []
    assert SECRET not in caplog.text


@pytest.mark.parametrize("where", ["top", "payload"])
async def test_the_secret_is_accepted_top_level_or_in_the_payload(
    secured: Harness, where: str
) -> None:
    payload = {"id": "n", "component": "c", "graph": MAIN}
    frame: dict[str, object] = {"protocol": "graph", "command": "addnode", "payload": payload}
    if where == "top":
        frame["secret"] = SECRET
    else:
        payload["secret"] = SECRET
    await secured.core.handle("a", json.dumps(frame))
    await secured.settle()
    assert [m["command"] for m in secured.take()] == ["addnode"]


async def test_getruntime_without_the_secret_shows_capabilities_but_grants_none(
    secured: Harness,
) -> None:
    await secured.send("runtime", "getruntime", secret=None)
    (runtime,) = secured.take()  # no runtime:ports: the graph's ports are not public
    assert runtime["payload"]["capabilities"] == []
    assert runtime["payload"]["allCapabilities"] == list(CAPABILITIES)
    assert "graph" not in runtime["payload"]
    await secured.send("runtime", "getruntime", secret="guess")
    assert payloads(secured.take(), "runtime:runtime")[0]["capabilities"] == []
    await secured.send("runtime", "getruntime")
    runtime, ports = secured.take()
    assert runtime["payload"]["capabilities"] == list(CAPABILITIES)
    assert runtime["payload"]["graph"] == MAIN and ports["command"] == "ports"


async def test_only_clients_that_showed_the_secret_get_broadcasts(secured: Harness) -> None:
    secured.core.connected("stranger")
    secured.core.connected("friend")
    await secured.send("runtime", "getruntime", client="friend")
    await secured.send("runtime", "getruntime", client="stranger", secret=None)
    secured.sent.clear()
    await secured.send("graph", "addnode", {"id": "n", "component": "c", "graph": MAIN})
    await secured.send("network", "start", {"graph": MAIN})
    await secured.settle()
    secured.core.participant_output("n", "hello")
    secured.core.exported_output("out", 1)
    assert {s.target for s in secured.sent} == {"a", "friend"}  # one send per client, no BROADCAST
    assert all(s.target is not BROADCAST for s in secured.sent)
    assert [m["command"] for m in secured.received("friend")] == [
        "addnode",
        "started",
        "output",
        "packet",
    ]


async def test_a_later_wrong_secret_is_still_refused(secured: Harness) -> None:
    await secured.send("runtime", "getruntime")
    secured.take()
    await secured.send("network", "getstatus", {"graph": MAIN}, secret="nope")
    assert payloads(secured.take(), "network:error") == [
        {"message": "network:getstatus: invalid secret"}
    ]


async def test_the_secret_is_never_echoed(secured: Harness, schemas: Schemas) -> None:
    # A graph full of the secret's neighbours, and every command sent with the secret: the
    # harness fails the test if any message contains it.
    for protocol, command in every_command(schemas):
        payload = {"graph": MAIN, "id": "n", "component": "core/Drop", "name": "x", "metadata": {}}
        await secured.send(protocol, command, payload)
        await secured.settle()
    assert secured.sent
