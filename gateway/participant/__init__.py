"""The Python participant library: join a msgflo network from any Python program.

from gateway.participant import Participant, run

class Repeat(Participant):
    def __init__(self, role):
        super().__init__({"component": "Repeat", "inports": [{"id": "in"}],
                          "outports": [{"id": "out"}]}, role)

    def process(self, inport, msg):
        self.send("out", msg.data)
        self.ack(msg)

run(Repeat("repeat"), "mqtt://localhost")
"""

from gateway.participant.definition import (
    ParticipantDefinition,
    PortDefinition,
    QueueNaming,
    define,
    from_dict,
)
from gateway.participant.discovery import encode_discovery, parse_discovery
from gateway.participant.engine import main, run, serve
from gateway.participant.participant import Participant
from gateway.participant.payload import Message, Raw

__all__ = [
    "Message",
    "Participant",
    "ParticipantDefinition",
    "PortDefinition",
    "QueueNaming",
    "Raw",
    "define",
    "encode_discovery",
    "from_dict",
    "main",
    "parse_discovery",
    "run",
    "serve",
]
