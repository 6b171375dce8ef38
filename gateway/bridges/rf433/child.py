"""The rtl_433 child process: started, read, restarted, stopped (thin driver).

:class:`Rtl433` runs ``rtl_433 -F json:/dev/stdout -M level -M protocol -M time:unix:usec
-C si`` with the section's frequency (``-f``), dongle (``-d``) and decoders (``-R``), or, in
replay mode, on recorded sample files (``-r`` each), and calls ``deliver(event)`` for every
decoded packet.

- stdout is read in chunks and cut into lines by :class:`LineSplitter`, which never holds more
  than :data:`~gateway.bridges.rf433.events.MAX_LINE` bytes of one line: a longer line is
  dropped whole (one problem counted), not read into memory;
- a line that is not a decoded packet is counted and dropped; the first three and then every
  thousandth are logged (:class:`Complaints`);
- stderr (rtl_433's start-up chatter, and why it stops) is drained, its last lines kept;
- when rtl_433 exits (a crash, the dongle unplugged, no dongle) one line says so with the exit
  status and its last stderr line, and it is started again after a backoff
  (:data:`BACKOFF`, from its shortest wait again after a run longer than the backoff's
  maximum), for ever. In replay mode an exit at the end of the files is the normal end of a
  pass: the next one starts ``replay_interval`` later;
- the child is started through ``setpriv --pdeathsig TERM`` (:mod:`gateway.processes`): it dies
  with the bridge even when the bridge is killed; a clean stop terminates it (SIGKILL after
  :data:`STOP_GRACE` seconds) and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.bridges.rf433.events import MAX_LINE, BadEventError, RadioEvent, parse_line
from gateway.config import Rf433BridgeConfig
from gateway.processes import with_parent_death_signal
from gateway.transport.backoff import Backoff

log = logging.getLogger("gateway.bridges.rf433")

Deliver = Callable[[RadioEvent], None]
BACKOFF = Backoff(initial=1.0, maximum=60.0)
STOP_GRACE = 3.0  # seconds rtl_433 has to release the dongle after SIGTERM
CHUNK = 65_536
STDERR_KEPT = 5  # last stderr lines kept for the exit line
# json:/dev/stdout, not json: rtl_433 22.11 makes its own stdout unbuffered and writes plain
# ``-F json`` one character per write(), each able to wake the reader (about 25 loop turns a
# line); to a named file it writes and flushes whole lines (bench/rf433.py: the bridge's CPU per
# reading 1.7x -> 1.2x of rtl_433 alone, presses 2.5-2.9x -> 1.7x).
META = [
    "-F", "json:/dev/stdout", "-M", "level", "-M", "protocol", "-M", "time:unix:usec", "-C", "si",
]  # fmt: skip


def command_line(section: Rf433BridgeConfig, replay: Sequence[Path] = ()) -> list[str]:
    """rtl_433's argv for ``section``; with ``replay``, reading those files instead of a
    dongle (tuner options are then left out)."""
    argv = [section.program, *META]
    for number in section.protocols:
        argv += ["-R", str(number)]
    if replay:
        for path in replay:
            argv += ["-r", str(path)]
        return argv
    if section.device is not None:
        argv += ["-d", section.device]
    return [*argv, "-f", section.frequency]


class LineSplitter:
    """Bytes in, whole lines out (pure). A line longer than ``cap`` is dropped whole and
    reported once, as None, when its first ``cap`` bytes are passed; what follows it up to the
    next newline is discarded as it arrives."""

    def __init__(self, cap: int = MAX_LINE) -> None:
        self.cap = cap
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | None]:
        out: list[bytes | None] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if self._skipping:
                pass
            elif len(self._buffer) + len(piece) > self.cap:
                self._buffer.clear()
                self._skipping = True
                out.append(None)
            else:
                self._buffer += piece
            if end < 0:
                return out
            if not self._skipping:
                out.append(bytes(self._buffer))
            self._buffer.clear()
            self._skipping = False
            start = end + 1


class Complaints:
    """Counts bad lines; logs the first three, then every thousandth."""

    def __init__(self) -> None:
        self.count = 0

    def note(self, problem: object) -> None:
        self.count += 1
        if self.count <= 3 or self.count % 1000 == 0:
            log.warning("rtl_433 output: %s; line dropped (%d so far)", problem, self.count)


class Rtl433:
    """The supervised rtl_433. ``await run(deliver)`` never returns (cancel it to stop)."""

    def __init__(
        self,
        section: Rf433BridgeConfig,
        *,
        replay: Sequence[Path] = (),
        backoff: Backoff = BACKOFF,
    ) -> None:
        self.section = section
        self.replay = tuple(replay) or section.replay
        self.backoff = backoff
        self.argv = command_line(section, self.replay)
        self.complaints = Complaints()
        self.process: asyncio.subprocess.Process | None = None  # the running child, if any
        self.starts = 0
        self.lines = 0
        self.stderr: deque[str] = deque(maxlen=STDERR_KEPT)

    @property
    def bad(self) -> int:
        return self.complaints.count

    async def run(self, deliver: Deliver) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            status = await self.run_once(deliver)
            if self.replay and status == 0:
                await asyncio.sleep(self.section.replay_interval)
                continue
            if time.monotonic() - started > self.backoff.maximum:
                attempt = 0
            delay = self.backoff.delay(attempt)
            attempt += 1
            last = self.stderr[-1] if self.stderr else "nothing on stderr"
            log.warning(
                "rtl_433 %s (%s); starting it again in %.1f s",
                status if isinstance(status, str) else f"exited with status {status}",
                last,
                delay,
            )
            await asyncio.sleep(delay)

    async def run_once(self, deliver: Deliver) -> int | str:
        """One run of rtl_433 to its end: its exit status, or why it could not start."""
        self.stderr.clear()
        # rtl_433 opens /dev/stdout itself (-F json:/dev/stdout), which works on a pipe but not
        # on the socket uvloop gives a child for stdout=PIPE: so its stdout is a pipe of ours.
        read_end, write_end = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *with_parent_death_signal(self.argv),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_end,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            os.close(read_end)
            return f"could not be started: {error.strerror or error}"
        finally:
            os.close(write_end)
        stdout, pipe = await _reader(read_end)
        self.process = process
        self.starts += 1
        if self.starts == 1:
            log.info("started %s", " ".join(self.argv))
        assert process.stderr is not None
        drain = asyncio.create_task(self._drain(process.stderr), name="rtl_433 stderr")
        try:
            await self._read(stdout, deliver)
            return await process.wait()
        finally:
            self.process = None
            await _end(process, stdout, drain)
            pipe.close()

    async def _read(self, stdout: asyncio.StreamReader, deliver: Deliver) -> None:
        splitter = LineSplitter()
        while chunk := await stdout.read(CHUNK):
            for line in splitter.feed(chunk):
                self.lines += 1
                if line is None:
                    self.complaints.note(f"a line longer than {MAX_LINE} bytes")
                    continue
                if not line.strip():
                    continue
                try:
                    event = parse_line(line)
                except BadEventError as error:
                    self.complaints.note(error)
                    continue
                deliver(event)

    async def _drain(self, stderr: asyncio.StreamReader) -> None:
        splitter = LineSplitter(1024)
        while chunk := await stderr.read(CHUNK):
            for line in splitter.feed(chunk):
                if line and line.strip():
                    text = line.decode("utf-8", "replace").strip()
                    self.stderr.append(text)
                    log.debug("rtl_433: %s", text)


async def _reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    """A stream reading the pipe ``fd`` (taken over: closing the transport closes it)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    # The file object only wraps the fd for the transport, which owns and closes it.
    pipe_file = os.fdopen(fd, "rb", buffering=0)
    pipe, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe_file
    )
    return reader, pipe


async def _end(
    process: asyncio.subprocess.Process,
    stdout: asyncio.StreamReader,
    drain: asyncio.Task[None],
) -> None:
    """Stop ``process`` if it runs, and read its pipes to their end (their transports close)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    try:
        async with asyncio.timeout(STOP_GRACE):
            while await stdout.read(CHUNK):
                pass
            await drain
    except TimeoutError:
        drain.cancel()
