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
                    {"id": "temperature", "type": "number", "description": "the fridge's"},
                    {"id": "outside", "type": "number", "description": "the garden's"},
                ],
                "outports": [],
            },
            role,
        )
        self.led = False
        self.humidity: float | None = None
        self.presses = 0
        self.fridge: float | None = None
        self.outside: float | None = None

    def process(self, inport: str, msg: Message) -> None:
        if inport == "led":
            self.led = bool(msg.data)
        elif inport == "humidity":
            self.humidity = msg.data
        elif inport == "pressed":
            self.presses += 1
        elif inport == "temperature":
            self.fridge = msg.data
        elif inport == "outside":
            self.outside = msg.data
        humidity = "--" if self.humidity is None else f"{self.humidity}%"
        fridge = "--" if self.fridge is None else f"{self.fridge} C"
        outside = "--" if self.outside is None else f"{self.outside} C"
        led = "ON " if self.led else "off"
        print(
            f"LED {led} | humidity {humidity} | fridge {fridge} | outside {outside} | "
            f"button presses {self.presses}",
            flush=True,
        )
        self.ack(msg)


if __name__ == "__main__":
    raise SystemExit(main(Display))
