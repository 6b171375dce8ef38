"""Which role a USB serial device gets: from configuration, else from its USB serial number.

udev names ``/dev/serial/by-id`` links ``usb-<vendor>_<model>_<serial>-if<NN>[-port<N>]``, e.g.
``usb-Arduino__www.arduino.cc__0043_75833353035351A0C1E1-if00``. The serial number survives
unplugging and moving to another USB socket, so a device keeps its role (and the coordinator's
edges to it) across a replug. Boards without a serial number (many CH340 clones) get a role
from the whole link name instead, which is only as stable as the USB path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

# udev's ID_SERIAL is vendor_model_serial, or vendor_model without a serial number: at least
# three parts are needed to tell the serial number apart (``usb-1a86_USB2.0-Serial`` has none).
_BY_ID = re.compile(r"usb-(?P<product>[^_]*_.*?)_(?P<serial>[^_]+)-if\d+(?:-port\d+)?\Z")
_SUFFIX = re.compile(r"-if\d+(?:-port\d+)?\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def serial_number(path: str) -> str | None:
    """The USB serial number in a by-id link name, if it has one."""
    match = _BY_ID.match(PurePath(path).name)
    return match.group("serial") if match else None


def product(path: str) -> str | None:
    """The vendor and model in a by-id link name (``Arduino__www.arduino.cc__0043``), if any."""
    match = _BY_ID.match(PurePath(path).name)
    return match.group("product") if match else None


def derived_role(path: str) -> str:
    """The role of an unconfigured device: its serial number, else its cleaned-up link name."""
    name = PurePath(path).name
    found = serial_number(path)
    if found is None:
        found = _SUFFIX.sub("", name.removeprefix("usb-"))
    role = _UNSAFE.sub("_", found).strip("_.-")
    return role or "serial"


@dataclass(frozen=True)
class RoleMap:
    """Configured roles keyed by USB serial number, link name, or full path."""

    roles: Mapping[str, str] = field(default_factory=dict)

    def role_for(self, path: str) -> str:
        configured = self.configured(path)
        return derived_role(path) if configured is None else configured

    def configured(self, path: str) -> str | None:
        """The role configured for ``path``, if any."""
        for key in (serial_number(path), PurePath(path).name, path):
            if key is not None and key in self.roles:
                return self.roles[key]
        return None


def config_key(path: str) -> str:
    """The key a role for ``path`` would be configured by: its USB serial number, else its
    link name (both survive a replug into another socket less or more well, see above)."""
    return serial_number(path) or PurePath(path).name
