"""``msgflo-gpio``: the devices on the Pi's GPIO header as msgflo participants; ``pins``.

    msgflo-gpio --broker mqtt://localhost --config /etc/msgflo-gateway/gateway.yaml
    msgflo-gpio --config gateway.yaml --pin-factory mock      # a laptop: mock pins
    msgflo-gpio pins --config /etc/msgflo-gateway/gateway.yaml

The first runs the bridge with the ``bridges.gpio`` section of ``gateway.yaml`` (without
``--config``, the defaults: no devices) through ``gateway.bridges.run``, as the appliance's
``msgflo-bridge@gpio`` does; ``--pin-factory`` replaces the section's. ``pins`` needs no broker
and no hardware: it prints the 40-pin header with each configured device at its pin and the
pins the config keeps for the serial console.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from gateway.bridges import run
from gateway.bridges.gpio import header
from gateway.broker import resolve_broker
from gateway.cli.options import add_broker_option, add_config_option, run_bridge_tool
from gateway.config import GpioBridgeConfig, load_config

PROG = "msgflo-gpio"
FACTORIES = ("auto", "lgpio", "rpigpio", "mock")


def _config(p: argparse.ArgumentParser) -> None:
    add_config_option(p, "gpio", " (its devices too)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Announce the devices on the Pi's GPIO header as msgflo participants "
        "('msgflo-gpio pins': print the header with the configured devices).",
    )
    add_broker_option(p)
    _config(p)
    p.add_argument("--pin-factory", choices=FACTORIES, help="instead of the section's")
    return p


def pins_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} pins",
        description="Print the 40-pin header with the configured devices at their pins.",
    )
    _config(p)
    return p


def gpio_config(config: Path | None, factory: str | None = None) -> GpioBridgeConfig:
    section = load_config(config).bridges.gpio if config else GpioBridgeConfig()
    return dataclasses.replace(section, pin_factory=factory) if factory else section


def print_pins(section: GpioBridgeConfig, out: TextIO | None = None) -> None:
    """The header, two pins a row as on the board (pin 1 top left), each GPIO with what the
    config puts on it."""
    out = out or sys.stdout
    used = {device.pin: f"{role} ({device.kind})" for role, device in section.devices}
    kept = header.reserved(uart_console=section.uart_console, i2c=False)
    for reserved in kept:
        for pin in reserved.pins:
            used.setdefault(pin, "kept: " + reserved.why.split(" (")[0])
    for left, right in header.rows():
        line = f"{_note(left, used):>28}  {left:<15}| {right:<15} {_note(right, used)}"
        print(line.rstrip(), file=out)


def _note(cell: str, used: dict[int, str]) -> str:
    name = cell.split()[1]
    if not name.startswith("GPIO"):
        return ""
    return used.get(int(name[4:]), "")


def main(argv: Sequence[str] | None = None) -> int:
    def pins_job(args: argparse.Namespace) -> int:
        print_pins(gpio_config(args.config))
        return 0

    def job(args: argparse.Namespace) -> int:
        section = gpio_config(args.config, args.pin_factory)
        run.run_bridge("gpio", section, resolve_broker(args.broker))
        return 0

    return run_bridge_tool(PROG, argv, (parser(), job), ("pins", pins_parser(), pins_job))
