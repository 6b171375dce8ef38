"""Waiting for a state instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

POLL = 0.02  # seconds between checks: short enough not to slow tests, long enough to idle


async def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Return as soon as ``condition()`` holds; fail the test naming ``what`` after ``timeout``
    seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(POLL)
