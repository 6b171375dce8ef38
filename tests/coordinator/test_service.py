"""The coordinator service reconciles started participants with graph changes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

import pytest

from gateway.broker import parse_broker_url
from gateway.coordinator.library import ComponentLibrary
from gateway.coordinator.service import CoordinatorService, ServiceConfig
from gateway.graph import parse_fbp
from gateway.mosquitto import Mosquitto

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parents[2] / "examples"


async def test_graph_changes_start_and_stop_participants(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    shutil.copy(EXAMPLES / "repeat.py", tmp_path / "Repeat.py")
    library = ComponentLibrary().with_component_dir(tmp_path)
    config = ServiceConfig(broker=parse_broker_url(mosquitto.url), library=library)
    service = CoordinatorService(config, parse_fbp("a(Repeat)", file="g.fbp"))
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(10):
            while service.supervisor is None or not service.coordinator.registry.live("a"):
                await asyncio.sleep(0.05)
        assert service.supervisor.roles() == ["a"]
        await service.set_graph(parse_fbp("b(Repeat)", file="g.fbp"))
        assert service.supervisor.roles() == ["b"]  # a stopped, b started
        assert service.coordinator.registry.known("a") == []  # not live until it would expire
        async with asyncio.timeout(10):
            while not service.coordinator.registry.live("b"):
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
