"""Devices on the gateway's WiFi: a broker user per device, added and removed while it runs.

A *device* is a role user (``users.MqttUser.role``: ``readwrite <role>/#``, ``write fbp``) whose
password is stored in ``secrets.json``, not derived from the coordinator's: a board keeps the
password it was flashed with whatever the graph does. ``broker.roles`` of ``gateway.yaml`` made
such users at first boot; :func:`add_device` makes one at any time, :func:`remove_device` takes
it away. Nothing here writes a file format of its own: the password is added to the secrets and
``credentials.write_user_files`` rewrites the broker's password file and ACL and each service's
file from them, as first boot and ``gateway-run users`` do (each file atomically, under the
lock ``gateway-run users`` takes too). Then the broker is told to reload (SIGHUP, see
:func:`reload_unit`); Mosquitto 2.0 reads both files again without a restart, and at once
disconnects every connected client whose user is gone or whose password changed: a removed
device is cut off, not only refused next time.

A removed device's role may still be a node of the graph or one of ``broker.roles``; it then
keeps a user with the derived password the coordinator's participants use, which the board
does not know.

What a sketch needs comes back as :class:`SketchSecrets`, and :func:`render_secrets_h` turns
it into the ``secrets.h`` a sketch includes (pure, every value an escaped C string literal).

The functions take the config (its ``data_dir`` is where everything lives), so tests point them
at a temporary directory. They need root on the appliance: ``secrets.json`` is root's only.
:func:`list_devices` reads the coordinator's own file instead, so the dashboard can call it,
and :func:`device_states` adds whether each is connected, from the coordinator's registry.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.appliance.credentials import (
    Owners,
    load_service_credentials,
    users_locked,
    write_user_files,
)
from gateway.appliance.secrets import (
    Secrets,
    SecretsLayout,
    load_secrets,
    passphrase,
    save_secrets,
    ssid,
)
from gateway.appliance.users import COORDINATOR, usable_role
from gateway.common.cstring import c_string
from gateway.config import values
from gateway.config.model import GatewayConfig
from gateway.errors import ApplianceError, GatewayError

if TYPE_CHECKING:  # gateway-run's broker start, which imports this, needs no coordinator
    from gateway.coordinator.registry import Registry

BROKER_UNIT = "msgflo-broker.service"  # services/systemd/msgflo-broker.service

Reload = Callable[[], None]  # tells the broker to read its files again; raises DeviceError


class DeviceError(ApplianceError):
    """A device command that cannot be done as asked (exists, unknown, broker not reloaded)."""


@dataclass(frozen=True)
class SketchSecrets:
    """Everything a sketch needs to join the WiFi and log in to the broker as its role."""

    role: str
    user: str
    password: str = field(repr=False)
    wifi_ssid: str
    wifi_passphrase: str = field(repr=False)
    broker_address: str  # the access point's IP address: no DNS needed
    broker_hostname: str  # the gateway's name on the access point (in the TLS certificate)
    port: int
    tls_port: int | None = None
    ca_pem: str | None = None  # with tls_port: the gateway's own CA, to check the broker


def role_problem(role: str) -> str | None:
    """Why ``role`` cannot be a device (``None`` if it can): the config's role rules
    (``gateway.config.values.role``) and the broker's (``users.usable_role``)."""
    try:
        values.role(role)
    except values.InvalidValueError as exc:
        return str(exc)
    problem = usable_role(role)
    return None if problem is None else f"role {role!r}: {problem}"


def check_role(role: str) -> str:
    problem = role_problem(role)
    if problem is not None:
        raise GatewayError(problem)  # a usage error: the argument is wrong
    return role


def stored_devices(secrets: Secrets) -> tuple[str, ...]:
    """The device roles of ``secrets``: stored passwords of users that are neither the
    gateway's own (coordinator, admin, bridges) nor the dashboard's ``web``."""
    return tuple(sorted(u for u in secrets.mqtt_passwords if usable_role(u) is None))


@dataclass(frozen=True)
class DeviceState:
    """A device as the dashboard shows it: whether a board of its role is connected."""

    role: str
    online: bool  # a participant of the role announced within its discovery period
    last_seen: float | None  # on the registry's clock; None: never heard


def device_states(roles: Iterable[str], registry: Registry, now: float) -> tuple[DeviceState, ...]:
    """``roles`` (from :func:`list_devices`) with what the coordinator's registry knows.
    Mosquitto 2.0 cannot say which users are connected; a connected board announces itself
    on ``fbp`` every discovery period / 2.2, so the registry can (a sleeping board counts as
    online while within the discovery period it declares)."""
    states = []
    for role in roles:
        known = registry.known(role)
        last = max((s.last_seen for s in known), default=None)
        states.append(DeviceState(role, any(s.online(now) for s in known), last))
    return tuple(states)


def list_devices(data_dir: Path) -> tuple[str, ...]:
    """The device roles, sorted. Read from ``coordinator.json`` (the stored role passwords,
    kept in step with ``secrets.json``), which the coordinator's user may read too."""
    own = load_service_credentials(data_dir, COORDINATOR)
    return tuple(sorted(r for r in own.role_passwords if usable_role(r) is None))  # not web


def add_device(
    config: GatewayConfig, role: str, reload: Reload, owners: Owners | None = None
) -> SketchSecrets:
    """Give ``role`` a broker user with a fresh random password, reload the broker, and
    return what its sketch needs. ``owners``: the services' groups (default: the groups the
    files have now, see ``Owners.as_written``)."""
    check_role(role)
    data_dir = config.data_dir
    with users_locked(data_dir):
        secrets = load_secrets(data_dir)
        if role in secrets.mqtt_passwords:
            raise DeviceError(f"device {role!r} exists already (gateway-config device show)")
        # Checked before anything is written: a device that cannot reach the broker is useless.
        _reachable(config)
        secrets = secrets.with_users([role])
        _write(config, secrets, owners)
    reload()
    return device_secrets(config, role, secrets)


