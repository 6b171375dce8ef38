"""Who may read which secret, and the broker's users kept in step with the graph.

``secrets.json`` holds every secret and only root reads it. A service that runs as its own
user reads a file with its own part only, root-owned, mode 0640, group of that user (it can
read it, not change it)::

    coordinator.json     the coordinator's MQTT password, the runtime secret, the device id,
                         and the stored role users' passwords (for the participants it starts)
    bridge-<name>.json   that bridge's MQTT password

Mosquitto reads the password file, the ACL and its TLS key through its group in the same way.

**Role users of the graph.** Each node of the graph is a broker user that may use only its
own ``<role>/#`` topics and announce itself on ``fbp``. Its password is derived from the
coordinator's (HMAC-SHA256, so knowing a role's password tells nothing about the coordinator's):
the coordinator can give a participant of any role, even one added over the runtime protocol
a moment ago, its own credentials without writing anything, and root adds the role's password
hash to the broker whenever the graph changes (``gateway-run users``, run by
``msgflo-users.service`` when the graph file changes and before the coordinator starts). A role
with a password in ``secrets.json`` (one of ``broker.roles``, for a device on the WiFi) keeps
that one.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import grp
import hashlib
import hmac
import json
import os
import pwd
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.appliance.adopt import locked
from gateway.appliance.passwd import parse_password_file, password_file
from gateway.appliance.render import mosquitto_acl
from gateway.appliance.secrets import (
    Secrets,
    SecretsLayout,
    ensure_secrets_dir,
    load_secrets,
    mqtt_user_url,
)
from gateway.appliance.users import (
    BRIDGE_PREFIX,
    COORDINATOR,
    graph_roles,
    is_full_access,
    user_for,
    user_names,
)
from gateway.broker import BrokerUrl, parse_broker_url
from gateway.common.atomic import write_atomic
from gateway.config.model import GatewayConfig
from gateway.errors import ApplianceError

Owner = tuple[int, int] | None  # (uid, gid) of a service's system user; None: the caller's
SERVICE_FILE_VERSION = 1
ROLE_CONTEXT = b"msgflo-role:"


@dataclass(frozen=True)
class Owners:
    """The system users of the services that read secrets; ``None`` where all is one user
    (a laptop, a test): then every file is 0600 and the caller's."""

    broker: Owner = None
    coordinator: Owner = None
    bridge: Owner = None

    @property
    def shared(self) -> Owner:
        """Any of them: when set, the secrets directory lets the services reach their files."""
        return self.broker or self.coordinator or self.bridge

    @classmethod
    def as_written(cls, data_dir: Path) -> Owners:
        """The owners the files have now, so that rewriting them (``gateway-config device``)
        keeps each file's group without being told the services' users again. Only the group
        counts (``group_readable``); a file only its owner reads means no service user."""
        layout = SecretsLayout.at(data_dir)
        bridges = sorted(layout.directory.glob(f"{BRIDGE_PREFIX}*.json"))
        return cls(
            _group_reader(layout.passwd),
            _group_reader(layout.directory / f"{COORDINATOR}.json"),
            _group_reader(bridges[0]) if bridges else None,
        )


def _group_reader(path: Path) -> Owner:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_uid, info.st_gid) if info.st_mode & stat.S_IRGRP else None


def system_user(name: str, option: str) -> Owner:
    """``(uid, gid)`` of system user ``name``; ``None`` for ``""``."""
    if not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ApplianceError(f"no such user {name!r} ({option})") from None
    return (entry.pw_uid, entry.pw_gid)


def add_service_users(parser: argparse.ArgumentParser) -> None:
    """``--coordinator-user`` and ``--bridge-user`` (also taken by ``gateway-run users``)."""
    parser.add_argument(
        "--coordinator-user",
        default="",
        metavar="USER",
        help="system user the coordinator runs as; it may read coordinator.json ('' for none)",
    )
    parser.add_argument(
        "--bridge-user",
        default="",
        metavar="USER",
        help="system user the bridges run as; they may read bridge-<name>.json ('' for none)",
    )


