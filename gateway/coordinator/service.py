"""The coordinator as a running service: graph, broker, started participants, foreign devices.

:class:`CoordinatorService` is what the ``msgflo`` command runs (``run.py`` runs it with the
runtime protocol server beside it). Given the graph and the component library, it starts the
participants the library knows (except ``--ignore``d roles), announces foreign participants
described in YAML (``--foreign DIR``), wires everything through
:class:`~gateway.coordinator.coordinator.Coordinator`, and keeps the graph file saved when
asked to. Nothing here waits for a participant: ``--wait-timeout`` only reports who is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.broker import BrokerUrl
from gateway.coordinator.coordinator import (
    Coordinator,
    CoordinatorOptions,
    RetainedPolicy,
)
from gateway.coordinator.library import ComponentLibrary, load_library, with_builtins
from gateway.coordinator.registry import Change, RegistryEvent
from gateway.coordinator.registry_file import encode_registry, read_registry, write_registry
from gateway.coordinator.supervisor import OutputFn, ProcessSpec, Supervisor, print_prefixed
from gateway.coordinator.wiring import GraphIndex, pseudo_roles
from gateway.errors import DefinitionError, GatewayError, InvalidGraphError
from gateway.graph import load_graph, save_graph
from gateway.graph.model import Graph, Process, thaw
from gateway.participant.definition import ParticipantDefinition
from gateway.participant.discovery import DISCOVERY_TOPIC, announce_interval, encode_discovery
from gateway.participant.foreign import load_foreign
from gateway.transport import Transport, open_transport

log = logging.getLogger(__name__)

AUTOSAVE_DELAY = 0.5  # seconds: a burst of changes is saved once
FOREIGN_PERIOD = 60.0


@dataclass(frozen=True)
class ServiceConfig:
    broker: BrokerUrl
    graph_path: Path | None = None
    library: ComponentLibrary = field(default_factory=ComponentLibrary)
    ignore: frozenset[str] = frozenset()
    foreign_dir: Path | None = None
    auto_save: bool = False
    wait_timeout: float = 45.0
    expiry: float = 600.0
    retained: RetainedPolicy = RetainedPolicy.SKIP
    # Where the discovered participants are kept across restarts (None: nowhere), and how long
    # the broker keeps the coordinator's MQTT session, with the QoS 1 and 2 data of its edges,
    # while it is away (0: a clean session each time). See registry_file.py.
    registry_path: Path | None = None
    session_expiry: int = 3600
    strict: bool = False  # see CoordinatorOptions.strict
    # The broker URL a started participant of a role gets (on the appliance: that role's own
    # broker user); None: ``broker`` for every one.
    participant_broker: Callable[[str], BrokerUrl] | None = None


def load_service_graph(path: Path | None, *, auto_save: bool = False) -> Graph:
    """The graph to run: ``path``, or with ``auto_save`` what auto-save last wrote for it when
    that is newer (see :func:`autosaved_path`)."""
    if path is None:
        return Graph()
    fallback = autosaved_path(path)
    if auto_save and fallback.exists() and fallback.stat().st_mtime >= path.stat().st_mtime:
        log.warning(
            "loading %s: auto-save wrote it because %s cannot hold the graph", fallback, path
        )
        return load_graph(fallback)
    return load_graph(path)


def autosaved_path(path: Path) -> Path:
    """Where auto-save writes the graph when the .fbp at ``path`` cannot express it (a role
    such as ``lab/button``, which .fbp names cannot hold): the same graph as FBP JSON, so that
    no edit is lost; it is loaded instead of ``path`` while it is the newer of the two."""
    return path.with_name(path.name + ".json")


def save_service_graph(graph: Graph, path: Path) -> str | None:
    """Save ``graph`` to ``path``, or to :func:`autosaved_path` when ``path`` is .fbp and
    cannot hold it; returns why it went there, or None when ``path`` took it. Raises
    ``GraphError`` when neither could be written."""
    fallback = autosaved_path(path)
    try:
        save_graph(graph, path, lossy=True)
    except InvalidGraphError as exc:
        save_graph(graph, fallback)
        return exc.problems[0].problem
    fallback.unlink(missing_ok=True)  # the .fbp holds everything again
    return None


def library_from_options(library: Path | None, componentdir: Path | None) -> ComponentLibrary:
    """The library file (``package.json`` when present, as the original) plus a component dir
    (``components``, else ``participants``: deployments use the former, the original
    defaulted to the latter)."""
    path = library or (Path("package.json") if Path("package.json").exists() else None)
    found = load_library(path) if path is not None else ComponentLibrary()
    directory = componentdir
    if directory is None:
        directory = next(
            (d for d in (Path("components"), Path("participants")) if d.is_dir()), None
        )
    found = found.with_component_dir(directory) if directory is not None else found
    return with_builtins(found)


def deployment_name(config: ServiceConfig, graph: Graph) -> str | None:
    """Who this coordinator is, across restarts: the graph's ``name`` property, else its
    file (name and a digest of the absolute path: two projects' ``main.fbp`` on one vhost
    are different deployments), else nobody (no record is kept)."""
    if graph.properties.name:
        return graph.properties.name
    if config.graph_path is None:
        return None
    where = hashlib.sha256(str(config.graph_path.resolve()).encode()).hexdigest()[:8]
    return f"{config.graph_path.stem}-{where}"


class CoordinatorService:
    """Everything the ``msgflo`` command runs, for one broker and one graph."""

    def __init__(self, config: ServiceConfig, graph: Graph) -> None:
        self.config = config
        deployment = deployment_name(config, graph)
        self.transport = coordinator_transport(config.broker, deployment, config.session_expiry)
        options = CoordinatorOptions(
            expiry=config.expiry,
            retained=config.retained,
            iip_hold=config.wait_timeout,
            deployment=deployment,
            strict=config.strict,
        )
        self.coordinator = Coordinator(self.transport, graph, options=options)
        self.coordinator.add_listener(self._on_participant)
        self._save_pending = asyncio.Event()
        self._fallback_reason: str | None = None  # why auto-save last wrote the JSON fallback
        self._new_nodes: dict[str, Process] = {}  # discovered roles becoming nodes this turn
        self._registry_changed = asyncio.Event()
        if config.registry_path is not None:
            self.coordinator.add_listener(lambda event: self._registry_changed.set())
        self.supervisor: Supervisor | None = None
        # Who else wants the started participants' output and exits (the runtime protocol).
        self.output_hooks: list[OutputFn] = []
        self.exit_hooks: list[OutputFn] = []
        # Who else wants to know when the service changes the graph by itself (a discovered
        # participant becoming a node), from what to what: the runtime protocol tells its
        # clients. Changes made through set_graph are the caller's own and not reported.
        self.graph_hooks: list[Callable[[Graph, Graph], None]] = []

    async def run(self) -> None:
        supervisor = Supervisor(output=self._output, on_exit=self._on_exit)
        if self.config.registry_path is not None:
            saved = await asyncio.to_thread(read_registry, self.config.registry_path)
            await self.coordinator.restore(saved)
            self._registry_changed.clear()  # nothing new to save yet
        async with self.transport, supervisor, asyncio.TaskGroup() as tasks:
            self.supervisor = supervisor
            tasks.create_task(self.coordinator.run())
            tasks.create_task(self._start_when_listening(supervisor))
            tasks.create_task(self._announce_foreign())
            tasks.create_task(self._report_missing())
            if self.config.auto_save and self.config.graph_path is not None:
                tasks.create_task(self._autosave(self.config.graph_path))
            if self.config.registry_path is not None:
                tasks.create_task(self._keep_registry(self.config.registry_path))

    # -- started participants ------------------------------------------------------------------

    async def set_graph(self, graph: Graph) -> None:
        """Change the running graph: rewire, start the participants of new nodes and stop
        those of removed ones (and restart a node whose component changed)."""
        old = self.coordinator.graph
        self.coordinator.set_graph(graph)
        self._save_pending.set()
        if self.supervisor is None:
            return
        for role in self.supervisor.roles():
            process = graph.processes.get(role)
            if process is None or process.component != old.processes[role].component:
                await self.supervisor.stop(role)
                self.coordinator.forget(role)
        self._start_participants(self.supervisor)

    async def _start_when_listening(self, supervisor: Supervisor) -> None:
        """Start the graph's participants once the coordinator hears their announcements. Not
        sooner: each is a program starting up, and on a small board at boot they would compete
        for the CPU with the coordinator's own start, which the runtime protocol's first
        client (the dashboard) waits for (docs/appliance.md, "Boot to ready")."""
        await self.coordinator.listening.wait()
        self._start_participants(supervisor)

    def _start_participants(self, supervisor: Supervisor) -> None:
        graph = self.coordinator.graph
        index = GraphIndex.of(graph)
        skip = set(supervisor.roles()) | self.config.ignore | pseudo_roles(graph)
        for role, process in graph.processes.items():
            if role in skip:
                continue
            argv = self.config.library.command(process.component, role, _iips_for(index, role))
            if argv is None:
                log.info(
                    "%s (%s): not in the component library; expecting it to announce itself",
                    role,
                    process.component,
                )
                continue
            broker = self.config.broker
            if self.config.participant_broker is not None:
                broker = self.config.participant_broker(role)
            env = {"MSGFLO_BROKER": broker.secret_url, "PATH": _tool_path()}
            supervisor.start(ProcessSpec(role, tuple(argv), env))

    def _output(self, role: str, line: str) -> None:
        print_prefixed(role, line)
        for hook in self.output_hooks:
            hook(role, line)

    def _on_exit(self, role: str, status: str) -> None:
        for hook in self.exit_hooks:
            hook(role, status)

    # -- foreign participants ------------------------------------------------------------------

    def foreign_definitions(self) -> list[ParticipantDefinition]:
        directory = self.config.foreign_dir
        if directory is None:
            return []
        found = []
        for role, process in self.coordinator.graph.processes.items():
            path = _foreign_file(directory, process.component)
            if path is None:
                continue
            try:
                found.append(load_foreign(path, role))
            except DefinitionError as exc:
                log.error("%s", exc)
        return found

    async def _announce_foreign(self) -> None:
        definitions = self.foreign_definitions()
        if not definitions:
            return
        messages = [encode_discovery(d) for d in definitions]
        await self.transport.wait_connected()
        while True:
            # Published like msgflo-register would, so other coordinators and tools see them
            # too; our own subscription gets them back from the broker like any other.
            for message in messages:
                self.transport.publish(DISCOVERY_TOPIC, message)
            await asyncio.sleep(announce_interval(FOREIGN_PERIOD))

    # -- reporting and saving ------------------------------------------------------------------

    async def _report_missing(self) -> None:
        await asyncio.sleep(self.config.wait_timeout)
        graph = self.coordinator.graph
        pseudo = pseudo_roles(graph)
        missing = [
            r for r in graph.processes if r not in pseudo and not self.coordinator.registry.known(r)
        ]
        if missing:
            log.warning(
                "after %.0f s, not discovered yet (wiring them when they appear): %s",
                self.config.wait_timeout,
                ", ".join(sorted(missing)),
            )

    def _on_participant(self, event: RegistryEvent) -> None:
        if event.change is not Change.ADDED:
            return
        seen = event.participant
        if seen.role in self.coordinator.graph.processes or seen.role in self._new_nodes:
            return
        # As the original: a discovered participant becomes a node, so tools can see it. A
        # burst of new roles is added in one graph change: one per role made a flood of
        # announcements cost quadratic time while real messages waited.
        if not self._new_nodes:
            asyncio.get_running_loop().call_soon(self._add_new_nodes)
        self._new_nodes[seen.role] = Process(seen.definition.component)

    def _add_new_nodes(self) -> None:
        graph = self.coordinator.graph
        added = {r: p for r, p in self._new_nodes.items() if r not in graph.processes}
        self._new_nodes.clear()
        if added:
            # Nothing to start or stop: the participants are already running somewhere.
            new = replace(graph, processes={**graph.processes, **added})
            self.coordinator.set_graph(new)
            self._save_pending.set()
            for hook in self.graph_hooks:
                hook(graph, new)

    async def _keep_registry(self, path: Path) -> None:
        while True:
            await self._registry_changed.wait()
            await asyncio.sleep(AUTOSAVE_DELAY)
            self._registry_changed.clear()
            data = encode_registry(self.coordinator.registry)
            try:
                await asyncio.to_thread(write_registry, path, data)
            except GatewayError as exc:
                log.error("registry not saved: %s", exc)

    async def _autosave(self, path: Path) -> None:
        while True:
            await self._save_pending.wait()
            await asyncio.sleep(AUTOSAVE_DELAY)
            self._save_pending.clear()
            try:
                # fsync can take a while on an SD card: keep it off the event loop.
                why = await asyncio.to_thread(save_service_graph, self.coordinator.graph, path)
            except GatewayError as exc:
                log.error("auto-save of %s failed: %s", path, exc)
                continue
            if why is not None and why != self._fallback_reason:
                log.warning(
                    "auto-save: %s cannot hold the graph (%s); saved it to %s, which is loaded "
                    "instead while it is newer",
                    path,
                    why,
                    autosaved_path(path),
                )
            self._fallback_reason = why


def coordinator_transport(url: BrokerUrl, deployment: str | None, session_expiry: int) -> Transport:
    """The coordinator's connection. On MQTT (where it forwards every edge's data) a
    deployment's coordinator resumes its session (same client id, the broker kept what arrived
    for its edges); one without a name gets a fresh id and a clean session, so two such
    coordinators on one broker do not throw each other off. On AMQP the broker routes and
    keeps the queues itself: the coordinator only publishes IIPs and packets.
    """
    if not url.is_mqtt:
        return open_transport(url, client_id="msgflo-coordinator")
    if deployment is None:
        client_id, session_expiry = f"msgflo-coordinator-{secrets.token_hex(4)}", 0
    else:
        client_id = f"msgflo-coordinator-{deployment}"
    return open_transport(url, client_id=client_id, session_expiry=session_expiry)


def _iips_for(index: GraphIndex, role: str) -> Mapping[str, object]:
    return {c.tgt.port: thaw(c.data) for c in index.initials_by_role.get(role, ())}


def _foreign_file(directory: Path, component: str) -> Path | None:
    for name in (component, component.rsplit("/", 1)[-1]):
        for suffix in (".yml", ".yaml"):
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def _tool_path() -> str:
    """PATH for started participants, with this installation's own tools (msgflo-python,
    msgflo-register) first, even when its virtualenv is not activated."""
    own = str(Path(sys.executable).parent)
    return os.pathsep.join([own, os.environ.get("PATH", os.defpath)])
