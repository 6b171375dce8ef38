"""Who a serial device is, and which role it gets: pure (no sysfs, no udev, no clock).

A device's :class:`PortIdentity` joins two sources, both read by the caller
(:mod:`gateway.bridges.serial.ports`): the USB descriptors pyserial's ``list_ports.comports()``
reads from sysfs (serial number, VID:PID, product, manufacturer), and the name of its udev
``/dev/serial/by-id`` link, ``usb-<vendor>_<model>_<serial>-if<NN>[-port<N>]``, e.g.
``usb-Arduino__www.arduino.cc__0043_75833353035351A0C1E1-if00``. A path without USB
descriptors (a pty in the tests, a UART) is known by its link name or path alone, as before.

The USB serial number survives unplugging and moving to another USB socket, so a device keeps
its role (and the coordinator's edges to it) across a replug. Boards without a serial number
(many CH340 clones) are named by their link name, else by ``VID:PID`` (``1a86:7523``): both say
which model it is, not which board, so two such boards need their own roles by path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Protocol

# udev's ID_SERIAL is vendor_model_serial, or vendor_model without a serial number: at least
# three parts are needed to tell the serial number apart (``usb-1a86_USB2.0-Serial`` has none).
_BY_ID = re.compile(r"usb-(?P<product>[^_]*_.*?)_(?P<serial>[^_]+)-if\d+(?:-port\d+)?\Z")
_LINK = re.compile(r"usb-.+-if\d+(?:-port\d+)?\Z")
_SUFFIX = re.compile(r"-if\d+(?:-port\d+)?\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_VID_PID = re.compile(r"[0-9a-f]{4}:[0-9a-f]{4}\Z")


class PortInfo(Protocol):
    """What this module reads of pyserial's ``ListPortInfo`` (one entry of ``comports()``)."""

    device: str
    serial_number: str | None
    vid: int | None
    pid: int | None
    product: str | None
    manufacturer: str | None


def serial_number(link: str) -> str | None:
    """The USB serial number in a by-id link name (or a path ending in one), if it has one."""
    match = _BY_ID.match(PurePath(link).name)
    return match.group("serial") if match else None


def product(link: str) -> str | None:
    """The vendor and model in a by-id link name (``Arduino__www.arduino.cc__0043``), if any."""
    match = _BY_ID.match(PurePath(link).name)
    return match.group("product") if match else None


def is_vid_pid(text: str) -> bool:
    """``2341:0043``: USB vendor and product id as lsusb prints them."""
    return bool(_VID_PID.match(text))


@dataclass(frozen=True)
class PortIdentity:
    """One device as the bridge found it: the path it opens and what tells it apart."""

    path: str  # what the globs matched (a by-id link, /dev/ttyACM0, a test's pty link)
    usb_serial: str | None = None  # the USB serial number, from sysfs
    vid_pid: str | None = None  # "2341:0043"
    usb_product: str | None = None  # "Arduino Uno"
    manufacturer: str | None = None
    link: str | None = None  # the name of its by-id link, if it has one

    @classmethod
    def of(cls, path: str) -> PortIdentity:
        """A path with no USB descriptors: known by its name alone (a pty, a UART)."""
        name = PurePath(path).name
        return cls(path, link=name if _LINK.match(name) else None)

    @property
    def name(self) -> str:
        return PurePath(self.path).name

    @property
    def serial(self) -> str | None:
        """The USB serial number: from sysfs, else from the by-id link name."""
        return self.usb_serial or (serial_number(self.link) if self.link else None)

    @property
    def product(self) -> str:
        """What kind of device it is: the USB product string, else the by-id link's model."""
        return self.usb_product or (product(self.link) if self.link else None) or ""

    def role_keys(self) -> tuple[str, ...]:
        """What a role may be configured by, the most specific first."""
        link_serial = serial_number(self.link) if self.link else None
        found = (self.usb_serial, link_serial, self.link, self.name, self.path, self.vid_pid)
        return tuple(dict.fromkeys(key for key in found if key))

    @property
    def config_key(self) -> str:
        """The key a role for this device is configured (and adopted) by: its serial number,
        else its by-id link name, else VID:PID, else its name (survive a replug best to
        least well)."""
        return self.serial or self.link or self.vid_pid or self.name

    @property
    def derived_role(self) -> str:
        """The role of an unconfigured device: its config key, cleaned up for a queue name."""
        key = self.config_key
        if key == self.link and self.serial is None:
            key = _SUFFIX.sub("", key.removeprefix("usb-"))
        role = _UNSAFE.sub("_", key).strip("_.-")
        return role or "serial"

    def describe(self) -> str:
        """One line of what USB says: ``2341:0043 Arduino (www.arduino.cc)``."""
        parts = [self.vid_pid or "", self.manufacturer or ""]
        return " ".join(part for part in parts if part)


def identify(
    path: str, real: str, ports: Iterable[PortInfo], links: Mapping[str, str] | None = None
) -> PortIdentity:
    """The identity of ``path`` (its resolved device node ``real``): the ``comports()`` entry
    for that node, if any, and its by-id link name from ``links`` (resolved node -> link name),
    else the path's own name when it looks like one."""
    base = PortIdentity.of(path)
    link = (links or {}).get(real) or base.link
    for info in ports:
        if info.device != real:
            continue
        vid_pid = None
        if info.vid is not None and info.pid is not None:
            vid_pid = f"{info.vid:04x}:{info.pid:04x}"
        return PortIdentity(
            path,
            usb_serial=info.serial_number or None,
            vid_pid=vid_pid,
            usb_product=info.product or None,
            manufacturer=info.manufacturer or None,
            link=link,
        )
    return PortIdentity(path, link=link)


@dataclass(frozen=True)
class RoleMap:
    """Configured roles keyed by USB serial number, by-id link name, path or ``VID:PID``."""

    roles: Mapping[str, str] = field(default_factory=dict)

    def role_for(self, device: PortIdentity) -> str:
        configured = self.configured(device)
        return device.derived_role if configured is None else configured

    def configured(self, device: PortIdentity) -> str | None:
        """The role configured for ``device``, if any (the most specific key wins)."""
        for key in device.role_keys():
            if key in self.roles:
                return self.roles[key]
        if device.vid_pid is not None:  # as lsusb prints it, or in capitals
            for key, role in self.roles.items():
                if key.lower() == device.vid_pid:
                    return role
        return None
