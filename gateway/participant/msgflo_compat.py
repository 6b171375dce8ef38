"""A stand-in for PyPI ``msgflo`` 0.4.1, so existing participant files run unmodified.

``msgflo-python FILE.py ROLE`` registers this module as ``msgflo`` before loading FILE.py, so
``import msgflo`` / ``msgflo.Participant`` / ``msgflo.main`` in those files resolve here.
Differences from the original: ``run()`` blocks until stopped (there is no gevent loop to return
to), and programs that use gevent directly need porting (see docs/participant.md).
"""

from __future__ import annotations

import sys

from gateway.participant.engine import main, run
from gateway.participant.participant import Participant
from gateway.participant.payload import Message

__all__ = ["Message", "Participant", "install", "main", "run"]


def install() -> None:
    """Make ``import msgflo`` return this module in the current process."""
    sys.modules["msgflo"] = sys.modules[__name__]
