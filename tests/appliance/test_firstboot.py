"""gateway-firstboot end to end in temporary directories."""

from __future__ import annotations

import datetime
import io
import logging
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.appliance.credentials import role_password
from gateway.appliance.firstboot import (
    INFO_FILE,
    MARKER,
    FirstBoot,
    main,
    run,
    update_config_file,
)
from gateway.appliance.passwd import parse_password_file, verify_password
from gateway.appliance.provision_file import FILE_NAME, Provision, parse_provision
from gateway.appliance.secrets import SecretsLayout, load_secrets
from gateway.config import parse_config
from gateway.config.model import AccessPointConfig, CoordinatorConfig, GatewayConfig

NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


class Setup:
    """A config file, a boot partition and a data directory under ``tmp_path``."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.config_path = tmp_path / "etc" / "gateway.yaml"
        self.boot = tmp_path / "boot"
        self.boot.mkdir()
        self.data = tmp_path / "data"
        self.out = io.StringIO()
        self.err = io.StringIO()

    def load(self, path: Path) -> GatewayConfig:
        # A stand-in for load_config: the fields first boot writes, the rest fixed.
        data: Any = yaml.safe_load(path.read_text()) if path.exists() else {}
        ap = AccessPointConfig(**(data or {}).get("access_point", {}))
        graph = CoordinatorConfig(graph=self.data / "graph.fbp")
        return GatewayConfig(data_dir=self.data, access_point=ap, coordinator=graph)

    def run(self) -> int:
        self.out, self.err = io.StringIO(), io.StringIO()
        job = FirstBoot(self.config_path, self.boot, None, self.load, lambda: NOW)
        return run(replace(job, console=self.console), self.out, self.err)

    @property
    def console(self) -> Path:
        return self.root / "console"

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        return {
            str(p.relative_to(self.root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_first_boot_makes_everything_and_the_second_changes_nothing(setup: Setup) -> None:
    assert setup.run() == 0
    secrets = load_secrets(setup.data)
    layout = SecretsLayout.at(setup.data)
    for path in (layout.passwd, layout.acl, layout.ca_crt, layout.ca_key, layout.server_crt):
        assert path.exists()
    assert stat.S_IMODE(layout.ca_key.stat().st_mode) == 0o600
    assert (setup.data / MARKER).exists()
    assert f"WiFi passphrase: {secrets.wifi_passphrase}" in setup.console.read_text()
    info = (setup.boot / INFO_FILE).read_text()
    for value in (
        secrets.wifi_passphrase,
        secrets.mqtt_passwords["admin"],
        secrets.runtime_secret,
        "Dashboard:      http://gateway.msgflo/\n",
        "ws://gateway.msgflo:3569",
        "192.168.4.1",
        "BEGIN CERTIFICATE",
    ):
        assert value in info
    hashes = parse_password_file(layout.passwd.read_text())
    assert set(hashes) == {
        "coordinator",
        "admin",
        "web",
        "bridge-serial",
        "bridge-ble",
        "bridge-rf433",
        "bridge-gpio",
        "bridge-health",
    }
    assert (setup.data / "secrets" / "coordinator.json").exists()
    assert verify_password(secrets.mqtt_passwords["admin"], hashes["admin"])
    before = setup.snapshot()
    assert setup.run() == 0
    assert setup.out.getvalue() == "already provisioned\n"
    assert setup.snapshot() == before


def test_graph_roles_become_users(setup: Setup) -> None:
    setup.data.mkdir()
    (setup.data / "graph.fbp").write_text("button(Repeat) OUT -> IN lamp(Repeat)\n")
    setup.run()
    # Not stored: derived from the coordinator's password (gateway.appliance.credentials).
    secrets = load_secrets(setup.data)
    assert not {"button", "lamp"} & set(secrets.mqtt_passwords)
    hashes = parse_password_file(SecretsLayout.at(setup.data).passwd.read_text())
    lamp = role_password(secrets.mqtt_passwords["coordinator"], "lamp")
    assert verify_password(lamp, hashes["lamp"])
    acl = SecretsLayout.at(setup.data).acl.read_text()
    assert "user lamp\ntopic readwrite lamp/#\ntopic write fbp\n" in acl


def test_provisioning_file_is_applied_and_deleted(setup: Setup) -> None:
    setup.config_path.parent.mkdir()
    setup.config_path.write_text("access_point:\n  channel: 11\nruntime:\n  port: 4000\n")
    (setup.boot / FILE_NAME).write_text(
        "wifi_passphrase: correct horse battery\nssid: kit-{suffix}\ncountry: FR\n"
        "runtime_secret: rt-secret-0123\nadmin_password: admin-password\n"
    )
    assert setup.run() == 0
    assert setup.err.getvalue() == ""
    assert not (setup.boot / FILE_NAME).exists()
    written = yaml.safe_load(setup.config_path.read_text())
    assert written == {
        "access_point": {"channel": 11, "ssid": "kit-{suffix}", "country": "FR"},
        "runtime": {"port": 4000},
    }
    secrets = load_secrets(setup.data)
    assert secrets.wifi_passphrase == "correct horse battery"
    assert secrets.runtime_secret == "rt-secret-0123"
    assert secrets.mqtt_passwords["admin"] == "admin-password"
    assert f"WiFi name: kit-{secrets.device_id[:4]}" in setup.out.getvalue()
    assert f"WiFi name: kit-{secrets.device_id[:4]}" in setup.console.read_text()


def test_provisioning_creates_a_missing_config_file(setup: Setup) -> None:
    (setup.boot / FILE_NAME).write_text("country: NL\n")
    setup.run()
    assert yaml.safe_load(setup.config_path.read_text()) == {"access_point": {"country": "NL"}}


def test_invalid_keys_are_reported_and_the_rest_applied(setup: Setup) -> None:
    (setup.boot / FILE_NAME).write_text(
        "bogus: 1\ncountry: de\nwifi_passphrase: short\nssid: valid-name\n"
    )
    assert setup.run() == 0
    errors = setup.err.getvalue().splitlines()
    assert len(errors) == 3
    assert all(str(setup.boot / FILE_NAME) in line for line in errors)
    assert "bogus: unknown key" in errors[0]
    assert "country: must be two upper-case letters" in errors[1]
    assert "wifi_passphrase: must be 8 to 63 characters" in errors[2]
    assert yaml.safe_load(setup.config_path.read_text()) == {"access_point": {"ssid": "valid-name"}}
    assert not (setup.boot / FILE_NAME).exists()


def test_weak_secrets_are_refused_and_the_generated_ones_kept(setup: Setup) -> None:
    (setup.boot / FILE_NAME).write_text(
        "admin_password: a\nruntime_secret: '12345678901'\nwifi_passphrase: abcdefg\n"
    )
    assert setup.run() == 0
    file = setup.boot / FILE_NAME
    assert setup.err.getvalue().splitlines() == [
        f"gateway-firstboot: error: {file}: admin_password: must be at least 12 characters, "
        "not 1, ignored",
        f"gateway-firstboot: error: {file}: runtime_secret: must be at least 12 characters, "
        "not 11, ignored",
        f"gateway-firstboot: error: {file}: wifi_passphrase: must be 8 to 63 characters long, "
        "not 7, ignored",
    ]
    secrets = load_secrets(setup.data)
    assert len(secrets.mqtt_passwords["admin"]) >= 12
    assert len(secrets.runtime_secret) >= 12
    assert len(secrets.wifi_passphrase) >= 8
    assert "12345678901" not in setup.err.getvalue() + setup.out.getvalue()


def test_secrets_of_the_minimum_length_are_applied() -> None:
    values, problems = parse_provision(
        "admin_password: abcdefghijkl\nruntime_secret: '123456789012'\nwifi_passphrase: abcdefgh\n",
        "f.yaml",
    )
    assert problems == ()
    assert (values.admin_password, values.runtime_secret, values.wifi_passphrase) == (
        "abcdefghijkl",
        "123456789012",
        "abcdefgh",
    )


def test_unreadable_yaml_is_reported_and_deleted(setup: Setup) -> None:
    (setup.boot / FILE_NAME).write_text("wifi_passphrase: [unclosed\n")
    assert setup.run() == 0
    assert "not YAML" in setup.err.getvalue()
    assert not (setup.boot / FILE_NAME).exists()


def test_norway_is_not_false(tmp_path: Path) -> None:
    # Read as YAML 1.1, ``NO`` was the boolean false: refused in the provisioning file, and
    # written back as ``country: false`` when first boot updated gateway.yaml.
    assert parse_provision("country: NO\n", FILE_NAME) == (Provision(country="NO"), ())
    path = tmp_path / "gateway.yaml"
    path.write_text("access_point:\n  country: NO\n  hostname: 'on'\n")
    update_config_file(path, {"access_point": {"ssid": "yes"}})
    ap = parse_config(path.read_text(), str(path)).access_point
    assert (ap.country, ap.hostname, ap.ssid) == ("NO", "on", "yes")


def test_an_interrupted_first_boot_runs_again(setup: Setup) -> None:
    setup.run()
    layout = SecretsLayout.at(setup.data)
    kept = load_secrets(setup.data)
    old_ca = layout.ca_crt.read_bytes()
    # As if the power went before the marker: some files missing, one half written.
    (setup.data / MARKER).unlink()
    layout.server_crt.unlink()
    layout.passwd.write_text("coordinator:$7$1")
    assert setup.run() == 0
    assert layout.server_crt.exists() and layout.ca_crt.read_bytes() != old_ca
    hashes = parse_password_file(layout.passwd.read_text())
    assert verify_password(kept.mqtt_passwords["coordinator"], hashes["coordinator"])
    # A complete secrets.json is kept: the provisioning file behind it is gone by now.
    assert load_secrets(setup.data) == kept
    (setup.data / MARKER).unlink()
    layout.secrets_json.write_bytes(bytes(100))  # a corrupt one is replaced
    assert setup.run() == 0
    assert load_secrets(setup.data).wifi_passphrase != kept.wifi_passphrase


def test_parse_provision_is_pure() -> None:
    values, problems = parse_provision("ssid: a\n", "f.yaml")
    assert values.ssid == "a" and problems == ()
    assert parse_provision("", "f.yaml") == (replace(values, ssid=None), ())
    assert parse_provision("- a\n", "f.yaml")[1] == (
        "f.yaml: expected a mapping of keys to values",
    )


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--config", str(tmp_path / "none.yaml"), "--boot-dir", str(tmp_path)]
    assert main([*args, "--broker-user", "no-such-user-here"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway-firstboot: error: ") and err.count("\n") == 1


def test_an_invalid_graph_is_skipped_with_a_warning(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    setup.data.mkdir()
    (setup.data / "graph.fbp").write_text("a( -> \n")
    with caplog.at_level(logging.WARNING):
        assert setup.run() == 0
    assert "graph not read" in caplog.text


def test_the_passphrase_reaches_the_console_and_the_card_only(
    setup: Setup, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """stdout and stderr are what the unit sends to the journal; logging goes there too."""
    setup.data.mkdir()
    (setup.data / "graph.fbp").write_text("a( -> \n")  # a warning is logged
    (setup.boot / FILE_NAME).write_text("wifi_passphrase: [unclosed-secret-value\n")
    with caplog.at_level(logging.DEBUG):
        assert setup.run() == 0
    secrets = load_secrets(setup.data)
    streams = (setup.out.getvalue(), setup.err.getvalue(), caplog.text, *capfd.readouterr())
    journal = "".join(streams)
    assert "WiFi name: msgflo-" in setup.out.getvalue()  # the name, not the passphrase
    assert "not YAML" in setup.err.getvalue()
    for secret in (
        secrets.wifi_passphrase,
        secrets.runtime_secret,
        secrets.mqtt_passwords["admin"],
        "unclosed-secret-value",  # PyYAML quotes the line of a syntax error
    ):
        assert secret not in journal
    assert f"WiFi passphrase: {secrets.wifi_passphrase}" in setup.console.read_text()
    assert secrets.wifi_passphrase in (setup.boot / INFO_FILE).read_text()


def test_no_console_means_the_card_only(setup: Setup, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    job = FirstBoot(setup.config_path, setup.boot, None, setup.load, lambda: NOW)
    assert run(job, out, err) == 0
    passphrase = load_secrets(setup.data).wifi_passphrase
    assert passphrase not in out.getvalue() + err.getvalue()
    assert f"the passphrase is in {setup.boot / INFO_FILE}" in out.getvalue()
    unwritable = replace(job, console=tmp_path / "no-such-dir" / "console")
    (setup.data / MARKER).unlink()
    out = io.StringIO()
    assert run(unwritable, out, err) == 0
    assert "cannot show the passphrase on" in out.getvalue()


def test_provisioning_follows_the_config_link(setup: Setup) -> None:
    """/etc/msgflo-gateway/gateway.yaml links to the data partition: the file there changes,
    the link stays (the root filesystem is read-only)."""
    real = setup.root / "data-partition" / "gateway.yaml"
    real.parent.mkdir()
    real.write_text("runtime:\n  port: 4000\n")
    setup.config_path.parent.mkdir()
    setup.config_path.symlink_to(real)
    (setup.boot / FILE_NAME).write_text("country: NL\n")
    assert setup.run() == 0
    assert setup.config_path.is_symlink()
    assert yaml.safe_load(real.read_text())["access_point"] == {"country": "NL"}
    assert [p.name for p in setup.config_path.parent.iterdir()] == ["gateway.yaml"]
