"""Participants for wiring tests (a relay that shows the path a message took, a source) and
running them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from gateway.broker import parse_broker_url
from gateway.participant import Message, Participant, serve
from tests.support.tasks import background
from tests.support.wait import until


class Relay(Participant):
    """Passes input on, suffixed with its role: shows the path a message took."""

    def __init__(self, role: str) -> None:
        super().__init__({"component": "Relay"}, role)

    def process(self, inport: str, msg: Message) -> None:
        self.send("out", f"{msg.data}>{self.role}")


def source(role: str, port: str = "out") -> Participant:
    """A participant without inports that sends what the test makes it send on ``port``."""
    return Participant({"component": "Source", "inports": [], "outports": [{"id": port}]}, role)


@contextlib.asynccontextmanager
async def serving(
    url: str, participants: Sequence[Participant], **options: Any
) -> AsyncIterator[None]:
    """Run ``participants`` on ``url`` (:func:`gateway.participant.serve` with ``options``)
    for the block, which starts once each has announced itself."""
    async with background(serve(participants, parse_broker_url(url), **options)):
        await until(lambda: all(p.stats.announced for p in participants), what="announcing")
        yield
