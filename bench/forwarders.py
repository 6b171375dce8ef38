"""The forwarders of ``bench.mqtt_clients``, one per process:
``python -m bench.forwarders KIND URL TOPIC_A TOPIC_B`` with KIND ``paho``, ``gmqtt``, ``own`` or
``floor`` / ``floorbuf`` (the least a Python asyncio forwarder can do, with ``asyncio.Protocol`` /
``asyncio.BufferedProtocol``, for reference).

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

KINDS = ("paho", "gmqtt", "own", "floor", "floorbuf")
READ_BUFFER = 65_536  # bytes read at most per wake-up by the buffered floor
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
    """``open_transport``'s MQTT client; for ``--ours-commit`` of a revision from before the
    one client (issue 14), where that was paho-based, the coordinator's ``FastMqttTransport``
    of that revision, so "before" can be measured the same way."""
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


def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (128 if value else 0))
        if not value:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


class FloorProtocol(asyncio.Protocol):
    """The least an asyncio MQTT 5 forwarder can do per message: split the bytes into packets,
    re-frame each QoS 0 PUBLISH for topic B, write what one read produced in one write. No
    QoS > 0, no keep-alive, no reconnect: the floor to compare a real client with."""

    def __init__(self, topic_a: str, topic_b: str, subscribed: asyncio.Event) -> None:
        self.topic_a, self.topic_b, self.subscribed = topic_a, topic_b, subscribed
        self.head = _string(topic_b) + b"\x00"  # topic B, no properties
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        connect = _string("MQTT") + bytes([5, 0x02, 0, 0, 0]) + _string("bench-forward-floor")
        subscribe = (1).to_bytes(2, "big") + b"\x00" + _string(self.topic_a) + b"\x04"  # no local
        transport.write(_packet(0x10, connect) + _packet(0x82, subscribe))

    def data_received(self, data: bytes | bytearray) -> None:
        buffer = self.buffer
        buffer += data
        out = bytearray()
        pos = 0
        while (frame := _frame(buffer, pos)) is not None:
            body, end = frame
            kind = buffer[pos] >> 4
            if kind == 3:  # PUBLISH
                start = body + 2 + int.from_bytes(buffer[body : body + 2], "big")
                if buffer[pos] & 0x06:
                    start += 2  # a packet id (QoS > 0; not asked for)
                props, start = _read_varint(buffer, start)
                payload = buffer[start + props : end]
                out.append(0x30)
                out += _varint(len(self.head) + len(payload))
                out += self.head
                out += payload
            elif kind == 9:  # SUBACK
                self.subscribed.set()
            pos = end
        del buffer[:pos]
        if out and self.transport is not None:
            self.transport.write(out)


def _read_varint(buffer: bytearray, pos: int) -> tuple[int, int]:
    """A variable byte integer at ``pos`` (complete): its value and the position after it."""
    value, shift = 0, 0
    while True:
        byte = buffer[pos]
        pos += 1
        value |= (byte & 127) << shift
        shift += 7
        if not byte & 128:
            return value, pos


def _frame(buffer: bytearray, pos: int) -> tuple[int, int] | None:
    """Where the packet at ``pos`` has its body and ends, or None while it is incomplete."""
    size = len(buffer)
    for i in range(pos + 1, min(pos + 5, size)):
        if not buffer[i] & 128:
            length, body = _read_varint(buffer, pos + 1)
            return (body, body + length) if body + length <= size else None
    return None


class BufferedFloorProtocol(FloorProtocol, asyncio.BufferedProtocol):
    """The floor, reading into one reused buffer (``sock.recv_into``) instead of the new
    256 KiB bytes object ``asyncio.Protocol`` gets per read (which glibc serves with mmap,
    mremap and munmap, and a page fault, while its mmap threshold is at the default)."""

    def __init__(self, topic_a: str, topic_b: str, subscribed: asyncio.Event) -> None:
        super().__init__(topic_a, topic_b, subscribed)
        self.space = bytearray(READ_BUFFER)
        self.view = memoryview(self.space)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.space[:nbytes])


async def forward_floor(url: str, topic_a: str, topic_b: str, *, buffered: bool = False) -> None:
    parts = urlsplit(url)
    subscribed = asyncio.Event()
    protocol = BufferedFloorProtocol if buffered else FloorProtocol
    transport, _ = await asyncio.get_running_loop().create_connection(
        lambda: protocol(topic_a, topic_b, subscribed),
        parts.hostname or "127.0.0.1",
        parts.port or 1883,
    )
    try:
        await asyncio.wait_for(subscribed.wait(), START_TIMEOUT)
        print(f"ready bench.forwarders.{protocol.__name__}", flush=True)
        await until_terminated()
    finally:
        transport.close()


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
    elif kind in ("floor", "floorbuf"):
        asyncio.run(forward_floor(url, topic_a, topic_b, buffered=kind == "floorbuf"))
    else:
        asyncio.run(forward_own(url, topic_a, topic_b))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in KINDS:
        raise SystemExit(f"usage: python -m bench.forwarders {'|'.join(KINDS)} URL TOPIC_A TOPIC_B")
    child_main(*sys.argv[1:])
