"""The texts of mosquitto.conf, its ACL file, hostapd.conf, dnsmasq.conf and BlueZ's main.conf:
pure functions.

They take the typed config and secrets and return text; writing it (atomically) is the
caller's job. Values that end up in these line-based files are checked for line breaks first,
so a config value can never add a directive of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gateway.appliance.secrets import Secrets, SecretsLayout, passphrase, ssid
from gateway.appliance.users import MqttUser
from gateway.config.model import GatewayConfig
from gateway.errors import ApplianceError

LOOPBACK = "127.0.0.1"
PERSISTENCE_FILE = "mosquitto.db"
# Room for the topic, properties and fixed header on top of the largest payload. Mosquitto 2.0
# limits whole packets (max_packet_size); its payload limit, message_size_limit, is deprecated
# and logs a note at every start.
PACKET_OVERHEAD = 4096
DHCP_LEASE_TIME = "12h"
SSID_MAX_BYTES = 32
BLUEZ_SLOT_MS = 0.625  # BlueZ's [LE] scan values count the controller's 0.625 ms slots
# The group of hostapd's control socket (services/system/sysusers.conf): the health
# participant's unit joins it to count the WiFi clients, and the access point's unit so that
# hostapd, root without CAP_CHOWN, may give its socket to the group.
HOSTAPD_CTRL_GROUP = "msgflo-hostapd"


def mosquitto_conf(
    config: GatewayConfig,
    secrets_dir: Path,
    persistence_dir: Path,
    *,
    run_as: str | None = None,
) -> str:
    """The broker's whole config: authenticated listeners only, logs to stderr (the journal).

    ``run_as`` is the user Mosquitto switches to when started as root (its default is
    ``mosquitto``); tests started as root name themselves so it can read their temp files.
    """
    files = SecretsLayout(secrets_dir)
    broker = config.broker
    lines = [
        *([f"user {_line(run_as)}"] if run_as else []),
        # One set of users and ACLs for every listener.
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {_line(str(files.passwd))}",
        f"acl_file {_line(str(files.acl))}",
        f"max_packet_size {broker.max_message_size + PACKET_OVERHEAD}",
        f"max_queued_messages {broker.max_queued_messages}",
        # Small messages must not wait for Nagle: a sensor's reading passed on one at a time
        # reached its subscriber 0.4 ms later without it (bench.latency, bench/RESULTS.md).
        "set_tcp_nodelay true",
        *_persistence(config, persistence_dir),
        # The service's stderr goes to the journal; a log file would only wear the SD card.
        "log_dest stderr",
        *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
        "connection_messages true",
        *_listeners(config, files),
    ]
    return "\n".join(lines) + "\n"


def _persistence(config: GatewayConfig, persistence_dir: Path) -> list[str]:
    if not config.broker.persistence:
        return ["persistence false"]
    return [
        "persistence true",
        # Mosquitto joins location and file name as strings: the location needs its slash.
        f"persistence_location {_line(str(persistence_dir)).rstrip('/')}/",
        f"persistence_file {PERSISTENCE_FILE}",
        f"autosave_interval {config.broker.autosave_interval}",
        # Save on the timer only, not every N changes: fewer writes to the SD card.
        "autosave_on_changes false",
    ]


def _listeners(config: GatewayConfig, files: SecretsLayout) -> list[str]:
    """Loopback's plain listener has no connection limit: the gateway's own daemons and the
    graph's participants connect there, and their number follows the graph. Every other
    listener is where boards and browsers connect, each limited to ``max_connections``
    (a listener option in Mosquitto, so it follows each ``listener`` line)."""
    broker, ap = config.broker, config.access_point
    limit = f"max_connections {broker.max_connections}"
    lines = [f"listener {broker.port} {LOOPBACK}"]
    if ap.enabled:
        lines += [f"listener {broker.port} {ap.address.ip}", limit]
    host = ap.address.ip if ap.enabled else LOOPBACK
    if broker.websockets_port is not None:
        # For browsers (the dashboard's virtual devices), with the same users and ACLs: the
        # page logs in as the "web" user, which may use only web/# and announce on fbp. With
        # the access point on it binds every address: libwebsockets, unlike a plain socket
        # with ip_nonlocal_bind, cannot bind an address the interface does not have yet, and
        # the broker would refuse to start before the access point is up.
        where = "" if ap.enabled else f" {LOOPBACK}"
        lines += [f"listener {broker.websockets_port}{where}", "protocol websockets", limit]
    if broker.tls_port is not None:
        lines += [
            f"listener {broker.tls_port} {host}",
            limit,
            f"cafile {_line(str(files.ca_crt))}",
            f"certfile {_line(str(files.server_crt))}",
            f"keyfile {_line(str(files.server_key))}",
        ]
    return lines


def mosquitto_acl(users: Iterable[MqttUser]) -> str:
    """The ``acl_file`` text: one ``user`` block per user with its ``topic`` rules."""
    blocks = []
    for user in users:
        rules = "".join(f"topic {r.access} {_line(r.pattern)}\n" for r in user.rules)
        blocks.append(f"user {_line(user.name)}\n{rules}")
    return "\n".join(blocks)


def hostapd_conf(config: GatewayConfig, secrets: Secrets, ctrl_dir: Path) -> str:
    """A WPA2-PSK (CCMP only, no WPS, no TKIP) access point on the configured channel."""
    ap = config.access_point
    name = ssid(ap, secrets)
    if not 1 <= len(name.encode("utf-8")) <= SSID_MAX_BYTES:
        raise ApplianceError(f"access_point.ssid: {name!r} must be 1 to 32 bytes")
    lines = [
        f"interface={_line(ap.interface)}",
        "driver=nl80211",
        # hostapd makes the directory (0750 under the unit's umask 0027) and the socket (0770)
        # and gives both to the group: its members may send any command, so only the health
        # participant's unit is one (docs/security.md).
        f"ctrl_interface={_line(str(ctrl_dir))}",
        f"ctrl_interface_group={HOSTAPD_CTRL_GROUP}",
        f"ssid={_line(name)}",
        *(["utf8_ssid=1"] if not name.isascii() else []),
        "ignore_broadcast_ssid=0",
        # 802.11d: announce the country so clients use its channels and power limits.
        f"country_code={_line(ap.country)}",
        "ieee80211d=1",
        "hw_mode=g",
        f"channel={ap.channel}",
        "ieee80211n=1",
        "wmm_enabled=1",
        "auth_algs=1",
        "wpa=2",
        "wpa_key_mgmt=WPA-PSK",
        "rsn_pairwise=CCMP",
        f"wpa_passphrase={_line(passphrase(ap, secrets))}",
        # hostapd refuses the association of one station more; the Pi's own chip may refuse
        # earlier (docs/wifi.md, How many devices).
        f"max_num_sta={ap.max_stations}",
    ]
    return "\n".join(lines) + "\n"


def dnsmasq_conf(config: GatewayConfig, run_dir: Path) -> str:
    """DHCP for the access point and one DNS name (the gateway); nothing forwarded upstream.
    The leases and the pid file go to ``run_dir`` (the unit's own runtime directory: the rest
    of /run is read-only to it)."""
    ap = config.access_point
    lines = [
        f"interface={_line(ap.interface)}",
        # dnsmasq adds loopback to --interface by itself; the AP is the only place it serves.
        "except-interface=lo",
        "bind-interfaces",
        "no-resolv",
        "no-hosts",
        "domain-needed",
        "bogus-priv",
        f"address=/{_line(ap.hostname)}/{ap.address.ip}",
        f"dhcp-range={ap.interface},{ap.dhcp_start},{ap.dhcp_end},"
        f"{ap.address.network.netmask},{DHCP_LEASE_TIME}",
        # One lease per address of the range (dnsmasq's own default is 1000, whatever the
        # range): the loader checked it holds at least max_stations.
        f"dhcp-lease-max={ap.dhcp_addresses}",
        # No ping of an address before offering it: dnsmasq waits 3 s for the echo, one client
        # after another (3 stations asking together all had their leases after 9 s; 32 would
        # wait about 96 s, tests/wifi/test_room.py). Nobody on the gateway's own network has
        # a static address in the range; the gateway's own is outside it.
        "no-ping",
        # An empty router option: clients get no default route here and keep using their
        # mobile data for the internet while talking to the gateway over WiFi.
        "dhcp-option=option:router",
        "dhcp-authoritative",
        f"dhcp-leasefile={_line(str(run_dir / 'dnsmasq.leases'))}",
        f"pid-file={_line(str(run_dir / 'dnsmasq.pid'))}",
    ]
    return "\n".join(lines) + "\n"


def bluez_main_conf(config: GatewayConfig) -> str:
    """BlueZ's main.conf with the BLE bridge's scan duty cycle (docs/ble.md) for both kinds of
    LE scan: discovery (active) and advertisement monitors (passive). The rest stays BlueZ's
    default. Rendered even with the bridge off: the values then only matter to other scanners.
    """
    ble = config.bridges.ble
    window = round(ble.scan_window_ms / BLUEZ_SLOT_MS)
    interval = round(ble.scan_interval_ms / BLUEZ_SLOT_MS)
    lines = [
        "# Rendered by gateway-run bluetooth-conf from gateway.yaml (bridges.ble) at each start of",
        "# bluetooth.service; edit gateway.yaml, not this file.",
        "[LE]",
        *(f"ScanWindow{kind}={window}" for kind in ("Discovery", "AdvMonitor")),
        *(f"ScanInterval{kind}={interval}" for kind in ("Discovery", "AdvMonitor")),
    ]
    return "\n".join(lines) + "\n"


def _line(value: str) -> str:
    if "\n" in value or "\r" in value or "\0" in value:
        raise ApplianceError(f"{value!r} contains a line break and cannot go into a config file")
    return value
