"""The battery monitor of common Raspberry Pi UPS HATs: a TI INA219 current/voltage monitor on
I2C, read with smbus2 (docs/health.md, The battery monitor).

The INA219 (TI datasheet SBOS448) has 16-bit registers, most significant byte first:

    0x00 configuration   written once: 32 V bus range, /8 gain (±320 mV shunt), 128-sample
                         averages (68 ms a conversion), shunt and bus continuous: 0x3FFF
    0x01 shunt voltage   signed, 10 µV a bit
    0x02 bus voltage     bits 15-3, 4 mV a bit; bit 0 (OVF) set when the math overflowed

The current is the shunt voltage over the shunt's resistance, computed here rather than by the
chip's calibration and current registers: nothing to program but the configuration, and the
same result. SMBus words are little-endian, the INA219's big-endian: each word is swapped.

The battery's charge is estimated from its voltage (:func:`percent_of_cell`), a coarse curve
for one Li-ion cell (4.2 V full); a HAT with two cells in series gives ``cells: 2``. Under
load the voltage sags and the estimate reads low: it is a guide for a low-battery warning and
the shutdown threshold, not a fuel gauge.

The bus is anything with smbus2's ``read_word_data`` and ``write_word_data``: the real
``smbus2.SMBus`` on the kit, a fake holding the register map in tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("gateway.health")

REG_CONFIG = 0x00
REG_SHUNT = 0x01
REG_BUS = 0x02
# BRNG=1 (32 V), PG=11 (/8), BADC=1111 and SADC=1111 (128 samples), MODE=111 (continuous).
CONFIG = 0x3FFF
SHUNT_LSB = 10e-6  # volts a bit
BUS_LSB = 4e-3  # volts a bit, after the three status bits
BUS_OVERFLOW = 0x0001

# (volts of one cell at rest, percent): a generic curve for LiCoO2/NMC cells charged to 4.2 V,
# flat between 3.7 and 3.9 V as such cells are; linear between points. It is no datasheet's
# curve (cells differ by maker and age): good to about 10 % at rest.
CELL_CURVE: tuple[tuple[float, float], ...] = (
    (3.00, 0.0),
    (3.30, 5.0),
    (3.50, 10.0),
    (3.60, 20.0),
    (3.70, 35.0),
    (3.75, 45.0),
    (3.80, 55.0),
    (3.85, 62.0),
    (3.90, 70.0),
    (4.00, 82.0),
    (4.10, 92.0),
    (4.20, 100.0),
)


class Bus(Protocol):
    """What is used of ``smbus2.SMBus``."""

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...

    def write_word_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None: ...


@dataclass(frozen=True)
class BatteryReading:
    voltage: float  # volts at the battery (the INA219's bus voltage)
    current: float  # amperes through the shunt; the sign is the HAT's wiring's
    percent: float  # estimated charge, 0-100


def swap(word: int) -> int:
    """An SMBus word (low byte first) as the INA219's register value (high byte first)."""
    return ((word & 0xFF) << 8) | ((word >> 8) & 0xFF)


def signed(value: int) -> int:
    return value - 0x10000 if value & 0x8000 else value


def shunt_volts(register: int) -> float:
    return signed(register) * SHUNT_LSB


def bus_volts(register: int) -> float:
    if register & BUS_OVERFLOW:
        raise ValueError("INA219: the conversion overflowed")
    return (register >> 3) * BUS_LSB


def percent_of_cell(volts: float) -> float:
    """The charge of one Li-ion cell at ``volts``, by :data:`CELL_CURVE`, clamped to 0-100."""
    low_v, low_p = CELL_CURVE[0]
    if volts <= low_v:
        return 0.0
    for high_v, high_p in CELL_CURVE[1:]:
        if volts <= high_v:
            return round(low_p + (high_p - low_p) * (volts - low_v) / (high_v - low_v), 1)
        low_v, low_p = high_v, high_p
    return 100.0


class Ina219:
    """One INA219 at ``address`` on ``bus``, its shunt ``shunt_ohms``, ``cells`` in series."""

    def __init__(self, bus: Bus, address: int, shunt_ohms: float, cells: int = 1) -> None:
        self.bus = bus
        self.address = address
        self.shunt_ohms = shunt_ohms
        self.cells = cells
        self._configured = False

    def _register(self, register: int) -> int:
        return swap(self.bus.read_word_data(self.address, register))

    def read(self) -> BatteryReading:
        """One reading; ``OSError`` when the chip does not answer, ``ValueError`` on an
        overflowed conversion. The configuration is (re)written on first use after either,
        so a HAT that lost power comes back configured."""
        try:
            if not self._configured:
                self.bus.write_word_data(self.address, REG_CONFIG, swap(CONFIG))
                self._configured = True
            volts = bus_volts(self._register(REG_BUS))
            amps = shunt_volts(self._register(REG_SHUNT)) / self.shunt_ohms
        except (OSError, ValueError):
            self._configured = False
            raise
        return BatteryReading(round(volts, 3), round(amps, 4), percent_of_cell(volts / self.cells))
