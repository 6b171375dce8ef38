"""A ``GatewayConfig`` back as ``gateway.yaml`` text: what ``gateway-config show`` prints.

The output loads back to the same config (``parse_config(dump_config(c)) == c``): strings that
the YAML 1.2 loader would read as something else (``0x10``, ``true``) or that YAML 1.1 tools
would (``yes``, ``on``) are quoted.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from gateway.common.yaml12 import dump_yaml
from gateway.config.model import (
    BleBridgeConfig,
    GatewayConfig,
    GpioBridgeConfig,
    Rf433BridgeConfig,
    SerialBridgeConfig,
)


def _plain(value: object) -> object:
    """Dataclasses as dicts, and paths, addresses and tuples as YAML's plain types."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _field(value, f.name) for f in fields(value)}
    if isinstance(value, Path | IPv4Address | IPv4Interface):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _field(owner: object, name: str) -> object:
    value = getattr(owner, name)
    pairs = (
        (SerialBridgeConfig, "roles"),
        (SerialBridgeConfig, "lines"),
        (BleBridgeConfig, "roles"),
        (BleBridgeConfig, "gatt"),
        (Rf433BridgeConfig, "roles"),
        (Rf433BridgeConfig, "windows"),
        (GpioBridgeConfig, "devices"),
    )
    if any(isinstance(owner, kind) and name == key for kind, key in pairs):
        return {key: _plain(item) for key, item in value}  # sorted pairs, as the file spells it
    return _plain(value)


def dump_config(config: GatewayConfig) -> str:
    """``config`` as YAML, every key present, in the model's order."""
    return dump_yaml(_plain(config))
