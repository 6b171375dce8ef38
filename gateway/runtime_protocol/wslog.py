"""Loggers for websockets that never show a frame.

websockets logs every frame it sends or receives at DEBUG (the first 75 characters, where the
runtime secret sits) and one line per connection at INFO. With debug logging on, that put the
secret in the log. The server and the client give websockets a :class:`QuietLogger`, which
passes on its warnings and errors only.
"""

from __future__ import annotations

import logging


class QuietLogger(logging.LoggerAdapter[logging.Logger]):
    """``logger`` with everything below WARNING dropped, whatever the configured level."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (overrides logging's name)
        return level >= logging.WARNING and self.logger.isEnabledFor(level)


def quiet(name: str) -> QuietLogger:
    return QuietLogger(logging.getLogger(name), {})
