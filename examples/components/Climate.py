"""A simulated temperature and humidity sensor: slow waves with a little noise."""

import asyncio
import math
import os
import random

from gateway.participant import Participant, main


class Climate(Participant):
    def __init__(self, role: str) -> None:
        super().__init__(
            {
                "component": "demo/Climate",
                "label": "Simulated temperature and humidity sensor",
                "icon": "thermometer",
                "inports": [],
                "outports": [
                    {"id": "temperature", "type": "number", "description": "degrees Celsius"},
                    {"id": "humidity", "type": "number", "description": "percent"},
                ],
            },
            role,
        )
        self.interval = float(os.environ.get("DEMO_INTERVAL", "1.0"))

    async def started(self) -> None:
        step = 0
        while True:
            self.send(
                "temperature", round(22 + 3 * math.sin(step / 6) + random.uniform(-0.2, 0.2), 1)
            )
            self.send("humidity", round(45 + 10 * math.cos(step / 9), 1))
            step += 1
            await asyncio.sleep(self.interval)


if __name__ == "__main__":
    raise SystemExit(main(Climate))
