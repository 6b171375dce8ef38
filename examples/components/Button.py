"""A simulated push button: someone presses it every few readings."""

import asyncio
import os
import random

from gateway.participant import Participant, main


class Button(Participant):
    def __init__(self, role: str) -> None:
        super().__init__(
            {
                "component": "demo/Button",
                "label": "Simulated push button",
                "icon": "hand-pointer-o",
                "inports": [],
                "outports": [{"id": "pressed", "type": "boolean"}],
            },
            role,
        )
        self.interval = float(os.environ.get("DEMO_INTERVAL", "1.0"))

    async def started(self) -> None:
        while True:
            await asyncio.sleep(self.interval * random.uniform(2, 4))
            self.send("pressed", True)


if __name__ == "__main__":
    raise SystemExit(main(Button))
