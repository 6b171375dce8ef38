"""The participant API, compatible with msgflo-python's ``msgflo.Participant``.

Subclass :class:`Participant` and override :meth:`Participant.process` (sync or ``async def``),
or pass ``process=`` to the constructor. ``send``, ``ack`` and ``nack`` work as in msgflo-python,
without its bugs: ``send`` before the participant runs is held until it does instead of raising,
and participants without inports still announce themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any

from gateway.participant.definition import (
    Json,
    ParticipantDefinition,
    QueueNaming,
    from_dict,
)
from gateway.participant.payload import Message, Raw
from gateway.participant.runtime import ParticipantRuntime, ProcessFn, RuntimeStats
from gateway.transport.base import Transport

log = logging.getLogger(__name__)

MAX_HELD = 1000  # messages sent before the participant runs that are kept for it


class Participant:
    """A msgflo participant. ``definition`` is a msgflo-python dict or a built definition."""

    def __init__(
        self,
        definition: Mapping[str, Any] | ParticipantDefinition,
        role: str | None = None,
        *,
        naming: QueueNaming = QueueNaming.PYTHON,
        process: ProcessFn | None = None,
        shared: bool | str = False,
    ) -> None:
        if isinstance(definition, ParticipantDefinition):
            spec = definition
        else:
            spec = from_dict(definition, role, naming=naming)
        self.spec: ParticipantDefinition = spec
        # msgflo-python exposes the normalized definition as a dict; programs read it.
        self.definition: dict[str, Any] = spec.to_discovery()
        self._process_fn = process
        self.shared: str | None = None
        if shared:
            self.share(shared if isinstance(shared, str) else None)
        self._runtime: ParticipantRuntime | None = None
        self._held: list[tuple[str, Json | Raw]] = []
        self._ready = False

    def share(self, group: str | None = None) -> None:
        """Share the inports' messages with the other participants of this role (load
        balancing): each message goes to one of them. ``group`` names who shares (default: the
        role). On MQTT this needs an MQTT 5 connection (:func:`serve` opens one) and a broker
        with shared subscriptions (Mosquitto 2); on AMQP the role's participants share the
        inport queue whether or not this is called."""
        self.shared = group or share_name(self.role)

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def stats(self) -> RuntimeStats:
        """Message counters of the running participant (zeros before it runs)."""
        return self._runtime.stats if self._runtime is not None else RuntimeStats()

    def process(self, inport: str, msg: Message) -> Awaitable[None] | None:
        """Handle ``msg`` from ``inport``: call :meth:`send`, then :meth:`ack` or :meth:`nack`."""
        if self._process_fn is None:
            raise NotImplementedError(f"{type(self).__name__}.process() is not implemented")
        return self._process_fn(inport, msg)

    def started(self) -> Awaitable[None] | None:
        """Called once, after the participant first announced itself. Override it to run a
        source (may be ``async`` and run for the participant's whole life)."""
        return None

    def send(self, outport: str, data: Json | Raw) -> None:
        """Send on ``outport``: JSON-encoded, or byte-for-byte when wrapped in :class:`Raw`."""
        if self._runtime is None or not self._ready:
            if len(self._held) >= MAX_HELD:
                log.warning("%s: not running yet, dropped output on %r", self.role, outport)
                return
            self._held.append((outport, data))
            return
        self._runtime.send(outport, data)

    def ack(self, msg: Message) -> None:
        """Acknowledge ``msg`` now (AMQP); the runtime acks it anyway once process returned."""
        if self._runtime is not None:
            self._runtime.ack(msg)

    def nack(self, msg: Message) -> None:
        """Reject ``msg`` (AMQP: dead-letter it to ``dead-<queue>``); raising in process does
        the same."""
        if self._runtime is not None:
            self._runtime.nack(msg)

    async def run_on(
        self,
        transport: Transport,
        *,
        discovery_period: float,
        iips: Mapping[str, Json] | None = None,
    ) -> None:
        """Run on ``transport`` until cancelled."""
        self._runtime = ParticipantRuntime(
            self.spec,
            self.process,
            transport,
            discovery_period=discovery_period,
            iips=iips,
            shared=self.shared,
        )
        try:
            await self._runtime.run(self._on_first_connect)
        finally:
            self._ready = False

    def _on_first_connect(self) -> Awaitable[None] | None:
        # Output sent before the first connection is held until now: QoS 0 would be lost.
        self._ready = True
        held, self._held = self._held, []
        for outport, data in held:
            self.send(outport, data)
        return self.started()


def share_name(role: str) -> str:
    """An MQTT 5 share name for ``role``: share names cannot hold ``/``, ``+`` or ``#``."""
    return "".join("_" if c in "/+#" else c for c in role)
