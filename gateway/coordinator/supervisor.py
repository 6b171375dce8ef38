"""Started participants: run them, prefix their output, restart them, never leave them behind.

Each participant runs under a keeper (:func:`gateway.keeper.kept`), in its own process
group: stopping it, or the coordinator dying even by ``kill -9``, sends SIGTERM to the
participant and everything it started (children that left the group with ``setsid`` or a double
fork included) and SIGKILL to what is left after a grace period. A crash is restarted with
capped, jittered backoff; a participant that stayed up for a while starts again from the
shortest delay. The original started each process once and never restarted it.

Output is read in chunks, never with an unbounded readline: a line longer than
:data:`MAX_LINE` bytes is passed on cut to that length, with the number of bytes cut.
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

from gateway.keeper import kept
from gateway.transport.backoff import Backoff

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
KEEPER_MARGIN = 2.0  # the keeper's own SIGKILL sweep, before the whole group gets one
MAX_LINE = 64 * 1024  # bytes of one output line passed on; the rest is cut and counted
READ_CHUNK = 64 * 1024
DRAIN_AFTER_EXIT = 1.0  # seconds to read what is left in the pipe once the participant exited
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
        grace: float = STOP_GRACE,
    ) -> None:
        self.spec = spec
        self.stats = ProcessStats()
        self._output = output or print_prefixed
        self._on_exit = on_exit
        self._backoff = backoff
        self._grace = grace

    async def run(self) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                status = await self._run_once()
            except Exception as error:  # a bug here must not end the coordinator's TaskGroup
                log.exception("%s: supervising failed", self.spec.role)
                status = f"supervising failed: {error!r}"
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
                *kept(self.spec.argv, grace=self._grace),
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
        assert process.stdout is not None
        forward = asyncio.create_task(self._forward(process.stdout))
        try:
            code = await process.wait()
            # What the participant wrote just before it exited is still in the pipe; a leftover
            # holding the pipe open must not keep us from restarting it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_AFTER_EXIT):
                    await asyncio.shield(forward)
        finally:
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forward
            await _stop_group(process, self._grace)
            self.stats.pid = None
        return f"exited with status {code}" if code >= 0 else f"killed by signal {-code}"

    async def _forward(self, stdout: asyncio.StreamReader) -> None:
        """Pass on each line; a line over MAX_LINE bytes is cut there, never held whole."""
        line = bytearray()
        cut = 0
        while chunk := await stdout.read(READ_CHUNK):
            start = 0
            while start <= len(chunk):
                end = chunk.find(b"\n", start)
                piece = chunk[start : len(chunk) if end < 0 else end]
                room = MAX_LINE - len(line)
                line += piece[:room]
                cut += max(0, len(piece) - room)
                if end < 0:
                    break
                self._emit(line, cut)
                line.clear()
                cut = 0
                start = end + 1
        if line or cut:
            self._emit(line, cut)

    def _emit(self, line: bytearray, cut: int) -> None:
        text = line.decode(errors="replace")
        if cut:
            text += f" [... {cut} bytes cut: lines are passed on up to {MAX_LINE} bytes]"
        self._output(self.spec.role, text)


async def _stop_group(process: asyncio.subprocess.Process, grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group (the keeper then stops the participant's descendants that left
    it), then SIGKILL the group if it is still there after the grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    if process.returncode is None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace + KEEPER_MARGIN):
                await process.wait()
    _signal_group(process.pid, signal.SIGKILL)  # leftovers in the group, if any
    if process.returncode is None:
        await process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Supervisor:
    """The started participants of one coordinator, by role; an async context manager."""

    def __init__(
        self,
        *,
        output: OutputFn | None = None,
        on_exit: OutputFn | None = None,
        backoff: Backoff = RESTART_BACKOFF,
        grace: float = STOP_GRACE,
    ) -> None:
        self._output = output
        self._on_exit = on_exit
        self._backoff = backoff
        self._grace = grace
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
        # All at once: participants that ignore SIGTERM cost one grace period, not one each.
        await asyncio.gather(*(self.stop(role) for role in list(self._running)))
        await self._group.__aexit__(exc_type, exc, tb)

    def start(self, spec: ProcessSpec) -> Supervised:
        if spec.role in self._running:
            return self._running[spec.role][0]
        supervised = Supervised(
            spec,
            output=self._output,
            on_exit=self._on_exit,
            backoff=self._backoff,
            grace=self._grace,
        )
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
