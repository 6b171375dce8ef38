"""Capped, jittered exponential backoff for reconnect loops (pure)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (0-based): ``initial * factor**n`` capped at
    ``maximum``, then reduced by a random fraction of up to ``jitter`` so that many devices that
    lost the broker together do not all come back in the same instant."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        exponent = min(max(attempt, 0), 64)  # past this the cap holds anyway; avoids overflow
        base = min(self.maximum, self.initial * self.factor**exponent)
        return base * (1.0 - self.jitter * rng())
