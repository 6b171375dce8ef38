"""Started participants: run them, prefix their output, restart them, never leave them behind.

Each participant runs in its own process group (so stopping it also stops whatever it started)
with a parent-death signal (so it dies with the coordinator even after a ``kill -9``). A crash
is restarted with capped, jittered backoff; a participant that stayed up for a while starts
again from the shortest delay. The original started each process once and never restarted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from gateway.processes import with_parent_death_signal
from gateway.transport.backoff import Backoff

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
STABLE_AFTER = 30.0  # a run this long resets the restart backoff
RESTART_BACKOFF = Backoff(initial=1.0, maximum=60.0)


OutputFn = Callable[[str, str], None]  # (role, line)


def print_prefixed(role: str, line: str) -> None:
    print(f"[{role}] {line}", flush=True)


@dataclass(frozen=True)
class ProcessSpec:
    role: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ProcessStats:
    starts: int = 0
    crashes: int = 0
    pid: int | None = None


class Supervised:
    """One participant process, kept running until :meth:`run` is cancelled."""

    def __init__(
        self,
        spec: ProcessSpec,
        *,
        output: OutputFn | None = None,
        on_exit: OutputFn | None = None,
        backoff: Backoff = RESTART_BACKOFF,
    ) -> None:
        self.spec = spec
        self.stats = ProcessStats()
        self._output = output or print_prefixed
        self._on_exit = on_exit
        self._backoff = backoff

    async def run(self) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            status = await self._run_once()
            if time.monotonic() - started >= STABLE_AFTER:
                attempt = 0
            self.stats.crashes += 1
            delay = self._backoff.delay(attempt)
            attempt += 1
            log.warning("%s: %s; restarting in %.1f s", self.spec.role, status, delay)
            if self._on_exit is not None:
                self._on_exit(self.spec.role, status)
            await asyncio.sleep(delay)

    async def _run_once(self) -> str:
        env = {**os.environ, **self.spec.env}
        if shutil.which(self.spec.argv[0], path=env.get("PATH")) is None:
            return f"cannot start: command {self.spec.argv[0]!r} not found"
        try:
            process = await asyncio.create_subprocess_exec(
                *with_parent_death_signal(self.spec.argv),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return f"cannot start {self.spec.argv[0]!r}: {exc.strerror}"
        self.stats.starts += 1
        self.stats.pid = process.pid
        try:
            await self._forward(process)
            code = await process.wait()
        finally:
            await _stop_group(process)
            self.stats.pid = None
        return f"exited with status {code}" if code >= 0 else f"killed by signal {-code}"

    async def _forward(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            self._output(self.spec.role, raw.decode(errors="replace").rstrip("\n"))


async def _stop_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after a grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    if process.returncode is None:
        try:
            async with asyncio.timeout(STOP_GRACE):
                await process.wait()
        except TimeoutError:
            pass
    _signal_group(process.pid, signal.SIGKILL)  # leftovers in the group, if any
    if process.returncode is None:
        await process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Supervisor:
    """The started participants of one coordinator, by role; an async context manager."""

    def __init__(self, *, output: OutputFn | None = None, on_exit: OutputFn | None = None) -> None:
        self._output = output
        self._on_exit = on_exit
        self._group = asyncio.TaskGroup()
        self._running: dict[str, tuple[Supervised, asyncio.Task[None]]] = {}

    async def __aenter__(self) -> Self:
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for role in list(self._running):
            await self.stop(role)
        await self._group.__aexit__(exc_type, exc, tb)

    def start(self, spec: ProcessSpec) -> Supervised:
        if spec.role in self._running:
            return self._running[spec.role][0]
        supervised = Supervised(spec, output=self._output, on_exit=self._on_exit)
        task = self._group.create_task(supervised.run(), name=f"participant {spec.role}")
        self._running[spec.role] = (supervised, task)
        log.info("%s: starting %s", spec.role, " ".join(spec.argv))
        return supervised

    async def stop(self, role: str) -> None:
        entry = self._running.pop(role, None)
        if entry is None:
            return
        task = entry[1]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def roles(self) -> list[str]:
        return list(self._running)

    def get(self, role: str) -> Supervised | None:
        entry = self._running.get(role)
        return entry[0] if entry else None
