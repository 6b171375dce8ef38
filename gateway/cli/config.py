"""``gateway-config``: check the gateway's config file, or show what it amounts to; manage
the devices that log in to its broker.

    gateway-config check                      # /etc/msgflo-gateway/gateway.yaml
    gateway-config check gateway-laptop.yaml  # every problem as file:line: key.path: problem
    gateway-config show gateway-laptop.yaml   # the effective config, defaults filled in, as YAML
    gateway-config device add lamp > secrets.h    # a broker user for role lamp; its secrets.h
    gateway-config device show lamp           # that secrets.h again
    gateway-config device list                # the device roles, one a line
    gateway-config device remove lamp         # its user gone; a connected board is cut off

The device commands take the config file last too, and run as root on the appliance
(``gateway.appliance.devices``); add and remove tell ``msgflo-broker.service`` to reload
(``--reload UNIT``), or a broker's process (``--reload-pid PID``).

Exit status, as ``msgflo-graph``: 0 ok, 1 the file is invalid (each problem on its own
``gateway-config: error: ...`` line) or the device command cannot be done (a device that
exists already or does not exist, a broker not reloaded), 2 usage error (bad arguments, an
invalid role, a file that cannot be read).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.appliance import devices
from gateway.cli.options import run_tool
from gateway.config import DEFAULT_PATH, ConfigError, GatewayConfig, dump_config, parse_config
from gateway.config.load import read_config_text

PROG = "gateway-config"
EXIT_OK = 0
EXIT_INVALID = 1
EXIT_FAILED = 1  # a device command that cannot be done as asked


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Check or show the gateway's config; manage its devices."
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help="check a config file; list every problem")
    show = commands.add_parser("show", help="print the effective config (defaults filled in)")
    device = commands.add_parser("device", help="the devices that log in to the broker")
    actions = device.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="a broker user for ROLE; prints its secrets.h")
    remove = actions.add_parser("remove", help="remove ROLE's user; the broker refuses it")
    shown = actions.add_parser("show", help="print ROLE's secrets.h again")
    listed = actions.add_parser("list", help="the device roles, one a line")
    for sub in (add, remove, shown):
        sub.add_argument("role", metavar="ROLE", help="the device's role (its MQTT user)")
    for sub in (add, remove):
        reload = sub.add_mutually_exclusive_group()
        reload.add_argument(
            "--reload", metavar="UNIT", default=devices.BROKER_UNIT,
            help=f"the broker's systemd unit, sent SIGHUP (default: {devices.BROKER_UNIT})",
        )  # fmt: skip
        reload.add_argument(
            "--reload-pid", metavar="PID", type=int,
            help="send SIGHUP to this broker process instead (a broker not run by systemd)",
        )  # fmt: skip
    for sub in (check, show, add, remove, shown, listed):
        sub.add_argument(
            "file", metavar="FILE", nargs="?", type=Path, default=DEFAULT_PATH,
            help=f"the config file (default: {DEFAULT_PATH})",
        )  # fmt: skip
    return p


def cmd_check(args: argparse.Namespace, _config: GatewayConfig) -> int:
    print(f"{args.file}: ok")
    return EXIT_OK


def cmd_show(_args: argparse.Namespace, config: GatewayConfig) -> int:
    sys.stdout.write(dump_config(config))
    return EXIT_OK


def cmd_device(args: argparse.Namespace, config: GatewayConfig) -> int:
    try:
        return DEVICE_ACTIONS[args.action](args, config)
    except devices.DeviceError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def device_add(args: argparse.Namespace, config: GatewayConfig) -> int:
    sketch = devices.add_device(config, args.role, reloader(args))
    # stdout is the secrets.h alone (to redirect into a file); what happened goes to stderr.
    sys.stdout.write(devices.render_secrets_h(sketch))
    print(f"{PROG}: device {args.role!r} added; the broker reloaded", file=sys.stderr)
    return EXIT_OK


def device_remove(args: argparse.Namespace, config: GatewayConfig) -> int:
    devices.remove_device(config, args.role, reloader(args))
    print(f"{PROG}: device {args.role!r} removed; the broker reloaded", file=sys.stderr)
    return EXIT_OK


def device_show(args: argparse.Namespace, config: GatewayConfig) -> int:
    sys.stdout.write(devices.render_secrets_h(devices.device_secrets(config, args.role)))
    return EXIT_OK


def device_list(_args: argparse.Namespace, config: GatewayConfig) -> int:
    for role in devices.list_devices(config.data_dir):
        print(role)
    return EXIT_OK


def reloader(args: argparse.Namespace) -> devices.Reload:
    if args.reload_pid is not None:
        return devices.reload_pid(args.reload_pid)
    return devices.reload_unit(args.reload)


DEVICE_ACTIONS: dict[str, Callable[[argparse.Namespace, GatewayConfig], int]] = {
    "add": device_add,
    "remove": device_remove,
    "show": device_show,
    "list": device_list,
}

COMMANDS: dict[str, Callable[[argparse.Namespace, GatewayConfig], int]] = {
    "check": cmd_check,
    "show": cmd_show,
    "device": cmd_device,
}


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    path: Path = args.file
    # Read first, parse second: a file that cannot be read is a usage error (exit 2, by
    # run_tool), a file with problems in it is invalid (exit 1).
    text = read_config_text(path)
    try:
        config = parse_config(text, str(path), base_dir=path.absolute().parent)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{PROG}: error: {problem}", file=sys.stderr)
        return EXIT_INVALID
    return COMMANDS[args.command](args, config)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(PROG, lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
