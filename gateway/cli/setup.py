"""``msgflo-setup GRAPH``: wire a graph once (and optionally start its participants).

Prints the bindings as the original does (``PUBSUB: <src queue> -> <tgt queue>``;
``ROUNDROBIN:`` for the edges through a ``msgflo/RoundRobin``, ``DEADLETTER: <worker queue> ->
<dead-letter queue>`` for its ``DEADLETTER`` edge), from the queues the participants announce.
On MQTT the bindings are forwarded by this process, so without ``--forever`` they stop when it
exits: it says so (msgflo/msgflo#181). On AMQP they are durable broker bindings and stay; it
exits once the broker carries every resolved edge. Edges still unresolved after ``--timeout``
make it fail (exit status 2, after printing the bindings that were made).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.broker import resolve_broker
from gateway.cli.options import add_broker_option, add_flag, run_tool
from gateway.common.logs import configure_logging
from gateway.common.signals import run_daemon
from gateway.coordinator.coordinator import Coordinator
from gateway.coordinator.service import (
    CoordinatorService,
    ServiceConfig,
    library_from_options,
    load_service_graph,
)
from gateway.coordinator.wiring import EdgeKind, EdgeState
from gateway.errors import GatewayError

PROG = "msgflo-setup"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Set up the bindings of a graph.")
    p.add_argument("graph", type=Path, help=".fbp or .json graph")
    add_broker_option(p)
    add_flag(p, "--participants", "also start the participants")
    add_flag(p, "--forever", "keep running (and forwarding, on MQTT)")
    p.add_argument("--only", default="", help="start only these roles (comma separated)")
    p.add_argument("--ignore", default="", help="do not start these roles (comma separated)")
    p.add_argument("--library", type=Path, help="component library (default: ./package.json)")
    p.add_argument("--componentdir", type=Path, help="directory of participant files")
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the participants to be discovered",
    )
    add_flag(p, "--discover", "(accepted; queues always come from discovery)")
    p.add_argument("--forward", default="", help="(accepted; output is always forwarded)")
    add_flag(p, "--shell", "(accepted; commands never run through a shell)")
    return p


def _roles(text: str) -> set[str]:
    return {r.strip() for r in text.split(",") if r.strip()}


async def setup(service: CoordinatorService, args: argparse.Namespace) -> None:
    coordinator = service.coordinator
    mqtt = service.config.broker.is_mqtt
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(service.run())
        problem = await _wait_wired(coordinator, args.timeout)
        for state in coordinator.edge_states():
            line = _binding_line(state, mqtt=mqtt)
            if line is not None:
                print(line, flush=True)
        if args.forever and problem is None:
            return
        if mqtt:
            print(
                f"{PROG}: MQTT bindings are forwarded by this process and stop now; "
                "use --forever to keep them",
                file=sys.stderr,
            )
        else:
            print(f"{PROG}: the bindings stay on the AMQP broker", file=sys.stderr)
        running.cancel()
    if problem is not None:
        raise GatewayError(problem)


async def _wait_wired(coordinator: Coordinator, within: float) -> str | None:
    """Until every edge is resolved and the broker carries it (a refused bind is retried);
    what is still missing after ``within`` seconds, or None."""
    try:
        async with asyncio.timeout(within):
            await coordinator.wired()
            while coordinator.retrying or not all(s.resolved for s in coordinator.edge_states()):
                await asyncio.sleep(0.05)
                await coordinator.wired()
    except TimeoutError:
        pending = [s for s in coordinator.edge_states() if not s.resolved]
        names = ", ".join(_edge_name(s) for s in pending)
        return (
            f"{len(pending)} edges not resolved after {within:g} s: {names}"
            if pending
            else f"bindings refused by the broker for {within:g} s"
        )
    return None


def _edge_name(state: EdgeState) -> str:
    src, tgt = state.edge.src, state.edge.tgt
    return f"{src.process} {src.port.upper()} -> {tgt.port.upper()} {tgt.process}"


def _binding_line(state: EdgeState, *, mqtt: bool) -> str | None:
    """``TYPE: src -> tgt`` for a resolved edge, as the original prints it. On MQTT nothing
    carries a dead-letter edge (no nack there), so it is not printed."""
    if not state.resolved or (mqtt and state.kind is EdgeKind.DEADLETTER):
        return None
    return f"{state.kind.value.upper()}: {state.src_queue} -> {state.tgt_queue}"


def run(args: argparse.Namespace) -> int:
    graph = load_service_graph(args.graph)
    start_roles = set(graph.processes) if args.participants else set()
    if args.only:
        start_roles &= _roles(args.only)
    start_roles -= _roles(args.ignore)
    config = ServiceConfig(
        broker=resolve_broker(args.broker),
        graph_path=args.graph,
        library=library_from_options(args.library, args.componentdir),
        ignore=frozenset(set(graph.processes) - start_roles),
        wait_timeout=args.timeout,
    )
    run_daemon(setup(CoordinatorService(config, graph), args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    return run_tool(PROG, lambda: run(args))
