"""What the FBP runtime protocol needs from the live system, as one small interface.

The protocol core (``core.py``) speaks the protocol and keeps no sockets; the coordinator
implements :class:`Environment` to act on the real network (start and stop participants, bind
and unbind edges, send packets to exported ports). Tests drive the core with a fake environment.
Calls the environment makes back into the core are the ``Listener`` methods.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from gateway.graph.model import Edge, Graph, Initial
from gateway.participant.definition import Json


@dataclass(frozen=True)
class PortInfo:
    """A component port as ``component:component`` describes it."""

    id: str
    type: str = "any"
    description: str = ""
    required: bool = False
    addressable: bool = False
    schema: str | None = None


@dataclass(frozen=True)
class ComponentInfo:
    """A component the runtime can instantiate (library) or has seen (discovery)."""

    name: str
    description: str = ""
    icon: str = ""
    subgraph: bool = False
    inports: tuple[PortInfo, ...] = ()
    outports: tuple[PortInfo, ...] = ()


@dataclass(frozen=True)
class ComponentSource:
    """A component's source for ``component:source``."""

    name: str
    library: str
    language: str
    code: str
    tests: str = ""


@dataclass(frozen=True)
class RuntimeInfo:
    """Static facts for ``runtime:runtime``."""

    id: str
    type: str = "msgflo"
    version: str = "0.7"
    label: str = "msgflo-gateway"
    namespace: str = ""
    repository: str = ""
    extra: dict[str, Json] = field(default_factory=dict)
    """Further ``runtime:runtime`` fields; only ones the schema defines are sent
    (``repositoryVersion``), since the schema allows no others."""


class Listener(abc.ABC):
    """Events from the live system that the protocol reports to clients.

    The environment calls these on the event loop's thread; they only queue messages for the
    clients and return at once. ``ProtocolCore`` registers itself with ``set_listener`` when it
    is created.
    """

    @abc.abstractmethod
    def edge_data(self, edge: Edge, data: Json) -> None:
        """A message passed ``edge`` while edges are watched (``network:data``)."""

    @abc.abstractmethod
    def initial_data(self, initial: Initial) -> None:
        """An IIP was delivered (``network:data`` with id ``DATA -> IN node()``)."""

    @abc.abstractmethod
    def exported_output(self, public: str, data: Json) -> None:
        """A message on an exported outport (``runtime:packet``)."""

    @abc.abstractmethod
    def participant_output(self, role: str, line: str) -> None:
        """A line printed by a started participant (``network:output``)."""

    @abc.abstractmethod
    def participant_error(self, role: str, message: str) -> None:
        """A participant crashed or could not start (``network:error``)."""

    @abc.abstractmethod
    def graph_changed(self, old: Graph, new: Graph) -> None:
        """The live system changed the running graph from ``old`` to ``new`` by itself, not
        through :meth:`Environment.change_graph` (a discovered participant became a node):
        clients get the ``graph:*`` events an edit making that change would give."""

    @abc.abstractmethod
    def idle_changed(self, running: bool) -> None:
        """Work in flight started (``True``) or everything went quiet (``False``).

        ``network:status`` reports ``running`` as this while the network is started (and
        ``false`` otherwise); the fbp-protocol suite expects ``running: false`` right after the
        started network has passed its IIP along (protocol.md 8.2, test 19)."""


class Environment(abc.ABC):
    """The live system behind the protocol; implemented by the coordinator service."""

    @property
    @abc.abstractmethod
    def graph(self) -> Graph:
        """The running graph (the protocol's ``default/main``)."""

    @abc.abstractmethod
    async def change_graph(self, graph: Graph) -> None:
        """Make ``graph`` the running graph: start participants of new nodes, stop those of
        removed ones, rebind edges, send new IIPs. Returns when that is done; other protocol
        messages keep being served meanwhile. The core never calls it again before it returns.

        Raise a :class:`~gateway.errors.GatewayError` if the change failed: its message goes to
        the requester as ``graph:error``, and ``graph`` must then be what really runs."""

    @abc.abstractmethod
    def components(self) -> list[ComponentInfo]:
        """Components of the library and components of discovered participants."""

    @abc.abstractmethod
    def component_source(self, name: str) -> ComponentSource | None: ...

    @abc.abstractmethod
    def send_packet(self, role: str, port: str, data: Json) -> None:
        """Deliver ``data`` (JSON-encoded) to ``port`` of ``role``: ``runtime:packet`` on an
        exported inport."""

    @abc.abstractmethod
    async def start_network(self) -> None:
        """Start watching every edge (``Listener.edge_data``) and (re)send the IIPs.

        Data reported before this returns reaches clients after ``network:started``."""

    @abc.abstractmethod
    async def stop_network(self) -> None:
        """Stop watching edges. Participants keep running: they are devices."""

    @abc.abstractmethod
    def watch_edges(self, edges: list[Edge]) -> None:
        """``network:edges``: report data on these edges from now on, started or not.

        ``edges`` is the union of every client's selection (empty when nobody selects any);
        while the network is started every edge is reported anyway. The core sends each
        client only the data it asked for."""

    @abc.abstractmethod
    def set_listener(self, listener: Listener) -> None: ...
