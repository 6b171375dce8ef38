"""The discovery message: how a participant announces itself on the ``fbp`` topic (pure).

Wire format (msgflo >= 0.8.0)::

    {"protocol": "discovery", "command": "participant", "payload": {...definition...}}

Sent at start, after every reconnect and every ``period / 2.2`` seconds, so that two messages fit
in one period (msgflo-nodejs, msgflo-python). The period itself is not announced: the
cross-language contract test of the original requires exactly the seven definition keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import DefinitionError, DiscoveryError
from gateway.participant.definition import (
    Direction,
    Json,
    ParticipantDefinition,
    PortDefinition,
    port_from_dict,
)

DISCOVERY_TOPIC = "fbp"
DEFAULT_PERIOD = 60.0
PERIOD_DIVISOR = 2.2
ENV_PERIOD = "MSGFLO_DISCOVERY_PERIOD"
MAX_DISCOVERY_BYTES = 32 * 1024  # 10 times a large real definition; bounds what a parser accepts
# Roles, ids and component names of real participants are a few dozen characters; they end up
# in log lines, graph files and (strict mode) topic prefixes, so longer ones are refused.
MAX_NAME = 256


def announce_interval(period: float) -> float:
    """Seconds between two announcements for a given discovery period."""
    return period / PERIOD_DIVISOR


def period_from_env(env: Mapping[str, str] | None = None) -> float:
    """``$MSGFLO_DISCOVERY_PERIOD`` in seconds, or the default of 60."""
    raw = (os.environ if env is None else env).get(ENV_PERIOD)
    if raw is None or raw == "":
        return DEFAULT_PERIOD
    try:
        value = float(raw)
    except ValueError:
        raise DefinitionError(ENV_PERIOD, f"must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise DefinitionError(ENV_PERIOD, f"must be positive, got {raw!r}")
    return value


def encode_discovery(definition: ParticipantDefinition) -> bytes:
    """The discovery message for ``definition`` as bytes ready to publish."""
    envelope = {
        "protocol": "discovery",
        "command": "participant",
        "payload": definition.to_discovery(),
    }
    return json.dumps(envelope).encode("utf-8")


@dataclass(frozen=True)
class Discovered:
    """A parsed discovery message and what had to be tolerated to accept it."""

    definition: ParticipantDefinition
    warnings: tuple[str, ...] = ()


def parse_discovery(data: bytes, *, lenient: bool = True) -> Discovered:
    """Parse a discovery message; raise :class:`DiscoveryError` with a one-line reason.

    Lenient mode accepts what real devices send: a missing or empty ``id`` is derived from the
    role, missing port lists are empty, ports without a queue are dropped (msgflo-nodejs drops
    them too). Each tolerance is reported in ``warnings``.
    """
    payload = _payload(data)
    warnings: list[str] = []
    role = payload.get("role")
    if not isinstance(role, str) or not role:
        raise DiscoveryError("payload.role must be a non-empty string")
    _check_name(role, "payload.role")
    pid = payload.get("id")
    if not isinstance(pid, str) or not pid:
        if not lenient:
            raise DiscoveryError("payload.id must be a non-empty string")
        warnings.append(f"missing id, using role {role!r}")
        pid = role
    _check_name(pid, f"payload.id (role {role!r})")
    component = payload.get("component")
    if not isinstance(component, str) or not component:
        raise DiscoveryError(f"payload.component must be a non-empty string (role {role!r})")
    _check_name(component, f"payload.component (role {role!r})")
    inports = _ports(payload, Direction.IN, role, lenient, warnings)
    outports = _ports(payload, Direction.OUT, role, lenient, warnings)
    extra = {
        k: v
        for k, v in payload.items()
        if k not in {"id", "role", "component", "label", "icon", "inports", "outports"}
    }
    definition = ParticipantDefinition(
        role=role,
        id=pid,
        component=component,
        label=_optional_str(payload, "label"),
        icon=_optional_str(payload, "icon"),
        inports=inports,
        outports=outports,
        extra=extra,
    )
    return Discovered(definition, tuple(warnings))


def _check_name(name: str, path: str) -> None:
    """A role, id or component must be printable (no control characters; no lone surrogates,
    which are not UTF-8) and at most :data:`MAX_NAME` characters."""
    if len(name) > MAX_NAME:
        raise DiscoveryError(f"{path} is {len(name)} characters long, more than {MAX_NAME}")
    if not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        raise DiscoveryError(f"{path} contains {bad!r}")


def _payload(data: bytes) -> dict[str, Json]:
    if len(data) > MAX_DISCOVERY_BYTES:
        raise DiscoveryError(f"{len(data)} bytes is larger than {MAX_DISCOVERY_BYTES}")
    try:
        message = json.loads(data)
    except RecursionError:  # "[[[[..." deeper than Python's recursion limit
        raise DiscoveryError("not JSON: values are nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # also: ints over max_str_digits
        raise DiscoveryError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise DiscoveryError(f"expected a JSON object, got {type(message).__name__}")
    if message.get("protocol") != "discovery" or message.get("command") != "participant":
        got = f"{message.get('protocol')!r}/{message.get('command')!r}"
        raise DiscoveryError(f"not a discovery/participant message ({got})")
    payload = message.get("payload")
    if not isinstance(payload, dict):
        raise DiscoveryError("payload must be a JSON object")
    return payload


def _ports(
    payload: dict[str, Json],
    direction: Direction,
    role: str,
    lenient: bool,
    warnings: list[str],
) -> tuple[PortDefinition, ...]:
    key = direction.value
    raw = payload.get(key)
    if raw is None:
        if not lenient:
            raise DiscoveryError(f"payload.{key} is missing (role {role!r})")
        warnings.append(f"missing {key}, assuming none")
        return ()
    if not isinstance(raw, list):
        raise DiscoveryError(f"payload.{key} must be a list (role {role!r})")
    ports: list[PortDefinition] = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and "queue" not in item and not item.get("hidden"):
            warnings.append(f"{key}[{i}] has no queue, ignored")
            continue
        try:
            ports.append(port_from_dict(item, f"{key}[{i}]", role))
        except DefinitionError as exc:
            raise DiscoveryError(f"{exc.path}: {exc.problem} (role {role!r})") from None
    return tuple(ports)


def _optional_str(payload: dict[str, Json], key: str) -> str:
    value = payload.get(key, "")
    return value if isinstance(value, str) else ""
