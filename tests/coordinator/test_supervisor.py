"""Supervised participant processes: output prefix, restart after crash, no stale processes."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

from gateway.coordinator.supervisor import ProcessSpec, Supervisor

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
