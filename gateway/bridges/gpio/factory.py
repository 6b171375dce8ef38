"""The pin factory ``bridges.gpio.pin_factory`` names (thin; docs/gpio.md, Pin factories).

gpiozero chooses a default factory itself, trying each library and warning as it falls
through them, down to mock pins; the bridge never asks for that default. It makes the factory
the config names and hands it to every device it opens:

- ``lgpio``: the lgpio library on ``/dev/gpiochip*`` (every Pi, the Pi 5 included, on
  current kernels; the image installs it). Importing lgpio makes a FIFO, ``.lgd-nfy*``, in
  the working directory: the appliance's unit runs the bridge in its own runtime directory;
- ``rpigpio``: RPi.GPIO, where it is installed (Raspberry Pi OS; not on the Pi 5);
- ``mock``: gpiozero's mock pins (with PWM), nothing on the header is driven: for trying a
  graph on a laptop;
- ``auto``: off a Pi (no ``Raspberry Pi`` in the device tree's model) mock pins, said in
  one log line; on a Pi lgpio, else RPi.GPIO, else an error naming why each failed (mock pins
  on a Pi would silently drive nothing).
"""

from __future__ import annotations

import logging
from pathlib import Path

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory, MockPWMPin

from gateway.errors import GatewayError

log = logging.getLogger("gateway.bridges.gpio")

MODEL = Path("/proc/device-tree/model")
MOCK_REVISION = "a02082"  # a Pi 3 Model B: the 40-pin header, with GPIO 2 and 3 pulled up


def mock_factory() -> MockFactory:
    """Mock pins that also do PWM (a PWM LED), on the header of a Pi 3."""
    return MockFactory(revision=MOCK_REVISION, pin_class=MockPWMPin)


def on_a_pi(model: Path = MODEL) -> str | None:
    """The board's model when it is a Raspberry Pi, else None."""
    try:
        text = model.read_bytes().rstrip(b"\0").decode("utf-8", "replace").strip()
    except OSError:
        return None
    return text if text.startswith("Raspberry Pi") else None


def pin_factory(name: str, model: Path = MODEL) -> Factory:
    """The factory ``name`` (auto, lgpio, rpigpio, mock); GatewayError (one line) if it cannot
    be made."""
    if name == "mock":
        return mock_factory()
    if name in ("lgpio", "rpigpio"):
        return _library(name)
    board = on_a_pi(model)
    if board is None:
        log.info("not a Raspberry Pi (%s): using mock pins, nothing on a header is driven", model)
        return mock_factory()
    problems = []
    for library in ("lgpio", "rpigpio"):
        try:
            return _library(library)
        except GatewayError as error:
            problems.append(str(error))
    raise GatewayError(f"{board}: no pin library works: {'; '.join(problems)}")


def _library(name: str) -> Factory:
    try:
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            factory: Factory = LGPIOFactory()
        else:
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            factory = RPiGPIOFactory()
    except Exception as error:  # ImportError, lgpio.error, PinUnknownPi, OSError: all one line
        raise GatewayError(f"pin factory {name}: {type(error).__name__}: {error}") from None
    log.info("pin factory %s", name)
    return factory
