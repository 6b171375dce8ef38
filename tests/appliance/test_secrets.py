"""Secrets: generation, the JSON round trip, the helpers, and the users and their ACLs."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

import pytest

from gateway.appliance.secrets import (
    PASSPHRASE_ALPHABET,
    Secrets,
    SecretsLayout,
    device_suffix,
    generate_secrets,
    load_secrets,
    mqtt_user_url,
    passphrase,
    runtime_secret,
    save_secrets,
    secrets_dir,
    ssid,
)
from gateway.appliance.users import Access, graph_roles, user_for, user_names
from gateway.broker import parse_broker_url
from gateway.config.model import AccessPointConfig, BrokerConfig, GatewayConfig, RuntimeConfig
from gateway.errors import ApplianceError

USERS = ("coordinator", "admin", "bridge-serial", "sensor")


def test_generated_secrets_have_the_promised_shapes() -> None:
    secrets = generate_secrets(USERS)
    assert re.fullmatch(r"[0-9a-f]{32}", secrets.device_id)
    group = f"[{PASSPHRASE_ALPHABET}]{{4}}"
    assert re.fullmatch(f"{group}(-{group}){{4}}", secrets.wifi_passphrase)
    assert 8 <= len(secrets.wifi_passphrase) <= 63
    assert len(secrets.runtime_secret) >= 32
    assert set(secrets.mqtt_passwords) == set(USERS)
    assert all(len(pw) >= 32 for pw in secrets.mqtt_passwords.values())


def test_secrets_are_random() -> None:
    many = [generate_secrets(USERS) for _ in range(50)]
    for name in ("device_id", "wifi_passphrase", "runtime_secret"):
        assert len({getattr(s, name) for s in many}) == 50
    passwords = [pw for s in many for pw in s.mqtt_passwords.values()]
    assert len(set(passwords)) == len(passwords)


def test_round_trip_and_file_modes(tmp_path: Path) -> None:
    secrets = generate_secrets(USERS)
    save_secrets(tmp_path, secrets)
    assert load_secrets(tmp_path) == secrets
    layout = SecretsLayout.at(tmp_path)
    assert layout.directory == secrets_dir(tmp_path) == tmp_path / "secrets"
    assert stat.S_IMODE(layout.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(layout.secrets_json.stat().st_mode) == 0o600


def test_missing_and_corrupt_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ApplianceError, match=r"secrets\.json: missing"):
        load_secrets(tmp_path)
    save_secrets(tmp_path, generate_secrets(USERS))
    path = SecretsLayout.at(tmp_path).secrets_json
    for text in ("{", "[]", '{"version": 1}', bytes(64).decode()):
        path.write_text(text)
        with pytest.raises(ApplianceError, match=r"secrets\.json: corrupt") as err:
            load_secrets(tmp_path)
        assert "\n" not in str(err.value)


def test_invalid_values_are_refused() -> None:
    good = generate_secrets(())
    with pytest.raises(ValueError, match="device_id"):
        Secrets("xyz", good.wifi_passphrase, good.runtime_secret)
    with pytest.raises(ValueError, match="wifi_passphrase"):
        Secrets(good.device_id, "short", good.runtime_secret)


def test_config_values_win() -> None:
    secrets = generate_secrets(())
    ap = AccessPointConfig(ssid="kit-{suffix}")
    assert device_suffix(secrets) == secrets.device_id[:4]
    assert ssid(ap, secrets) == f"kit-{secrets.device_id[:4]}"
    assert passphrase(ap, secrets) == secrets.wifi_passphrase
    assert passphrase(AccessPointConfig(passphrase="fixed-passphrase"), secrets) == (
        "fixed-passphrase"
    )
    assert runtime_secret(RuntimeConfig(), secrets) == secrets.runtime_secret
    assert runtime_secret(RuntimeConfig(secret="mine"), secrets) == "mine"


def test_mqtt_user_url_quotes_the_password() -> None:
    url = parse_broker_url(mqtt_user_url("bridge-serial", "p@ss:/w#rd%", 1884))
    assert (url.host, url.port) == ("127.0.0.1", 1884)
    assert (url.username, url.password) == ("bridge-serial", "p@ss:/w#rd%")


def test_users_and_their_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = GatewayConfig(broker=BrokerConfig(roles=("lamp", "admin", "a+b")))
    with caplog.at_level(logging.WARNING):
        names = user_names(config, ("button", "lamp", "bridge-x"))
    assert names == (
        "coordinator",
        "admin",
        "web",
        "bridge-serial",
        "bridge-ble",
        "bridge-rf433",
        "bridge-gpio",
        "bridge-health",
        "lamp",
        "button",
    )
    assert "'a+b'" in caplog.text and "'bridge-x'" in caplog.text
    assert [(r.access, r.pattern) for r in user_for("coordinator").rules] == [
        (Access.READWRITE, "#"),
        (Access.READ, "$SYS/#"),
    ]
    assert [(r.access, r.pattern) for r in user_for("lamp").rules] == [
        (Access.READWRITE, "lamp/#"),
        (Access.WRITE, "fbp"),
    ]
    # The dashboard's browsers: web/# and announcing, nothing else; no graph node may be it.
    assert [(r.access, r.pattern) for r in user_for("web").rules] == [
        (Access.READWRITE, "web/#"),
        (Access.WRITE, "fbp"),
    ]
    assert user_names(config, ("web",)).count("web") == 1


def test_graph_roles(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    graph = tmp_path / "graph.fbp"
    assert graph_roles(graph) == ()
    graph.write_text("button(Repeat) OUT -> IN lamp(Repeat)\n")
    assert graph_roles(graph) == ("button", "lamp")
    graph.write_text("this is -> not a graph (\n")
    with caplog.at_level(logging.WARNING):
        assert graph_roles(graph) == ()
    assert "graph not read" in caplog.text
