"""A Repeat participant: whatever arrives on ``in`` is sent unchanged on ``out``.

msgflo-python examples/repeat.py repeat          # via the msgflo-python runner
python examples/repeat.py repeat --broker mqtt://127.0.0.1:1883
"""

from gateway.participant import Message, Participant, main


class Repeat(Participant):
    def __init__(self, role: str) -> None:
        definition = {
            "component": "PythonRepeat",
            "label": "Repeat input data without change",
            "inports": [{"id": "in", "type": "any"}],
            "outports": [{"id": "out", "type": "any"}],
        }
        super().__init__(definition, role)

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", msg.data)
        self.ack(msg)


if __name__ == "__main__":
    raise SystemExit(main(Repeat))
