"""Foreign participants: devices that do not speak msgflo, described in YAML (protocol.md 5).

    component: garden/Sprinkler
    label: Legacy sprinkler controller
    icon: shower
    inports:
      valve: {queue: "garden/#ROLE/valve", type: number}
    outports:
      on: {queue: "garden/#ROLE/on", type: boolean}

The role comes from the command line and the id is the role unless the file gives one. Ports
may be a mapping (the key is the port id, as the original) or a list of port objects with
their own ``id`` (the original's list form lost the ids). YAML is read with YAML 1.2 scalars
(``gateway/common/yaml12.py``): the port ``on`` stays the string ``"on"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gateway.common.yaml12 import MAX_YAML_BYTES, load_yaml
from gateway.errors import DefinitionError, YamlError
from gateway.participant.definition import Json, ParticipantDefinition, from_dict


def foreign_definition(spec: Json, role: str, source: str = "<yaml>") -> ParticipantDefinition:
    """The definition announced for ``role`` from a parsed foreign-participant description."""
    if not isinstance(spec, Mapping):
        raise DefinitionError("", f"{source}: expected a mapping at the top level")
    normalized: dict[str, Json] = {k: v for k, v in spec.items() if isinstance(k, str)}
    normalized.setdefault("id", role)
    for key in ("inports", "outports"):
        normalized[key] = _port_list(spec.get(key), key, source)
    try:
        return from_dict(normalized, role)
    except DefinitionError as exc:
        raise DefinitionError(exc.path, f"{source}: {exc.problem}") from None


def load_foreign(path: Path, role: str) -> ParticipantDefinition:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DefinitionError("", f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_YAML_BYTES:
        raise DefinitionError("", f"{path}: {len(data)} bytes is larger than {MAX_YAML_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DefinitionError("", f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None
    try:
        spec = load_yaml(text, str(path))
    except YamlError as exc:
        raise DefinitionError("", str(exc)) from None
    return foreign_definition(spec, role, str(path))


def _port_list(ports: Json, key: str, source: str) -> list[Json]:
    """Map form ``{id: {queue...}}`` or list form ``[{id, queue...}]`` as a list of ports."""
    if ports is None:
        return []
    if isinstance(ports, Mapping):
        listed = []
        for port_id, port in ports.items():
            body = dict(port) if isinstance(port, Mapping) else {}
            if port is not None and not isinstance(port, Mapping):
                name = port_id if str(port_id).isprintable() else repr(port_id)  # one line
                raise DefinitionError(f"{key}.{name}", f"{source}: expected a port mapping")
            # Keys are strings here (YAML 1.2), but a number such as 1 is a valid YAML key.
            listed.append(_stringly({**body, "id": port_id}))
        return listed
    if isinstance(ports, list):
        return [_listed_port(p) for p in ports]
    raise DefinitionError(key, f"{source}: expected a mapping or a list of ports")


def _listed_port(port: Json) -> Json:
    return _stringly(dict(port)) if isinstance(port, Mapping) else port


def _stringly(port: dict[str, Json]) -> dict[str, Json]:
    """Port ids and queues are names: a YAML number (``queue: 1234``) means the text."""
    for key in ("id", "queue"):
        value = port.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            port[key] = str(value)
    return port
