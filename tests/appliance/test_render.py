"""Rendered mosquitto.conf, ACL, hostapd.conf and dnsmasq.conf; the last checked by dnsmasq."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.appliance.render import (
    bluez_main_conf,
    dnsmasq_conf,
    hostapd_conf,
    mosquitto_acl,
    mosquitto_conf,
)
from gateway.appliance.secrets import generate_secrets
from gateway.appliance.users import user_for
from gateway.bridges.ble.sources import duty_cycle_advice
from gateway.config.model import (
    AccessPointConfig,
    BleBridgeConfig,
    BridgesConfig,
    BrokerConfig,
    GatewayConfig,
)
from gateway.errors import ApplianceError

SECRETS = generate_secrets(("coordinator",))


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_mosquitto_conf_with_the_access_point() -> None:
    text = lines(mosquitto_conf(GatewayConfig(), Path("/s"), Path("/p")))
    for line in [
        "per_listener_settings false",
        "allow_anonymous false",
        "password_file /s/mosquitto.passwd",
        "acl_file /s/mosquitto.acl",
        "listener 1883 127.0.0.1",
        "listener 1883 192.168.4.1",
        "listener 8883 192.168.4.1",
        "listener 9001",
        "protocol websockets",
        "cafile /s/ca.crt",
        "certfile /s/server.crt",
        "keyfile /s/server.key",
        "persistence true",
        "persistence_location /p/",
        "persistence_file mosquitto.db",
        "autosave_interval 30",
        "autosave_on_changes false",
        "max_queued_messages 1000",
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type information",
        "connection_messages true",
    ]:
        assert line in text
    assert f"max_packet_size {262_144 + 4096}" in text
    assert not [line for line in text if line.startswith(("user ", "log_dest file"))]
    # TLS options follow their listener: the last listener line is the TLS one.
    assert [line for line in text if line.startswith("listener")][-1] == "listener 8883 192.168.4.1"


def test_mosquitto_conf_without_the_access_point_stays_on_loopback() -> None:
    config = GatewayConfig(
        access_point=AccessPointConfig(enabled=False),
        broker=BrokerConfig(persistence=False, tls_port=None, websockets_port=None),
    )
    text = lines(mosquitto_conf(config, Path("/s"), Path("/p"), run_as="mosquitto"))
    assert [line for line in text if line.startswith("listener")] == ["listener 1883 127.0.0.1"]
    assert "persistence false" in text and "user mosquitto" in text
    assert not [line for line in text if line.startswith(("cafile", "persistence_location"))]
    with_tls = mosquitto_conf(replace(config, broker=BrokerConfig()), Path("/s"), Path("/p"))
    assert "listener 8883 127.0.0.1" in lines(with_tls)
    assert "listener 9001 127.0.0.1" in lines(with_tls)  # the browsers' listener follows it


def test_acl() -> None:
    text = mosquitto_acl([user_for("coordinator"), user_for("lamp")])
    assert text == (
        "user coordinator\ntopic readwrite #\ntopic read $SYS/#\n\n"
        "user lamp\ntopic readwrite lamp/#\ntopic write fbp\n"
    )


def test_hostapd_conf() -> None:
    config = GatewayConfig(access_point=AccessPointConfig(country="FR", channel=11))
    text = lines(hostapd_conf(config, SECRETS, Path("/run/hostapd")))
    for line in [
        "interface=wlan0",
        "ctrl_interface=/run/hostapd",
        # Not root's group: the health participant's unit joins this one (test_units.py).
        "ctrl_interface_group=msgflo-hostapd",
        f"ssid=msgflo-{SECRETS.device_id[:4]}",
        "country_code=FR",
        "ieee80211d=1",
        "hw_mode=g",
        "channel=11",
        "ignore_broadcast_ssid=0",
        "wpa=2",
        "wpa_key_mgmt=WPA-PSK",
        "rsn_pairwise=CCMP",
        f"wpa_passphrase={SECRETS.wifi_passphrase}",
    ]:
        assert line in text
    assert not [line for line in text if "wps" in line or "TKIP" in line]


def test_line_breaks_in_values_are_refused() -> None:
    config = GatewayConfig(access_point=AccessPointConfig(ssid="x\nwpa=1"))
    with pytest.raises(ApplianceError, match="line break"):
        hostapd_conf(config, SECRETS, Path("/run/hostapd"))
    with pytest.raises(ApplianceError, match="32 bytes"):
        hostapd_conf(GatewayConfig(access_point=AccessPointConfig(ssid="x" * 33)), SECRETS, Path())


def test_dnsmasq_conf() -> None:
    text = lines(dnsmasq_conf(GatewayConfig(), Path("/run/msgflo-gateway/dhcp")))
    for line in [
        "interface=wlan0",
        "bind-interfaces",
        "no-resolv",
        "address=/gateway.msgflo/192.168.4.1",
        "dhcp-range=wlan0,192.168.4.10,192.168.4.200,255.255.255.0,12h",
        "dhcp-option=option:router",
        "dhcp-authoritative",
    ]:
        assert line in text
    # In the unit's own runtime directory: the sandbox leaves the rest of /run read-only.
    assert "dhcp-leasefile=/run/msgflo-gateway/dhcp/dnsmasq.leases" in text
    assert "pid-file=/run/msgflo-gateway/dhcp/dnsmasq.pid" in text
    assert not [line for line in text if line.startswith("server=")]


def test_dnsmasq_accepts_the_rendered_file(tmp_path: Path) -> None:
    dnsmasq = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin")
    if dnsmasq is None:
        pytest.skip("dnsmasq is not installed")
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(dnsmasq_conf(GatewayConfig(), tmp_path))
    done = subprocess.run(
        [dnsmasq, "--test", f"--conf-file={conf}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "syntax check OK" in done.stderr


def test_bluez_main_conf_gives_the_ble_duty_cycle_in_slots() -> None:
    ble = BleBridgeConfig(scan_window_ms=30, scan_interval_ms=300)
    config = replace(GatewayConfig(), bridges=replace(BridgesConfig(), ble=ble))
    text = bluez_main_conf(config)
    assert "[LE]\n" in text
    for line in ("ScanWindowDiscovery=48", "ScanIntervalDiscovery=480"):
        assert f"\n{line}\n" in text
    for line in ("ScanWindowAdvMonitor=48", "ScanIntervalAdvMonitor=480"):
        assert f"\n{line}\n" in text
    # The bridge reads main.conf at start: what is rendered is what it asks for.
    assert duty_cycle_advice(text, ble, "passive") is None
    assert duty_cycle_advice(text, ble, "active") is None
    slower = replace(ble, scan_window_ms=50, scan_interval_ms=1000)
    assert "ScanWindowAdvMonitor=80" in bluez_main_conf(
        replace(config, bridges=replace(BridgesConfig(), ble=slower))
    )


def test_device_facing_listeners_are_limited_and_loopback_is_not() -> None:
    config = GatewayConfig(broker=BrokerConfig(max_connections=40))
    text = lines(mosquitto_conf(config, Path("/s"), Path("/p")))
    # Mosquitto's max_connections belongs to the listener line before it.
    after = {text[i - 1]: line for i, line in enumerate(text) if line.startswith("max_conn")}
    assert after == {
        "listener 1883 192.168.4.1": "max_connections 40",
        "protocol websockets": "max_connections 40",  # listener 9001, every address
        "listener 8883 192.168.4.1": "max_connections 40",
    }
    loopback = text.index("listener 1883 127.0.0.1")
    assert text[loopback + 1].startswith("listener"), "the gateway's own daemons: no limit"


def test_hostapd_and_dnsmasq_take_the_station_limit() -> None:
    ap = AccessPointConfig(max_stations=40)
    config = GatewayConfig(access_point=ap)
    assert "max_num_sta=40" in lines(hostapd_conf(config, SECRETS, Path("/run/hostapd")))
    # The default range 192.168.4.10-200: one lease per address, not dnsmasq's default 1000.
    dhcp = lines(dnsmasq_conf(config, Path("/run/dhcp")))
    assert "dhcp-lease-max=191" in dhcp
    # A room switched on together: no 3 s ping per offer, one client after another.
    assert "no-ping" in dhcp
    assert GatewayConfig().access_point.max_stations >= 30  # a room of boards
    assert GatewayConfig().broker.max_connections >= 2 * 30
