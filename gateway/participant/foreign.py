"""Foreign participants: devices that do not speak msgflo, described in YAML (reference 5).

    component: garden/Sprinkler
    label: Legacy sprinkler controller
    icon: shower
    inports:
      valve: {queue: "garden/#ROLE/valve", type: number}
    outports:
      on: {queue: "garden/#ROLE/on", type: boolean}

The role comes from the command line and the id is the role unless the file gives one. Ports
may be a mapping (the key is the port id, as the original) or a list of port objects with
their own ``id`` (the original's list form lost the ids). YAML is read with YAML 1.2 scalars:
``on``/``off``/``yes``/``no`` stay strings, so the port ``on`` is not the boolean ``True``
as PyYAML's YAML 1.1 rules would make it, and ``0755`` is not an octal number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import DefinitionError
from gateway.participant.definition import Json, ParticipantDefinition, from_dict


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and integers."""


def _restrict_resolvers() -> None:
    resolvers = {
        key: [(tag, rx) for tag, rx in value if tag not in _REPLACED]
        for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Yaml12Loader.yaml_implicit_resolvers = resolvers
    Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
        list("-+0123456789"),
    )


_REPLACED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"}
_restrict_resolvers()


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0) if text.startswith("0x") else int(text, 10)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML 1.2 text; errors name ``source:line:column``."""
    try:
        return yaml.load(text, Loader=Yaml12Loader)  # safe: a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise DefinitionError("", f"{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DefinitionError("", f"{source}: {exc}") from None


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
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError("", f"{path}: cannot read: {exc.strerror}") from None
    return foreign_definition(load_yaml(text, str(path)), role, str(path))


def _port_list(ports: Json, key: str, source: str) -> list[Json]:
    """Map form ``{id: {queue...}}`` or list form ``[{id, queue...}]`` as a list of ports."""
    if ports is None:
        return []
    if isinstance(ports, Mapping):
        listed = []
        for port_id, port in ports.items():
            body = dict(port) if isinstance(port, Mapping) else {}
            if port is not None and not isinstance(port, Mapping):
                raise DefinitionError(f"{key}.{port_id}", f"{source}: expected a port mapping")
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
