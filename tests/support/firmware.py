"""The firmware library's host programs (firmware/test: ``mqtt_participant``,
``provision_board``), built with CMake once per test module, with the sanitizers, and run as
subprocesses whose stdout lines the tests wait for."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from tests.support.wait import until

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "firmware" / "test"
LEAKS = "detect_leaks=1:abort_on_error=1"  # ASAN_OPTIONS: a leak fails the program


def build_programs(build: Path, *targets: str) -> Path:
    """Configure firmware/test in ``build`` and build ``targets`` there; ``build``."""
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: run ./bootstrap.sh setup"
    chosen = [arg for target in targets for arg in ("--target", target)]
    for command in (
        ["cmake", "-S", str(SOURCE), "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}"],
        ["cmake", "--build", str(build), *chosen, "--parallel", "2"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return build


class Program:
    """A running host program: its stdout lines as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:  # ends with the process
            self.lines.append(raw.decode(errors="replace").rstrip())

    def said(self, start: str) -> bool:
        return any(line.startswith(start) for line in self.lines)

    def has(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.lines)

    def count(self, pattern: str) -> int:
        return sum(1 for line in self.lines if re.search(pattern, line))

    async def wait(self, condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
        try:
            await until(condition, timeout=timeout, what=what)
        except BaseException:
            print("\n".join(self.lines[-30:]))
            raise


@contextlib.asynccontextmanager
async def running_program(
    program: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    asan: str = LEAKS,
    pass_fds: tuple[int, ...] = (),
) -> AsyncIterator[Program]:
    """``program`` with ``args`` (and ``env`` added to ours) until the block ends, then
    terminated; its output is read to the end."""
    process = await asyncio.create_subprocess_exec(
        str(program),
        *args,
        stdout=asyncio.subprocess.PIPE,
        pass_fds=pass_fds,
        env={**os.environ, "ASAN_OPTIONS": asan, **(env or {})},
    )
    running = Program(process)
    reader = asyncio.create_task(running.read())
    try:
        yield running
    finally:
        if process.returncode is None:
            process.terminate()
        async with asyncio.timeout(10):
            await process.wait()
            await reader
