"""``msgflo-procfile GRAPH``: Heroku/foreman Procfile lines, ``role: command``, for a graph.

Commands come from the component library as for the coordinator, quoted for the shell that
runs Procfile lines. Roles the library cannot start are listed on stderr. As asked in
msgflo/msgflo#48, a Procfile without a ``web`` role is refused (Heroku needs one) unless
``--allow-no-web`` is given.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.cli.options import run_tool
from gateway.coordinator.library import ComponentLibrary, load_library
from gateway.coordinator.service import library_from_options
from gateway.errors import GatewayError
from gateway.graph import load_graph
from gateway.graph.model import Graph, Initial, thaw

PROG = "msgflo-procfile"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Print a Procfile for a graph.")
    p.add_argument("graph", type=Path, help=".fbp or .json graph")
    p.add_argument("--library", type=Path, help="component library (default: ./package.json)")
    p.add_argument("--components", type=Path, help="directory of participant files")
    p.add_argument(
        "--ignore", action="append", default=[], metavar="NODE", help="leave NODE out; repeatable"
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="DATA",
        help="add DATA as a line, as is; repeatable",
    )
    p.add_argument("--allow-no-web", action="store_true", help="do not require a 'web' role")
    return p


def procfile(
    graph: Graph, library: ComponentLibrary, ignore: set[str]
) -> tuple[list[str], list[str]]:
    """The Procfile lines, and the roles that have no command in the library."""
    lines, unknown = [], []
    for role, process in graph.processes.items():
        if role in ignore:
            continue
        iips = {
            c.tgt.port: thaw(c.data)
            for c in graph.connections
            if isinstance(c, Initial) and c.tgt.process == role
        }
        argv = library.command(process.component, role, iips)
        if argv is None:
            unknown.append(f"{role} ({process.component})")
        else:
            lines.append(f"{role}: {shlex.join(argv)}")
    return lines, unknown


def run(args: argparse.Namespace) -> int:
    graph = load_graph(args.graph)
    library = (
        load_library(args.library).with_component_dir(args.components or Path("participants"))
        if args.library
        else library_from_options(None, args.components)
    )
    lines, unknown = procfile(graph, library, set(args.ignore))
    if not args.allow_no_web and not any(line.startswith("web: ") for line in lines):
        raise GatewayError(
            "no 'web' role in the Procfile; Heroku needs one (--allow-no-web to write it anyway)"
        )
    for role in unknown:
        print(f"{PROG}: warning: no command for {role} in the component library", file=sys.stderr)
    print("\n".join([*lines, *args.include]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_tool(PROG, lambda: run(args))
