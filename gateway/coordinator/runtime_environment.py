"""The live system behind the FBP runtime protocol: the coordinator service as an Environment.

Graph edits from Flowhub or fbp-spec become real: new nodes get their participants started
(and the reply waits, within a bound, until they announce themselves), removed nodes are
stopped, edges are bound. Edge inspection and exported outports are topic observers on the
coordinator, refreshed whenever a participant appears or the graph changes, so a watched edge
whose participant comes later starts reporting by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.common.yaml12 import dump_yaml
from gateway.coordinator.registry import RegistryEvent
from gateway.coordinator.service import CoordinatorService
from gateway.dashboard.api import Dashboard
from gateway.dashboard.settings import DashboardSettings
from gateway.errors import GatewayError
from gateway.graph.model import Edge, Graph, Initial
from gateway.participant.definition import Direction, Json, ParticipantDefinition, PortDefinition
from gateway.participant.payload import Message
from gateway.runtime_protocol.core import ProtocolCore
from gateway.runtime_protocol.environment import (
    ComponentInfo,
    ComponentSource,
    Environment,
    Listener,
    PortInfo,
    RuntimeInfo,
)
from gateway.runtime_protocol.limits import AuthLimits, AuthThrottle, ConnectionLimits
from gateway.runtime_protocol.server import RuntimeServer, ServerInfo

log = logging.getLogger(__name__)

DISCOVERY_WAIT = 10.0  # longest a graph change waits for the participants it started
RECHECK = 0.25  # seconds between looks for a participant that announced without an event
QUIET_AFTER = 0.2  # seconds without data between nodes after which the network is not running
LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".coffee": "coffeescript",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".json": "json",
    ".fbp": "fbp",
}


class CoordinatorEnvironment(Environment):
    """:class:`Environment` on a running :class:`CoordinatorService`."""

    def __init__(self, service: CoordinatorService, *, discovery_wait: float = DISCOVERY_WAIT):
        self.service = service
        self.coordinator = service.coordinator
        self._discovery_wait = discovery_wait
        self._listener: Listener | None = None
        self._watched: list[Edge] = []
        self._selected: list[Edge] = []  # network:edges selections of the clients (union)
        self._started = False
        self._watched_sources: set[str] = set()  # roles with a watched outgoing edge
        self._running = False
        self._quiet: asyncio.TimerHandle | None = None
        self._participant_seen = asyncio.Event()
        self.coordinator.add_listener(self._on_participant)
        self.coordinator.on_iip = self._on_iip
        service.output_hooks.append(self._on_output)
        service.exit_hooks.append(self._on_exit)
        service.graph_hooks.append(self._on_graph_changed)

    # -- graph ---------------------------------------------------------------------------------

    @property
    def graph(self) -> Graph:
        return self.coordinator.graph

    async def change_graph(self, graph: Graph) -> None:
        old = self.coordinator.graph
        # What the registry knew of each new node's role before its participant is started: a
        # participant of the same role that was stopped a moment ago (the node removed, or the
        # graph cleared, and added again, as fbp-spec does for every suite) stays "live" in the
        # registry until it expires, and must not count as the new one's announcement.
        registry = self.coordinator.registry
        before = {
            role: {seen.id: seen.last_seen for seen in registry.known(role)}
            for role in graph.processes
            if role not in old.processes
        }
        await self.service.set_graph(graph)
        self._rewatch()
        await self.coordinator.wired()
        started = {r: ids for r, ids in before.items() if self._startable(r)}
        await self._wait_discovered(started)

    def _startable(self, role: str) -> bool:
        process = self.coordinator.graph.processes[role]
        library = self.service.config.library
        return (
            role not in self.service.config.ignore
            and library.command(process.component, role) is not None
        )

    def _announced(self, role: str, before: dict[str, float]) -> bool:
        """Whether a participant of ``role`` announced itself since ``before`` was taken."""
        return any(
            seen.id not in before or seen.last_seen > before[seen.id]
            for seen in self.coordinator.registry.live(role)
        )

    async def _wait_discovered(self, roles: dict[str, dict[str, float]]) -> None:
        missing = list(roles)
        try:
            async with asyncio.timeout(self._discovery_wait):
                while missing := [r for r, ids in roles.items() if not self._announced(r, ids)]:
                    self._participant_seen.clear()
                    # A participant restarted under a fixed id is a heartbeat to the registry,
                    # not an event: look again now and then.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._participant_seen.wait(), RECHECK)
        except TimeoutError:
            log.warning("not discovered within %.0f s: %s", self._discovery_wait, missing)
        await self.coordinator.wired()

    # -- components ----------------------------------------------------------------------------

    def components(self) -> list[ComponentInfo]:
        found: dict[str, ComponentInfo] = {
            name: ComponentInfo(name=name) for name in self.service.config.library.components
        }
        for seen in self.coordinator.registry:
            info = _component_info(seen.definition)
            found[info.name] = info
        return [found[name] for name in sorted(found)]

    def component_source(self, name: str) -> ComponentSource | None:
        library, _, short = name.rpartition("/")
        path = self.service.config.library.source_file(name)
        if path is not None:
            language = LANGUAGES.get(path.suffix, path.suffix.lstrip("."))
            return ComponentSource(short, library, language, path.read_text(errors="replace"))
        for seen in self.coordinator.registry:
            if seen.definition.component == name:
                # A discovered participant's definition is its source (protocol.md 8.1).
                code = dump_yaml(seen.definition.to_discovery())
                return ComponentSource(short, library, "yaml", code)
        return None

    # -- data ----------------------------------------------------------------------------------

    def send_packet(self, role: str, port: str, data: Json) -> None:
        queue = self.coordinator.queue_of(role, port, Direction.IN)
        if queue is None:
            raise GatewayError(f"{role} {port}: not discovered yet, packet not sent")
        self.coordinator.publish(queue, json.dumps(data).encode("utf-8"), qos=1)

    async def start_network(self) -> None:
        # The IIP deliveries are reported first: data that an earlier delivery of the same IIP
        # set off may already be on its way and must not appear to come before them.
        for initial, _ in self.coordinator.sendable_iips():
            self._on_iip(initial)
        self._started = True
        self._rewatch()
        await self.coordinator.wired()
        self.coordinator.resend_iips(notify=False)

    async def stop_network(self) -> None:
        self._started = False
        self._rewatch()
        await self.coordinator.wired()

    def watch_edges(self, edges: list[Edge]) -> None:
        self._selected = list(edges)
        self._rewatch()

    def _rewatch(self) -> None:
        # Every edge while the network is started; otherwise what clients selected.
        if self._started:
            self._watched = [c for c in self.graph.connections if isinstance(c, Edge)]
        else:
            self._watched = list(self._selected)
        self._watched_sources = {e.src.process for e in self._watched}
        self._refresh_observers()

    def set_listener(self, listener: Listener) -> None:
        self._listener = listener

    def _refresh_observers(self) -> None:
        callbacks: dict[str, list[Callable[[Json], None]]] = defaultdict(list)
        for edge in self._watched:
            queue = self.coordinator.queue_of(edge.src.process, edge.src.port, Direction.OUT)
            if queue is not None:
                callbacks[queue].append(functools.partial(self._edge_data, edge))
        for public, exported in self.graph.outports.items():
            queue = self.coordinator.queue_of(exported.process, exported.port, Direction.OUT)
            if queue is not None:
                callbacks[queue].append(functools.partial(self._exported, public))
        self.coordinator.observe({q: _fan_out(cbs) for q, cbs in callbacks.items()})

    def _edge_data(self, edge: Edge, data: Json) -> None:
        # Data that reached a node with no outgoing edges has arrived: the network carries
        # nothing more from it. Data into any other node keeps the network "running".
        if edge.tgt.process in self._watched_sources:
            self._activity()
        if self._listener is not None:
            self._listener.edge_data(edge, data)

    def _exported(self, public: str, data: Json) -> None:
        if self._listener is not None:
            self._listener.exported_output(public, data)

    def _activity(self) -> None:
        # "running" in network:status means work in flight: data seen within QUIET_AFTER.
        if not self._running:
            self._running = True
            if self._listener is not None:
                self._listener.idle_changed(True)
        if self._quiet is not None:
            self._quiet.cancel()
        self._quiet = asyncio.get_running_loop().call_later(QUIET_AFTER, self._went_quiet)

    def _went_quiet(self) -> None:
        self._running = False
        if self._listener is not None:
            self._listener.idle_changed(False)

    # -- events --------------------------------------------------------------------------------

    def _on_participant(self, event: RegistryEvent) -> None:
        self._participant_seen.set()
        self._refresh_observers()

    def _on_graph_changed(self, old: Graph, new: Graph) -> None:
        self._rewatch()  # while started, every edge of the new graph is watched
        if self._listener is not None:
            self._listener.graph_changed(old, new)

    def _on_iip(self, initial: Initial) -> None:
        if self._listener is not None:
            self._listener.initial_data(initial)

    def _on_output(self, role: str, line: str) -> None:
        if self._listener is not None:
            self._listener.participant_output(role, line)

    def _on_exit(self, role: str, status: str) -> None:
        if self._listener is not None:
            self._listener.participant_error(role, status)


def _fan_out(callbacks: list[Callable[[Json], None]]) -> Callable[[bytes], None]:
    def deliver(payload: bytes) -> None:
        data = Message.from_bytes(payload).data
        if isinstance(data, bytes):  # not JSON: the protocol carries text
            data = data.decode("utf-8", errors="replace")
        for callback in callbacks:
            callback(data)

    return deliver


def _component_info(definition: ParticipantDefinition) -> ComponentInfo:
    return ComponentInfo(
        name=definition.component,
        description=definition.label,
        icon=definition.icon,
        inports=tuple(_port_info(p) for p in definition.inports if not p.hidden),
        outports=tuple(_port_info(p) for p in definition.outports if not p.hidden),
    )


def _port_info(port: PortDefinition) -> PortInfo:
    schema = port.extra.get("schema")
    return PortInfo(
        id=port.id,
        type=port.type,
        description=port.description,
        schema=schema if isinstance(schema, str) else None,
    )


@dataclass(frozen=True)
class RuntimeSettings:
    """Where and how the coordinator serves the FBP runtime protocol."""

    host: str = "127.0.0.1"
    port: int = 3569
    secret: str | None = None
    runtime_id: str = ""
    label: str = "msgflo-gateway"
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)  # connections, idle time
    auth_limits: AuthLimits = field(default_factory=AuthLimits)  # wrong secrets per address
    # The web dashboard served on the same port (docs/dashboard.md).
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    # Listening sockets bound by someone else, served like host:port: the appliance's port 80,
    # which systemd binds and hands over (services/systemd/msgflo-dashboard.socket).
    sockets: tuple[socket.socket, ...] = ()


class RuntimeProtocolService:
    """The protocol core and its server on a coordinator service; run it beside the service."""

    def __init__(self, service: CoordinatorService, settings: RuntimeSettings) -> None:
        runtime_id = settings.runtime_id or str(uuid.uuid4())
        self.environment = CoordinatorEnvironment(service)
        self.dashboard = Dashboard(self.environment, settings.dashboard)
        auth = AuthThrottle(settings.auth_limits)  # one back-off for protocol and HTTP guesses
        self.server = RuntimeServer(
            settings.host,
            settings.port,
            ServerInfo(runtime_id, settings.label),
            secret=settings.secret,
            limits=settings.limits,
            auth=auth,
            http=self.dashboard,
            sockets=settings.sockets,
        )
        info = RuntimeInfo(
            id=runtime_id, label=settings.label, namespace=service.config.library.namespace
        )
        self.core = ProtocolCore(
            self.environment,
            info,
            settings.secret,
            self.server.send,
            auth=auth,
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.core.run())
            tasks.create_task(self.server.serve(self.core))
