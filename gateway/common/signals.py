"""How a long-running tool runs: on uvloop's event loop, until SIGINT (Ctrl-C) or SIGTERM
(systemd), which cancel its main task, so ``async with`` blocks close connections and stop
children on the way out.

uvloop, not asyncio's own loop: when messages arrive one at a time (sensor data), most of a
forwarded message's CPU is the event loop's wake-up, read and write, and uvloop's cost about
half of asyncio's (bench/RESULTS.md, "One message at a time"). The library stays plain asyncio
(tests run it on asyncio's loop); only the daemons' entry points choose the loop, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any

import uvloop


def run_daemon(main: Coroutine[Any, Any, None]) -> None:
    """Blocking: run ``main`` on a uvloop event loop until it returns or a signal stops it."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_until_signalled(main))


async def _until_signalled(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` until it returns or SIGINT/SIGTERM arrives, which cancels it cleanly."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
