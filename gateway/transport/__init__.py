"""Broker transports behind one interface, chosen by the broker URL's scheme."""

from __future__ import annotations

from gateway.broker import BrokerUrl
from gateway.errors import BrokerUrlError
from gateway.transport.base import Delivery, DeliveryHandler, Transport

__all__ = ["Delivery", "DeliveryHandler", "Transport", "open_transport"]


def open_transport(url: BrokerUrl, *, client_id: str = "") -> Transport:
    """A not-yet-connected transport for ``url``; use it with ``async with``."""
    if url.is_mqtt:
        # Imported here so that a future AMQP-only deployment need not import paho (and back).
        from gateway.transport.mqtt import MqttTransport

        return MqttTransport(url, client_id=client_id)
    if url.scheme in ("amqp", "amqps"):
        from gateway.transport.amqp import AmqpTransport

        return AmqpTransport(url, client_id=client_id)
    if url.scheme == "memory":
        from gateway.transport.memory import MemoryTransport

        return MemoryTransport(url, client_id=client_id)
    raise BrokerUrlError(
        str(url), f"{url.scheme}:// is not supported by this version (use mqtt:// or amqp://)"
    )
