"""The dashboard's log: the last lines of participant output and coordinator warnings.

A bounded ring buffer (500 lines): a browser polls ``/api/log?after=<seq>`` and gets what came
after the last line it has. ``seq`` increases by one per line for the buffer's life, so a
browser that polled too rarely sees the gap instead of a silent loss.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

LOG_LINES = 500
COORDINATOR = "coordinator"  # the source of the coordinator's own warnings


@dataclass(frozen=True)
class LogLine:
    seq: int
    time: float  # epoch seconds
    source: str  # a role, or "coordinator"
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "source": self.source, "text": self.text}


class LogBuffer:
    """The newest ``size`` lines, each with a sequence number one higher than the last."""

    def __init__(self, size: int = LOG_LINES, clock: Callable[[], float] = time.time) -> None:
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=size)
        self._next = 1
        self._clock = clock

    def add(self, source: str, text: str) -> LogLine:
        line = LogLine(self._next, self._clock(), source, text)
        self._next += 1
        self._lines.append(line)
        return line

    def after(self, seq: int) -> list[LogLine]:
        """The kept lines with a sequence number above ``seq`` (all of them for 0)."""
        first = self._lines[0].seq if self._lines else self._next
        skip = max(0, seq - first + 1)
        return list(self._lines)[skip:]


class BufferHandler(logging.Handler):
    """Coordinator warnings into the buffer, as ``coordinator`` lines."""

    def __init__(self, buffer: LogBuffer, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.buffer = buffer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not break the caller's log call
            self.handleError(record)
            return
        self.buffer.add(COORDINATOR, f"{record.levelname.lower()}: {text}")


@contextlib.contextmanager
def warnings_into(buffer: LogBuffer, logger: str = "gateway") -> Iterator[BufferHandler]:
    """Feed ``logger``'s warnings into ``buffer`` for the block only (while the dashboard
    runs): a handler left behind would keep a dead dashboard's buffer growing."""
    handler = BufferHandler(buffer)
    target = logging.getLogger(logger)
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)