def group_readable(owner: Owner) -> tuple[int, tuple[int, int] | None]:
    """Mode and owner of a file ``owner``'s service reads: ours and 0640 with its group, or
    0600 when there is no such service user."""
    if owner is None:
        return 0o600, None
    return 0o640, (os.getuid(), owner[1])


@dataclass(frozen=True)
class ServiceCredentials:
    """One service's part of the secrets (the coordinator's or a bridge's)."""

    user: str
    password: str = field(repr=False)
    runtime_secret: str = field(default="", repr=False)
    device_id: str = ""
    role_passwords: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "role_passwords", MappingProxyType(dict(self.role_passwords)))

    def to_json(self) -> str:
        data = {
            "version": SERVICE_FILE_VERSION,
            "user": self.user,
            "password": self.password,
            "runtime_secret": self.runtime_secret,
            "device_id": self.device_id,
            "role_passwords": dict(self.role_passwords),
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ServiceCredentials:
        data: Any = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != SERVICE_FILE_VERSION:
            raise ValueError(f"not a version {SERVICE_FILE_VERSION} credentials object")
        texts = {k: data.get(k, "") for k in ("user", "password", "runtime_secret", "device_id")}
        roles = data.get("role_passwords", {})
        if not all(isinstance(v, str) for v in texts.values()) or not isinstance(roles, dict):
            raise ValueError("user, password, runtime_secret and device_id must be strings")
        if not texts["user"] or not texts["password"]:
            raise ValueError("user and password must not be empty")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in roles.items()):
            raise ValueError("role_passwords must map roles to passwords")
        return cls(role_passwords=roles, **texts)


def service_file(data_dir: Path, user: str) -> Path:
    """``<data_dir>/secrets/<user>.json``: only gateway users (coordinator, bridge-*) get one."""
    if not is_full_access(user):
        raise ValueError(f"{user!r} is not a gateway service user")
    return SecretsLayout.at(data_dir).directory / f"{user}.json"


