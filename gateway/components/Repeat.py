"""core/Repeat: sends whatever arrives on ``in`` unchanged on ``out``."""

from gateway.participant import Message, Participant, main


class Repeat(Participant):
    def __init__(self, role: str) -> None:
        super().__init__(
            {
                "component": "core/Repeat",
                "label": "Repeats its input",
                "icon": "forward",
                "inports": [{"id": "in", "type": "all", "description": "data to repeat"}],
                "outports": [{"id": "out", "type": "all", "description": "the same data"}],
            },
            role,
        )

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", msg.data)
        self.ack(msg)


if __name__ == "__main__":
    raise SystemExit(main(Repeat))
