"""core/Drop: accepts anything on ``in`` and does nothing with it."""

from gateway.participant import Message, Participant, main


class Drop(Participant):
    def __init__(self, role: str) -> None:
        super().__init__(
            {
                "component": "core/Drop",
                "label": "Drops its input",
                "icon": "trash-o",
                "inports": [{"id": "in", "type": "all", "description": "data to drop"}],
                "outports": [],
            },
            role,
        )

    def process(self, inport: str, msg: Message) -> None:
        self.ack(msg)


if __name__ == "__main__":
    raise SystemExit(main(Drop))
