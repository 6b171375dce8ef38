"""A runtime protocol server that runs out of file descriptors, for ``test_limits``.

Run as ``python -m tests.runtime_protocol.emfile_runtime SPARE IDLE``: serves the protocol core
(on the fake environment of the core's tests) with the secret ``SECRET``, connection limits too
high to matter and an idle timeout of IDLE seconds, then lowers its open-files limit to what it
has open plus SPARE, prints its port and serves until its stdin closes. It logs to stderr. It
runs on uvloop, as the daemons do (:func:`gateway.common.signals.run_daemon`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys

import uvloop

from gateway.runtime_protocol.core import ProtocolCore
from gateway.runtime_protocol.limits import ConnectionLimits
from gateway.runtime_protocol.server import RuntimeServer, ServerInfo
from tests.runtime_protocol.conftest import INFO, SECRET, FakeEnvironment


async def serve(spare: int, idle: float) -> None:
    limits = ConnectionLimits(max_connections=10_000, max_per_peer=10_000, idle_timeout=idle)
    server = RuntimeServer("127.0.0.1", 0, ServerInfo("emfile"), secret=SECRET, limits=limits)
    core = ProtocolCore(FakeEnvironment(), INFO, SECRET, server.send)
    async with asyncio.TaskGroup() as tasks:
        running = [tasks.create_task(core.run()), tasks.create_task(server.serve(core))]
        await server.ready.wait()
        in_use = len(os.listdir("/proc/self/fd"))
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + spare, hard))
        print(server.port, flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the test closes it
        for task in running:
            task.cancel()


def main() -> None:
    logging.basicConfig(
        level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    uvloop.run(serve(int(sys.argv[1]), float(sys.argv[2])))


if __name__ == "__main__":
    main()
