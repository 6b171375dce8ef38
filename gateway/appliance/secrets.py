"""The device's secrets: generated once at first boot, kept in ``<data_dir>/secrets/``.

Layout (the directory is 0700, or 0751 with the broker's group when the services have users
of their own: they reach their own files, which the file modes protect, and cannot list it)::

    secrets.json      device id, WiFi passphrase, runtime secret, MQTT passwords (0600, root)
    mosquitto.passwd  the MQTT users' password hashes (0640, readable by the broker)
    mosquitto.acl     what each MQTT user may read and write (0640, readable by the broker)
    ca.crt  ca.key    the per-device CA (the key 0600, root only)
    server.crt  server.key   the broker's TLS certificate and key (readable by the broker)
    coordinator.json, bridge-<name>.json   each service's own part (0640, its group; see
                      ``gateway.appliance.credentials``)

Values in the config file (``access_point.passphrase``, ``runtime.secret``) win over the
generated ones, so a laptop or a provisioned kit can fix them.
"""

from __future__ import annotations

import json
import os
import secrets as random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from gateway.common.atomic import ensure_dir, write_atomic
from gateway.config.model import AccessPointConfig, RuntimeConfig
from gateway.errors import ApplianceError

# Lower case without i, l, o, 0, 1: nothing to confuse when typing it from a label or screen.
PASSPHRASE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSPHRASE_GROUPS = 5
PASSPHRASE_GROUP_LEN = 4  # 20 symbols of 31: ~99 bits
MQTT_PASSWORD_BYTES = 24
RUNTIME_SECRET_BYTES = 24
DEVICE_ID_BYTES = 16
SECRETS_VERSION = 1


@dataclass(frozen=True)
class Secrets:
    device_id: str
    wifi_passphrase: str
    runtime_secret: str
    mqtt_passwords: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mqtt_passwords", MappingProxyType(dict(self.mqtt_passwords)))
        if len(self.device_id) != 2 * DEVICE_ID_BYTES or not _is_hex(self.device_id):
            raise ValueError(f"device_id must be {2 * DEVICE_ID_BYTES} hex digits")
        problem = passphrase_problem(self.wifi_passphrase)
        if problem:
            raise ValueError(f"wifi_passphrase {problem}")
        if not self.runtime_secret:
            raise ValueError("runtime_secret is empty")

    def with_users(self, users: Iterable[str]) -> Secrets:
        """These secrets plus a fresh password for each of ``users`` that has none."""
        passwords = dict(self.mqtt_passwords)
        for user in users:
            passwords.setdefault(user, random.token_urlsafe(MQTT_PASSWORD_BYTES))
        return replace(self, mqtt_passwords=passwords)

    def to_json(self) -> str:
        data = {
            "version": SECRETS_VERSION,
            "device_id": self.device_id,
            "wifi_passphrase": self.wifi_passphrase,
            "runtime_secret": self.runtime_secret,
            "mqtt_passwords": dict(self.mqtt_passwords),
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Secrets:
        """Parse ``to_json`` output; ``ValueError`` saying what is wrong otherwise."""
        data: Any = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != SECRETS_VERSION:
            raise ValueError(f"not a version {SECRETS_VERSION} secrets object")
        passwords = data.get("mqtt_passwords")
        if not isinstance(passwords, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in passwords.items()
        ):
            raise ValueError("mqtt_passwords must map user names to passwords")
        values = {
            name: data.get(name) for name in ("device_id", "wifi_passphrase", "runtime_secret")
        }
        for name, value in values.items():
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
        return cls(
            device_id=data["device_id"],
            wifi_passphrase=data["wifi_passphrase"],
            runtime_secret=data["runtime_secret"],
            mqtt_passwords=passwords,
        )


@dataclass(frozen=True)
class SecretsLayout:
    """Where each secret lives under ``<data_dir>/secrets/``."""

    directory: Path

    @classmethod
    def at(cls, data_dir: Path) -> SecretsLayout:
        return cls(secrets_dir(data_dir))

    @property
    def secrets_json(self) -> Path:
        return self.directory / "secrets.json"

    @property
    def passwd(self) -> Path:
        return self.directory / "mosquitto.passwd"

    @property
    def acl(self) -> Path:
        return self.directory / "mosquitto.acl"

    @property
    def ca_crt(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_crt(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"


def secrets_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "secrets"


def generate_passphrase() -> str:
    """``xxxx-xxxx-xxxx-xxxx-xxxx``: random, grouped for typing on a phone."""
    groups = (
        "".join(random.choice(PASSPHRASE_ALPHABET) for _ in range(PASSPHRASE_GROUP_LEN))
        for _ in range(PASSPHRASE_GROUPS)
    )
    return "-".join(groups)


def passphrase_problem(passphrase: str) -> str | None:
    """Why ``passphrase`` is no WPA2 passphrase (8-63 printable ASCII), or ``None``."""
    if not 8 <= len(passphrase) <= 63:
        return f"must be 8 to 63 characters long, not {len(passphrase)}"
    if not all(" " <= c <= "~" for c in passphrase):
        return "must be printable ASCII"
    return None


def generate_secrets(users: Iterable[str]) -> Secrets:
    """Fresh random secrets with a password for each MQTT user."""
    return Secrets(
        device_id=random.token_hex(DEVICE_ID_BYTES),
        wifi_passphrase=generate_passphrase(),
        runtime_secret=random.token_urlsafe(RUNTIME_SECRET_BYTES),
    ).with_users(users)


def save_secrets(data_dir: Path, secrets: Secrets, owner: tuple[int, int] | None = None) -> None:
    """Write ``secrets.json`` (0600, root only) atomically, creating the directory if needed."""
    ensure_secrets_dir(data_dir, owner)
    write_atomic(SecretsLayout.at(data_dir).secrets_json, secrets.to_json(), 0o600)


def ensure_secrets_dir(data_dir: Path, owner: tuple[int, int] | None = None) -> Path:
    """``<data_dir>/secrets``: 0700; with an owner, 0751 and its group, so each service user
    can reach the one file made readable for it (and list nothing)."""
    if owner is None:
        return ensure_dir(secrets_dir(data_dir), 0o700)
    return ensure_dir(secrets_dir(data_dir), 0o751, (os.getuid(), owner[1]))


def load_secrets(data_dir: Path) -> Secrets:
    """The secrets first boot wrote; ``ApplianceError`` naming the file if missing or corrupt."""
    path = SecretsLayout.at(data_dir).secrets_json
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ApplianceError(f"{path}: missing (has gateway-firstboot run?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplianceError(f"{path}: cannot read: {exc}") from exc
    try:
        return Secrets.from_json(text)
    except ValueError as exc:
        raise ApplianceError(f"{path}: corrupt: {exc}") from exc


def device_suffix(secrets: Secrets) -> str:
    """Four lower-case hex digits that tell this device from its neighbours (in the SSID)."""
    return secrets.device_id[:4].lower()


def ssid(ap_config: AccessPointConfig, secrets: Secrets) -> str:
    return ap_config.ssid.replace("{suffix}", device_suffix(secrets))


def passphrase(ap_config: AccessPointConfig, secrets: Secrets) -> str:
    return ap_config.passphrase or secrets.wifi_passphrase


def runtime_secret(runtime_config: RuntimeConfig, secrets: Secrets) -> str:
    return runtime_config.secret or secrets.runtime_secret


def mqtt_user_url(user: str, password: str, port: int) -> str:
    """``mqtt://user:password@127.0.0.1:port`` with both quoted for use in a URL."""
    return f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}"


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
