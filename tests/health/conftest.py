"""A fake root tree for the health readers: the /proc and /sys files of a Raspberry Pi, as the
downstream kernel (Raspberry Pi OS) and the upstream one (Debian) lay them out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

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
