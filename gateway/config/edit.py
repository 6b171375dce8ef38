"""Changing ``gateway.yaml`` in place: adopting a device a bridge has seen
(``bridges.<bridge>.roles``, device id -> role, the same shape for every bridge).

The one way it is done, by the dashboard off the appliance and by ``gateway-run adopt`` (root,
``msgflo-adopt.service``) on it: the file is loaded with the config loader, changed, written
with the dumper, checked to load back, and replaced atomically. The dumper writes every key
and no comments: a file written here loses the comments the shipped ``gateway.yaml`` has
(PyYAML, the project's YAML library, does not keep them). A symlink (the appliance's
``/etc/msgflo-gateway/gateway.yaml``) is followed: the file it points to is replaced.

Which ids a bridge adopts by is :data:`DEVICE_KEYS`, the same checks the loader makes of the
bridge's ``roles``; a bridge that is not in it adopts nothing (a later bridge adds one line).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from pathlib import Path

from gateway.common.atomic import write_atomic
from gateway.config import values as v
from gateway.config.dump import dump_config
from gateway.config.load import load_config, parse_config
from gateway.config.model import BridgesConfig, GatewayConfig
from gateway.errors import GatewayError

# bridge -> (the check of a device id, what such an id is: for the one-line refusal)
DEVICE_KEYS: dict[str, tuple[Callable[[str], bool], str]] = {
    "serial": (v.is_serial, "a serial number or link name"),
    "ble": (v.is_ble_address, "a BLE address (AA:BB:CC:DD:EE:FF)"),
    "rf433": (v.is_rf433_key, "a 433 MHz device key (MODEL/CHANNEL/ID)"),
}


def check_device(bridge: str, device_id: str) -> None:
    """Raise :class:`GatewayError` unless ``bridge`` adopts devices and ``device_id`` is one
    of its ids."""
    known = DEVICE_KEYS.get(bridge)
    if known is None or bridge not in BridgesConfig.names():
        adopting = ", ".join(sorted(set(DEVICE_KEYS) & set(BridgesConfig.names())))
        raise GatewayError(f"{bridge[:40]!r} is not a bridge that adopts devices ({adopting})")
    is_key, what = known
    if not is_key(device_id):
        raise GatewayError(f"{device_id[:80]!r} is not {what}")


def role_adopted(
    path: Path, bridge: str, device_id: str, role: str, graph_roles: Collection[str] = ()
) -> str:
    """The text of ``path`` with ``bridges.<bridge>.roles[device_id] = role``, checked; raises
    :class:`GatewayError` with one line saying why not (a bridge that adopts nothing, an id
    that bridge does not use, a role the config's rules refuse, a node of the graph, the role
    of another device of any bridge: their queues would clash)."""
    try:
        role = v.role(role)
    except v.InvalidValueError as exc:
        raise GatewayError(str(exc)) from None
    check_device(bridge, device_id)
    if role in graph_roles:
        raise GatewayError(f"role {role!r} is already a node of the graph")
    config = load_config(path)
    owner = _owner(config, role)
    if owner is not None:
        raise GatewayError(f"role {role!r} already belongs to {owner} in {path}")
    section = getattr(config.bridges, bridge)
    roles = dict(section.roles)
    roles[device_id] = role
    section = dataclasses.replace(section, roles=tuple(sorted(roles.items())))
    bridges = dataclasses.replace(config.bridges, **{bridge: section})
    text = dump_config(dataclasses.replace(config, bridges=bridges))
    parse_config(text, str(path), base_dir=path.absolute().parent)  # what is written loads back
    return text


def adopt(
    path: Path, bridge: str, device_id: str, role: str, graph_roles: Collection[str] = ()
) -> None:
    """Write ``bridges.<bridge>.roles[device_id] = role`` into the config file at ``path``
    (:func:`role_adopted`, then an atomic replace keeping the file's mode)."""
    text = role_adopted(path, bridge, device_id, role, graph_roles)
    write_atomic(path.resolve(), text, mode=None)


def _owner(config: GatewayConfig, role: str) -> str | None:
    """Who has ``role`` in the config already (``'ID' (bridges.ble.roles)``), or None."""
    for name in config.bridges.names():
        section = getattr(config.bridges, name)
        # A GPIO device's key is its role, and the health bridge's one device is the gateway.
        listed = {"gpio": "devices", "health": "role"}.get(name, "roles")
        for key, given in section.roles:
            if given == role:
                return f"{key!r} (bridges.{name}.{listed})"
    return None
