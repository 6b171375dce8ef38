"""What every command-line tool shares: the broker option, real booleans, one-line errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.common.logs import configure_logging
from gateway.errors import GatewayError

EXIT_USAGE = 2  # bad input: invalid URL, file, option (as argparse)
EXIT_FAILURE = 1  # valid input but the job could not be done (broker unreachable, timeout)

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def add_broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="broker URL, e.g. mqtt://user:pass@host:1883 (default: $MSGFLO_BROKER, "
        "then mqtt://localhost)",
    )


def add_config_option(parser: argparse.ArgumentParser, bridge: str, note: str = "") -> None:
    """``--config GATEWAY.yaml``: a bridge's CLI takes its settings from its section."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="GATEWAY.yaml",
        help=f"settings from the bridges.{bridge} section of a gateway.yaml{note}",
    )


def boolean(text: str) -> bool:
    """Parse a boolean option value. Unlike the original tools, ``false`` means false."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_flag(parser: argparse.ArgumentParser, name: str, help: str, default: bool = False) -> None:
    """A boolean option that takes ``--name``, ``--name=true`` and ``--name false`` alike."""
    parser.add_argument(
        name, type=boolean, nargs="?", const=True, default=default, metavar="BOOL", help=help
    )


def run_tool(prog: str, job: Callable[[], int]) -> int:
    """Run ``job``; a GatewayError becomes ``prog: error: message`` and exit status 2."""
    try:
        return job()
    except GatewayError as exc:
        # A file with several problems (a graph) reports each on its own line.
        for problem in getattr(exc, "problems", None) or [exc]:
            print(f"{prog}: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


Job = Callable[[argparse.Namespace], int]


def run_bridge_tool(
    prog: str,
    argv: Sequence[str] | None,
    daemon: tuple[argparse.ArgumentParser, Job],
    command: tuple[str, argparse.ArgumentParser, Job],
) -> int:
    """A bridge's CLI: ``prog [options]`` runs the bridge (``daemon``), ``prog NAME [options]``
    its one other command (``command``: scan, heard, pins), each through :func:`run_tool`."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    name, parser, job = (command[0], command[1], command[2])
    if args_list[:1] == [name]:
        args = parser.parse_args(args_list[1:])
        return run_tool(f"{prog} {name}", lambda: job(args))
    parser, job = daemon
    daemon_args = parser.parse_args(args_list)
    return run_tool(prog, lambda: job(daemon_args))
