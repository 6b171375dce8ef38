"""Supervised participant processes: output prefix, restart after crash, no stale processes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gateway.coordinator.supervisor import MAX_LINE, ProcessSpec, Supervisor
from gateway.transport.backoff import Backoff

CRASHER = textwrap.dedent(
    """
    import sys, time
    print("hello from", sys.argv[1], flush=True)
    time.sleep(0.1)
    sys.exit(3)
    """
)

PARENT_OF_SLEEPER = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen(["sleep", "1000"])
    open(sys.argv[1], "w").write(str(child.pid))
    print("ready", flush=True)
    time.sleep(1000)
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def test_output_is_prefixed_and_crashes_are_restarted() -> None:
    lines: list[str] = []
    async with Supervisor(output=lambda role, line: lines.append(f"[{role}] {line}")) as supervisor:
        supervised = supervisor.start(ProcessSpec("crashy", (sys.executable, "-c", CRASHER, "x")))
        async with asyncio.timeout(10):
            while len(lines) < 2:
                await asyncio.sleep(0.05)
    assert lines[:2] == ["[crashy] hello from x", "[crashy] hello from x"]
    assert supervised.stats.crashes >= 1


async def test_stopping_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    lines: list[str] = []
    async with Supervisor(output=lambda role, line: lines.append(f"[{role}] {line}")) as supervisor:
        supervisor.start(
            ProcessSpec("parent", (sys.executable, "-c", PARENT_OF_SLEEPER, str(pidfile)))
        )
        async with asyncio.timeout(10):
            while "[parent] ready" not in lines:
                await asyncio.sleep(0.05)
        grandchild = int(pidfile.read_text())
        assert alive(grandchild)
        await supervisor.stop("parent")
        assert supervisor.roles() == []
    # The signal is asynchronous: give the grandchild a moment to die, within a bound.
    async with asyncio.timeout(5):
        while alive(grandchild):
            await asyncio.sleep(0.02)


async def test_missing_command_is_reported_and_retried() -> None:
    async with Supervisor() as supervisor:
        supervised = supervisor.start(ProcessSpec("ghost", ("/nonexistent/participant",)))
        async with asyncio.timeout(5):
            while supervised.stats.crashes < 1:
                await asyncio.sleep(0.05)
    assert supervised.stats.starts == 0


LONG_LINE = textwrap.dedent(
    """
    import sys
    sys.stdout.write("x" * 1_000_000)
    sys.stdout.write("\\nafter the long line\\n")
    sys.stdout.flush()
    for n in range(3):
        print("line", n, flush=True)
    import time
    time.sleep(1000)
    """
)


async def test_a_line_over_the_limit_is_truncated_and_the_supervisor_keeps_running() -> None:
    lines: list[str] = []
    async with Supervisor(output=lambda role, line: lines.append(f"[{role}] {line}")) as supervisor:
        supervised = supervisor.start(ProcessSpec("chatty", (sys.executable, "-c", LONG_LINE)))
        async with asyncio.timeout(20):
            while "[chatty] line 2" not in lines:
                await asyncio.sleep(0.05)
        assert supervised.stats.starts == 1
        assert supervised.stats.crashes == 0
    first = lines[0]
    assert first.startswith("[chatty] xxxx")
    assert len(first) < 70_000
    assert f"{1_000_000 - MAX_LINE} bytes cut" in first
    assert lines[1:5] == ["[chatty] after the long line"] + [f"[chatty] line {n}" for n in range(3)]


STUBBORN = textwrap.dedent(
    """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(os.path.join(sys.argv[1], "stubborn.pid"), "w").write(str(os.getpid()))
    print("ready", flush=True)
    while True:
        time.sleep(1000)
    """
)

# Starts a child in its own group and a daemon that double-forks out of the session; both
# ignore SIGTERM. Their pids go to files in sys.argv[1].
DOUBLE_FORKER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    where = sys.argv[1]
    ignore_term = lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "1000"], preexec_fn=ignore_term)
    open(os.path.join(where, "child.pid"), "w").write(str(child.pid))
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            open(os.path.join(where, "daemon.pid.tmp"), "w").write(str(os.getpid()))
            os.rename(os.path.join(where, "daemon.pid.tmp"), os.path.join(where, "daemon.pid"))
            while True:
                time.sleep(1000)
        os._exit(0)
    open(os.path.join(where, "forker.pid"), "w").write(str(os.getpid()))
    print("ready", flush=True)
    while True:
        time.sleep(1000)
    """
)

