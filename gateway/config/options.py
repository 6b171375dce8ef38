"""Command-line flags over the serial bridge's section of ``gateway.yaml`` (``msgflo-serial``).

Each flag's value goes through the check the file's key goes through (``SERIAL_VALUES``,
``values.py``), so a flag and the file accept the same values and word a bad one the same way,
with the flag's name where the file's problems have ``file:line: key``. A flag replaces the
file's value; ``--role`` adds to the file's roles or replaces the role of the same device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gateway.config import values as v
from gateway.config.load import SERIAL_VALUES
from gateway.config.model import SerialBridgeConfig
from gateway.errors import ConfigError


def serial_bridge_options(
    base: SerialBridgeConfig,
    *,
    globs: Sequence[str] = (),
    roles: Sequence[tuple[str, str]] = (),
    **values: object,
) -> SerialBridgeConfig:
    """``base`` with the flags given: ``values`` are keys of ``SERIAL_VALUES`` (``baud=57600``;
    None: not given), ``roles`` (serial number, role) pairs. ``ConfigError`` lists every
    problem."""
    problems: list[str] = []
    changes: dict[str, Any] = {}  # checked values of the dataclass's fields
    for key, value in values.items():
        if value is None:
            continue
        try:
            changes[key] = SERIAL_VALUES[key](value)
        except v.InvalidValueError as exc:
            problems.append(f"--{key.replace('_', '-')}: {exc}")
    for glob in globs:
        try:
            v.glob(glob)
        except v.InvalidValueError as exc:
            problems.append(f"--glob: {exc}")
    if globs:
        changes["globs"] = tuple(globs)
    changes["roles"] = _roles(base, roles, problems)
    if problems:
        raise ConfigError(problems)
    return replace(base, **changes)


def _roles(
    base: SerialBridgeConfig, given: Sequence[tuple[str, str]], problems: list[str]
) -> tuple[tuple[str, str], ...]:
    """The file's roles with ``--role`` over them, one device per role (as in the file)."""
    merged = dict(base.roles)
    for serial, role in given:
        where = f"--role {serial[:80]!r}"
        if not v.is_serial(serial):
            problems.append(f"{where}: expected a serial number")
            continue
        try:
            merged[serial] = v.role(role)
        except v.InvalidValueError as exc:
            problems.append(f"{where}: {exc}")
    owners: dict[str, str] = {}
    for serial, role in sorted(merged.items()):
        if role in owners:
            problems.append(f"--role {serial!r}: role {role!r} already belongs to {owners[role]!r}")
        owners.setdefault(role, serial)
    return tuple(sorted(merged.items()))
