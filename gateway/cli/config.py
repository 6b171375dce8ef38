"""``gateway-config``: check the gateway's config file, or show what it amounts to.

    gateway-config check                      # /etc/msgflo-gateway/gateway.yaml
    gateway-config check gateway-laptop.yaml  # every problem as file:line: key.path: problem
    gateway-config show gateway-laptop.yaml   # the effective config, defaults filled in, as YAML

Exit status, as ``msgflo-graph``: 0 ok, 1 the file is invalid (each problem on its own
``gateway-config: error: ...`` line), 2 usage error (bad arguments, a file that cannot be read).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.cli.options import run_tool
from gateway.config import DEFAULT_PATH, ConfigError, GatewayConfig, dump_config, parse_config
from gateway.config.load import read_config_text

PROG = "gateway-config"
EXIT_OK = 0
EXIT_INVALID = 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Check or show the gateway's config.")
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help="check a config file; list every problem")
    show = commands.add_parser("show", help="print the effective config (defaults filled in)")
    for sub in (check, show):
        sub.add_argument(
            "file", metavar="FILE", nargs="?", type=Path, default=DEFAULT_PATH,
            help=f"the config file (default: {DEFAULT_PATH})",
        )  # fmt: skip
    return p


def cmd_check(path: Path, _config: GatewayConfig) -> int:
    print(f"{path}: ok")
    return EXIT_OK


def cmd_show(_path: Path, config: GatewayConfig) -> int:
    sys.stdout.write(dump_config(config))
    return EXIT_OK


COMMANDS = {"check": cmd_check, "show": cmd_show}


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
    return COMMANDS[args.command](path, config)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(PROG, lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
