"""Each service's own credentials file, file modes and owners, and broker users for roles
added to the graph after first boot (on the real mosquitto)."""

from __future__ import annotations

import io
import os
import pwd
import signal
import stat
from pathlib import Path

import pytest

from gateway.appliance.credentials import (
    Owners,
    RoleBrokers,
    group_name,
    load_service_credentials,
    role_password,
    sync_users,
)
from gateway.appliance.firstboot import FirstBoot, run
from gateway.appliance.passwd import parse_password_file, verify_password
from gateway.appliance.secrets import Secrets, SecretsLayout, load_secrets
from gateway.appliance.selftest import SECRET_FILES, SECRETS_DIR_MODE
from gateway.config.model import GatewayConfig
from tests.appliance.conftest import NOW, Broker, Client, appliance_config

Appliance = tuple[GatewayConfig, Secrets]


@pytest.mark.integration
def test_services_get_only_their_own_part(appliance: Appliance) -> None:
    config, secrets = appliance
    coordinator = load_service_credentials(config.data_dir, "coordinator")
    assert coordinator.password == secrets.mqtt_passwords["coordinator"]
    assert coordinator.runtime_secret == secrets.runtime_secret
    assert coordinator.device_id == secrets.device_id
    # "web" too: the coordinator hands it to the dashboard's pages for their virtual devices.
    assert dict(coordinator.role_passwords) == {
        "sensor": secrets.mqtt_passwords["sensor"],
        "web": secrets.mqtt_passwords["web"],
    }
    bridge = load_service_credentials(config.data_dir, "bridge-serial")
    assert bridge.user == "bridge-serial"
    assert bridge.password == secrets.mqtt_passwords["bridge-serial"]
    for own in (coordinator, bridge):
        text = own.to_json()
        assert secrets.wifi_passphrase not in text
        assert secrets.mqtt_passwords["admin"] not in text
    assert bridge.runtime_secret == "" and not bridge.role_passwords
    # Laptop: no service users, every file is the caller's and 0600.
    layout = SecretsLayout.at(config.data_dir)
    for path in layout.directory.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o644 if path.suffix == ".crt" else 0o600), path.name
    assert stat.S_IMODE(layout.directory.stat().st_mode) == 0o700


def test_a_participant_gets_its_roles_user_only() -> None:
    roles = RoleBrokers(1883, "coordinator-pw", {"lamp": "stored-pw"})
    assert roles("lamp").password == "stored-pw"
    assert (roles("lamp").username, roles("lamp").port) == ("lamp", 1883)
    derived = roles("button")
    assert derived.username == "button"
    assert derived.password == role_password("coordinator-pw", "button") != "coordinator-pw"
    assert role_password("coordinator-pw", "button") != role_password("other", "button")
    assert role_password("coordinator-pw", "button") != role_password("coordinator-pw", "lamp")
    # A graph node named like a gateway user gets no one's password but its own derivation.
    sneaky = RoleBrokers(1883, "coordinator-pw", {"admin": "admin-pw"})
    assert sneaky("admin").password == role_password("coordinator-pw", "admin")
    assert sneaky("coordinator").password != "coordinator-pw"


