"""The gateway's config file, ``/etc/msgflo-gateway/gateway.yaml``: typed, frozen, checked.

    config = load_config(DEFAULT_PATH)     # ConfigError lists every problem, file:line: key
    config.access_point.channel            # 6

``parse_config`` reads text instead of a file; ``dump_config`` writes the effective config
back as YAML (what ``gateway-config show`` prints).
"""

from __future__ import annotations

from gateway.config.dump import dump_config
from gateway.config.load import load_config, parse_config
from gateway.config.model import (
    DEFAULT_DATA_DIR,
    DEFAULT_PATH,
    AccessPointConfig,
    BleBridgeConfig,
    BridgesConfig,
    BrokerConfig,
    CoordinatorConfig,
    GatewayConfig,
    GpioBridgeConfig,
    GpioDevice,
    HealthConfig,
    Rf433BridgeConfig,
    RuntimeConfig,
    SerialBridgeConfig,
)
from gateway.errors import ConfigError

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PATH",
    "AccessPointConfig",
    "BleBridgeConfig",
    "BridgesConfig",
    "BrokerConfig",
    "ConfigError",
    "CoordinatorConfig",
    "GatewayConfig",
    "GpioBridgeConfig",
    "GpioDevice",
    "HealthConfig",
    "Rf433BridgeConfig",
    "RuntimeConfig",
    "SerialBridgeConfig",
    "dump_config",
    "load_config",
    "parse_config",
]
