"""Devices added and removed on a running gateway (``gateway-config device``,
``gateway.appliance.devices``): the files written, the secrets.h, and the real mosquitto
reloading them without a restart."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.appliance.credentials import Owners, load_service_credentials, sync_users
from gateway.appliance.devices import (
    DeviceError,
    DeviceState,
    SketchSecrets,
    add_device,
    device_secrets,
    device_states,
    list_devices,
    reload_pid,
    reload_unit,
    remove_device,
    render_secrets_h,
    role_problem,
)
from gateway.appliance.passwd import parse_password_file, verify_password
from gateway.appliance.secrets import SecretsLayout, load_secrets
from gateway.common.cstring import c_string
from gateway.config import GatewayConfig, load_config
from gateway.coordinator.registry import Registry
from gateway.errors import GatewayError
from gateway.participant.definition import define
from tests.appliance.conftest import AP_ADDRESS, Broker, Client, write_config
from tests.appliance.test_credentials import first_boot_as_system_users
from tests.support.cli import run_script
from tests.support.wait import until

Reloads = list[str]


# --- the pure parts -------------------------------------------------------------------------


def test_c_strings_escape_what_a_literal_cannot_hold() -> None:
    assert c_string('pa"ss\\word') == '"pa\\"ss\\\\word"'
    assert c_string("a??=b") == '"a\\?\\?=b"'  # no trigraph can form
    assert c_string("line\nnext\ttab\r") == '"line\\nnext\\ttab\\r"'
    # UTF-8 bytes as three-digit octal escapes: a digit after one is not swallowed.
    assert c_string("é1") == '"\\303\\2511"'
    assert c_string("\0") == '"\\000"'


@pytest.mark.parametrize(
    "role",
    ["", "a#", "a+b", "/lamp", "two words", "tab\t", "a:b", "$SYS", "admin", "coordinator",
     "web", "bridge-serial"],
)  # fmt: skip
def test_roles_that_cannot_be_devices(role: str) -> None:
    assert role_problem(role) is not None


def test_usable_roles() -> None:
    assert [role_problem(r) for r in ("lamp", "living-room/lamp", "ünïcode")] == [None] * 3


def sketch(**changes: object) -> SketchSecrets:
    base = SketchSecrets(
        role="lamp",
        user="lamp",
        password="p4ss-word_X",
        wifi_ssid="msgflo-ab12",
        wifi_passphrase='quote" back\\slash ??= end\\',
        broker_address="192.168.4.1",
        broker_hostname="gateway.msgflo",
        port=1883,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


PRINT_ALL = r"""
#include <cstdio>
#include "secrets.h"
int main() {
    std::printf("%s|%s|%s|%s|%s|%d|%s|%s|", MSGFLO_ROLE, MSGFLO_WIFI_SSID,
                MSGFLO_WIFI_PASSPHRASE, MSGFLO_MQTT_HOST, MSGFLO_MQTT_HOSTNAME,
                MSGFLO_MQTT_PORT, MSGFLO_MQTT_USER, MSGFLO_MQTT_PASSWORD);
#ifdef MSGFLO_MQTT_CA_PEM
    std::printf("%d|%s", MSGFLO_MQTT_TLS_PORT, MSGFLO_MQTT_CA_PEM);
#endif
    return 0;
}
"""


def compile_and_run(tmp_path: Path, header: str) -> str:
    """Build a program printing every value of ``header`` (strict flags, trigraphs on; g++,
    the command Debian's package g++ installs, which bootstrap.sh has) and
    return what it prints: the values as the compiler read them."""
    (tmp_path / "secrets.h").write_text(header)
    (tmp_path / "main.cpp").write_text(PRINT_ALL)
    flags = ["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-trigraphs"]
    for extra in (["-fsyntax-only"], ["-o", "print"]):
        done = subprocess.run(
            ["g++", *flags, *extra, "main.cpp"],
            cwd=tmp_path, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return subprocess.run(
        [str(tmp_path / "print")], capture_output=True, text=True, check=True
    ).stdout


def test_secrets_h_compiles_and_the_compiler_reads_the_same_values(tmp_path: Path) -> None:
    plain = sketch(role="caf\u00e9\\", wifi_ssid="Kit \u2615 net")
    out = compile_and_run(tmp_path, render_secrets_h(plain))
    assert out == (
        'caf\u00e9\\|Kit \u2615 net|quote" back\\slash ??= end\\|192.168.4.1|gateway.msgflo|'
        "1883|lamp|p4ss-word_X|"
    )
    assert "??=" not in render_secrets_h(plain)


def test_secrets_h_with_tls_carries_the_ca(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB+zCCAaGgAwIBAgIU\n-----END CERTIFICATE-----\n"
    out = compile_and_run(tmp_path, render_secrets_h(sketch(tls_port=8883, ca_pem=pem)))
    assert out.endswith(f"|8883|{pem}")
    assert "MSGFLO_MQTT_CA_PEM" not in render_secrets_h(sketch())


def test_device_states_come_from_the_registry() -> None:
    registry = Registry()
    lamp = define("lamp", "Lamp", inports=[{"id": "on", "queue": "lamp/on"}], participant_id="l1")
    registry.observe(lamp, now=100.0)
    states = device_states(("lamp", "sensor"), registry, now=110.0)
    assert states == (DeviceState("lamp", True, 100.0), DeviceState("sensor", False, None))
    later = device_states(("lamp",), registry, now=100.0 + 61)  # past the default 60 s period
    assert later == (DeviceState("lamp", False, 100.0),)


# --- the API on a provisioned gateway's files -----------------------------------------------


def test_add_list_show_remove(kit: tuple[Path, GatewayConfig]) -> None:
    config = kit[1]
    layout = SecretsLayout.at(config.data_dir)
    reloads: Reloads = []
    device = add_device(config, "lamp", lambda: reloads.append("add"))
    assert reloads == ["add"]
    password = load_secrets(config.data_dir).mqtt_passwords["lamp"]
    assert (device.user, device.password, device.role) == ("lamp", password, "lamp")
    assert (device.broker_address, device.port) == (AP_ADDRESS, config.broker.port)
    assert device.tls_port == config.broker.tls_port
    assert device.ca_pem == layout.ca_crt.read_text()
    secrets = load_secrets(config.data_dir)
    assert device.wifi_passphrase == secrets.wifi_passphrase
    assert device.wifi_ssid == f"msgflo-{secrets.device_id[:4]}"
    assert verify_password(password, parse_password_file(layout.passwd.read_text())["lamp"])
    assert "user lamp\ntopic readwrite lamp/#\ntopic write fbp\n" in layout.acl.read_text()
    # The coordinator's file has it (its participants of that role, the dashboard's list).
    own = load_service_credentials(config.data_dir, "coordinator")
    assert own.role_passwords["lamp"] == password
    assert list_devices(config.data_dir) == ("lamp", "sensor")  # sensor: broker.roles
    assert device_secrets(config, "lamp") == device
    for path in (layout.secrets_json, layout.passwd, layout.acl):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    remove_device(config, "lamp", lambda: reloads.append("remove"))
    assert reloads == ["add", "remove"]
    assert "lamp" not in parse_password_file(layout.passwd.read_text())
    assert "user lamp\n" not in layout.acl.read_text()
    assert "lamp" not in load_secrets(config.data_dir).mqtt_passwords
    assert list_devices(config.data_dir) == ("sensor",)


def test_refusals_change_nothing(kit: tuple[Path, GatewayConfig]) -> None:
    config = kit[1]
    layout = SecretsLayout.at(config.data_dir)
    reloads: Reloads = []
    add_device(config, "lamp", lambda: reloads.append("reload"))
    before = [p.read_bytes() for p in (layout.secrets_json, layout.passwd, layout.acl)]
    with pytest.raises(DeviceError, match="device 'lamp' exists already"):
        add_device(config, "lamp", lambda: reloads.append("reload"))
    with pytest.raises(DeviceError, match="no device 'lamp2'"):
        remove_device(config, "lamp2", lambda: reloads.append("reload"))
    with pytest.raises(GatewayError, match="reserved for the gateway"):
        remove_device(config, "admin", lambda: reloads.append("reload"))
    with pytest.raises(GatewayError, match="wildcard"):
        add_device(config, "lamp/#", lambda: reloads.append("reload"))
    without_ap = replace(config, access_point=replace(config.access_point, enabled=False))
    with pytest.raises(DeviceError, match="loopback only"):
        add_device(without_ap, "button", lambda: reloads.append("reload"))
    assert reloads == ["reload"]  # the first add only
    assert before == [p.read_bytes() for p in (layout.secrets_json, layout.passwd, layout.acl)]


def test_a_removed_device_whose_role_is_in_the_graph_keeps_a_user_it_cannot_use(
    kit: tuple[Path, GatewayConfig],
) -> None:
    """The coordinator's participants of that role still log in, with the derived password."""
    config = kit[1]
    config.coordinator.graph.write_text("lamp(Repeat)\n")
    device = add_device(config, "lamp", lambda: None)
    remove_device(config, "lamp", lambda: None)
    hashes = parse_password_file(SecretsLayout.at(config.data_dir).passwd.read_text())
    assert "lamp" in hashes and not verify_password(device.password, hashes["lamp"])
    assert list_devices(config.data_dir) == ("sensor",)


def test_a_graph_change_read_before_an_add_keeps_the_device(
    kit: tuple[Path, GatewayConfig],
) -> None:
    """gateway-run users read secrets.json, then a device was added, then it syncs."""
    config = kit[1]
    stale = load_secrets(config.data_dir)
    device = add_device(config, "lamp", lambda: None)
    config.coordinator.graph.write_text("button(Repeat)\n")
    assert sync_users(config, stale, Owners()) == ({"button"}, set())
    hashes = parse_password_file(SecretsLayout.at(config.data_dir).passwd.read_text())
    assert verify_password(device.password, hashes["lamp"])


def test_a_broker_that_cannot_be_told_is_an_error_naming_it(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid nobody has (until reused; then SIGHUP to a just-started process)
    with pytest.raises(DeviceError, match=f"process {gone.pid} was not told to reload"):
        reload_pid(gone.pid)()
    with pytest.raises(DeviceError, match=r"msgflo-broker\.service was not told to reload"):
        reload_unit(systemctl=str(tmp_path / "no-systemctl"))()


# --- the command line against the real broker -----------------------------------------------


def defined(header: str, name: str) -> str:
    """A plain string macro's value (the generated passwords need no escapes)."""
    found = re.search(rf'^#define {name} "([^"\\]*)"$', header, re.MULTILINE)
    assert found, f"{name} not in {header}"
    return found.group(1)


def device(cli: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_script("gateway-config", "device", cli, *args)


@pytest.mark.integration
async def test_device_add_and_remove_on_a_running_broker(
    kit: tuple[Path, GatewayConfig], running: Broker, clients: list[Client]
) -> None:
    path, config = kit
    assert running.process is not None
    pid = str(running.process.pid)
    port = config.broker.port
    admin = Client(
        "127.0.0.1", port, "admin", load_secrets(config.data_dir).mqtt_passwords["admin"]
    )
    clients.append(admin)
    assert admin.connect()
    admin.subscribe("#")

    added = device("add", "lamp", path, "--reload-pid", pid)
    assert added.returncode == 0, added.stderr
    assert added.stderr == "gateway-config: device 'lamp' added; the broker reloaded\n"
    user = defined(added.stdout, "MSGFLO_MQTT_USER")
    password = defined(added.stdout, "MSGFLO_MQTT_PASSWORD")
    assert defined(added.stdout, "MSGFLO_MQTT_HOST") == AP_ADDRESS
    assert f"#define MSGFLO_MQTT_PORT {port}\n" in added.stdout

    def lamp_client() -> Client:
        client = Client(AP_ADDRESS, port, user, password)
        clients.append(client)
        return client

    async def accepted() -> Client:
        found: list[Client] = []

        def connects() -> bool:  # the broker reloads asynchronously after the signal
            client = lamp_client()
            if client.connect():
                found.append(client)
            return bool(found)

        await until(connects, 10, "the broker to accept the new device")
        return found[0]

    lamp = await accepted()
    lamp.subscribe("#")  # granted; the broker then delivers only what the ACL lets it read
    lamp.publish("lamp/x", b"own")
    lamp.publish("fbp", b'{"role": "lamp"}')
    lamp.publish("other/x", b"forged")
    admin.publish("other/secret", b"not for lamp")
    lamp.publish("lamp/marker", b"after")
    assert admin.wait_for("lamp/x") == b"own"
    assert admin.wait_for("fbp") == b'{"role": "lamp"}'
    admin.wait_for("lamp/marker")
    assert lamp.wait_for("lamp/marker") == b"after"
    assert not [t for t, _ in admin.messages if t == "other/x"]
    assert not [t for t, _ in lamp.messages if t.startswith("other/")]
    # The same broker, and the client connected before the reload is still served.
    assert running.process.poll() is None and str(running.process.pid) == pid
    admin.publish("admin/after-add", b"1")
    admin.wait_for("admin/after-add")

    # Over TLS too, checking the broker with the gateway's CA.
    ca = SecretsLayout.at(config.data_dir).ca_crt
    assert ca.read_text().splitlines()[0] in added.stdout
    secure = Client(AP_ADDRESS, config.broker.tls_port or 0, user, password, ca=ca)
    clients.append(secure)
    assert secure.connect()

    listed = device("list", path)
    assert (listed.returncode, listed.stdout) == (0, "lamp\nsensor\n")
    shown = device("show", "lamp", path)
    assert (shown.returncode, shown.stdout) == (0, added.stdout)

    again = device("add", "lamp", path, "--reload-pid", pid)
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == (
        "gateway-config: error: device 'lamp' exists already (gateway-config device show)\n"
    )
    unknown = device("remove", "lamp2", path, "--reload-pid", pid)
    assert unknown.returncode == 1
    assert (
        unknown.stderr == "gateway-config: error: no device 'lamp2' (gateway-config device list)\n"
    )
    invalid = device("add", "lamp/#", path, "--reload-pid", pid)
    assert invalid.returncode == 2
    assert invalid.stderr == (
        "gateway-config: error: role 'lamp/#' contains an MQTT wildcard ('#' or '+')\n"
    )

    removed = device("remove", "lamp", path, "--reload-pid", pid)
    assert removed.returncode == 0, removed.stderr
    # Mosquitto 2.0 drops the connections of a user it no longer has, at the reload.
    await until(lambda: not lamp.mqtt.is_connected() and not secure.mqtt.is_connected(), 10,
                "the removed device's connections to be closed")  # fmt: skip
    assert not lamp_client().connect()
    assert running.process.poll() is None and str(running.process.pid) == pid
    admin.publish("admin/after-remove", b"1")
    admin.wait_for("admin/after-remove")
    assert admin.mqtt.is_connected()


def test_a_gateway_not_provisioned_is_one_line(tmp_path: Path) -> None:
    done = device("add", "lamp", write_config(tmp_path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"gateway-config: error: {tmp_path / 'data' / 'secrets'}: cannot lock:"
        " No such file or directory (has gateway-firstboot run?)\n"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_without_root_the_secrets_stay_closed(kit: tuple[Path, GatewayConfig]) -> None:
    path, config = kit
    directory = SecretsLayout.at(config.data_dir).directory
    directory.chmod(0o000)  # as secrets.json is root's on the appliance
    try:
        done = device("add", "lamp", path, "--reload-pid", "1")
    finally:
        directory.chmod(0o700)
    assert done.returncode == 2
    assert done.stderr.startswith("gateway-config: error: ")
    assert "Permission denied" in done.stderr and len(done.stderr.splitlines()) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other users needs root")
def test_files_keep_the_owners_first_boot_gave_them(tmp_path: Path) -> None:
    """As on the appliance: each file stays readable by its service's group, and no more."""
    config = load_config(write_config(tmp_path))
    first_boot_as_system_users(config, tmp_path)
    directory = SecretsLayout.at(config.data_dir).directory

    def modes() -> dict[str, tuple[int, int, int]]:
        found = {}
        for path in [directory, *directory.iterdir()]:
            info = path.stat()
            found[path.name] = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
        return found

    before = modes()
    add_device(config, "lamp", lambda: None)
    assert modes() == before
    remove_device(config, "lamp", lambda: None)
    assert modes() == before
