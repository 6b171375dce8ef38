"""The body of the serial link's ``D`` replies: the device's description, as validated types.

A device answers a describe request with a UTF-8 JSON text (``docs/serial-link.md`` section 4.3),
possibly over several ``D`` replies: :class:`DescriptionAssembler` joins them and
:func:`parse_description` turns the text into a :class:`DeviceDescription` or one
:class:`~gateway.errors.DescriptionError` line naming the key at fault.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.bridges.serial.link import Description
from gateway.errors import DescriptionError

MAX_DESCRIPTION = 4096  # largest describe JSON a host accepts


_PORT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One port of a device; its index in the inports/outports list is its ``M`` port byte."""

    id: str
    type: str = "any"


@dataclass(frozen=True, slots=True)
class DeviceDescription:
    """What a device says about itself in its ``D`` reply, validated."""

    component: str
    label: str = ""
    icon: str = ""
    inports: tuple[PortSpec, ...] = ()
    outports: tuple[PortSpec, ...] = ()
    version: str = ""


class DescriptionAssembler:
    """Collects the ``D`` replies of one describe exchange into the whole JSON text.

    The host asks with ``DescribeRequest(next_offset)`` until :meth:`add` returns the text.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._total: int | None = None

    @property
    def next_offset(self) -> int:
        return len(self._data)

    def add(self, part: Description) -> bytes | None:
        """Append one reply; the complete text once it is all there. Raises DescriptionError."""
        if part.offset != len(self._data):
            raise DescriptionError("", f"reply at offset {part.offset}, {len(self._data)} asked")
        if self._total is not None and part.total != self._total:
            raise DescriptionError("", f"total changed from {self._total} to {part.total}")
        if part.total > MAX_DESCRIPTION:
            raise DescriptionError("", f"{part.total} bytes, at most {MAX_DESCRIPTION} accepted")
        if not part.data and len(self._data) < part.total:
            raise DescriptionError("", f"empty reply at offset {part.offset} of {part.total}")
        self._total = part.total
        self._data += part.data
        return bytes(self._data) if len(self._data) == part.total else None


def _string(doc: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = doc.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise DescriptionError(
            key, "must be a non-empty string" if required else "must be a string"
        )
    return value


def _port(item: object, path: str) -> PortSpec:
    if not isinstance(item, dict):
        raise DescriptionError(path, "must be an object with id and type")
    port_id = item.get("id")
    if not isinstance(port_id, str) or not _PORT_ID.match(port_id):
        raise DescriptionError(f"{path}.id", f"{port_id!r} is not a port name ([A-Za-z0-9_.-])")
    port_type = item.get("type", "any")
    if not isinstance(port_type, str) or not port_type:
        raise DescriptionError(f"{path}.type", "must be a non-empty string")
    return PortSpec(port_id, port_type)


def _ports(doc: dict[str, Any], key: str) -> tuple[PortSpec, ...]:
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise DescriptionError(key, "must be a list of ports")
    if len(items) > 256:
        raise DescriptionError(key, f"{len(items)} ports, at most 256 (one index byte)")
    ports = tuple(_port(item, f"{key}[{n}]") for n, item in enumerate(items))
    seen: set[str] = set()
    for n, port in enumerate(ports):
        if port.id in seen:
            raise DescriptionError(f"{key}[{n}].id", f"duplicate port {port.id!r}")
        seen.add(port.id)
    return ports


def parse_description(data: bytes) -> DeviceDescription:
    """Validate a device's describe JSON; raises :class:`DescriptionError` with a one-line reason.

    A truncated text (a device whose buffer was too small once cut it silently) is reported as
    such rather than as a generic syntax error. Keys this version does not know are ignored.
    """
    try:
        doc = json.loads(data.decode())
    except UnicodeDecodeError as error:
        raise DescriptionError("", f"not UTF-8 at byte {error.start}") from None
    except json.JSONDecodeError as error:
        cut = error.pos >= len(data.rstrip()) or error.msg.startswith("Unterminated string")
        problem = f"not JSON{' (truncated?)' if cut else ''}: {error.msg} (byte {error.pos})"
        raise DescriptionError("", problem) from None
    if not isinstance(doc, dict):
        raise DescriptionError("", f"must be a JSON object, not {type(doc).__name__}")
    return DeviceDescription(
        component=_string(doc, "component", required=True),
        label=_string(doc, "label"),
        icon=_string(doc, "icon"),
        inports=_ports(doc, "inports"),
        outports=_ports(doc, "outports"),
        version=_string(doc, "version"),
    )
