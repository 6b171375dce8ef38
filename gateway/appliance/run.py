"""``gateway-run``: start one of the gateway's services from ``gateway.yaml``.

The systemd units in ``services/`` call this, one subcommand per unit, so each service reads
the same config file and the secrets first boot generated, and nothing secret ever appears on
a command line (``ps`` shows it to every user)::

    gateway-run broker              Mosquitto with the rendered config (execs mosquitto)
    gateway-run coordinator         the coordinator and the FBP runtime protocol server
    gateway-run bridge serial       a device bridge (serial: --provision-by-request on the kit)
    gateway-run ap                  the WiFi access point (execs hostapd)
    gateway-run dhcp                DHCP and the gateway's name on the access point (dnsmasq)
    gateway-run bluetooth-conf      BlueZ's main.conf with the BLE scan duty cycle (run dir)
    gateway-run users               give every role of the graph its broker user (as root)
    gateway-run adopt               apply the dashboard's adoption requests to gateway.yaml
    gateway-run devices             carry out the dashboard's and serial bridge's device
                                    requests (as root)
    gateway-run selftest            factory self-test over a second radio (see docs/appliance.md)

``--config FILE`` (default ``$MSGFLO_GATEWAY_CONFIG`` or /etc/msgflo-gateway/gateway.yaml).
Rendered configs go to ``$RUNTIME_DIRECTORY`` (systemd's, in /run) or ``--run-dir``.
"""

from __future__ import annotations

import argparse
import grp
import logging
import os
import pwd
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.appliance import render
from gateway.appliance.adopt import REQUESTS, apply_requests, bridge_unit
from gateway.appliance.broker_guard import guard_persistence
from gateway.appliance.credentials import (
    Owners,
    RoleBrokers,
    ServiceCredentials,
    add_service_users,
    load_service_credentials,
    persistent,
    sync_users,
    system_user,
)
from gateway.appliance.devices import BROKER_UNIT, DeviceError, reload_unit
from gateway.appliance.secrets import load_secrets, mqtt_user_url
from gateway.broker import BrokerUrl, parse_broker_url
from gateway.cli.options import run_tool
from gateway.common.atomic import write_atomic
from gateway.common.logs import configure_logging
from gateway.config import DEFAULT_PATH, BridgesConfig, GatewayConfig, load_config
from gateway.errors import GatewayError

# The coordinator's, the bridges' and the device requests' code is imported by their commands
# only: the broker, access point and DHCP commands, which render a file and exec a daemon, start
# at every boot on the way to ready, and under emulation each import costs (docs/appliance.md,
# "Boot to ready").
if TYPE_CHECKING:
    from gateway.bridges.run import DeviceSide

PROG = "gateway-run"
log = logging.getLogger(PROG)


def broker_url(config: GatewayConfig, credentials: ServiceCredentials) -> BrokerUrl:
    """The local broker on loopback, as the service's user with the password first boot made."""
    url = mqtt_user_url(credentials.user, credentials.password, config.broker.port)
    return parse_broker_url(url)