# A coordinator-like process: a Supervisor running the two participants above.
COORDINATOR = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.coordinator.supervisor import ProcessSpec, Supervisor
    stubborn, forker, where = sys.argv[1:4]

    async def main() -> None:
        async with Supervisor(grace=1.0) as supervisor:
            supervisor.start(ProcessSpec("stubborn", (sys.executable, "-c", stubborn, where)))
            supervisor.start(ProcessSpec("forker", (sys.executable, "-c", forker, where)))
            await asyncio.sleep(1000)

    asyncio.run(main())
    """
)

PIDFILES = ("stubborn.pid", "forker.pid", "child.pid", "daemon.pid")


async def wait_for_pids(directory: Path, names: tuple[str, ...]) -> list[int]:
    async with asyncio.timeout(20):
        while not all((directory / name).exists() for name in names):
            await asyncio.sleep(0.05)
    await asyncio.sleep(0)
    return [int((directory / name).read_text()) for name in names]


def kill_all(directory: Path) -> None:
    """Whatever a test's outcome, leave none of its processes running."""
    for name in PIDFILES:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((directory / name).read_text()), signal.SIGKILL)


async def wait_gone(pids: list[int], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while [pid for pid in pids if alive(pid)]:
            await asyncio.sleep(0.05)


async def test_nothing_survives_a_sigkill_of_the_coordinator(tmp_path: Path) -> None:
    coordinator = subprocess.Popen(
        [sys.executable, "-c", COORDINATOR, STUBBORN, DOUBLE_FORKER, str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        pids = await wait_for_pids(tmp_path, PIDFILES)
        assert all(alive(pid) for pid in pids)
        os.kill(coordinator.pid, signal.SIGKILL)
        coordinator.wait(5)
        # Everything ignores SIGTERM: gone after the 1 s grace period, within a generous bound.
        await wait_gone(pids, timeout=15)
    finally:
        coordinator.kill()
        coordinator.wait(5)
        kill_all(tmp_path)


async def test_a_stop_kills_what_ignores_sigterm_and_what_left_the_group(tmp_path: Path) -> None:
    try:
        async with Supervisor(output=lambda role, line: None, grace=0.5) as supervisor:
            for name, code in (("stubborn", STUBBORN), ("forker", DOUBLE_FORKER)):
                supervisor.start(ProcessSpec(name, (sys.executable, "-c", code, str(tmp_path))))
            pids = await wait_for_pids(tmp_path, PIDFILES)
            started = time.monotonic()
            await supervisor.stop("forker")
            await supervisor.stop("stubborn")
            assert time.monotonic() - started < 10  # the grace period each, not forever
            assert not [pid for pid in pids if alive(pid)]
    finally:
        kill_all(tmp_path)


async def test_a_crash_loop_backs_off_to_the_cap_and_leaves_the_others_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks: list[str] = []
    exits: list[float] = []
    backoff = Backoff(initial=0.1, maximum=0.4, jitter=0.0)
    steady_code = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)"
    async with Supervisor(
        output=lambda role, line: ticks.append(line) if role == "steady" else None,
        on_exit=lambda role, status: exits.append(time.monotonic()),
        backoff=backoff,
    ) as supervisor:
        steady = supervisor.start(ProcessSpec("steady", (sys.executable, "-c", steady_code)))
        looping = supervisor.start(
            ProcessSpec("looping", (sys.executable, "-c", "raise SystemExit(1)"))
        )
        async with asyncio.timeout(30):
            while len(exits) < 6:
                await asyncio.sleep(0.02)
        ticks_during = len(ticks)
        async with asyncio.timeout(10):
            while len(ticks) < ticks_during + 3:  # still going
                await asyncio.sleep(0.02)
        assert steady.stats.starts == 1
        assert steady.stats.crashes == 0
        assert looping.stats.starts >= 6
    delays = [
        float(r.getMessage().rsplit(" in ", 1)[1].split()[0])
        for r in caplog.records
        if r.getMessage().startswith("looping: exited with status 1; restarting in")
    ]
    assert delays[:6] == [0.1, 0.2, 0.4, 0.4, 0.4, 0.4]
    gaps = [later - earlier for earlier, later in itertools.pairwise(exits)]
    assert all(gap >= delay for gap, delay in zip(gaps, delays, strict=False))
