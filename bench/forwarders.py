"""The forwarders of ``bench.mqtt_clients``, one per process:
``python -m bench.forwarders KIND URL TOPIC_A TOPIC_B`` with KIND ``paho``, ``gmqtt`` or ``own``.

Each connects with MQTT 5, subscribes to A with ``no_local`` and publishes every message from A
unchanged to B at QoS 0, as the coordinator does for an edge; it prints ``ready CLASS`` once
subscribed and runs until SIGTERM (or ``CHILD_LIFE`` s). Only the standard library is imported
at the top, so that the RSS measured is the client's: each forwarder imports its client alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

START_TIMEOUT = 20.0  # s for a forwarder process to connect and subscribe
CHILD_LIFE = 900.0  # s a forwarder process lives at most


def nodelay(sock: Any) -> None:
    """TCP_NODELAY (asyncio sets it on its TCP sockets itself; paho 2.2 does not)."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def forward_paho(url: str, topic_a: str, topic_b: str) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.subscribeoptions import SubscribeOptions

    parts = urlsplit(url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-forward-paho", protocol=paho.MQTTv5
    )

    def on_connect(c: paho.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        nodelay(c.socket())  # paho 2.2 leaves Nagle on; gmqtt (asyncio) and ours turn it off
        c.subscribe(topic_a, options=SubscribeOptions(qos=0, noLocal=True))

    def on_subscribe(c: paho.Client, u: Any, mid: int, codes: Any, p: Any) -> None:
        print("ready paho.mqtt.client.Client", flush=True)

    def on_message(c: paho.Client, u: Any, message: paho.MQTTMessage) -> None:
        c.publish(topic_b, message.payload, 0)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    signal.signal(signal.SIGTERM, lambda *_: client.disconnect())
    signal.alarm(int(CHILD_LIFE))
    client.loop_forever()


async def forward_gmqtt(url: str, topic_a: str, topic_b: str) -> None:
    import gmqtt

    parts = urlsplit(url)
    client = gmqtt.Client("bench-forward-gmqtt")
    subscribed = asyncio.Event()

    def on_message(c: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        c.publish(topic_b, payload, qos=0)
        return 0

    def on_subscribe(c: Any, mid: int, qos: Any, properties: Any) -> None:
        subscribed.set()

    client.on_message = on_message
    client.on_subscribe = on_subscribe
    await client.connect(
        parts.hostname or "127.0.0.1", parts.port or 1883, version=gmqtt.constants.MQTTv50
    )
    client.subscribe(gmqtt.Subscription(topic_a, qos=0, no_local=True))
    await asyncio.wait_for(subscribed.wait(), START_TIMEOUT)
    print("ready gmqtt.Client", flush=True)
    await until_terminated()
    await client.disconnect()


def own_transport(url: str) -> Any:
    """``open_transport``'s MQTT client, or, while that is still the paho-based one, the
    coordinator's ``FastMqttTransport`` (as long as it exists)."""
    from gateway.broker import parse_broker_url
    from gateway.transport import open_transport

    broker = parse_broker_url(url)
    transport = open_transport(broker, client_id="bench-forward-own")
    source = Path(sys.modules[type(transport).__module__].__file__ or "")
    if "import paho" in source.read_text():
        try:
            from gateway.transport.mqtt5_fast import (  # type: ignore[import-not-found,unused-ignore]
                FastMqttTransport,
            )
        except ImportError:
            return transport
        return FastMqttTransport(broker, client_id="bench-forward-own")
    return transport


async def forward_own(url: str, topic_a: str, topic_b: str) -> None:
    from gateway.transport import Delivery

    transport = own_transport(url)
    async with transport:
        await asyncio.wait_for(transport.wait_connected(), START_TIMEOUT)
        publish = transport.publish

        def forward(delivery: Delivery) -> None:
            publish(topic_b, delivery.payload, qos=delivery.qos)

        await transport.subscribe(topic_a, forward, no_local=True)
        kind = type(transport)
        print(f"ready {kind.__module__}.{kind.__qualname__}", flush=True)
        await until_terminated()


async def until_terminated() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), CHILD_LIFE)


def child_main(kind: str, url: str, topic_a: str, topic_b: str) -> None:
    if kind == "paho":
        forward_paho(url, topic_a, topic_b)
    elif kind == "gmqtt":
        asyncio.run(forward_gmqtt(url, topic_a, topic_b))
    else:
        asyncio.run(forward_own(url, topic_a, topic_b))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("paho", "gmqtt", "own"):
        raise SystemExit("usage: python -m bench.forwarders paho|gmqtt|own URL TOPIC_A TOPIC_B")
    child_main(*sys.argv[1:])
