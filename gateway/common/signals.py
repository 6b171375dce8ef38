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
import logging
import os
import signal
import socket
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


def notify_ready() -> None:
    """Tell systemd the service is ready (``READY=1``) when a unit of ``Type=notify`` started
    it (systemd then sets ``$NOTIFY_SOCKET``); nothing otherwise. The units ordered after it
    start only then (the appliance's bridges after the coordinator's runtime listens). The
    protocol is one datagram on a Unix socket, so no library (python-systemd, sdnotify) for it.
    A failure is logged: systemd then stops the unit when its start times out."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(b"READY=1")
    except OSError as exc:
        logging.getLogger("gateway").error("could not tell systemd the service is ready: %s", exc)
