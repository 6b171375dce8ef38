"""A fake root tree for the health readers: the /proc and /sys files of a Raspberry Pi, as the
downstream kernel (Raspberry Pi OS) and the upstream one (Debian) lay them out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.health.ina219 import REG_BUS, REG_CONFIG, REG_SHUNT, swap

MEMINFO = "MemTotal:        3884096 kB\nMemFree:          123456 kB\nMemAvailable:    2000000 kB\n"
# Raspberry Pi OS: the firmware's word on the firmware's platform device.
GET_THROTTLED = "sys/devices/platform/soc/soc:firmware/get_throttled"
# Debian's kernel: the raspberrypi-hwmon driver's undervoltage alarm.
RPI_VOLT = "sys/class/hwmon/hwmon1"


@dataclass
class Tree:
    root: Path

    def write(self, path: str, text: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def remove(self, path: str) -> None:
        (self.root / path).unlink()

    def pi(self) -> Tree:
        """An idle Pi 4 on a good supply, downstream kernel."""
        self.write("sys/class/thermal/thermal_zone0/temp", "48312\n")
        self.write("proc/loadavg", "0.52 0.40 0.33 1/180 4242\n")
        self.write("proc/meminfo", MEMINFO)
        self.write("proc/uptime", "600.5 1200.0\n")
        self.write(GET_THROTTLED, "0\n")
        return self

    def throttled(self, word: int) -> None:
        self.write(GET_THROTTLED, f"{word:x}\n")


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "root"
    root.mkdir()
    return Tree(root)


class FakeIna219Bus:
    """smbus2.SMBus's word calls on one INA219 at ``address``."""

    def __init__(self, address: int = 0x40) -> None:
        self.address = address
        self.registers = {REG_CONFIG: 0x399F, REG_SHUNT: 0, REG_BUS: 0}  # power-on config
        self.present = True
        self.writes: list[tuple[int, int]] = []

    def set_bus_volts(self, volts: float, overflow: bool = False) -> None:
        self.registers[REG_BUS] = (round(volts / 0.004) << 3) | (1 if overflow else 0) | 0b10

    def set_shunt_volts(self, volts: float) -> None:
        self.registers[REG_SHUNT] = round(volts / 10e-6) & 0xFFFF

    def _check(self, address: int) -> None:
        if address != self.address or not self.present:
            raise OSError(121, "Remote I/O error")  # what i2c-dev says for no ACK

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        self._check(i2c_addr)
        return swap(self.registers[register])

    def write_word_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self._check(i2c_addr)
        self.writes.append((register, swap(value)))
        self.registers[register] = swap(value)
