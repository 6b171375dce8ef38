"""USB serial devices as msgflo participants.

``link`` and ``description``: the framed serial link (docs/serial-link.md), pure codecs.
``session``: one device's state machine (hello, describe, ready, liveness), pure.
``roles``: who a device is (USB serial number, VID:PID, by-id link) and its role, pure.
``port``, ``hotplug``, ``bridge``, ``cli``: the ``msgflo-serial`` daemon, the device side of a
:class:`~gateway.bridges.host.BridgeHost` (docs/serial-bridge.md).
``fake_device``: the device side of the link in Python, for tests and trying it without hardware.

:func:`device_side` is what :mod:`gateway.bridges.run` starts the bridge with. Its ``issuer``
creates a board's credentials for provisioning over USB (``bridges.serial.provision``,
docs/provisioning.md): ``gateway-run bridge serial`` passes
:func:`gateway.appliance.device_requests.provision_issuer`; without one (``msgflo-serial``) the
bridge says that ``provision`` is set but nothing can create credentials, and provisions nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.bridges.run import DeviceSide
    from gateway.bridges.serial.provisioning import IssueCredentials
    from gateway.config import SerialBridgeConfig


def device_side(section: SerialBridgeConfig, issuer: IssueCredentials | None = None) -> DeviceSide:
    """The coroutine function the bridge host runs for ``gateway.yaml``'s ``bridges.serial``;
    ``issuer`` makes the credentials of the boards it provisions."""
    # Imported here: the codecs above are used without the daemon (firmware tests, fuzzing).
    from gateway.bridges.serial.bridge import SerialDevices, bridge_config

    return SerialDevices(bridge_config(section), issuer=issuer).run
