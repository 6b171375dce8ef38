"""The devices a bridge has seen and no config adopts: the retained list every bridge publishes
on ``msgflo-gateway/bridges/<bridge>/seen`` and the dashboard reads (pure; docs/bridges.md).

Each entry is a JSON object ``{"id", "model", "name", "last_seen", "adopt", "details"}``:
``id`` is the key ``bridges.<bridge>.roles`` adopts the device by, ``adopt`` the config line
that would, ``details`` one line of what was decoded. The bridge is named by the topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SEEN_TOPIC = "msgflo-gateway/bridges/{bridge}/seen"
SEEN_WILDCARD = "msgflo-gateway/bridges/+/seen"


def seen_topic(bridge: str) -> str:
    return SEEN_TOPIC.format(bridge=bridge)


def bridge_of(topic: str) -> str | None:
    """The bridge a seen-list topic belongs to, or None for another topic."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[:2] == ["msgflo-gateway", "bridges"] and parts[3] == "seen":
        return parts[2] or None
    return None


def adopt_line(bridge: str, device_id: str) -> str:
    """The gateway.yaml line that adopts ``device_id`` as ROLE."""
    return f"bridges.{bridge}.roles: {{{json.dumps(device_id)}: ROLE}}"


@dataclass(frozen=True)
class SeenDevice:
    bridge: str  # the bridge that saw it (serial, ble, rf433, ...)
    id: str  # unique within the bridge (a USB serial number, a BLE address)
    model: str = ""
    name: str = ""
    last_seen: float | None = None  # epoch seconds
    details: str = ""  # one line of what was decoded, e.g. "temperature 21.5, rssi -70"

    @property
    def adopt(self) -> str:
        return adopt_line(self.bridge, self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "bridge": self.bridge,
            "id": self.id,
            "model": self.model,
            "name": self.name,
            "last_seen": self.last_seen,
            "adopt": self.adopt,
            "details": self.details,
        }


def encode_seen(devices: list[SeenDevice]) -> bytes:
    entries = [device.to_json() for device in devices]
    for entry in entries:
        del entry["bridge"]  # the topic says it
    return json.dumps(entries, separators=(",", ":")).encode()


def parse_seen(bridge: str, payload: bytes) -> list[SeenDevice]:
    """A bridge's list; ValueError says what is wrong with it."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, list):
        raise ValueError("not a JSON list")
    return [_device(bridge, entry, n) for n, entry in enumerate(data)]


def _device(bridge: str, entry: Any, n: int) -> SeenDevice:
    if not isinstance(entry, dict):
        raise ValueError(f"entry {n} is not an object")
    texts = {}
    for key in ("id", "model", "name", "details"):
        value = entry.get(key, "")
        if not isinstance(value, str) or (key == "id" and not value):
            raise ValueError(f"entry {n}: {key!r} is not a string")
        texts[key] = value
    last_seen = entry.get("last_seen")
    if last_seen is not None and (
        not isinstance(last_seen, int | float) or isinstance(last_seen, bool)
    ):
        raise ValueError(f"entry {n}: 'last_seen' is not a number")
    return SeenDevice(
        bridge,
        texts["id"],
        texts["model"],
        texts["name"],
        None if last_seen is None else float(last_seen),
        texts["details"],
    )
