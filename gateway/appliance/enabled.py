"""``gateway-enabled NAME``: exit 0 if the service NAME is enabled in ``gateway.yaml``, else 1.

NAME is ``access-point`` or ``bridge-<name>`` (a bridge of ``bridges:``). The units of the
access point, its DHCP server and every bridge ask this in ``ExecCondition=``, seven processes
at each boot while the coordinator starts: so it loads the config and nothing else, where
``gateway-run`` imports the code of every service (a third of its start-up time; under the
boot test's emulator these processes competed with the coordinator for the CPU,
docs/appliance.md, "Boot to ready"). An unknown NAME or a broken config is exit status 2 with
one line, as for every tool.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from gateway.cli.options import run_tool
from gateway.config import DEFAULT_PATH, GatewayConfig, load_config
from gateway.errors import GatewayError

PROG = "gateway-enabled"
ACCESS_POINT = "access-point"
BRIDGE = "bridge-"


def is_enabled(config: GatewayConfig, name: str) -> bool:
    """Whether the service ``name`` runs with ``config``; GatewayError for an unknown one."""
    if name == ACCESS_POINT:
        return config.access_point.enabled
    bridge = name.removeprefix(BRIDGE)
    if name.startswith(BRIDGE) and bridge in config.bridges.names():
        return bridge in config.bridges.enabled()
    known = ", ".join([ACCESS_POINT, *(BRIDGE + b for b in config.bridges.names())])
    raise GatewayError(f"unknown service {name!r} (one of: {known})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("MSGFLO_GATEWAY_CONFIG", DEFAULT_PATH)),
        help=f"the gateway's config file (default {DEFAULT_PATH})",
    )
    p.add_argument("name", help=f"{ACCESS_POINT} or {BRIDGE}NAME")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_tool(PROG, lambda: 0 if is_enabled(load_config(args.config), args.name) else 1)
