"""Broker transports behind one interface, chosen by the broker URL's scheme."""

from __future__ import annotations

from gateway.broker import BrokerUrl
from gateway.errors import BrokerUrlError
from gateway.transport.backoff import Backoff
from gateway.transport.base import Delivery, DeliveryHandler, Transport, Will

__all__ = ["Delivery", "DeliveryHandler", "Transport", "Will", "open_transport"]


def open_transport(
    url: BrokerUrl,
    *,
    client_id: str = "",
    will: Will | None = None,
    keepalive: int | None = None,
    session_expiry: int | None = None,
    backoff: Backoff | None = None,
) -> Transport:
    """A not-yet-connected transport for ``url``; use it with ``async with``. The only way
    the rest of the gateway makes one.

    ``client_id`` may hold ``%i`` (random hex digits). ``will``, ``keepalive`` (else the
    URL's ``keepAlive``) and ``session_expiry`` (else the URL's ``sessionExpiry``) are MQTT's;
    AMQP has no will (RabbitMQ tells nobody when a connection dies), keeps its queues by
    itself (durable ports) and takes its heartbeat from the URL's ``heartbeat``, so there they
    are ignored. ``backoff`` paces reconnect attempts (tests shorten it).
    """
    if url.is_mqtt:
        # Imported here so that an AMQP-only deployment need not import the MQTT client (and
        # back: an MQTT-only one never imports aio-pika).
        from gateway.transport.mqtt import MqttTransport

        return MqttTransport(
            url,
            client_id=client_id,
            will=will,
            keepalive=keepalive,
            session_expiry=session_expiry,
            backoff=backoff,
        )
    if url.scheme in ("amqp", "amqps"):
        from gateway.transport.amqp import AmqpTransport

        return AmqpTransport(url, client_id=client_id, backoff=backoff)
    if url.scheme == "memory":
        from gateway.transport.memory import MemoryTransport

        return MemoryTransport(url, client_id=client_id, will=will)
    raise BrokerUrlError(
        str(url), f"{url.scheme}:// is not supported by this version (use mqtt:// or amqp://)"
    )
