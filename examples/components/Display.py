"""A simulated LED and display: prints a status line whenever what it shows changes."""

from gateway.participant import Message, Participant, main


class Display(Participant):
    def __init__(self, role: str) -> None:
        super().__init__(
            {
                "component": "demo/Display",
                "label": "Simulated LED and display",
                "icon": "lightbulb-o",
                "inports": [
                    {"id": "led", "type": "boolean"},
                    {"id": "humidity", "type": "number"},
                    {"id": "pressed", "type": "boolean"},
                ],
                "outports": [],
            },
            role,
        )
        self.led = False
        self.humidity: float | None = None
        self.presses = 0

    def process(self, inport: str, msg: Message) -> None:
        if inport == "led":
            self.led = bool(msg.data)
        elif inport == "humidity":
            self.humidity = msg.data
        elif inport == "pressed":
            self.presses += 1
        humidity = "--" if self.humidity is None else f"{self.humidity}%"
        led = "ON " if self.led else "off"
        print(f"LED {led} | humidity {humidity} | button presses {self.presses}", flush=True)
        self.ack(msg)


if __name__ == "__main__":
    raise SystemExit(main(Display))
