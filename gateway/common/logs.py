"""Logging for a command-line tool or service: one format, the level from the environment.

Every tool reads the level from ``$MSGFLO_PYTHON_LOGLEVEL`` (the name msgflo-python gave it,
so deployed units keep working); started participants inherit it with the environment.
"""

from __future__ import annotations

import logging
import os

ENV_LOGLEVEL = "MSGFLO_PYTHON_LOGLEVEL"


def configure_logging() -> None:
    level = os.environ.get(ENV_LOGLEVEL, "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
