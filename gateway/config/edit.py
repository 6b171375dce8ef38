"""Changing ``gateway.yaml`` in place: adopting a serial board (``bridges.serial.roles``).

The one way it is done, by the dashboard off the appliance and by ``gateway-run adopt`` (root,
``msgflo-adopt.service``) on it: the file is loaded with the config loader, changed, written
with the dumper, checked to load back, and replaced atomically. The dumper writes every key
and no comments: a file written here loses the comments the shipped ``gateway.yaml`` has
(PyYAML, the project's YAML library, does not keep them). A symlink (the appliance's
``/etc/msgflo-gateway/gateway.yaml``) is followed: the file it points to is replaced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path

from gateway.common.atomic import write_atomic
from gateway.config import values as v
from gateway.config.dump import dump_config
from gateway.config.load import load_config, parse_config
from gateway.errors import GatewayError


def serial_role_adopted(
    path: Path, device_id: str, role: str, graph_roles: Collection[str] = ()
) -> str:
    """The text of ``path`` with ``bridges.serial.roles[device_id] = role``, checked; raises
    :class:`GatewayError` with one line saying why not (a role the config's rules refuse, not
    a serial number or link name, a node of the graph, another board's role)."""
    try:
        role = v.role(role)
    except v.InvalidValueError as exc:
        raise GatewayError(str(exc)) from None
    if not v.is_serial(device_id):
        raise GatewayError(f"{device_id[:80]!r} is not a serial number or link name")
    if role in graph_roles:
        raise GatewayError(f"role {role!r} is already a node of the graph")
    config = load_config(path)
    serial = config.bridges.serial
    roles = dict(serial.roles)
    owner = next((key for key, given in roles.items() if given == role), None)
    if owner is not None:
        raise GatewayError(f"role {role!r} already belongs to {owner!r} in {path}")
    roles[device_id] = role
    serial = dataclasses.replace(serial, roles=tuple(sorted(roles.items())))
    bridges = dataclasses.replace(config.bridges, serial=serial)
    text = dump_config(dataclasses.replace(config, bridges=bridges))
    parse_config(text, str(path), base_dir=path.absolute().parent)  # what is written loads back
    return text


def adopt_serial(path: Path, device_id: str, role: str, graph_roles: Collection[str] = ()) -> None:
    """Write ``bridges.serial.roles[device_id] = role`` into the config file at ``path``
    (:func:`serial_role_adopted`, then an atomic replace keeping the file's mode)."""
    text = serial_role_adopted(path, device_id, role, graph_roles)
    write_atomic(path.resolve(), text, mode=None)
