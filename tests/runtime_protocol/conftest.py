"""Fixtures for the protocol core: fbp-protocol's own schemas, a fake environment, a harness.

Every message the core sends in these tests is validated against the official fbp-protocol 0.9.8
schemas (``tests/npm/node_modules/fbp-protocol/schema/json``), resolved the way its test suite
does (``<protocol>/output/<command>``, src/WebSocket.coffee). Missing schema files fail the tests.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateway.graph.model import Edge, Graph, Initial
from gateway.runtime_protocol.core import BROADCAST, ProtocolCore, Target
from gateway.runtime_protocol.environment import (
    ComponentInfo,
    ComponentSource,
    Environment,
    Listener,
    PortInfo,
    RuntimeInfo,
)
from gateway.runtime_protocol.limits import AuthLimits, AuthThrottle

SCHEMA_DIR = Path(__file__).parents[1] / "npm/node_modules/fbp-protocol/schema/json"
PROTOCOLS = ("shared", "runtime", "graph", "network", "component", "trace")
SECRET = "s3cret-Ω-token"


def _strip_ids(node: Any) -> Any:
    # Draft-4 "id" keywords would re-base the "#/shared/..." references; schemas.js (what the
    # suite really uses) has them inlined instead. Properties *named* id are dicts and stay.
    if isinstance(node, dict):
        return {
            k: _strip_ids(v)
            for k, v in node.items()
            if not (k in ("id", "$schema") and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_strip_ids(v) for v in node]
    return node


_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    if not isinstance(value, str) or not _ISO.match(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


class Schemas:
    """``validate(message)`` against ``<protocol>/output/<command>`` as fbp-test does."""

    def __init__(self, directory: Path) -> None:
        self.root = {
            name: _strip_ids(json.loads((directory / f"{name}.json").read_text()))
            for name in PROTOCOLS
        }
        self._validators: dict[str, jsonschema.Draft4Validator] = {}

    def errors(self, msg: dict[str, Any], direction: str = "output") -> list[str]:
        protocol, command = msg.get("protocol"), msg.get("command")
        section = self.root.get(str(protocol), {}).get(direction, {})
        if command not in section:
            return [f"no schema {protocol}/{direction}/{command}"]
        ref = f"#/{protocol}/{direction}/{command}"
        validator = self._validators.get(ref)
        if validator is None:
            schema = {**self.root, "$ref": ref}
            validator = jsonschema.Draft4Validator(schema, format_checker=_FORMATS)
            self._validators[ref] = validator
        return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(msg)]


@pytest.fixture(scope="session")
def schemas() -> Schemas:
    # Fails (FileNotFoundError), never skips, when the npm test tools are not installed.
    return Schemas(SCHEMA_DIR)


REPEAT = ComponentInfo(
    "core/Repeat",
    "Forwards what it gets",
    icon="forward",
    inports=(PortInfo("in", "all", "Packets to forward"),),
    outports=(PortInfo("out", "all", "Forwarded packets"),),
)
DROP = ComponentInfo("core/Drop", inports=(PortInfo("in"),))


class FakeEnvironment(Environment):
    """An in-memory live system: records calls; ``hold`` keeps change_graph waiting.

    ``start_network`` behaves like a running Repeat: it reports each IIP as delivered and each
    edge out of a node with an IIP as carrying that IIP's data.
    """

    def __init__(self, graph: Graph | None = None) -> None:
        self._graph = graph or Graph()
        self.calls: list[tuple[str, Any]] = []
        self.listener: Listener | None = None
        self.hold: asyncio.Event | None = None
        self.fail_next: Exception | None = None
        self.component_list = [REPEAT, DROP]
        self.sources = {"core/Repeat": ComponentSource("Repeat", "core", "python", "def on_input")}

    @property
    def graph(self) -> Graph:
        return self._graph

    async def change_graph(self, graph: Graph) -> None:
        self.calls.append(("change_graph", graph))
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        self._graph = graph

    def components(self) -> list[ComponentInfo]:
        return list(self.component_list)

    def component_source(self, name: str) -> ComponentSource | None:
        return self.sources.get(name)

    def send_packet(self, role: str, port: str, data: Any) -> None:
        self.calls.append(("send_packet", (role, port, data)))

    async def start_network(self) -> None:
        self.calls.append(("start_network", None))
        assert self.listener is not None
        for iip in self._graph.initials:
            self.listener.initial_data(iip)
            for edge in self._graph.edges:
                if edge.src.process == iip.tgt.process:
                    self.listener.edge_data(edge, iip.data)
        await asyncio.sleep(0)

    async def stop_network(self) -> None:
        self.calls.append(("stop_network", None))

    def watch_edges(self, edges: list[Edge]) -> None:
        self.calls.append(("watch_edges", edges))

    def set_listener(self, listener: Listener) -> None:
        self.listener = listener

    def deliver(self, initial: Initial) -> None:
        assert self.listener is not None
        self.listener.initial_data(initial)

    def change_by_itself(self, graph: Graph) -> None:
        """A change the live system makes on its own (a discovered participant becoming a
        node): the graph changes at once and the listener is told."""
        assert self.listener is not None
        old, self._graph = self._graph, graph
        self.listener.graph_changed(old, graph)


INFO = RuntimeInfo(id="f18a4924-9d4f-414d-a37c-cd24b39bba10", namespace="gw")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1.5)
        return self.now


@dataclass
class Sent:
    target: Target
    message: dict[str, Any]


@dataclass
class Harness:
    """A core with recorded output; ``send`` feeds frames as client ``client``."""

    env: FakeEnvironment
    schemas: Schemas
    secret: str | None
    auth: AuthThrottle | None = None
    sent: list[Sent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    core: ProtocolCore = field(init=False)

    def __post_init__(self) -> None:
        self.core = ProtocolCore(
            self.env, INFO, self.secret, self.record, clock=Clock(), auth=self.auth
        )

    def record(self, target: Target, msg: dict[str, Any]) -> None:
        text = json.dumps(msg, allow_nan=False)  # must be JSON as it is
        if self.secret is not None and self.secret in text:
            self.problems.append(f"secret in {text}")
        self.problems += [f"{msg}: {e}" for e in self.schemas.errors(msg)]
        self.sent.append(Sent(target, msg))

    async def send(
        self,
        protocol: str,
        command: str,
        payload: dict[str, Any] | None = None,
        *,
        client: str = "a",
        secret: str | None = "default",
    ) -> None:
        use = self.secret if secret == "default" else secret
        frame: dict[str, Any] = {
            "protocol": protocol,
            "command": command,
            "payload": dict(payload or {}),
        }
        if use is not None:
            frame["secret"] = use
            frame["payload"]["secret"] = use
        await self.core.handle(client, json.dumps(frame))

    async def settle(self) -> None:
        """Let the change queue apply everything queued so far."""
        for _ in range(50):
            await asyncio.sleep(0)

    def received(self, client: str = "a") -> list[dict[str, Any]]:
        """Messages that reached ``client`` (directly or by broadcast), in order."""
        return [s.message for s in self.sent if s.target in (client, BROADCAST)]

    def take(self, client: str = "a") -> list[dict[str, Any]]:
        """``received`` and forget everything sent so far."""
        out = self.received(client)
        self.sent.clear()
        return out


# Tests that send many wrong secrets on purpose, and are not about the back-off it earns.
PATIENT = AuthLimits(max_failures=1_000_000)


async def make_harness(
    schemas: Schemas,
    secret: str | None = None,
    graph: Graph | None = None,
    auth: AuthThrottle | None = None,
) -> AsyncIterator[Harness]:
    harness = Harness(FakeEnvironment(graph), schemas, secret, auth)
    core = harness.core
    core.connected("a", "192.0.2.1")
    task = asyncio.create_task(core.run())
    try:
        yield harness
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not harness.problems, "\n".join(harness.problems)


@pytest.fixture
async def harness(schemas: Schemas) -> AsyncIterator[Harness]:
    async for h in make_harness(schemas):
        yield h


@pytest.fixture
async def secured(schemas: Schemas) -> AsyncIterator[Harness]:
    async for h in make_harness(schemas, SECRET, auth=AuthThrottle(PATIENT)):
        yield h


def payloads(messages: list[dict[str, Any]], command: str) -> list[Any]:
    """The payloads of ``protocol:command`` messages, e.g. ``graph:addnode``."""
    protocol, _, name = command.partition(":")
    return [m["payload"] for m in messages if (m["protocol"], m["command"]) == (protocol, name)]
