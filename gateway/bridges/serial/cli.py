"""``msgflo-serial``: announce USB serial devices that speak the serial link as participants.

    msgflo-serial --broker mqtt://localhost --glob '/dev/serial/by-id/*' --baud 115200 \\
        --role 75833353035351A0C1E1=lab/button

or the same in a YAML file (``--config serial.yaml``; options on the command line win)::

    broker: mqtt://localhost
    globs: ["/dev/serial/by-id/*"]
    baud: 115200
    period: 60
    roles:
      75833353035351A0C1E1: lab/button
"""

from __future__ import annotations

import argparse
import asyncio
import termios
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.bridges.serial.bridge import DEFAULT_BAUD, DEFAULT_GLOB, BridgeConfig, SerialBridge
from gateway.bridges.serial.roles import RoleMap, parse_role_option
from gateway.bridges.serial.session import SessionConfig
from gateway.broker import BrokerUrl, resolve_broker
from gateway.cli.options import add_broker_option, run_tool
from gateway.common.logs import configure_logging
from gateway.common.signals import until_signalled
from gateway.common.yaml12 import load_yaml
from gateway.errors import GatewayError
from gateway.participant.discovery import DEFAULT_PERIOD
from gateway.transport.mqtt import MqttTransport

PROG = "msgflo-serial"
CONFIG_KEYS = frozenset({"broker", "globs", "baud", "period", "roles"})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Announce USB serial devices as msgflo participants."
    )
    add_broker_option(p)
    p.add_argument("--config", type=Path, metavar="FILE.yaml", help="settings from a YAML file")
    p.add_argument(
        "--glob",
        action="append",
        metavar="PATTERN",
        help=f"device paths to watch (repeatable; default {DEFAULT_GLOB})",
    )
    p.add_argument("--baud", type=int, help=f"baud rate (default {DEFAULT_BAUD})")
    p.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="SERIALNUMBER=ROLE",
        help="the role of the device with this USB serial number, link name or path "
        "(repeatable; default: the serial number)",
    )
    p.add_argument(
        "--period",
        type=float,
        help=f"discovery period in seconds, sent every period/2.2 (default {DEFAULT_PERIOD:g})",
    )
    p.add_argument("--ping-interval", type=float, default=5.0, help="seconds between pings")
    p.add_argument("--missed-pongs", type=int, default=3, help="missed pongs before a reopen")
    return p


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise GatewayError(f"{path}: {error.strerror}") from None
    doc = load_yaml(text, str(path)) or {}
    if not isinstance(doc, dict):
        raise GatewayError(f"{path}: expected a mapping of settings")
    unknown = sorted(set(doc) - CONFIG_KEYS)
    if unknown:
        raise GatewayError(f"{path}: unknown setting {unknown[0]!r} (known: {sorted(CONFIG_KEYS)})")
    return doc


def _roles(file_roles: Any, options: Sequence[str], source: str) -> dict[str, str]:
    if not isinstance(file_roles, Mapping):
        raise GatewayError(f"{source}: roles must map serial numbers to roles")
    roles = {str(k): str(v) for k, v in file_roles.items()}
    roles.update(parse_role_option(text) for text in options)
    return roles


def bridge_config(args: argparse.Namespace, file: Mapping[str, Any]) -> BridgeConfig:
    """The CLI options over the file's settings over the defaults, validated."""
    globs = args.glob or file.get("globs") or [DEFAULT_GLOB]
    baud = args.baud or file.get("baud") or DEFAULT_BAUD
    period = args.period or file.get("period") or DEFAULT_PERIOD
    if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs):
        raise GatewayError("globs must be a list of path patterns")
    if not isinstance(baud, int) or not hasattr(termios, f"B{baud}"):
        raise GatewayError(f"baud {baud!r} is not a rate this system's termios supports")
    if not isinstance(period, int | float) or period <= 0:
        raise GatewayError(f"period must be a positive number of seconds, got {period!r}")
    if args.ping_interval <= 0 or args.missed_pongs < 1:
        raise GatewayError("--ping-interval must be positive and --missed-pongs at least 1")
    session = SessionConfig(
        role="-", ping_interval=args.ping_interval, max_missed_pongs=args.missed_pongs
    )
    return BridgeConfig(
        globs=tuple(globs),
        baud=baud,
        roles=RoleMap(_roles(file.get("roles", {}), args.role, str(args.config or "--role"))),
        period=float(period),
        session=session,
    )


async def serve(url: BrokerUrl, config: BridgeConfig) -> None:
    async with MqttTransport(url, client_id=f"{PROG}-%i") as transport:
        await SerialBridge(config, transport).run()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()

    def job() -> int:
        file = load_config_file(args.config) if args.config else {}
        broker = args.broker or file.get("broker")
        if broker is not None and not isinstance(broker, str):
            raise GatewayError(f"{args.config}: broker must be a URL string")
        url = resolve_broker(broker)
        config = bridge_config(args, file)
        asyncio.run(until_signalled(serve(url, config)))
        return 0

    return run_tool(PROG, job)
