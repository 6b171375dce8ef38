"""Debouncing an input (pure): raw edges in, settled levels out.

gpiozero hands ``bounce_time`` to the pin library, and each does something else with it: lgpio
waits for the level to be stable that long, RPi.GPIO ignores edges for that long after one
(and can lose the release that ends a bounce, leaving a graph with a button held for ever),
and the mock pins ignore it. So the bridge debounces itself, the same on every pin factory,
and opens gpiozero's devices without a bounce time.

The first edge after a quiet input is reported at once (a press is felt without delay), then
the input is quiet for ``bounce`` seconds: edges within it only change what the level is. When
the quiet time ends (:meth:`Debouncer.settle`, called by the driver at the time it was given),
a level that differs from the one reported is reported and starts another quiet time. So any
burst of bounces is one change, and the level reported last is always the pin's own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """What to do after an edge or a settle: report ``level`` (None: nothing), and call
    :meth:`Debouncer.settle` at ``wake`` (None: no call needed)."""

    level: bool | None = None
    wake: float | None = None


class Debouncer:
    def __init__(self, bounce: float | None, level: bool = False) -> None:
        self.bounce = bounce or 0.0
        self.reported = level
        self.quiet_until = float("-inf")

    def edge(self, level: bool, now: float) -> Step:
        """The pin is at ``level`` now."""
        if now < self.quiet_until or level == self.reported:
            return Step()  # a settle is due and will look at the pin then
        return self._report(level, now)

    def settle(self, level: bool, now: float) -> Step:
        """The quiet time has ended and the pin is at ``level``. The loop may call this a
        clock tick early: it ends the quiet time whatever ``now`` says, so no later edge is
        taken for a bounce with no settle to follow it."""
        self.quiet_until = float("-inf")
        if level == self.reported:
            return Step()
        return self._report(level, now)

    def _report(self, level: bool, now: float) -> Step:
        self.reported = level
        if self.bounce <= 0:
            return Step(level)
        self.quiet_until = now + self.bounce
        return Step(level, self.quiet_until)