@pytest.mark.integration
def test_a_role_added_to_the_graph_later_gets_a_user(
    broker: Broker, appliance: Appliance, clients: list[Client]
) -> None:
    config, secrets = appliance
    layout = SecretsLayout.at(config.data_dir)
    roles = RoleBrokers.of(load_service_credentials(config.data_dir, "coordinator"), 0)
    lamp_password = roles.password("lamp")
    late = Client("127.0.0.1", config.broker.port, "lamp", lamp_password)
    clients.append(late)
    assert not late.connect(), "a role outside the graph was let in"
    config.coordinator.graph.write_text("button(Repeat) OUT -> IN lamp(Repeat)\n")
    assert sync_users(config, secrets, Owners()) == ({"button", "lamp"}, set())
    assert sync_users(config, secrets, Owners()) == (set(), set())  # nothing to do: no write
    hashes = parse_password_file(layout.passwd.read_text())
    assert verify_password(lamp_password, hashes["lamp"])
    assert "user lamp\ntopic readwrite lamp/#\ntopic write fbp\n" in layout.acl.read_text()
    assert broker.process is not None
    broker.process.send_signal(signal.SIGHUP)  # what gateway-run users --reload sends
    lamp = Client("127.0.0.1", config.broker.port, "lamp", lamp_password)
    admin = Client("127.0.0.1", config.broker.port, "admin", secrets.mqtt_passwords["admin"])
    clients += [lamp, admin]
    assert admin.connect()
    admin.subscribe("#")
    for _ in range(50):  # the broker reloads asynchronously
        probe = Client("127.0.0.1", config.broker.port, "lamp", lamp_password)
        clients.append(probe)
        if probe.connect():
            break
    else:
        raise AssertionError("the broker never took the new role user")
    assert lamp.connect()
    lamp.publish("lamp/IN", b"own")
    lamp.publish("button/OUT", b"not its own")
    assert admin.wait_for("lamp/IN") == b"own"
    assert ("button/OUT", b"not its own") not in admin.messages
    # The stored users and their passwords are untouched; a removed role loses its user.
    config.coordinator.graph.write_text("lamp(Repeat)\n")
    assert sync_users(config, secrets, Owners()) == (set(), {"button"})
    hashes = parse_password_file(layout.passwd.read_text())
    assert verify_password(secrets.mqtt_passwords["admin"], hashes["admin"])
    assert verify_password(secrets.mqtt_passwords["sensor"], hashes["sensor"])


def system_users() -> tuple[str, str, str] | None:
    """Three existing system users to stand in for mosquitto, msgflo-coordinator and
    msgflo-bridge on this machine."""
    names = [
        e.pw_name
        for e in pwd.getpwall()
        if 0 < e.pw_uid < 65534 and group_name(e.pw_gid) == e.pw_name  # its own group
    ]
    preferred = [n for n in ("mosquitto", "systemd-timesync", "daemon") if n in names]
    chosen = (preferred + [n for n in names if n not in preferred])[:3]
    return (chosen[0], chosen[1], chosen[2]) if len(chosen) == 3 else None


def first_boot_as_system_users(config: GatewayConfig, tmp_path: Path) -> tuple[str, str, str]:
    """First boot of ``config`` as root, three system users standing in for mosquitto,
    msgflo-coordinator and msgflo-bridge (as on the appliance): their names."""
    users = system_users()
    assert users is not None, "this machine has fewer than three system users"
    owners = [pwd.getpwnam(name) for name in users]
    job = FirstBoot(
        tmp_path / "gateway.yaml",
        tmp_path,
        (owners[0].pw_uid, owners[0].pw_gid),
        lambda _: config,
        lambda: NOW,
        coordinator_owner=(owners[1].pw_uid, owners[1].pw_gid),
        bridge_owner=(owners[2].pw_uid, owners[2].pw_gid),
    )
    assert run(job, io.StringIO(), io.StringIO()) == 0
    return users


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other users needs root")
def test_secrets_are_readable_by_their_service_user_only(tmp_path: Path) -> None:
    config = appliance_config(tmp_path)
    users = first_boot_as_system_users(config, tmp_path)
    directory = SecretsLayout.at(config.data_dir).directory
    assert stat.S_IMODE(directory.stat().st_mode) == SECRETS_DIR_MODE
    stand_in = {"mosquitto": users[0], "msgflo-coordinator": users[1], "msgflo-bridge": users[2]}
    found = {}
    for path in directory.iterdir():
        info = path.stat()
        assert info.st_uid == 0, path.name
        found[path.name] = (stat.S_IMODE(info.st_mode), group_name(info.st_gid))
    wanted = {
        name: (mode, stand_in.get(group, group)) for name, (mode, _, group) in SECRET_FILES.items()
    }
    assert found == wanted
    assert not any(mode & 0o007 for mode, _ in found.values() if mode != 0o644)
    # Each stand-in service user can read its own file and no other secret.
    for name, (mode, group) in found.items():
        for user in users:
            entry = pwd.getpwnam(user)
            readable = mode & 0o004 or (mode & 0o040 and group_name(entry.pw_gid) == group)
            assert bool(readable) == (mode == 0o644 or group == user), (name, user)
    assert load_secrets(config.data_dir).mqtt_passwords.keys() >= {"coordinator", "sensor"}
