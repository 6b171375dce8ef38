"""Our coordinator for the length of a ``with`` block, on the transport it really uses
(gateway/coordinator/service.py opens it the same way)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from gateway.broker import BrokerUrl, parse_broker_url
from gateway.coordinator.coordinator import Coordinator, CoordinatorOptions
from gateway.graph.model import Graph
from gateway.transport import open_transport
from tests.support.tasks import background


@contextlib.asynccontextmanager
async def coordinating(
    broker: str | BrokerUrl, graph: Graph, **options: Any
) -> AsyncIterator[Coordinator]:
    """The coordinator of ``graph`` on ``broker`` (a URL, or one parsed with its credentials),
    connected before the block starts; ``options`` are CoordinatorOptions'."""
    url = parse_broker_url(broker) if isinstance(broker, str) else broker
    async with open_transport(url, client_id="coordinator") as transport:
        coordinator = Coordinator(transport, graph, options=CoordinatorOptions(**options))
        async with background(coordinator.run()):
            await asyncio.wait_for(transport.wait_connected(), 5)
            yield coordinator