def remove_device(
    config: GatewayConfig, role: str, reload: Reload, owners: Owners | None = None
) -> None:
    """Take ``role``'s stored password away and reload the broker, which disconnects the
    device if it is connected and refuses it from then on."""
    check_role(role)
    data_dir = config.data_dir
    with users_locked(data_dir):
        secrets = load_secrets(data_dir)
        if role not in stored_devices(secrets):
            raise DeviceError(f"no device {role!r} (gateway-config device list)")
        passwords = {u: p for u, p in secrets.mqtt_passwords.items() if u != role}
        _write(config, replace(secrets, mqtt_passwords=passwords), owners)
    reload()


def device_secrets(
    config: GatewayConfig, role: str, secrets: Secrets | None = None
) -> SketchSecrets:
    """What the sketch of existing device ``role`` needs (root: reads ``secrets.json``)."""
    check_role(role)
    secrets = load_secrets(config.data_dir) if secrets is None else secrets
    if role not in stored_devices(secrets):
        raise DeviceError(f"no device {role!r} (gateway-config device list)")
    _reachable(config)
    ap, broker = config.access_point, config.broker
    ca_pem = None
    if broker.tls_port is not None:
        ca = SecretsLayout.at(config.data_dir).ca_crt
        try:
            ca_pem = ca.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ApplianceError(f"{ca}: cannot read: {exc}") from exc
    return SketchSecrets(
        role=role,
        user=role,
        password=secrets.mqtt_passwords[role],
        wifi_ssid=ssid(ap, secrets),
        wifi_passphrase=passphrase(ap, secrets),
        broker_address=str(ap.address.ip),
        broker_hostname=ap.hostname,
        port=broker.port,
        tls_port=broker.tls_port,
        ca_pem=ca_pem,
    )


def _reachable(config: GatewayConfig) -> None:
    # Without the access point the broker listens on loopback only (render._listeners).
    if not config.access_point.enabled:
        raise DeviceError(
            "access_point.enabled is false: the broker listens on loopback only, "
            "no board could reach it"
        )


def _write(config: GatewayConfig, secrets: Secrets, owners: Owners | None) -> None:
    """secrets.json first: if power fails before the broker's files are written, the next
    ``gateway-run users`` (at every boot) finds the user missing and writes them."""
    owners = Owners.as_written(config.data_dir) if owners is None else owners
    save_secrets(config.data_dir, secrets, owners.shared)
    write_user_files(config, secrets, owners)


def reload_unit(unit: str = BROKER_UNIT, systemctl: str = "systemctl") -> Reload:
    """SIGHUP to the main process of ``unit`` (the appliance's broker), as ``gateway-run
    users --reload`` sends it."""

    def reload() -> None:
        hup = [systemctl, "kill", "--kill-who=main", "--signal=SIGHUP", unit]
        try:
            done = subprocess.run(hup, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise _not_reloaded(unit, exc.strerror or str(exc)) from exc
        if done.returncode != 0:
            raise _not_reloaded(unit, done.stderr.strip() or f"exit status {done.returncode}")

    return reload


def reload_pid(pid: int) -> Reload:
    """SIGHUP to process ``pid`` (a broker not run by systemd: a laptop, a test)."""

    def reload() -> None:
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            raise _not_reloaded(f"process {pid}", exc.strerror or str(exc)) from exc

    return reload


def _not_reloaded(what: str, why: str) -> DeviceError:
    return DeviceError(
        f"the broker's files are written but {what} was not told to reload ({why}); "
        "it reads them when it next starts"
    )


# --- secrets.h ------------------------------------------------------------------------------


def render_secrets_h(device: SketchSecrets) -> str:
    """The ``secrets.h`` a sketch includes: macros, so a sketch can ``#ifdef MSGFLO_MQTT_CA_PEM``
    to choose TLS. No value appears in a comment (a ``\\`` at a line's end would continue it)."""
    lines = [
        "// secrets.h: this device's WiFi and MQTT credentials, made by the gateway",
        "// (gateway-config device add). Keep it out of version control.",
        "#pragma once",
        "",
        f"#define MSGFLO_ROLE {c_string(device.role)}",
        f"#define MSGFLO_WIFI_SSID {c_string(device.wifi_ssid)}",
        f"#define MSGFLO_WIFI_PASSPHRASE {c_string(device.wifi_passphrase)}",
        f"#define MSGFLO_MQTT_HOST {c_string(device.broker_address)}",
        f"#define MSGFLO_MQTT_HOSTNAME {c_string(device.broker_hostname)}",
        f"#define MSGFLO_MQTT_PORT {device.port}",
        f"#define MSGFLO_MQTT_USER {c_string(device.user)}",
        f"#define MSGFLO_MQTT_PASSWORD {c_string(device.password)}",
    ]
    if device.tls_port is not None and device.ca_pem is not None:
        lines += [
            "",
            "// MQTT over TLS: the broker's certificate is signed by this gateway's own CA and",
            "// names MSGFLO_MQTT_HOSTNAME and MSGFLO_MQTT_HOST.",
            f"#define MSGFLO_MQTT_TLS_PORT {device.tls_port}",
            "#define MSGFLO_MQTT_CA_PEM \\",
            *(f"  {c_string(line + chr(10))} \\" for line in device.ca_pem.splitlines()),
            '  ""',
        ]
    return "\n".join(lines) + "\n"
