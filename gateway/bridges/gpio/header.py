"""The Raspberry Pi's 40-pin header (pure): which header pin carries which GPIO, and which
pins the gateway checks a device's pin against (docs/gpio.md, What is checked).

Every Pi with a 40-pin header (B+, 2, 3, 4, 5, Zero, Zero 2 W) has the same GPIO on the same
header pins: BCM GPIO 0-27, the numbers gpiozero, lgpio and RPi.GPIO take. The loader refuses
any other number, and names a device's header pin in its messages and labels, so a user can
count pins on the board instead of looking the BCM number up.
"""

from __future__ import annotations

from dataclasses import dataclass

# Header pin -> what it carries: a GPIO as its BCM number, or a supply or ground as text.
HEADER: dict[int, int | str] = {
    1: "3V3", 2: "5V", 3: 2, 4: "5V", 5: 3, 6: "GND", 7: 4, 8: 14, 9: "GND", 10: 15,
    11: 17, 12: 18, 13: 27, 14: "GND", 15: 22, 16: 23, 17: "3V3", 18: 24, 19: 10, 20: "GND",
    21: 9, 22: 25, 23: 11, 24: 8, 25: "GND", 26: 7, 27: 0, 28: 1, 29: 5, 30: "GND",
    31: 6, 32: 12, 33: 13, 34: "GND", 35: 19, 36: 16, 37: 26, 38: 20, 39: "GND", 40: 21,
}  # fmt: skip
GPIOS = range(28)  # BCM 0-27: every GPIO on the header
UART_PINS = (14, 15)  # TXD, RXD: the serial console when it is on the UART
I2C_PINS = (2, 3)  # SDA1, SCL1: I2C bus 1, with 1.8 kOhm pull-ups to 3V3 on the board
ID_PINS = (0, 1)  # ID_SD, ID_SC: read by the firmware at boot for a HAT's EEPROM
FIXED_PULL_UP = I2C_PINS  # their resistors cannot be switched off or pulled down
HARDWARE_PWM = (12, 13, 18, 19)  # lgpio's PWM is software timed on every pin anyway

_BOARD = {gpio: pin for pin, gpio in HEADER.items() if isinstance(gpio, int)}


def header_pin(gpio: int) -> int:
    """The header pin of BCM GPIO ``gpio`` (0-27)."""
    return _BOARD[gpio]


def where(gpio: int) -> str:
    """``GPIO17 (pin 11)``: how messages and labels name a pin."""
    return f"GPIO{gpio} (pin {header_pin(gpio)})"


class PinNameError(ValueError):
    """A pin the header does not have; the message is one line."""


def parse_pin(value: object) -> int:
    """A BCM number (``17``, ``"GPIO17"``) or a header pin (``"BOARD11"``) -> BCM number."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value in GPIOS:
            return value
        raise PinNameError(f"GPIO{value} is not on the 40-pin header (BCM 0-27)")
    if isinstance(value, str):
        text = value.strip().upper()
        for prefix, table in (("GPIO", None), ("BCM", None), ("BOARD", HEADER)):
            if text.startswith(prefix) and text[len(prefix) :].isdigit():
                number = int(text[len(prefix) :])
                if table is None:
                    return parse_pin(number)
                return _board(number)
    raise PinNameError(
        f"expected a BCM GPIO number 0-27 or a header pin such as 'BOARD11', got {value!r}"
    )


def _board(pin: int) -> int:
    found = HEADER.get(pin)
    if found is None:
        raise PinNameError(f"the header has pins 1-40, not {pin}")
    if isinstance(found, str):
        raise PinNameError(f"header pin {pin} is {found}, not a GPIO")
    return found


@dataclass(frozen=True)
class Reserved:
    """Pins the image or another configured device already uses, and why."""

    pins: tuple[int, ...]
    why: str


def reserved(*, uart_console: bool, i2c: bool) -> list[Reserved]:
    """What the configuration says is already in use: the serial console on the UART
    (``bridges.gpio.uart_console``) and I2C bus 1 when an I2C device is configured."""
    found = []
    if uart_console:
        why = "the serial console's UART (bridges.gpio.uart_console: false once it is off it)"
        found.append(Reserved(UART_PINS, why))
    if i2c:
        found.append(Reserved(I2C_PINS, "I2C bus 1, which a configured I2C device uses"))
    return found


def rows() -> list[tuple[str, str]]:
    """The header as ``msgflo-gpio pins`` prints it: (odd pin, even pin) per row."""
    return [(_cell(pin), _cell(pin + 1)) for pin in range(1, 41, 2)]


def _cell(pin: int) -> str:
    what = HEADER[pin]
    if isinstance(what, str):
        return f"{pin:>2} {what}"
    notes = {14: "TXD", 15: "RXD", 2: "SDA", 3: "SCL", 0: "ID_SD", 1: "ID_SC"}
    note = f" {notes[what]}" if what in notes else ""
    return f"{pin:>2} GPIO{what}{note}"
