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
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from gateway.errors import DefinitionError
from gateway.participant.definition import Json, ParticipantDefinition, from_dict

MAX_YAML_DEPTH = 100  # levels of nested lists and mappings, aliases expanded
MAX_YAML_VALUES = 100_000  # values in a document once its aliases are expanded
MAX_YAML_BYTES = 1 << 20  # a hand-written description or config file is a few kilobytes


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and integers, and bounded documents.

    Aliases are allowed (``&anchor``/``*alias`` to share a port definition), but a document
    whose aliases would expand to more than ``MAX_YAML_VALUES`` values (a "billion laughs"),
    that refers to itself, or that nests deeper than ``MAX_YAML_DEPTH`` is refused with a
    ``ComposerError`` naming the line, before anything is built from it.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                problem = f"values are nested more than {MAX_YAML_DEPTH} levels deep"
                raise ComposerError(None, None, problem, mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            check_expansion(node)
        return node


def check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand too far: too many values, too deep, or a cycle.

    Sizes and depths are computed once per distinct node (aliases share nodes), without
    recursion, so the check costs as much as the document's text, not its expansion.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_YAML_VALUES:
                problem = f"aliases expand to more than {MAX_YAML_VALUES} values"
                raise ComposerError(None, None, problem, node.start_mark)
            if depth[key] > MAX_YAML_DEPTH:
                problem = f"aliases nest values more than {MAX_YAML_DEPTH} levels deep"
                raise ComposerError(None, None, problem, node.start_mark)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise ComposerError(None, None, "an alias refers to a value that contains it",
                                node.start_mark)  # fmt: skip
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


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
    try:
        if text.startswith("0o"):
            return int(text[2:], 8)
        return int(text, 0) if text.startswith("0x") else int(text, 10)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits())
        problem = f"an integer of {len(text)} characters is too long"
        raise ConstructorError(None, None, problem, node.start_mark) from None


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML 1.2 text; errors name ``source:line:column``."""
    try:
        return yaml.load(text, Loader=Yaml12Loader)  # safe: a SafeLoader subclass
    except RecursionError:  # not expected with the depth bound, but never a traceback
        raise DefinitionError("", f"{source}: values are nested too deeply to read") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise DefinitionError("", f"{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:  # a ReaderError (a control character) spans lines
        raise DefinitionError("", f"{source}: {' '.join(str(exc).split())}") from None


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
