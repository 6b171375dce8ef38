"""433 MHz radio devices (weather sensors, contacts, PIRs, remotes) as msgflo participants,
through rtl_433 and an RTL-SDR dongle (``msgflo-rf433``, docs/rf433.md).

``events``: one line of rtl_433's JSON output as a checked, frozen event, and the device key.
``registry``: adoption (roles, ``*`` ids, id swaps), repeats collapsed, the seen list (pure).
``child``: the supervised rtl_433 (restarts with backoff, capped lines, replay of sample files).
``bridge``: the device side the :class:`~gateway.bridges.host.BridgeHost` runs. ``cli``:
``msgflo-rf433`` and ``msgflo-rf433 heard``.

:func:`device_side` is what :mod:`gateway.bridges.run` starts the bridge with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.bridges.observe import Source
    from gateway.bridges.rf433.events import RadioEvent
    from gateway.bridges.run import DeviceSide
    from gateway.config import Rf433BridgeConfig


def device_side(section: Rf433BridgeConfig, source: Source[RadioEvent] | None = None) -> DeviceSide:
    """The bridge's device side for ``section``: rtl_433 on the dongle, or on the section's
    replay files, unless another source is given."""
    from gateway.bridges.host import BridgeHost
    from gateway.bridges.rf433.bridge import Rf433Bridge
    from gateway.bridges.rf433.child import Rtl433

    chosen = Rtl433(section) if source is None else source

    async def main(host: BridgeHost) -> None:
        await Rf433Bridge(section, chosen).run(host)

    return main
