"""The project's own MQTT client: a sans-I/O session (``session.py``) on a codec for MQTT 3.1.1
and 5 (``packets.py``), driven by asyncio (``client.py``). Open it with
:func:`gateway.transport.open_transport`; README.md says why it is not paho or gmqtt."""

from gateway.transport.base import Will
from gateway.transport.mqtt.client import MqttTransport, routing_filter, topic_matches

__all__ = ["MqttTransport", "Will", "routing_filter", "topic_matches"]
