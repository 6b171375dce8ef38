"""The INA219 through a fake SMBus holding the chip's register map (the only fake: hardware we
don't have). Registers are big-endian, SMBus words little-endian, as on the real bus."""

from __future__ import annotations

import pytest

from gateway.health.ina219 import CONFIG, REG_CONFIG, Ina219, percent_of_cell
from tests.health.conftest import FakeIna219Bus


def test_a_charged_cell_discharging() -> None:
    bus = FakeIna219Bus(0x42)
    bus.set_bus_volts(4.1)
    bus.set_shunt_volts(-0.045)  # 450 mA out of the battery over 0.1 ohm
    reading = Ina219(bus, 0x42, shunt_ohms=0.1).read()
    assert bus.writes == [(REG_CONFIG, CONFIG)]  # configured first, big-endian on the wire
    assert reading.voltage == pytest.approx(4.1)
    assert reading.current == pytest.approx(-0.45)
    assert reading.percent == 92.0


def test_two_cells_in_series() -> None:
    bus = FakeIna219Bus()
    bus.set_bus_volts(7.4)  # 3.7 V a cell
    assert Ina219(bus, 0x40, 0.05, cells=2).read().percent == 35.0


def test_a_missing_chip_and_an_overflow_raise_and_reconfigure() -> None:
    bus = FakeIna219Bus()
    monitor = Ina219(bus, 0x40, 0.1)
    bus.present = False
    with pytest.raises(OSError):
        monitor.read()
    bus.present = True
    bus.set_bus_volts(3.9, overflow=True)
    with pytest.raises(ValueError, match="overflow"):
        monitor.read()
    bus.set_bus_volts(3.9)
    assert monitor.read().percent == 70.0
    assert len(bus.writes) == 2  # written again after the overflow: the HAT may have reset


def test_the_cell_curve() -> None:
    assert percent_of_cell(4.3) == 100.0
    assert percent_of_cell(4.2) == 100.0
    assert percent_of_cell(3.725) == 40.0  # halfway between 3.70 (35) and 3.75 (45)
    assert percent_of_cell(3.0) == 0.0
    assert percent_of_cell(2.5) == 0.0
    volts = [3.0 + i * 0.01 for i in range(121)]
    percents = [percent_of_cell(v) for v in volts]
    assert percents == sorted(percents)  # never falls as the voltage rises
