"""``msgflo``: the coordinator, with the options of the original (npm msgflo 0.12.3).

    msgflo --graph graphs/main.fbp --broker mqtt://localhost --ignore door

Without ``--broker`` and ``$MSGFLO_BROKER``, it uses a broker on localhost:1883 when one
listens there, and otherwise starts a private Mosquitto on a free loopback port for itself and
the participants it starts. It starts at once: participants that are not there yet are wired
when they announce themselves (``--wait-timeout`` only reports who is still missing).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.cli.options import add_broker_option, boolean, run_tool
from gateway.common.logs import configure_logging
from gateway.coordinator.coordinator import RetainedPolicy
from gateway.coordinator.run import choose_broker, run_with_runtime_protocol
from gateway.coordinator.runtime_environment import RuntimeSettings
from gateway.coordinator.service import ServiceConfig, library_from_options, load_service_graph
from gateway.dashboard.settings import DashboardSettings, WebMqtt
from gateway.graph.model import Initial
from gateway.runtime_protocol.limits import ConnectionLimits

PROG = "msgflo"
ENV_MQTT_WEBSOCKETS = "MSGFLO_MQTT_WEBSOCKETS"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="The msgflo coordinator.")
    add_broker_option(p)
    p.add_argument("--graph", type=Path, help=".fbp or .json graph to run")
    p.add_argument("--library", type=Path, help="component library (default: ./package.json)")
    p.add_argument("--componentdir", type=Path, help="directory of participant files")
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="ROLE",
        help="a role not to start (run elsewhere); repeatable",
    )
    p.add_argument(
        "--foreign",
        type=Path,
        metavar="DIR",
        help="announce graph nodes whose component has a YAML file in DIR",
    )
    p.add_argument(
        "--auto-save",
        type=boolean,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="save the graph file when it changes",
    )
    p.add_argument(
        "--wait-timeout",
        type=float,
        default=45.0,
        help="seconds after which missing participants are reported (never blocks)",
    )
    p.add_argument(
        "--expiry",
        type=float,
        default=600.0,
        help="seconds without discovery after which a participant is gone",
    )
    p.add_argument(
        "--retained",
        choices=[p.value for p in RetainedPolicy],
        default="skip",
        help="retained messages replayed at subscribe: skip (default) or forward",
    )
    p.add_argument(
        "--strict",
        type=boolean,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="accept only queues under '<role>/' in discovery (as on the appliance, whose "
        "broker lets only the role's user use them)",
    )
    p.add_argument(
        "--registry",
        type=Path,
        metavar="FILE",
        help="keep the discovered participants in FILE, so that a restart forwards at once",
    )
    p.add_argument(
        "--session-expiry",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long the broker keeps what arrives for the graph's edges while the "
        "coordinator is away (MQTT; 0: nothing; needs a graph file or name)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="runtime protocol address (beyond loopback only with a secret)",
    )
    p.add_argument("--port", type=int, default=3569, help="runtime protocol port")
    p.add_argument(
        "--secret",
        default=os.environ.get("MSGFLO_SECRET") or None,
        help="runtime protocol secret (default: $MSGFLO_SECRET)",
    )
    p.add_argument("--runtime-id", default=os.environ.get("MSGFLO_RUNTIME_ID", ""))
    p.add_argument(
        "--mqtt-websockets",
        default=os.environ.get(ENV_MQTT_WEBSOCKETS) or None,
        metavar="URL",
        help="the broker's MQTT over WebSockets listener as browsers reach it, "
        "ws://[USER:PASSWORD@]HOST:PORT/, for the dashboard's virtual devices "
        f"(default: ${ENV_MQTT_WEBSOCKETS}, or the private Mosquitto's when msgflo starts one)",
    )
    defaults = ConnectionLimits()
    p.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="runtime protocol: connections at once",
    )
    p.add_argument(
        "--max-connections-per-address",
        type=int,
        default=defaults.max_per_peer,
        help="runtime protocol: connections at once from one address",
    )
    p.add_argument(
        "--auth-timeout",
        type=float,
        default=defaults.idle_timeout,
        help="runtime protocol: seconds a connection has to authenticate",
    )
    # Accepted for compatibility with deployed command lines; see the help text.
    p.add_argument(
        "--forward",
        default="stderr,stdout",
        help="(accepted; output is always forwarded with a [role] prefix)",
    )
    p.add_argument("--ide", default="", help="(accepted; no cloud IDE is contacted)")
    p.add_argument("--ping-url", default="", help="(accepted; no registry is pinged)")
    p.add_argument("--ping-method", default="POST", help="(accepted)")
    p.add_argument("--ping-interval", type=float, default=0, help="(accepted)")
    return p


def run(args: argparse.Namespace) -> int:
    graph = load_service_graph(args.graph, auto_save=args.auto_save)
    library = library_from_options(args.library, args.componentdir)
    with contextlib.ExitStack() as stack:
        broker, private_ws = choose_broker(args.broker, stack)
        ws_url = args.mqtt_websockets or private_ws
        config = ServiceConfig(
            broker=broker,
            graph_path=args.graph,
            library=library,
            ignore=frozenset(args.ignore),
            foreign_dir=args.foreign,
            auto_save=args.auto_save,
            wait_timeout=args.wait_timeout,
            expiry=args.expiry,
            retained=RetainedPolicy(args.retained),
            registry_path=args.registry,
            strict=args.strict,
            session_expiry=args.session_expiry,
        )
        edges = sum(1 for c in graph.connections if not isinstance(c, Initial))
        print(
            f"{PROG}: coordinating {len(graph.processes)} nodes and {edges} edges "
            f"on {config.broker}",
            flush=True,
        )
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"{PROG}: dashboard at http://{host}:{args.port}/", flush=True)
        limits = ConnectionLimits(
            args.max_connections, args.max_connections_per_address, args.auth_timeout
        )
        dashboard = DashboardSettings(web_mqtt=WebMqtt.parse(ws_url) if ws_url else None)
        settings = RuntimeSettings(
            args.host, args.port, args.secret, args.runtime_id, limits=limits, dashboard=dashboard
        )
        run_with_runtime_protocol(config, graph, settings)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    if args.auto_save and args.graph is None:
        print(f"{PROG}: error: --auto-save needs --graph", file=sys.stderr)
        return 2
    if min(args.max_connections, args.max_connections_per_address, args.auth_timeout) <= 0:
        print(f"{PROG}: error: the runtime protocol's limits must be positive", file=sys.stderr)
        return 2
    return run_tool(PROG, lambda: run(args))