def load_service_credentials(data_dir: Path, user: str) -> ServiceCredentials:
    path = service_file(data_dir, user)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ApplianceError(f"{path}: missing (has gateway-firstboot run?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplianceError(f"{path}: cannot read: {exc}") from exc
    try:
        return ServiceCredentials.from_json(text)
    except ValueError as exc:
        raise ApplianceError(f"{path}: corrupt: {exc}") from exc


def role_password(coordinator_password: str, role: str) -> str:
    """The password of graph role ``role``'s broker user, derived from the coordinator's."""
    digest = hmac.new(
        coordinator_password.encode("utf-8"), ROLE_CONTEXT + role.encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def stored_role_passwords(secrets: Secrets) -> dict[str, str]:
    return {u: p for u, p in secrets.mqtt_passwords.items() if not is_full_access(u)}


@dataclass(frozen=True)
class RoleBrokers:
    """The broker URL a participant of a role gets: that role's user, nothing more. A role that
    cannot be a broker user (a reserved or malformed name) gets a password no user has: the
    broker refuses it rather than it getting anyone else's rights."""

    port: int
    coordinator_password: str = field(repr=False)
    stored: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, credentials: ServiceCredentials, port: int) -> RoleBrokers:
        return cls(port, credentials.password, credentials.role_passwords)

    def password(self, role: str) -> str:
        stored = None if is_full_access(role) else self.stored.get(role)
        return stored or role_password(self.coordinator_password, role)

    def __call__(self, role: str) -> BrokerUrl:
        return parse_broker_url(mqtt_user_url(role, self.password(role), self.port))


# Participants and bridges keep a persistent MQTT session for this long while away (a WiFi
# dropout, a broker restart): the broker queues their QoS 1 messages meanwhile.
SESSION_EXPIRY = "300"


def persistent(url: BrokerUrl) -> BrokerUrl:
    """``url`` asking for a persistent session, unless it already says how long."""
    if "sessionExpiry" in url.options or not url.is_mqtt:
        return url
    return url.with_option("sessionExpiry", SESSION_EXPIRY)


def broker_passwords(config: GatewayConfig, secrets: Secrets) -> dict[str, str]:
    """Every broker user and its password: the stored users, then each usable role of the
    graph (the file ``coordinator.graph`` now) without a stored password, derived."""
    names = user_names(config, graph_roles(config.coordinator.graph))
    key = secrets.mqtt_passwords[COORDINATOR]
    passwords = dict(secrets.mqtt_passwords)
    for name in names:
        passwords.setdefault(name, role_password(key, name))
    return passwords


def write_user_files(config: GatewayConfig, secrets: Secrets, owners: Owners) -> dict[str, str]:
    """The broker's password file and ACL, and each service's credentials file; returns the
    broker's users and passwords."""
    files = SecretsLayout(ensure_secrets_dir(config.data_dir, owners.shared))
    passwords = broker_passwords(config, secrets)
    mode, owner = group_readable(owners.broker)
    write_atomic(files.passwd, password_file(passwords), mode, owner)
    write_atomic(files.acl, mosquitto_acl(user_for(name) for name in passwords), mode, owner)
    coordinator = ServiceCredentials(
        COORDINATOR,
        secrets.mqtt_passwords[COORDINATOR],
        secrets.runtime_secret,
        secrets.device_id,
        stored_role_passwords(secrets),
    )
    mode, owner = group_readable(owners.coordinator)
    write_atomic(service_file(config.data_dir, COORDINATOR), coordinator.to_json(), mode, owner)
    mode, owner = group_readable(owners.bridge)
    for user, password in secrets.mqtt_passwords.items():
        if user.startswith(BRIDGE_PREFIX):
            bridge = ServiceCredentials(user, password)
            write_atomic(service_file(config.data_dir, user), bridge.to_json(), mode, owner)
    return passwords


def broker_users_now(data_dir: Path) -> set[str]:
    """The users in the broker's password file as it is (none if it is missing)."""
    try:
        text = SecretsLayout.at(data_dir).passwd.read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    return set(parse_password_file(text))


@contextlib.contextmanager
def users_locked(data_dir: Path) -> Iterator[None]:
    """An exclusive lock on the secrets directory while the broker's users change (here and
    ``gateway-config device``): the password file and the ACL are never written by two at
    once, so they always agree, and a device added meanwhile is not lost."""
    directory = SecretsLayout.at(data_dir).directory
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(directory / "secrets.json"))
        except OSError as exc:
            hint = " (has gateway-firstboot run?)" if isinstance(exc, FileNotFoundError) else ""
            raise ApplianceError(f"{directory}: cannot lock: {exc.strerror or exc}{hint}") from exc
        yield


def sync_users(
    config: GatewayConfig, secrets: Secrets, owners: Owners
) -> tuple[set[str], set[str]]:
    """Give every role of the graph a broker user (and drop derived users of roles no longer
    in it). Returns the users added and removed; nothing is written when both are empty.
    The MQTT passwords are read again from ``secrets.json`` under the lock."""
    with users_locked(config.data_dir):
        # The stored passwords as they are now, under the lock: a device that gateway-config
        # device added after the caller read the secrets keeps its user.
        stored = load_secrets(config.data_dir).mqtt_passwords
        secrets = dataclasses.replace(secrets, mqtt_passwords=stored)
        before = broker_users_now(config.data_dir)
        wanted = set(broker_passwords(config, secrets))
        complete = service_file(config.data_dir, COORDINATOR).exists()
        if wanted == before and complete:
            return set(), set()
        write_user_files(config, secrets, owners)
    return wanted - before, before - wanted


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
