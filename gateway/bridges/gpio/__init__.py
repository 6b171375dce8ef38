"""The Pi's own GPIO pins as msgflo participants (``msgflo-gpio``, docs/gpio.md).

``header``: the 40-pin header, pin names and the pins the config checks (pure; the config
loader uses it). ``kinds``: each kind's participant and what its inports accept (pure).
``debounce``: a button's settled presses, releases and holds (pure). ``factory``: the pin
factory the config names. ``bridge``: gpiozero devices on the bridge host, their events handed
from gpiozero's threads to the event loop. ``cli``: ``msgflo-gpio`` and ``msgflo-gpio pins``.

:func:`device_side` is what :mod:`gateway.bridges.run` starts the bridge with; it imports
gpiozero only when called, so the loader and the other bridges never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpiozero import Factory

    from gateway.bridges.run import DeviceSide
    from gateway.config import GpioBridgeConfig


def device_side(section: GpioBridgeConfig, factory: Factory | None = None) -> DeviceSide:
    """The bridge's device side for ``section``, on the pin factory the section names (made
    now, so a factory that cannot be made is a GatewayError before anything connects) unless
    another is given (a test's ``MockFactory``, which the caller then closes)."""
    from gateway.bridges.gpio.bridge import GpioBridge
    from gateway.bridges.gpio.factory import pin_factory
    from gateway.bridges.host import BridgeHost

    chosen = pin_factory(section.pin_factory) if factory is None else factory

    async def main(host: BridgeHost) -> None:
        try:
            await GpioBridge(section, chosen).run(host)
        finally:
            if factory is None:
                chosen.close()

    return main
