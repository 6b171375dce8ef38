"""``msgflo-info --address ws://127.0.0.1:3569``: what a running runtime is doing.

Prints the runtime, the components it knows (library and discovered participants), and the
graph it runs: nodes, edges and IIPs, through the FBP runtime protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from typing import Any

from gateway.cli.options import EXIT_FAILURE, run_tool
from gateway.errors import GatewayError
from gateway.runtime_protocol.client import RuntimeClient

PROG = "msgflo-info"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Show what a msgflo runtime is doing.")
    p.add_argument("--address", default="ws://127.0.0.1:3569", help="runtime websocket address")
    p.add_argument(
        "--secret",
        default=os.environ.get("MSGFLO_SECRET") or None,
        help="runtime secret (default: $MSGFLO_SECRET)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for answers")
    return p


def _checked(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("command") == "error":
        raise GatewayError(f"runtime refused: {reply.get('payload', {}).get('message')}")
    payload = reply.get("payload")
    return payload if isinstance(payload, dict) else {}


async def gather(address: str, secret: str | None) -> list[str]:
    lines: list[str] = []
    async with RuntimeClient(address, secret=secret) as runtime:
        info = _checked(
            await runtime.request("runtime", "getruntime", expect=[("runtime", "runtime")])
        )
        lines.append(
            f"runtime {info.get('id')} ({info.get('type')} {info.get('version')}), "
            f"graph {info.get('graph')}"
        )
        listed = await runtime.collect(
            "component", "list", {}, until=("component", "componentsready")
        )
        lines.append("components:")
        for message in listed:
            if message.get("command") == "component":
                lines.append("  " + _component_line(message["payload"]))
        source = _checked(
            await runtime.request(
                "component",
                "getsource",
                {"name": info.get("graph") or "default/main"},
                expect=[("component", "source")],
            )
        )
        lines += _graph_lines(json.loads(source.get("code") or "{}"))
    return lines


def _component_line(component: dict[str, Any]) -> str:
    ins = ", ".join(p["id"] for p in component.get("inPorts", []))
    outs = ", ".join(p["id"] for p in component.get("outPorts", []))
    return f"{component.get('name')}  in: {ins or '-'}  out: {outs or '-'}"


def _graph_lines(graph: dict[str, Any]) -> list[str]:
    lines = ["nodes:"]
    for role, process in sorted(graph.get("processes", {}).items()):
        lines.append(f"  {role} ({process.get('component')})")
    lines.append("edges:")
    for connection in graph.get("connections", []):
        tgt = connection["tgt"]
        if "src" in connection:
            src = connection["src"]
            lines.append(f"  {src['process']} {src['port']} -> {tgt['port']} {tgt['process']}")
        else:
            lines.append(
                f"  {json.dumps(connection.get('data'))} -> {tgt['port']} {tgt['process']}"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def job() -> int:
        try:
            lines = asyncio.run(asyncio.wait_for(gather(args.address, args.secret), args.timeout))
        except TimeoutError:
            print(f"{PROG}: error: no answer from {args.address} within {args.timeout:g} s")
            return EXIT_FAILURE
        print("\n".join(lines))
        return 0

    return run_tool(PROG, job)
