"""``./bootstrap.sh demo``: a live msgflo network on a private broker, nothing to configure.

Starts its own Mosquitto on a free loopback port and runs two participants that talk to each
other: a simulated thermometer that publishes readings, and a threshold alarm that listens to
them and reports when a reading crosses its limit. Everything said on the broker is printed.
Until the coordinator exists the alarm's inport is wired to the thermometer's outport topic by
hand, the way hard-wired msgflo deployments do it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
from collections.abc import Sequence

from gateway.broker import parse_broker_url
from gateway.mosquitto import Mosquitto
from gateway.participant import Message, Participant, serve
from gateway.participant.engine import until_signalled
from gateway.transport.base import Delivery
from gateway.transport.mqtt import MqttTransport


class Thermometer(Participant):
    """A simulated temperature sensor: a slow sine wave with noise, one reading per interval."""

    def __init__(self, role: str, interval: float, rng: random.Random) -> None:
        super().__init__(
            {
                "component": "demo/Thermometer",
                "label": "Simulated temperature sensor",
                "icon": "thermometer",
                "inports": [],
                "outports": [{"id": "temperature", "type": "number"}],
            },
            role,
        )
        self.interval = interval
        self.rng = rng

    async def started(self) -> None:
        step = 0
        while True:
            reading = 21.0 + 4.0 * math.sin(step / 5) + self.rng.uniform(-0.3, 0.3)
            self.send("temperature", round(reading, 2))
            step += 1
            await asyncio.sleep(self.interval)


class ThresholdAlarm(Participant):
    """Sends ``true`` on ``alarm`` when the input rises above ``limit``, ``false`` when it falls."""

    def __init__(self, role: str, source_topic: str, limit: float) -> None:
        super().__init__(
            {
                "component": "demo/ThresholdAlarm",
                "label": "Alarm above a temperature limit",
                "icon": "bell",
                "inports": [{"id": "in", "type": "number", "queue": source_topic}],
                "outports": [{"id": "alarm", "type": "boolean"}],
            },
            role,
        )
        self.limit = limit
        self.active: bool | None = None

    def process(self, inport: str, msg: Message) -> None:
        if isinstance(msg.data, int | float):
            active = msg.data > self.limit
            if active != self.active:
                self.active = active
                self.send("alarm", active)
        self.ack(msg)


def describe(delivery: Delivery) -> str:
    if delivery.topic == "fbp":
        payload = json.loads(delivery.payload)["payload"]
        ports = [p["id"] for p in payload["inports"]], [p["id"] for p in payload["outports"]]
        return f"discovery: {payload['role']} ({payload['component']}) in={ports[0]} out={ports[1]}"
    return f"{delivery.topic}: {delivery.payload.decode(errors='replace')}"


async def watch(url: str) -> None:
    """Print everything on the broker, as ``msgflo-dump-message`` would one message at a time."""
    async with MqttTransport(parse_broker_url(url), client_id="demo-monitor") as transport:
        await transport.subscribe("#", lambda d: print("  " + describe(d), flush=True))
        await asyncio.Event().wait()


async def demo(url: str, interval: float, duration: float | None) -> None:
    thermometer = Thermometer("thermometer", interval, random.Random(7))
    source_topic = thermometer.spec.outports[0].queue
    alarm = ThresholdAlarm("alarm", source_topic, limit=23.0)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration), asyncio.TaskGroup() as tasks:
            tasks.create_task(watch(url))
            await asyncio.sleep(0.2)  # let the monitor subscribe before anyone speaks
            tasks.create_task(serve([thermometer, alarm], url, discovery_period=30))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="msgflo-gateway-demo", description=__doc__)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    args = parser.parse_args(argv)
    with Mosquitto() as broker:
        print(f"msgflo-gateway demo: private Mosquitto at {broker.url}")
        print(f"  watch it yourself:  msgflo-dump-message --broker {broker.url} --queue fbp")
        print("  (the web dashboard arrives with the coordinator; Ctrl-C stops the demo)")
        print(flush=True)
        asyncio.run(until_signalled(demo(broker.url, args.interval, args.duration)))
    print("demo stopped")
    return 0
