"""Sends true on ``alarm`` when ``in`` rises above ``limit``, false when it falls back."""

from gateway.participant import Message, Participant, main


class ThresholdAlarm(Participant):
    def __init__(self, role: str) -> None:
        super().__init__(
            {
                "component": "demo/ThresholdAlarm",
                "label": "Alarm above a limit",
                "icon": "bell",
                "inports": [
                    {"id": "in", "type": "number"},
                    {"id": "limit", "type": "number", "description": "an IIP in the graph"},
                ],
                "outports": [{"id": "alarm", "type": "boolean"}],
            },
            role,
        )
        self.limit: float | None = None
        self.active: bool | None = None

    def process(self, inport: str, msg: Message) -> None:
        value = float(msg.data) if isinstance(msg.data, int | float | str) else None
        if inport == "limit":
            self.limit = value
        elif value is not None and self.limit is not None:
            active = value > self.limit
            if active != self.active:
                self.active = active
                self.send("alarm", active)
        self.ack(msg)


if __name__ == "__main__":
    raise SystemExit(main(ThresholdAlarm))
