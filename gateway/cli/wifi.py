"""``gateway-wifi status|watch``: the WiFi access point, as hostapd reports it.

``status`` prints the AP's state, SSID, channel and connected stations (``--json`` for a
machine-readable form); ``watch`` prints hostapd's events as they happen, until hostapd exits.
A control socket that cannot be reached, or does not answer, is one error line and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from gateway.cli.options import EXIT_FAILURE, run_tool
from gateway.wifi.hostapd_client import DEFAULT_CTRL, HostapdClient
from gateway.wifi.hostapd_ctrl import (
    ApDisabled,
    ApEnabled,
    ApStatus,
    Event,
    OtherEvent,
    Station,
    StationConnected,
    StationDisconnected,
    Terminating,
)

PROG = "gateway-wifi"


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--ctrl",
        default=DEFAULT_CTRL,
        metavar="PATH",
        help=f"hostapd control socket, <ctrl_interface>/<ifname> (default: {DEFAULT_CTRL})",
    )
    common.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    p = argparse.ArgumentParser(prog=PROG, description="Show the gateway's WiFi access point.")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("status", parents=[common], help="state, SSID, channel and stations")
    commands.add_parser("watch", parents=[common], help="print hostapd's events as they come")
    return p


async def status(ctrl: str, reply_timeout: float, as_json: bool) -> int:
    async with HostapdClient.connect(ctrl, timeout=reply_timeout) as hostapd:
        ap = await hostapd.status()
        stations = await hostapd.stations()
    if as_json:
        print(json.dumps(status_json(ap, stations), indent=2))
    else:
        print("\n".join(status_lines(ap, stations)))
    return 0


async def watch(ctrl: str, reply_timeout: float, as_json: bool) -> int:
    async with HostapdClient.connect(ctrl, timeout=reply_timeout) as hostapd:
        async for event in hostapd.events():
            line = json.dumps(event_json(event)) if as_json else event_line(event)
            # flush: the reader is often a pipe (journald, a test) that wants each event now.
            print(line, flush=True)
    print(f"{PROG}: hostapd at {ctrl} is terminating", file=sys.stderr)
    return EXIT_FAILURE


def status_lines(ap: ApStatus, stations: Sequence[Station]) -> list[str]:
    # driver=none and radios that are down report freq=0: leave out a meaningless 0 MHz.
    freq = f" ({ap.freq} MHz)" if ap.freq else ""
    lines = [
        f"state:    {ap.state}",
        f"ssid:     {ap.ssid}",
        f"bssid:    {ap.bssid}",
        f"channel:  {ap.channel}{freq}",
        f"stations: {len(stations)}",
    ]
    return lines + [f"  {station_line(s)}" for s in stations]


def station_line(station: Station) -> str:
    parts = [str(station.mac)]
    if station.connected_time is not None:
        parts.append(f"connected {station.connected_time} s")
    if station.signal is not None:
        parts.append(f"signal {station.signal} dBm")
    if station.rx_bytes is not None and station.tx_bytes is not None:
        parts.append(f"rx {station.rx_bytes} B tx {station.tx_bytes} B")
    parts.append(" ".join(sorted(station.flags)) or "-")
    return "  ".join(parts)


def status_json(ap: ApStatus, stations: Sequence[Station]) -> dict[str, Any]:
    return {
        "state": ap.state.value,
        "ssid": ap.ssid,
        "bssid": str(ap.bssid),
        "channel": ap.channel,
        "freq": ap.freq,
        "num_sta": ap.num_sta,
        "stations": [station_json(s) for s in stations],
    }


def station_json(station: Station) -> dict[str, Any]:
    return {
        "mac": str(station.mac),
        "flags": sorted(station.flags),
        "aid": station.aid,
        "connected_time": station.connected_time,
        "inactive_msec": station.inactive_msec,
        "rx_packets": station.rx_packets,
        "tx_packets": station.tx_packets,
        "rx_bytes": station.rx_bytes,
        "tx_bytes": station.tx_bytes,
        "signal": station.signal,
    }


def event_line(event: Event) -> str:
    match event:
        case StationConnected(mac):
            return f"station connected: {mac}"
        case StationDisconnected(mac):
            return f"station disconnected: {mac}"
        case ApEnabled():
            return "access point enabled"
        case ApDisabled():
            return "access point disabled"
        case Terminating():
            return "hostapd terminating"
        case OtherEvent(text):
            return text


def event_json(event: Event) -> dict[str, str]:
    match event:
        case StationConnected(mac):
            return {"event": "station-connected", "mac": str(mac)}
        case StationDisconnected(mac):
            return {"event": "station-disconnected", "mac": str(mac)}
        case ApEnabled():
            return {"event": "ap-enabled"}
        case ApDisabled():
            return {"event": "ap-disabled"}
        case Terminating():
            return {"event": "terminating"}
        case OtherEvent(text):
            return {"event": "other", "text": text}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    job = status if args.command == "status" else watch
    return run_tool(PROG, lambda: asyncio.run(job(args.ctrl, args.timeout, args.json)))


if __name__ == "__main__":
    sys.exit(main())
