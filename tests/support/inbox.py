"""A delivery handler that collects what arrives, awaitable by count."""

from __future__ import annotations

import asyncio

from gateway.transport.base import Delivery, Transport


class Inbox:
    """Deliveries collected by a handler: ``got`` their payloads, ``deliveries`` the whole
    deliveries (topic, flags); ``await inbox.wait_count(n)`` waits, always bounded in time."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.got: list[bytes] = []
        self._arrived = asyncio.Event()

    def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.got.append(delivery.payload)
        self._arrived.set()

    async def wait_count(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """The payloads, once ``count`` have arrived."""
        await self.wait_deliveries(count, timeout)
        return self.got

    async def wait_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """The deliveries, once ``count`` have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.got) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.deliveries


async def watch(transport: Transport, *topics: str) -> list[Inbox]:
    """An :class:`Inbox` subscribed to each of ``topics``, in their order."""
    inboxes = [Inbox() for _ in topics]
    for topic, inbox in zip(topics, inboxes, strict=True):
        await transport.subscribe(topic, inbox)
    return inboxes
