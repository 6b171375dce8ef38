"""Starting the serial bridge from its ``gateway.yaml`` section, until SIGINT or SIGTERM: what
``msgflo-serial`` and the appliance's ``msgflo-bridge@serial`` (``gateway-run bridge serial``)
both run.

The section is a :class:`~gateway.config.SerialBridgeConfig`, read from the file or built from
``msgflo-serial``'s flags by the same checks (``gateway/config/options.py``); this module only
turns it into the bridge's own settings and connects.
"""

from __future__ import annotations

from gateway.bridges.serial.bridge import BridgeConfig, SerialBridge
from gateway.bridges.serial.roles import RoleMap
from gateway.bridges.serial.session import SessionConfig
from gateway.broker import BrokerUrl
from gateway.common.signals import run_daemon
from gateway.config import SerialBridgeConfig
from gateway.transport import open_transport

CLIENT_ID = "msgflo-serial-%i"  # %i: random hex digits, so two bridges never collide


def bridge_config(section: SerialBridgeConfig) -> BridgeConfig:
    """The bridge's settings from its (already checked) section of ``gateway.yaml``."""
    session = SessionConfig(
        role="-", ping_interval=section.ping_interval, max_missed_pongs=section.missed_pongs
    )
    return BridgeConfig(
        globs=section.globs,
        baud=section.baud,
        roles=RoleMap(dict(section.roles)),
        period=section.period,
        session=session,
    )


def run_serial_bridge(section: SerialBridgeConfig, broker: BrokerUrl) -> None:
    """Blocking: announce and serve the devices ``section`` describes until SIGINT/SIGTERM."""
    run_daemon(serve(bridge_config(section), broker))


async def serve(config: BridgeConfig, broker: BrokerUrl) -> None:
    async with open_transport(broker, client_id=CLIENT_ID) as transport:
        await SerialBridge(config, transport).run()
