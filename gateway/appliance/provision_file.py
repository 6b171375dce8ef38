"""The optional provisioning file on the boot partition, ``msgflo-provision.yaml``.

Someone preparing an SD card can fix the WiFi name, passphrase and country, the runtime
secret and the MQTT admin password before the first boot. A weak value is refused rather than
applied: the passphrase must be WPA2's 8-63 printable ASCII characters, the runtime secret and
the admin password at least ``MIN_SECRET_CHARS`` (12) characters; the generated value is kept.
Only these keys are read; anything else is reported (one line naming the file and the key)
and ignored, and the valid keys are still applied. Parsing is pure: ``parse_provision``
returns the values and the problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.appliance.secrets import passphrase_problem
from gateway.common.yaml12 import load_yaml
from gateway.errors import YamlError

FILE_NAME = "msgflo-provision.yaml"
KEYS = ("wifi_passphrase", "ssid", "country", "runtime_secret", "admin_password")
_COUNTRY = re.compile(r"[A-Z]{2}")
SSID_MAX_BYTES = 32
# The MQTT admin password and the runtime secret guard the whole kit over the network; shorter
# provided values are refused (and the generated ones kept), as a WPA2 passphrase under 8 is.
MIN_SECRET_CHARS = 12
SECRET_KEYS = ("runtime_secret", "admin_password")


@dataclass(frozen=True)
class Provision:
    """Values from the provisioning file; ``None`` where it gave none (or an invalid one)."""

    wifi_passphrase: str | None = None
    ssid: str | None = None
    country: str | None = None
    runtime_secret: str | None = None
    admin_password: str | None = None


def parse_provision(text: str, file: str) -> tuple[Provision, tuple[str, ...]]:
    """The valid values in ``text`` and one line per problem, each naming ``file``."""
    try:
        data: Any = load_yaml(text, file)
    except YamlError as exc:  # where and what only: the line may hold the passphrase
        return Provision(), (f"{exc.where}: not YAML: {exc.problem}",)
    if data is None:
        return Provision(), ()
    if not isinstance(data, dict):
        return Provision(), (f"{file}: expected a mapping of keys to values",)
    values: dict[str, str] = {}
    problems: list[str] = []
    for key, value in data.items():
        problem = _problem(str(key), value)
        if problem:
            problems.append(f"{file}: {key}: {problem}")
        else:
            values[str(key)] = value
    return Provision(**values), tuple(problems)


def _problem(key: str, value: object) -> str | None:
    if key not in KEYS:
        return f"unknown key, ignored (known: {', '.join(KEYS)})"
    if not isinstance(value, str) or not value:
        return "must be a non-empty string, ignored"
    problem = _value_problem(key, value)
    return f"{problem}, ignored" if problem else None


def _value_problem(key: str, value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return "must be one line"
    if key == "wifi_passphrase":
        return passphrase_problem(value)
    if key in SECRET_KEYS and len(value) < MIN_SECRET_CHARS:
        # The length only: the value itself must not reach the journal.
        return f"must be at least {MIN_SECRET_CHARS} characters, not {len(value)}"
    if key == "country" and not _COUNTRY.fullmatch(value):
        return "must be two upper-case letters (ISO 3166-1, e.g. DE)"
    if key == "ssid" and len(value.encode("utf-8")) > SSID_MAX_BYTES:
        return f"must be at most {SSID_MAX_BYTES} bytes"
    return None
