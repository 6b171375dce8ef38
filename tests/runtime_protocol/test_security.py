"""The secret (fbp-protocol 0.8): required on every message, compared in constant time, and
never sent back or logged. Without it a client only learns what the runtime could do."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from gateway.runtime_protocol.core import BROADCAST
from gateway.runtime_protocol.limits import MAX_TRACKED_PEERS, AuthLimits, AuthThrottle
from gateway.runtime_protocol.replies import CAPABILITIES
from tests.runtime_protocol.conftest import SECRET, Harness, Schemas, make_harness, payloads

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


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


GUESSES = [f"guess-{n}-Zq" for n in range(12)]
ATTACKER, OTHER = "198.51.100.7", "203.0.113.9"


@pytest.fixture
async def limited(schemas: Schemas) -> AsyncIterator[tuple[Harness, Monotonic]]:
    clock = Monotonic()
    auth = AuthThrottle(AuthLimits(max_failures=5, window=60, backoff=60), clock=clock)
    async for h in make_harness(schemas, SECRET, auth=auth):
        yield h, clock


def everything_said(harness: Harness, caplog: pytest.LogCaptureFixture) -> str:
    replies = json.dumps([s.message for s in harness.sent])
    return replies + "\n" + caplog.text


async def test_wrong_secrets_from_one_address_earn_a_backoff_logged_once(
    limited: tuple[Harness, Monotonic], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness, clock = limited
    payload = {"graph": MAIN, "id": "n", "component": "core/Drop"}
    # Five guesses, each on a new connection from the same address, as a script would.
    for n, guess in enumerate(GUESSES[:5]):
        harness.core.connected(f"g{n}", ATTACKER)
        await harness.send("graph", "addnode", payload, client=f"g{n}", secret=guess)
        clock.now += 1
    await harness.settle()
    assert all(m["payload"]["message"].endswith("invalid secret") for m in harness.take("g0"))
    # Now even the right secret is refused from that address, without being compared...
    harness.core.connected("late", ATTACKER)
    for guess in [*GUESSES[5:], SECRET]:
        await harness.send("graph", "addnode", payload, client="late", secret=guess)
    await harness.send("runtime", "getruntime", client="late")
    await harness.settle()
    *errors, runtime = harness.received("late")
    assert [e["command"] for e in errors] == ["error"] * 8
    assert all(
        "too many wrong secrets from your address; try again in 59 s" in e["payload"]["message"]
        for e in errors
    )
    assert runtime["payload"]["capabilities"] == []
    # ... while another address is served, and this one again after its back-off.
    harness.core.connected("other", OTHER)
    await harness.send("graph", "addnode", payload, client="other")
    clock.now += 60
    await harness.send("runtime", "getruntime", client="late")
    await harness.settle()
    assert [m["command"] for m in harness.received("other")] == ["addnode"]
    assert payloads(harness.received("late"), "runtime:runtime")[-1]["capabilities"] == list(
        CAPABILITIES
    )
    assert [c[0] for c in harness.env.calls] == ["change_graph"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"runtime protocol: 5 wrong secrets from {ATTACKER} within 60 s (client g4); "
        "refusing its attempts for 60 s"
    ]
    said = everything_said(harness, caplog)
    assert SECRET not in said
    assert not [guess for guess in GUESSES if guess in said]


async def test_an_authorized_client_is_served_while_its_address_backs_off(
    limited: tuple[Harness, Monotonic],
) -> None:
    harness, _ = limited
    harness.core.connected("good", ATTACKER)
    await harness.send("runtime", "getruntime", client="good")
    harness.core.connected("bad", ATTACKER)
    for guess in GUESSES[:6]:
        await harness.send("runtime", "getruntime", client="bad", secret=guess)
    harness.take("good")
    await harness.send("network", "getstatus", {"graph": MAIN}, client="good")
    assert [m["command"] for m in harness.take("good")] == ["status"]
    assert harness.core.authenticated("good") and not harness.core.authenticated("bad")


async def test_failures_older_than_the_window_do_not_count(
    limited: tuple[Harness, Monotonic],
) -> None:
    harness, clock = limited
    harness.core.connected("c", ATTACKER)
    for guess in GUESSES[:4]:
        await harness.send("runtime", "getruntime", client="c", secret=guess)
    clock.now += 61
    await harness.send("runtime", "getruntime", client="c", secret=GUESSES[4])
    await harness.send("runtime", "getruntime", client="c")
    assert payloads(harness.take("c"), "runtime:runtime")[-1]["capabilities"] == list(CAPABILITIES)


def test_the_throttle_remembers_a_bounded_number_of_addresses() -> None:
    clock = Monotonic()
    throttle = AuthThrottle(AuthLimits(max_failures=2), clock=clock)
    for n in range(MAX_TRACKED_PEERS + 100):
        throttle.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(throttle._peers) == MAX_TRACKED_PEERS
    assert not throttle.failed("192.0.2.9") and throttle.failed("192.0.2.9")
    assert throttle.blocked("192.0.2.9") == 60 and throttle.blocked("10.0.0.0") == 0
