"""Bluetooth Low Energy sensors as msgflo participants (``msgflo-ble``, docs/ble.md).

``advert``: one advertisement as a checked, frozen value (from bleak, or a replay line).
``decode``: its values by Theengs Decoder. ``registry``: adoption, the seen list, what to send
(pure). ``sources``: one long-lived bleak scanner per adapter, or a replay file. ``bridge``:
the device side the :class:`~gateway.bridges.host.BridgeHost` runs. ``cli``: ``msgflo-ble``.
``gatt``: connected GATT devices (their own module).
"""

from __future__ import annotations

from gateway.bridges.ble.sources import BleakSource, Source
from gateway.bridges.host import BridgeHost
from gateway.bridges.run import DeviceSide
from gateway.config import BleBridgeConfig


def device_side(section: BleBridgeConfig, source: Source | None = None) -> DeviceSide:
    """The bridge's device side for ``section``: the bleak scanner on ``section.adapter``
    unless another source (a :class:`~gateway.bridges.ble.sources.ReplaySource`) is given."""
    from gateway.bridges.ble.bridge import BleBridge

    chosen = BleakSource(section) if source is None else source

    async def main(host: BridgeHost) -> None:
        await BleBridge(section, chosen).run(host)

    return main
