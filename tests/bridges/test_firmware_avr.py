"""Cross builds of the firmware examples for an Arduino Uno (ATmega328P) against Debian's
arduino-core-avr, with firmware/extras/build_avr.py, and the size budget of issue 6: the library
with the ButtonLed example in at most 8 KB of flash and 1 KB of static RAM.

This checks sizes, not timing. Missing avr-g++ or the Arduino core is a failure, not a skip:
``./bootstrap.sh setup`` installs gcc-avr, avr-libc and arduino-core-avr.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_AVR = ROOT / "firmware" / "extras" / "build_avr.py"
CORE = Path("/usr/share/arduino/hardware/arduino/avr/cores/arduino")
EXAMPLES = ("ButtonLed", "Temperature", "Echo")
FLASH_BUDGET = 8 * 1024
RAM_BUDGET = 1024


def build(tmp_path: Path, *options: str) -> dict[str, dict[str, int]]:
    sizes = tmp_path / "sizes.json"
    command = [sys.executable, str(BUILD_AVR), "--build", str(tmp_path / "build")]
    command += ["--json", str(sizes), "--jobs", "2", *options, *EXAMPLES]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"the AVR build failed:\n{result.stdout}{result.stderr}"[-6000:])
    print(result.stdout)  # the size report, shown with pytest -s
    return {entry["example"]: entry for entry in json.loads(sizes.read_text())}


def test_avr_toolchain_is_installed() -> None:
    missing = [tool for tool in ("avr-gcc", "avr-g++", "avr-size") if not shutil.which(tool)]
    assert not missing, f"missing {missing}: run ./bootstrap.sh setup (gcc-avr, avr-libc)"
    assert CORE.is_dir(), f"no {CORE}: run ./bootstrap.sh setup (arduino-core-avr)"


@pytest.mark.parametrize("lto", [True, False], ids=["lto", "no-lto"])
def test_examples_build_for_an_uno_within_budget(tmp_path: Path, lto: bool) -> None:
    sizes = build(tmp_path, *([] if lto else ["--no-lto"]))
    assert set(sizes) == set(EXAMPLES)
    for size in sizes.values():
        assert size["flash"] == size["text"] + size["data"]
        assert 0 < size["flash"] < 32256, size  # fits an Uno beside its bootloader
    button = sizes["ButtonLed"]
    assert button["flash"] <= FLASH_BUDGET, f"ButtonLed takes {button['flash']} B of flash"
    assert button["ram"] <= RAM_BUDGET, f"ButtonLed takes {button['ram']} B of RAM"
