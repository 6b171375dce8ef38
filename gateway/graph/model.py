"""The graph model: which roles exist, what they run, and how their ports connect.

Pure, immutable values. A ``Graph`` is what both file formats (.fbp and FBP JSON) load into and
save from; nothing here reads files or knows a syntax. Process names are msgflo roles
(``msgflo/msgflo src/common.coffee`` uses the node name as the role), so they are kept verbatim,
including ``/`` and ``.`` which appear in deployed JSON graphs.

JSON-like values (metadata, IIP data, unknown properties) are stored deep-frozen: objects as
read-only mappings, arrays as tuples. ``thaw`` turns them back into plain ``dict``/``list``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias, cast

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
FrozenJson: TypeAlias = (
    bool | int | float | str | tuple["FrozenJson", ...] | Mapping[str, "FrozenJson"] | None
)
Metadata: TypeAlias = Mapping[str, FrozenJson]

_EMPTY: Metadata = MappingProxyType({})


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _no_metadata() -> Metadata:
    return _EMPTY


def freeze(value: object) -> FrozenJson:
    """Deep-freeze a JSON value (dicts become read-only mappings, lists tuples)."""
    if type(value) in _SCALARS:  # the common case first: most values are strings and numbers
        return cast(FrozenJson, value)
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"not a JSON value: {value!r}")


def thaw(value: FrozenJson) -> JsonValue:
    """The plain ``dict``/``list`` form of a frozen JSON value, ready for ``json.dumps``."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def freeze_metadata(value: Mapping[str, object] | None) -> Metadata:
    """Metadata as stored in the model: always a read-only mapping, empty if absent."""
    if not value:
        return _EMPTY
    return MappingProxyType({str(k): freeze(v) for k, v in value.items()})


def _frozen_meta(obj: Process | Edge | Initial | ExportedPort | Group) -> None:
    # Accept plain dicts from callers but store read-only copies, so a frozen dataclass really
    # is immutable. object.__setattr__ is the documented way to do this in __post_init__.
    # Most items have no metadata: the shared empty mapping is frozen already.
    if obj.metadata is not _EMPTY:
        object.__setattr__(obj, "metadata", freeze_metadata(obj.metadata))


@dataclass(frozen=True, slots=True)
class Process:
    """A node of the graph: one role and the component it instantiates."""

    component: str
    metadata: Metadata = field(default_factory=_no_metadata)

    def __post_init__(self) -> None:
        _frozen_meta(self)


@dataclass(frozen=True, slots=True)
class PortRef:
    """One end of a connection: a process, one of its ports, and an array-port index if any."""

    process: str
    port: str
    index: int | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """A connection from an outport to an inport."""

    src: PortRef
    tgt: PortRef
    metadata: Metadata = field(default_factory=_no_metadata)

    def __post_init__(self) -> None:
        _frozen_meta(self)


@dataclass(frozen=True, slots=True)
class Initial:
    """An initial information packet (IIP): constant ``data`` delivered to an inport.

    ``data`` may be any JSON value, including the falsy ``0``, ``False`` and ``""`` that the
    original coordinator mistook for edges (protocol.md 3.3): an IIP is an IIP by its type here.
    """

    data: FrozenJson
    tgt: PortRef
    metadata: Metadata = field(default_factory=_no_metadata)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", freeze(self.data))
        _frozen_meta(self)


Connection: TypeAlias = Edge | Initial


@dataclass(frozen=True, slots=True)
class ExportedPort:
    """A graph-level port (``INPORT=``/``OUTPORT=``) that forwards to a process's port."""

    process: str
    port: str
    metadata: Metadata = field(default_factory=_no_metadata)

    def __post_init__(self) -> None:
        _frozen_meta(self)


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of processes (a visual grouping in Flowhub; no effect on data flow)."""

    name: str
    nodes: tuple[str, ...] = ()
    metadata: Metadata = field(default_factory=_no_metadata)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        _frozen_meta(self)


@dataclass(frozen=True, slots=True)
class Properties:
    """Graph properties: ``name``, ``environment`` (``{"type": "msgflo"}``) and any others.

    ``extra`` keeps every other property exactly as loaded (in .fbp these are ``# @key value``
    annotations), so saving never drops what the file said.
    """

    name: str | None = None
    environment: Metadata = field(default_factory=_no_metadata)
    extra: Metadata = field(default_factory=_no_metadata)

    def __post_init__(self) -> None:
        object.__setattr__(self, "environment", freeze_metadata(self.environment))
        object.__setattr__(self, "extra", freeze_metadata(self.extra))
        # ``name`` and ``environment`` go in ``extra`` only when they are not a string / an
        # object (a .fbp ``# @environment x`` annotation); never in both places at once.
        if ("name" in self.extra and self.name is not None) or (
            "environment" in self.extra and self.environment
        ):
            raise ValueError("property given both as a field and in extra")

    @property
    def runtime(self) -> str | None:
        """The runtime type; old graphs say ``environment.runtime`` instead of ``.type``."""
        for key in ("type", "runtime"):
            value = self.environment.get(key)
            if isinstance(value, str):
                return value
        return None

    def is_empty(self) -> bool:
        return self.name is None and not self.environment and not self.extra


def _readonly(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Graph:
    """A whole graph. Mappings keep their insertion order; the savers sort where it matters.

    ``case_sensitive`` records whether port names were lower-cased on load (the .fbp parser's
    default, protocol.md 3.1) and is saved as the FBP JSON ``caseSensitive`` flag.
    """

    processes: Mapping[str, Process] = field(default_factory=dict)
    connections: tuple[Connection, ...] = ()
    inports: Mapping[str, ExportedPort] = field(default_factory=dict)
    outports: Mapping[str, ExportedPort] = field(default_factory=dict)
    groups: tuple[Group, ...] = ()
    properties: Properties = field(default_factory=Properties)
    case_sensitive: bool = False

    def __post_init__(self) -> None:
        for name in ("processes", "inports", "outports"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        object.__setattr__(self, "connections", tuple(self.connections))
        object.__setattr__(self, "groups", tuple(self.groups))

    @property
    def edges(self) -> tuple[Edge, ...]:
        return tuple(c for c in self.connections if isinstance(c, Edge))

    @property
    def initials(self) -> tuple[Initial, ...]:
        return tuple(c for c in self.connections if isinstance(c, Initial))
