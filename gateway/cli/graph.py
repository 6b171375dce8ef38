"""``msgflo-graph``: check, convert and show graph files (.fbp or FBP JSON, by extension).

    msgflo-graph validate main.fbp            # every problem as file:line:col, with a caret
    msgflo-graph convert main.fbp main.json   # .fbp <-> JSON; JSON written canonically
    msgflo-graph show main.json               # processes, edges, IIPs and exports as tables

Exit status (issue 3): 0 ok, 1 the graph is invalid (or cannot be written in the target
format), 2 usage error (bad arguments, a file that cannot be read or written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence

from gateway.errors import GraphError, InvalidGraphError
from gateway.graph import Graph, Initial, fbp_with_warnings, is_fbp, read_graph, to_json
from gateway.graph.files import write_graph_file
from gateway.graph.model import thaw

PROG = "msgflo-graph"
EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Check, convert and show msgflo graphs.")
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = commands.add_parser("validate", help="check a graph; list every problem")
    validate.add_argument("file", metavar="FILE")
    convert = commands.add_parser("convert", help="convert .fbp <-> JSON (by extension)")
    convert.add_argument("input", metavar="IN")
    convert.add_argument("output", metavar="OUT")
    convert.add_argument(
        "--lossy",
        action="store_true",
        help="when writing .fbp, leave out metadata and groups it cannot express",
    )
    show = commands.add_parser("show", help="print processes, edges, IIPs and exports")
    show.add_argument("file", metavar="FILE")
    for sub in (validate, convert, show):
        sub.add_argument(
            "--case-sensitive",
            action="store_true",
            help="keep .fbp port names as written (default: lower-case them, like msgflo)",
        )
        sub.add_argument(
            "--brief", action="store_true", help="one line per problem, without source and caret"
        )
    return p


def report(errors: Iterable[GraphError], *, brief: bool, label: str = "error") -> None:
    for err in errors:
        hint = f" ({err.hint})" if err.hint else ""
        print(f"{err.location()}: {label}: {err.problem}{hint}", file=sys.stderr)
        if err.source_line and not brief:
            print(f"    {err.source_line.expandtabs(1)}", file=sys.stderr)
            print("    " + " " * max(err.col - 1, 0) + "^", file=sys.stderr)


def _load(path: str, args: argparse.Namespace) -> Graph:
    graph, warnings = read_graph(path, case_sensitive=args.case_sensitive)
    report(warnings, brief=args.brief, label="warning")
    return graph


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def cmd_validate(args: argparse.Namespace) -> int:
    graph = _load(args.file, args)
    iips = len(graph.initials)
    counts = (
        _count(len(graph.processes), "process", "processes"),
        _count(len(graph.connections) - iips, "edge", "edges"),
        _count(iips, "IIP", "IIPs"),
    )
    print(f"{args.file}: ok ({', '.join(counts)})")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    graph = _load(args.input, args)
    if is_fbp(args.output):
        text, dropped = fbp_with_warnings(graph, lossy=args.lossy, file=args.input)
        report(dropped, brief=True, label="warning")
    else:
        text = to_json(graph)
    write_graph_file(args.output, text.encode("utf-8"))
    return EXIT_OK


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return [f"{title}: none"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{title} ({len(rows)}):"]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return [line.rstrip() for line in lines]


def _port(process: str, port: str, index: int | None) -> str:
    return f"{process}.{port}" + ("" if index is None else f"[{index}]")


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def show_lines(graph: Graph) -> list[str]:
    """The ``show`` output: a heading, then one table per part of the graph."""
    props = graph.properties
    title = f"graph {props.name!r}" if props.name is not None else "graph"
    runtime = f" (runtime {props.runtime})" if props.runtime else ""
    procs = [
        (name, p.component, _compact(dict(p.metadata)) if p.metadata else "")
        for name, p in sorted(graph.processes.items())
    ]
    edges = [
        (
            _port(e.src.process, e.src.port, e.src.index),
            "->",
            _port(e.tgt.process, e.tgt.port, e.tgt.index),
        )
        for e in graph.edges
    ]
    iips = [
        (_iip_text(c), "->", _port(c.tgt.process, c.tgt.port, c.tgt.index)) for c in graph.initials
    ]
    exports = [
        (kind, public, f"{e.process}.{e.port}")
        for kind, ports in (("inport", graph.inports), ("outport", graph.outports))
        for public, e in sorted(ports.items())
    ]
    return [
        f"{title}{runtime}",
        *_table("processes", ("ROLE", "COMPONENT", "METADATA"), procs),
        *_table("edges", ("FROM", "", "TO"), edges),
        *_table("IIPs", ("DATA", "", "TO"), iips),
        *_table("exports", ("KIND", "PUBLIC", "PORT"), exports),
    ]


def _iip_text(iip: Initial) -> str:
    return _compact(thaw(iip.data))


def cmd_show(args: argparse.Namespace) -> int:
    graph = _load(args.file, args)
    print("\n".join(show_lines(graph)))
    return EXIT_OK


COMMANDS = {"validate": cmd_validate, "convert": cmd_convert, "show": cmd_show}


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InvalidGraphError as exc:
        report(exc.problems, brief=args.brief)
        count = len(exc.problems)
        print(f"{PROG}: {count} problem{'s' if count > 1 else ''}, nothing done", file=sys.stderr)
        return EXIT_INVALID
    except GraphError as exc:
        # A single GraphError is a file that cannot be read or written: a usage problem.
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
