"""Limits that keep one client, or one address, from taking the runtime protocol server away
from everybody else; without sockets, with an injectable clock.

* :class:`ConnectionLimits` and :class:`ConnectionGate`: at most ``max_connections`` open
  connections, at most ``max_per_peer`` of them from one address, and ``idle_timeout`` seconds
  from accepting a connection to its first authenticated message (the WebSocket handshake
  included). The server asks the gate before it keeps an accepted connection.
* :class:`AuthLimits` and :class:`AuthThrottle`: after ``max_failures`` wrong secrets from one
  address within ``window`` seconds, that address's attempts are refused for ``backoff``
  seconds without the secret being compared.
* :class:`ThrottledLog`: one line per kind of event and interval, so that a flood of refused
  connections or attempts costs a few lines, never one per event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

Clock: TypeAlias = Callable[[], float]  # seconds, monotonic

MAX_TRACKED_PEERS = 4096  # addresses whose failed attempts are remembered (oldest forgotten)


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections the server keeps, and for how long without authenticating."""

    max_connections: int = 64
    max_per_peer: int = 16
    idle_timeout: float = 10.0  # seconds from accept to the first authenticated message

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_per_peer < 1 or self.idle_timeout <= 0:
            raise ValueError(f"connection limits must be positive: {self}")


@dataclass(frozen=True)
class AuthLimits:
    """How many wrong secrets an address may send before it has to wait."""

    max_failures: int = 5
    window: float = 60.0  # seconds in which max_failures wrong secrets trip the back-off
    backoff: float = 60.0  # seconds during which that address's attempts are refused

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window <= 0 or self.backoff <= 0:
            raise ValueError(f"authentication limits must be positive: {self}")


class ThrottledLog:
    """Logs the first event of each ``key`` at once, then at most one line per ``interval``:
    events in between are counted and reported with the next line, or by a timer when the
    interval ends (when an event loop is running)."""

    def __init__(
        self, logger: logging.Logger, *, interval: float = 10.0, clock: Clock = time.monotonic
    ) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._windows: dict[str, float] = {}  # key -> end of its quiet interval
        self._suppressed: Counter[str] = Counter()
        self._last: dict[str, str] = {}  # key -> the last suppressed text, for the summary

    def event(self, key: str, text: str, level: int = logging.WARNING) -> None:
        now = self._clock()
        end = self._windows.get(key)
        if end is not None and now < end:
            if not self._suppressed[key]:
                self._flush_later(key, level, end - now)
            self._suppressed[key] += 1
            self._last[key] = text
            return
        more = self._suppressed.pop(key, 0)
        self._last.pop(key, None)
        suffix = f" (and {more} more like it before)" if more else ""
        self._log.log(level, "%s%s", text, suffix)
        self._windows[key] = now + self._interval

    def _flush_later(self, key: str, level: int, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # reported with the next line of this key
        loop.call_later(max(delay, 0.0), self._flush, key, level)

    def _flush(self, key: str, level: int) -> None:
        more = self._suppressed.pop(key, 0)
        last = self._last.pop(key, "")
        if more:
            self._log.log(level, "%d more in the last %g s like: %s", more, self._interval, last)


class ConnectionGate:
    """Counts open connections by address; says whether one more may stay."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: dict[object, str] = {}  # connection key -> peer address
        self._per_peer: Counter[str] = Counter()

    def refusal(self, peer: str) -> str | None:
        """Why a new connection from ``peer`` must be refused, or ``None`` to keep it."""
        if len(self._open) >= self.limits.max_connections:
            return f"{len(self._open)} connections open, the most allowed (max_connections)"
        if self._per_peer[peer] >= self.limits.max_per_peer:
            return f"{self._per_peer[peer]} connections open from it (max_per_peer)"
        return None

    def opened(self, key: object, peer: str) -> None:
        """Count connection ``key`` (a key seen again replaces its old entry)."""
        self.closed(key)
        self._open[key] = peer
        self._per_peer[peer] += 1

    def closed(self, key: object) -> None:
        peer = self._open.pop(key, None)
        if peer is not None:
            self._per_peer[peer] -= 1
            if self._per_peer[peer] <= 0:
                del self._per_peer[peer]

    def __len__(self) -> int:
        return len(self._open)

    def from_peer(self, peer: str) -> int:
        return self._per_peer[peer]


@dataclass
class _Peer:
    failures: deque[float]
    blocked_until: float = 0.0


class AuthThrottle:
    """Failed secret attempts per address, and the back-off they earn."""

    def __init__(self, limits: AuthLimits | None = None, *, clock: Clock = time.monotonic):
        self.limits = limits or AuthLimits()
        self._clock = clock
        self._peers: dict[str, _Peer] = {}

    def blocked(self, peer: str) -> float:
        """Seconds ``peer`` must still wait before its attempts are checked again (0: none)."""
        found = self._peers.get(peer)
        if found is None:
            return 0.0
        return max(found.blocked_until - self._clock(), 0.0)

    def failed(self, peer: str) -> bool:
        """Count a wrong secret from ``peer``; True when this one starts its back-off."""
        now = self._clock()
        found = self._peers.pop(peer, None)  # re-inserted last: the dict stays oldest first
        if found is None:
            found = _Peer(deque(maxlen=self.limits.max_failures))
        self._peers[peer] = found
        self._forget_old()
        failures = found.failures
        while failures and now - failures[0] > self.limits.window:
            failures.popleft()
        failures.append(now)
        if len(failures) >= self.limits.max_failures:
            failures.clear()
            found.blocked_until = now + self.limits.backoff
            return True
        return False

    def succeeded(self, peer: str) -> None:
        """``peer`` knew the secret: its earlier failures are forgotten."""
        self._peers.pop(peer, None)

    def _forget_old(self) -> None:
        while len(self._peers) > MAX_TRACKED_PEERS:
            del self._peers[next(iter(self._peers))]
