"""``msgflo-serial``: announce USB serial devices that speak the serial link as participants.

    msgflo-serial --broker mqtt://localhost --glob '/dev/serial/by-id/*' --baud 115200 \\
        --role 75833353035351A0C1E1=lab/button

or with the settings of ``gateway.yaml``'s ``bridges.serial`` section (``--config
gateway.yaml``; flags win), the same section the appliance's bridge runs with. Either way the
settings are checked by the config loader's checks and the bridge is started by
``gateway/bridges/serial/run.py``, as on the appliance.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gateway.bridges.run import run_bridge
from gateway.broker import resolve_broker
from gateway.cli.options import add_broker_option, add_config_option, run_tool
from gateway.common.logs import configure_logging
from gateway.config import SerialBridgeConfig, load_config
from gateway.config.options import serial_bridge_options
from gateway.errors import GatewayError

PROG = "msgflo-serial"
DEFAULTS = SerialBridgeConfig()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Announce USB serial devices as msgflo participants."
    )
    add_broker_option(p)
    add_config_option(p, "serial", " (flags win)")
    p.add_argument(
        "--glob",
        action="append",
        default=[],
        metavar="PATTERN",
        help=f"device paths to watch (repeatable; default {' '.join(DEFAULTS.globs)})",
    )
    p.add_argument("--baud", type=int, help=f"baud rate (default {DEFAULTS.baud})")
    p.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="SERIALNUMBER=ROLE",
        help="the role of the device with this USB serial number, VID:PID (2341:0043), "
        "by-id link name or path (repeatable; default: the serial number)",
    )
    p.add_argument(
        "--period",
        type=float,
        help=f"discovery period in seconds, sent every period/2.2 (default {DEFAULTS.period:g})",
    )
    p.add_argument(
        "--ping-interval",
        type=float,
        help=f"seconds between pings (default {DEFAULTS.ping_interval:g})",
    )
    p.add_argument(
        "--missed-pongs",
        type=int,
        help=f"missed pongs before a reopen (default {DEFAULTS.missed_pongs})",
    )
    return p


def split_role(text: str) -> tuple[str, str]:
    """``SERIAL=ROLE`` from the command line (the key may also be VID:PID, a link name or a
    path)."""
    key, sep, role = text.partition("=")
    if not sep or not key or not role:
        raise GatewayError(f"--role {text[:80]!r}: expected SERIALNUMBER=ROLE")
    return key, role


def serial_config(args: argparse.Namespace) -> SerialBridgeConfig:
    """``--config``'s ``bridges.serial`` (or the defaults) with the flags over it, checked."""
    base = load_config(args.config).bridges.serial if args.config else SerialBridgeConfig()
    return serial_bridge_options(
        base,
        globs=args.glob,
        roles=[split_role(text) for text in args.role],
        baud=args.baud,
        period=args.period,
        ping_interval=args.ping_interval,
        missed_pongs=args.missed_pongs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()

    def job() -> int:
        config = serial_config(args)
        run_bridge("serial", config, resolve_broker(args.broker))
        return 0

    return run_tool(PROG, job)
