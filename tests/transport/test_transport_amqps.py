"""amqps:// against the session RabbitMQ's TLS listener, with a CA generated for the session:
participants and the coordinator over TLS, client certificates, refusals and their messages."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.broker import parse_broker_url
from gateway.coordinator.amqp_binder import AmqpBinder
from gateway.errors import BrokerUrlError
from gateway.graph import parse_fbp
from gateway.transport.amqp import AmqpTransport
from tests.coordinator.test_amqp_coordinator import (
    Collect,
    Repeat,
    arrived,
    bound,
    coordinating,
    sender,
    unique,
)
from tests.interop.support import our_participants as participants
from tests.support.amqp_broker import RabbitMQ
from tests.support.certs import make_pki
from tests.transport.test_transport_amqp import FAST

pytestmark = pytest.mark.integration


def verified(rabbitmq: RabbitMQ, *, client_cert: bool = False) -> str:
    """The TLS URL trusting the session's CA, optionally presenting its client certificate."""
    pki = rabbitmq.pki
    query = f"ca_certs={pki.ca}"
    if client_cert:
        query += f"&certfile={pki.client_cert}&keyfile={pki.client_key}"
    return rabbitmq.tls_url(query)


def tls_connections(rabbitmq: RabbitMQ) -> dict[str, tuple[str, str, str]]:
    """Connection name -> (ssl, peer certificate subject, heartbeat) as the broker sees them."""
    out = rabbitmq.ctl(
        "list_connections", "client_properties", "ssl", "peer_cert_subject", "timeout"
    )
    found = {}
    for line in out.splitlines():
        properties, ssl, subject, heartbeat = line.rsplit("\t", 3)
        for name in properties.split('"'):  # {"connection_name",longstr,"<name>"} among others
            if name.startswith("amqps-"):
                found[name] = (ssl, subject, heartbeat)
    return found


async def test_participant_and_coordinator_over_amqps(rabbitmq: RabbitMQ) -> None:
    a, b = unique("tls-a"), unique("tls-b")
    url = verified(rabbitmq)
    sink = Collect(b)
    g = parse_fbp(f"{a}(Repeat) OUT -> IN {b}(Collect)")
    async with participants(url, Repeat(a), sink), coordinating(url, g) as coordinator:
        assert isinstance(coordinator.binder, AmqpBinder)
        await bound(coordinator, 1)
        async with sender(url) as send:
            send.publish(f"{a}/in", b'{"secure": true}')
            assert await arrived(sink, 1) == [{"secure": True}]


async def test_client_certificate_and_heartbeat_reach_the_broker(rabbitmq: RabbitMQ) -> None:
    url = parse_broker_url(verified(rabbitmq, client_cert=True) + "&heartbeat=17")
    async with AmqpTransport(url, client_id="amqps-client-cert", backoff=FAST) as transport:
        await asyncio.wait_for(transport.wait_connected(), 10)
        seen = await asyncio.to_thread(tls_connections, rabbitmq)
    assert seen["amqps-client-cert"] == ("true", "CN=client", "17")


async def test_broker_certificate_from_another_ca_is_refused_and_retried(
    rabbitmq: RabbitMQ, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = make_pki(tmp_path, ca_name="some other CA")
    url = parse_broker_url(rabbitmq.tls_url(f"ca_certs={other.ca}"))
    async with AmqpTransport(url, client_id="amqps-wrong-ca", backoff=FAST) as transport:
        await asyncio.sleep(1.0)
        assert not transport.connected
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert failures and "certificate verify failed" in failures[0]
    assert "retry in" in failures[0]
    assert rabbitmq.password not in " ".join(failures)
    assert not [r for r in caplog.records if r.exc_info]


def test_missing_ca_file_is_a_one_line_url_error_at_start(tmp_path: Path) -> None:
    url = parse_broker_url(f"amqps://u:hunter2@127.0.0.1:5671/?ca_certs={tmp_path / 'nope.pem'}")
    with pytest.raises(BrokerUrlError) as err:
        AmqpTransport(url)
    message = str(err.value)
    assert "TLS setup failed" in message and "amqps://u@127.0.0.1:5671" in message
    assert "\n" not in message and "hunter2" not in message
