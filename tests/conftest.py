"""Shared fixtures: a real private mosquitto per test, one private RabbitMQ per session, and a
probe client to watch topics; and the guard that keeps ``-m "not integration"`` broker-free."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto, TlsListener
from gateway.transport import Transport, open_transport
from gateway.transport.base import Delivery
from gateway.transport.memory import MemoryTransport
from tests.support.amqp_broker import RabbitMQ
from tests.support.certs import Pki, make_pki

# Checks that every program the tests start comes from a package bootstrap installs.
pytest_plugins = ["tests.tool_audit"]

# Programs that only tests marked ``integration`` may start: brokers, node, emulators. Checked
# where every process starts (the audit event of subprocess.Popen, which asyncio's subprocesses
# go through too), so neither a fixture nor a test body can start one unmarked.
SERVICES = frozenset({"mosquitto", "rabbitmq-server", "epmd", "node"})
EMULATOR_PREFIX = "qemu-system-"
_running: list[pytest.Item] = []  # the test being set up, run or torn down


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None]:
    _running.append(item)
    try:
        yield
    finally:
        _running.remove(item)


def service_started(args: Any) -> str | None:
    """The service Popen's ``args`` start, if any (pure). Every word counts, not only the
    first: brokers are started behind wrappers (``setpriv --pdeathsig TERM -- mosquitto``)."""
    words = args.split() if isinstance(args, str) else list(args)
    for word in words:
        program = os.path.basename(os.fsdecode(word))
        if program in SERVICES or program.startswith(EMULATOR_PREFIX):
            return program
    return None


def _refuse_unmarked_services(event: str, args: tuple[Any, ...]) -> None:
    if event != "subprocess.Popen" or not _running:
        return
    item = _running[-1]
    program = service_started(args[1])
    if program is not None and item.get_closest_marker("integration") is None:
        raise RuntimeError(f"{item.nodeid} starts {program} but is not marked integration")


sys.addaudithook(_refuse_unmarked_services)


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    with Mosquitto() as broker:
        yield broker


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made for the test."""
    return make_pki(tmp_path)


@pytest.fixture
def tls_broker(pki: Pki) -> Iterator[Mosquitto]:
    """A mosquitto with a TLS listener that requires a client certificate from ``pki``'s CA."""
    listener = TlsListener(pki.ca, pki.server_cert, pki.server_key, require_certificate=True)
    with Mosquitto(tls=listener) as broker:
        yield broker


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """One private RabbitMQ for the session (it takes seconds to start). Tests use queue names
    of their own; a test that restarts it leaves it running."""
    with RabbitMQ() as broker:
        yield broker


MARKER = "msgflo-gateway-tests/probe-marker"


class Probe:
    """A plain MQTT client for tests: subscribe to topics, await what arrives, publish."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.received: dict[str, list[bytes]] = defaultdict(list)
        self._arrived = asyncio.Event()
        self._marker_subscribed = False

    async def watch(self, topic: str, qos: int = 0) -> None:
        """Subscribe to ``topic`` and return once the broker has applied the subscription."""
        await self.transport.subscribe(topic, self._collect, qos=qos)
        # SUBACKs are not exposed. The broker handles one connection's packets in order, so once
        # a message published after the SUBSCRIBE comes back, the subscription is active.
        if not self._marker_subscribed:
            await self.transport.subscribe(MARKER, self._collect)
            self._marker_subscribed = True
        self.transport.publish(MARKER, b"ready")
        await self.wait_count(MARKER, len(self.received[MARKER]) + 1)

    def _collect(self, delivery: Delivery) -> None:
        self.received[delivery.topic].append(delivery.payload)
        self._arrived.set()

    async def wait_count(self, topic: str, count: int, timeout: float = 5.0) -> list[bytes]:
        async with asyncio.timeout(timeout):
            while len(self.received[topic]) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received[topic]

    async def next_json(self, topic: str, timeout: float = 5.0) -> Any:
        before = len(self.received[topic])
        got = await self.wait_count(topic, before + 1, timeout)
        return json.loads(got[before])

    def discovery(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.received["fbp"]]


@contextlib.asynccontextmanager
async def probing(url: str, client_id: str = "probe") -> AsyncIterator[Probe]:
    """A :class:`Probe` connected to the broker at ``url``."""
    async with open_transport(parse_broker_url(url), client_id=client_id) as transport:
        async with asyncio.timeout(5):
            await transport.wait_connected()
        yield Probe(transport)


@pytest.fixture
async def probe(mosquitto: Mosquitto) -> AsyncIterator[Probe]:
    async with probing(mosquitto.url) as found:
        yield found


@pytest.fixture
def memory_url() -> str:
    """A memory:// broker of the test's own (retained messages outlive a test)."""
    return f"memory://test-{secrets.token_hex(4)}"


@pytest.fixture
async def memory_client(memory_url: str) -> AsyncIterator[MemoryTransport]:
    """A plain connected client of :func:`memory_url`'s broker, to watch topics and publish;
    its ``broker`` is the broker's object, to stop and start it."""
    async with open_transport(parse_broker_url(memory_url), client_id="client") as transport:
        assert isinstance(transport, MemoryTransport)
        await asyncio.wait_for(transport.wait_connected(), 1)
        yield transport
