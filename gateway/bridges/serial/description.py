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
MAX_PORTS = 64  # inports and outports together, per device
MAX_NESTING = 16  # arrays and objects inside each other (the firmware's JSON writer's limit too)
MAX_TOPIC_BYTES = 65535  # an MQTT topic name's length is a u16 of UTF-8 bytes
FORBIDDEN_TOPIC_CHARS = frozenset("+#\x00")  # wildcards and NUL: not in a topic one publishes to


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


def _text(value: str, path: str) -> str:
    """A string the device sent: it must be encodable (a JSON ``\\udc80`` escape gives a lone
    surrogate that no UTF-8 encoder takes) and hold no NUL."""
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise DescriptionError(path, f"lone surrogate at character {error.start}") from None
    if "\x00" in value:
        raise DescriptionError(path, "contains NUL")
    return value


def _string(doc: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = doc.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise DescriptionError(
            key, "must be a non-empty string" if required else "must be a string"
        )
    return _text(value, key)


def check_topic(topic: str, path: str = "queue") -> str:
    """A queue name the bridge subscribes or publishes to: UTF-8 encodable, at most 65,535
    bytes, no NUL and no wildcard. Raises :class:`DescriptionError` naming ``path``."""
    try:
        size = len(topic.encode())
    except UnicodeEncodeError as error:
        raise DescriptionError(path, f"lone surrogate at character {error.start}") from None
    if not topic:
        raise DescriptionError(path, "empty queue name")
    if size > MAX_TOPIC_BYTES:
        raise DescriptionError(path, f"{size}-byte queue name, at most {MAX_TOPIC_BYTES}")
    bad = sorted(FORBIDDEN_TOPIC_CHARS.intersection(topic))
    if bad:
        raise DescriptionError(path, f"queue name contains {bad[0]!r}")
    return topic


def nesting(data: bytes, limit: int = MAX_NESTING) -> int:
    """How deep arrays and objects nest in the JSON text ``data`` (strings skipped), counting
    only up to ``limit + 1``: checked before parsing, so a hostile text never gets the parser
    to recurse thousands of levels deep."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif byte in b"]}":
            depth -= 1
    return deepest


def _port(item: object, path: str) -> PortSpec:
    if not isinstance(item, dict):
        raise DescriptionError(path, "must be an object with id and type")
    port_id = item.get("id")
    if not isinstance(port_id, str) or not _PORT_ID.match(port_id):
        raise DescriptionError(f"{path}.id", f"{port_id!r} is not a port name ([A-Za-z0-9_.-])")
    port_type = item.get("type", "any")
    if not isinstance(port_type, str) or not port_type:
        raise DescriptionError(f"{path}.type", "must be a non-empty string")
    return PortSpec(port_id, _text(port_type, f"{path}.type"))


def _ports(doc: dict[str, Any], key: str) -> tuple[PortSpec, ...]:
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise DescriptionError(key, "must be a list of ports")
    if len(items) > MAX_PORTS:
        raise DescriptionError(key, f"{len(items)} ports, at most {MAX_PORTS} per device")
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
    if len(data) > MAX_DESCRIPTION:
        raise DescriptionError("", f"{len(data)} bytes, at most {MAX_DESCRIPTION} accepted")
    if nesting(data) > MAX_NESTING:
        raise DescriptionError("", f"nested more than {MAX_NESTING} levels deep")
    try:
        doc = json.loads(data.decode())
    except UnicodeDecodeError as error:
        raise DescriptionError("", f"not UTF-8 at byte {error.start}") from None
    except json.JSONDecodeError as error:
        cut = error.pos >= len(data.rstrip()) or error.msg.startswith("Unterminated string")
        problem = f"not JSON{' (truncated?)' if cut else ''}: {error.msg} (byte {error.pos})"
        raise DescriptionError("", problem) from None
    except RecursionError:  # the nesting check should make this impossible; one line if not
        raise DescriptionError("", "nested too deeply to parse") from None
    if not isinstance(doc, dict):
        raise DescriptionError("", f"must be a JSON object, not {type(doc).__name__}")
    description = DeviceDescription(
        component=_string(doc, "component", required=True),
        label=_string(doc, "label"),
        icon=_string(doc, "icon"),
        inports=_ports(doc, "inports"),
        outports=_ports(doc, "outports"),
        version=_string(doc, "version"),
    )
    ports = len(description.inports) + len(description.outports)
    if ports > MAX_PORTS:
        raise DescriptionError("inports", f"{ports} ports in all, at most {MAX_PORTS} per device")
    return description
