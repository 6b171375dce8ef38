"""Starting a bridge from its ``gateway.yaml`` section, until SIGINT or SIGTERM: the one start
path of every bridge's CLI (``msgflo-serial``, ``msgflo-ble``) and of the appliance's
``msgflo-bridge@<name>`` (``gateway-run bridge NAME``).

Each bridge package ``gateway.bridges.<name>`` has a ``device_side(section)`` that returns its
device side, the coroutine function the :class:`~gateway.bridges.host.BridgeHost` runs; this
module connects, makes the host and runs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from gateway.bridges.host import BridgeHost
from gateway.broker import BrokerUrl
from gateway.common.signals import run_daemon
from gateway.config import BridgesConfig
from gateway.errors import GatewayError
from gateway.transport import open_transport

DeviceSide = Callable[[BridgeHost], Coroutine[Any, Any, None]]


class Section(Protocol):
    """What every bridge's section of gateway.yaml has."""

    @property
    def enabled(self) -> bool: ...
    @property
    def period(self) -> float: ...


def device_side(name: str, section: Section) -> DeviceSide:
    """The device side of bridge ``name``, from ``gateway.bridges.<name>.device_side``."""
    if name not in BridgesConfig.names():
        known = ", ".join(BridgesConfig.names())
        raise GatewayError(f"unknown bridge {name!r} (known: {known})")
    module = importlib.import_module(f"gateway.bridges.{name}")
    make: Callable[[Any], DeviceSide] = module.device_side
    return make(section)


def client_id(name: str) -> str:
    return f"msgflo-{name}-%i"  # %i: random hex digits, so two bridges never collide


async def serve(
    name: str, section: Section, broker: BrokerUrl, side: DeviceSide | None = None
) -> None:
    """Run bridge ``name``; ``side`` replaces its usual device side (the demo's BLE replay)."""
    side = side or device_side(name, section)
    async with open_transport(broker, client_id=client_id(name)) as transport:
        await BridgeHost(name, transport, period=section.period).run(side)


def run_bridge(
    name: str, section: Section, broker: BrokerUrl, side: DeviceSide | None = None
) -> None:
    """Blocking: run bridge ``name`` with ``section`` until SIGINT/SIGTERM (``side``: as
    :func:`serve`; ``gateway-run bridge serial`` gives the serial bridge its issuer so)."""
    run_daemon(serve(name, section, broker, side))