def run_dir(args: argparse.Namespace) -> Path:
    chosen = args.run_dir or os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    directory = Path(chosen or tempfile.mkdtemp(prefix="gateway-run-"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def broker_user(secrets: Path) -> str | None:
    """Who Mosquitto runs as. Started as root it switches to ``mosquitto``, which can read
    the secrets when first boot gave that group access (the appliance); otherwise (root on a
    laptop, first boot run with ``--broker-user ''``) it stays the user that owns them."""
    if os.geteuid() != 0:
        return None
    try:
        if secrets.stat().st_gid == grp.getgrnam("mosquitto").gr_gid:
            return None
    except KeyError:
        pass
    return pwd.getpwuid(secrets.stat().st_uid).pw_name


def broker(args: argparse.Namespace, config: GatewayConfig) -> int:
    persistence = config.data_dir / "mosquitto"
    persistence.mkdir(mode=0o750, exist_ok=True)
    moved = guard_persistence(persistence / "mosquitto.db")
    if moved:
        log.warning("%s", moved)
    conf = run_dir(args) / "mosquitto.conf"
    secrets = config.data_dir / "secrets"
    if not secrets.is_dir():
        raise GatewayError(f"{secrets}: no secrets; run gateway-firstboot first")
    text = render.mosquitto_conf(config, secrets, persistence, run_as=broker_user(secrets))
    write_atomic(conf, text, mode=0o644)
    os.execvp("mosquitto", ["mosquitto", "-c", str(conf)])


def coordinator(args: argparse.Namespace, config: GatewayConfig) -> int:
    # Imported here: the coordinator pulls in the whole runtime, the other services do not.
    from gateway.appliance.services import run_coordinator

    # Its own file, not secrets.json: the coordinator's user cannot read the WiFi passphrase.
    own = load_service_credentials(config.data_dir, "coordinator")
    secret = config.runtime.secret or own.runtime_secret
    roles = RoleBrokers.of(own, config.broker.port)
    url = broker_url(config, own)
    requests = config.data_dir / REQUESTS if args.adopt_by_request else None
    return run_coordinator(
        config, url, secret, own.device_id, roles, config_path=args.config,
        adopt_requests=requests,
    )  # fmt: skip


def bridge(args: argparse.Namespace, config: GatewayConfig) -> int:
    own = load_service_credentials(config.data_dir, f"bridge-{args.name}")
    return run_bridge(args.name, config, broker_url(config, own), serial_side(args, config))


def run_bridge(
    name: str, config: GatewayConfig, broker: BrokerUrl, side: DeviceSide | None = None
) -> int:
    """Bridge ``name`` with its section of ``gateway.yaml``, as its command (``msgflo-serial``)
    starts it, on a persistent session; ``side`` replaces its usual device side (the serial
    bridge's, given its issuer)."""
    from gateway.bridges import run

    if name not in BridgesConfig.names():
        known = ", ".join(BridgesConfig.names())
        raise GatewayError(f"unknown bridge {name!r} (known: {known})")
    run.run_bridge(name, getattr(config.bridges, name), persistent(broker), side)
    return 0


def serial_side(args: argparse.Namespace, config: GatewayConfig) -> DeviceSide | None:
    """The serial bridge with the issuer that provisions boards over USB: by request to root
    on the appliance (its unit passes ``--provision-by-request``: the bridge's user cannot
    add a broker user), else in this process, which then owns the data directory, as the
    dashboard does without ``--adopt-by-request``."""
    if args.name != "serial":
        if args.provision_by_request:
            raise GatewayError("--provision-by-request: only the serial bridge provisions")
        return None
    from gateway.appliance.device_requests import provision_issuer
    from gateway.bridges import serial

    by_request: bool = args.provision_by_request
    issuer = provision_issuer(config, by_request=by_request, reload=reload_unit())
    return serial.device_side(config.bridges.serial, issuer)


def users(args: argparse.Namespace, config: GatewayConfig) -> int:
    """Add a broker user for each role of the graph that has none; reload the broker if so."""
    owners = Owners(
        system_user(args.broker_user, "--broker-user"),
        system_user(args.coordinator_user, "--coordinator-user"),
        system_user(args.bridge_user, "--bridge-user"),
    )
    added, removed = sync_users(config, load_secrets(config.data_dir), owners)
    if not added and not removed:
        print(f"{PROG}: broker users unchanged", flush=True)
        return 0
    changes = [f"{what}: {', '.join(sorted(names))}" for what, names in
               (("added", added), ("removed", removed)) if names]  # fmt: skip
    print(f"{PROG}: broker users {'; '.join(changes)}", flush=True)
    if args.reload:
        # Mosquitto reads its password file and ACL again on SIGHUP; a broker that is not
        # running reads them when it starts.
        try:
            reload_unit(args.reload)()
        except DeviceError as exc:
            log.warning("%s", exc)
    return 0


def devices(args: argparse.Namespace, config: GatewayConfig) -> int:
    """Carry out the device requests (as root): the dashboard's add, remove, show (each
    device's secrets.h and any failure left in the coordinator's directory for the page) and
    the serial bridge's provision (the credentials or the failure left in the bridge's)."""
    from gateway.appliance.device_requests import apply_all

    done, errors = apply_all(config, reload_unit(args.reload, args.systemctl))
    if done:
        print(f"{PROG}: {done} device request(s) carried out", flush=True)
    for error in errors:  # one requester's broken directory stopped only its own requests
        log.error("%s", error)
    return 1 if errors else 0


def adopt(args: argparse.Namespace, config: GatewayConfig) -> int:
    """Apply the dashboard's adoption requests (as root); with ``--restart-bridges`` restart
    the unit of each bridge that got a device, so it takes the new roles."""
    adopted = apply_requests(config.data_dir / REQUESTS, args.config)
    if not args.restart_bridges:
        return 0
    status = 0
    for bridge in sorted(adopted):
        unit = bridge_unit(bridge)
        done = subprocess.run(
            [*args.systemctl.split(), "restart", unit], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log.warning("%s not restarted: %s", unit, done.stderr.strip())
            status = 1
        else:
            print(f"{PROG}: {unit} restarted", flush=True)
    return status


def access_point(args: argparse.Namespace, config: GatewayConfig) -> int:
    ap = config.access_point
    secrets = load_secrets(config.data_dir)
    directory = run_dir(args)
    conf = directory / "hostapd.conf"
    write_atomic(conf, render.hostapd_conf(config, secrets, directory / "ctrl"), mode=0o600)
    subprocess.run(["ip", "link", "set", ap.interface, "up"], check=True)
    subprocess.run(["ip", "addr", "replace", str(ap.address), "dev", ap.interface], check=True)
    os.execvp("hostapd", ["hostapd", str(conf)])


def dhcp(args: argparse.Namespace, config: GatewayConfig) -> int:
    directory = run_dir(args)
    conf = directory / "dnsmasq.conf"
    write_atomic(conf, render.dnsmasq_conf(config, directory), mode=0o644)
    os.execvp("dnsmasq", ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"])


def bluetooth_conf(args: argparse.Namespace, config: GatewayConfig) -> int:
    """main.conf for bluetoothd (bluetooth.service's drop-in runs this before each start; the
    image's /etc/bluetooth/main.conf links to the file in its runtime directory)."""
    write_atomic(run_dir(args) / "main.conf", render.bluez_main_conf(config), mode=0o644)
    return 0


def selftest(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.appliance.selftest import run_selftest

    return run_selftest(config, load_secrets(config.data_dir), run_dir(args))


COMMANDS: dict[str, Callable[[argparse.Namespace, GatewayConfig], int]] = {
    "broker": broker,
    "coordinator": coordinator,
    "bridge": bridge,
    "users": users,
    "adopt": adopt,
    "devices": devices,
    "ap": access_point,
    "dhcp": dhcp,
    "bluetooth-conf": bluetooth_conf,
    "selftest": selftest,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Start a gateway service from gateway.yaml.")
    p.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("MSGFLO_GATEWAY_CONFIG", DEFAULT_PATH)),
        help=f"the gateway's config file (default {DEFAULT_PATH})",
    )
    p.add_argument(
        "--run-dir", type=Path, help="where rendered configs go (default $RUNTIME_DIRECTORY)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("broker", "ap", "dhcp", "bluetooth-conf", "selftest"):
        sub.add_parser(name)
    sub.add_parser("coordinator").add_argument(
        "--adopt-by-request",
        action="store_true",
        help=f"the dashboard's adoptions go to <data_dir>/{REQUESTS} for gateway-run adopt, "
        "its device requests to the coordinator's state directory for gateway-run devices",
    )
    bridges = sub.add_parser("bridge")
    bridges.add_argument("name", help="bridge name (serial)")
    bridges.add_argument(
        "--provision-by-request",
        action="store_true",
        help="the serial bridge asks gateway-run devices for a board's credentials (a request "
        "file in its state directory, answered beside it) instead of making them itself",
    )
    sync = sub.add_parser("users")
    sync.add_argument("--broker-user", default="", metavar="USER", help="Mosquitto's user")
    add_service_users(sync)
    sync.add_argument("--reload", metavar="UNIT", help="SIGHUP this unit if users changed")
    requests = sub.add_parser("adopt")
    requests.add_argument(
        "--restart-bridges",
        action="store_true",
        help=f"restart {bridge_unit('NAME')} of each bridge that got a device",
    )
    requests.add_argument("--systemctl", default="systemctl", help=argparse.SUPPRESS)  # tests
    asked = sub.add_parser("devices")
    asked.add_argument(
        "--reload", metavar="UNIT", default=BROKER_UNIT,
        help=f"the broker's unit, sent SIGHUP after users change (default {BROKER_UNIT})",
    )  # fmt: skip
    asked.add_argument("--systemctl", default="systemctl", help=argparse.SUPPRESS)  # tests
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()

    def job() -> int:
        config = load_config(args.config)
        return COMMANDS[args.command](args, config)

    status = run_tool(PROG, job)
    sys.stdout.flush()
    return status
