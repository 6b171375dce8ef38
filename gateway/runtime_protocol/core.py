"""The FBP runtime protocol without sockets: frames in, reply dicts out, the live system behind
an :class:`~gateway.runtime_protocol.environment.Environment`.

The server gives each connection a client id, calls :meth:`ProtocolCore.connected`, feeds every
text frame to :meth:`ProtocolCore.handle` and calls :meth:`ProtocolCore.disconnected` at the end;
the core answers through ``send(target, message)``. It also runs :meth:`ProtocolCore.run`, the
change queue, for as long as it serves.

Ordering. Requests fall into two kinds:

* *Queries* (``runtime:getruntime``, ``network:getstatus``, ``network:edges``,
  ``component:list``/``getsource`` and every error) are answered inside ``handle`` from the
  state as applied so far; ``handle`` never waits for the live system, so the server can await
  it in its read loop and a slow change never holds up anybody's queries.
* *Commands* act on the live system (every ``graph:*``, ``network:start``/``stop``,
  ``runtime:packet``). ``handle`` only puts them on one FIFO queue, in arrival order across all
  clients; ``run`` takes them one at a time, checks them against the graph as it is *then*
  (``env.graph``, so a ``graph:addedge`` sent right after its ``graph:addnode`` finds the node),
  awaits ``env.change_graph`` and sends the replies when that returns. One queue, because
  there is one live graph: applying two changes at once could interleave their effects on the
  participants. The queue is bounded (``max_pending``); beyond it a command is refused with
  ``<protocol>:error``, so a flooding client cannot grow memory without limit.

Replies follow fbp-protocol 0.7/0.8: graph changes, ``network:started``/``stopped``,
``network:output``/``error`` and ``runtime:packet`` from exported outports go to every authorized
client; answers to queries, ``runtime:packetsent`` and errors go to the requester only. A graph
change the live system makes by itself (``Listener.graph_changed``: a discovered participant
becoming a node) goes to every authorized client too, as the ``graph:*`` events of the edits
that would have made it (``edits.diff``), so Flowhub and the dashboard follow it live.

Security (fbp-protocol 0.8): with a secret configured, every message must carry it (top-level
``secret`` or ``payload.secret``, compared in constant time). Without it only
``runtime:getruntime`` is answered, with ``capabilities: []`` and the real list in
``allCapabilities``; a client becomes *authorized* (receives broadcasts) with its first message
that carries the secret. The secret is never put in a reply or a log line.

Guessing is limited per address (:class:`~gateway.runtime_protocol.limits.AuthThrottle`, the
address given to :meth:`ProtocolCore.connected`): after 5 wrong secrets within 60 s, messages
from that address that carry a secret are refused for 60 s without it being compared (a client
already authorized keeps being served). The back-off is one warning line naming the address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

from gateway.errors import GatewayError, ProtocolError
from gateway.graph.json_format import to_json
from gateway.graph.model import Edge, Graph, Initial, JsonValue, Properties, thaw
from gateway.participant.definition import Json
from gateway.runtime_protocol import edits, replies
from gateway.runtime_protocol import requests as rq
from gateway.runtime_protocol.environment import Environment, Listener, RuntimeInfo
from gateway.runtime_protocol.ids import edge_id, initial_id
from gateway.runtime_protocol.limits import AuthThrottle
from gateway.runtime_protocol.messages import Frame, parse_frame, parse_request, shown
from gateway.runtime_protocol.replies import Message, message

_log = logging.getLogger(__name__)

ClientId: TypeAlias = str
MAIN_GRAPH: Final = "default/main"  # the main graph's component name (Flowhub live mode)
_HELD_LIMIT = 10_000  # network events kept back while network:start is in progress


class Broadcast:
    """The type of :data:`BROADCAST`."""

    def __repr__(self) -> str:
        return "BROADCAST"


BROADCAST: Final = Broadcast()
"""Target meaning *every connected client*; used only when no secret is configured."""

Target: TypeAlias = ClientId | Broadcast
Send: TypeAlias = Callable[[Target, Message], None]


@dataclass
class _Client:
    authorized: bool
    peer: str = ""  # the address it connected from, for the limits on guessing the secret
    authenticated: bool = False  # it sent a message that passed the secret check
    edges: frozenset[rq.EdgeKey] | None = None  # network:edges selection; None: all while started


@dataclass(frozen=True)
class _Job:
    client: ClientId
    protocol: str
    request: rq.Request


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ProtocolCore(Listener):
    """One runtime's protocol state: clients, the graph id, network flags, the change queue.

    ``send(target, message)`` must not block or raise: the server queues the message (bounded,
    per client) and returns. ``message`` is a JSON-ready dict that must not be modified; one
    event sent to several clients is the same dict object, so it can be encoded once.
    """

    def __init__(
        self,
        env: Environment,
        info: RuntimeInfo,
        secret: str | None,
        send: Send,
        *,
        graph_id: str = MAIN_GRAPH,
        clock: Callable[[], datetime] = _utc_now,
        max_pending: int = 1000,
        auth: AuthThrottle | None = None,
    ) -> None:
        self._env = env
        self._info = info
        self._secret = None if secret is None else secret.encode("utf-8", "surrogatepass")
        self._send = send
        self._graph_id = graph_id
        self._clock = clock
        self._auth = auth or AuthThrottle()
        self._clients: dict[ClientId, _Client] = {}
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue(max_pending)
        self._started_at: datetime | None = None  # set by network:start, cleared by stop
        self._busy = False  # work in flight, from Listener.idle_changed
        self._held: list[Callable[[], None]] | None = None
        self._dropped = 0
        # While a graph command is applied: the graph its events have told the clients of so
        # far, and whether the live system changed the graph by itself meanwhile.
        self._told: Graph | None = None
        self._changed_meanwhile = False
        env.set_listener(self)

    @property
    def graph_id(self) -> str:
        """The id of the graph being edited (``default/main`` until a ``graph:clear``)."""
        return self._graph_id

    # -- connections ------------------------------------------------------------------------------

    def connected(self, client_id: ClientId, peer: str = "") -> None:
        """A client connected from address ``peer``; without a secret configured it is
        authorized at once."""
        self._clients[client_id] = _Client(authorized=self._secret is None, peer=peer)

    def authenticated(self, client_id: ClientId) -> bool:
        """Whether ``client_id`` sent a message that passed the secret check (any valid message
        when there is no secret); the server closes connections that do not in time."""
        client = self._clients.get(client_id)
        return client is not None and client.authenticated

    def disconnected(self, client_id: ClientId) -> None:
        """A client left; its edge selection goes with it. Unknown ids are ignored."""
        client = self._clients.pop(client_id, None)
        if client is not None and client.edges:
            self._env.watch_edges(self._watched())

    async def handle(self, client_id: ClientId, text: str | bytes) -> None:
        """Serve one frame from ``client_id``. Never raises; never waits for the live system."""
        if client_id not in self._clients:
            self.connected(client_id)
        try:
            frame = parse_frame(text)
            if self._admit(client_id, frame):
                self._dispatch(client_id, frame.protocol, parse_request(frame))
        except ProtocolError as exc:
            _log.debug("client %s: %s", client_id, exc.message)
            self._to(client_id, replies.error(exc.protocol, exc.message))
        except Exception:
            _log.exception("client %s: request failed", client_id)
            self._to(client_id, replies.error("runtime", "internal error (see the runtime's log)"))

    async def run(self) -> None:
        """Apply queued commands one at a time, in arrival order, until cancelled."""
        while True:
            job = await self._jobs.get()
            try:
                await _COMMANDS[type(job.request)](self, job.client, job.request)
            except ProtocolError as exc:
                self._to(job.client, replies.error(exc.protocol, exc.message))
            except GatewayError as exc:
                self._to(job.client, replies.error(job.protocol, str(exc)))
            except Exception:
                _log.exception("client %s: %r failed", job.client, job.request)
                text = "internal error (see the runtime's log)"
                self._to(job.client, replies.error(job.protocol, text))

    # -- admission and dispatch -------------------------------------------------------------------

    def _secret_ok(self, offered: tuple[str, ...]) -> bool:
        expected = self._secret
        if expected is None:
            return True
        # Every offered value is compared, in constant time, so timing says nothing about it.
        matches = [
            hmac.compare_digest(s.encode("utf-8", "surrogatepass"), expected) for s in offered
        ]
        return any(matches)

    def _admit(self, client_id: ClientId, frame: Frame) -> bool:
        """Whether ``frame`` may be served; answers an unauthorized ``getruntime`` itself."""
        client = self._clients[client_id]
        attempt = self._secret is not None and bool(frame.secrets)
        wait = self._auth.blocked(client.peer) if attempt and not client.authorized else 0.0
        if wait:
            problem = f"too many wrong secrets from your address; try again in {math.ceil(wait)} s"
        elif self._secret_ok(frame.secrets):
            client.authorized = client.authenticated = True
            if attempt:
                self._auth.succeeded(client.peer)
            return True
        else:
            problem = "invalid secret" if frame.secrets else "secret required"
            if attempt and self._auth.failed(client.peer):
                limits = self._auth.limits
                _log.warning(
                    "runtime protocol: %d wrong secrets from %s within %g s (client %s); "
                    "refusing its attempts for %g s",
                    limits.max_failures,
                    client.peer or "an unknown address",
                    limits.window,
                    client_id,
                    limits.backoff,
                )
        if (frame.protocol, frame.command) == ("runtime", "getruntime"):
            payload = replies.runtime(self._info, self._graph_id, authorized=False)
            self._to(client_id, message("runtime", "runtime", payload))
            return False
        raise ProtocolError(frame.protocol, f"{frame.protocol}:{frame.command[:40]}: {problem}")

    def _dispatch(self, client_id: ClientId, protocol: str, request: rq.Request) -> None:
        query = _QUERIES.get(type(request))
        if query is not None:
            query(self, client_id, request)
            return
        try:
            self._jobs.put_nowait(_Job(client_id, protocol, request))
        except asyncio.QueueFull:
            raise ProtocolError(protocol, "busy: too many changes pending") from None

    def _check_graph(self, protocol: str, graph: str) -> None:
        # The exact message of the fbp-protocol test suite (protocol.md 8.2, test 13).
        if graph != self._graph_id:
            raise ProtocolError(protocol, "Requested graph not found")

    # -- sending ----------------------------------------------------------------------------------

    def _to(self, client_id: ClientId, msg: Message) -> None:
        if client_id in self._clients:
            self._send(client_id, msg)

    def _fanout(self, targets: list[ClientId], msg: Message) -> None:
        if self._secret is None and len(targets) == len(self._clients):
            if targets:
                self._send(BROADCAST, msg)
            return
        for client_id in targets:
            self._send(client_id, msg)

    def _broadcast(self, msg: Message) -> None:
        self._fanout([cid for cid, c in self._clients.items() if c.authorized], msg)

    def _ports(self, graph: Graph) -> Message:
        payload = replies.ports(graph, self._graph_id, self._env.components())
        return message("runtime", "ports", payload)

    def _ports_changed(self, old: Graph, new: Graph) -> None:
        if (old.inports, old.outports) != (new.inports, new.outports):
            self._broadcast(self._ports(new))

    def _network(self, command: str, payload: replies.Payload) -> Message:
        return message("network", command, {**payload, "graph": self._graph_id})

    def _status(self) -> replies.Payload:
        started = self._started_at is not None
        # "running" is work in flight of the started network (protocol.md 8.2, note on test 19).
        return {"running": started and self._busy, "started": started}

    # -- queries (answered at once) ---------------------------------------------------------------

    def _get_runtime(self, client_id: ClientId, _: rq.GetRuntime) -> None:
        payload = replies.runtime(self._info, self._graph_id, authorized=True)
        self._to(client_id, message("runtime", "runtime", payload))
        # fbp-protocol: a runtime that runs a graph follows up with its ports.
        self._to(client_id, self._ports(self._env.graph))

    def _get_status(self, client_id: ClientId, r: rq.GetStatus) -> None:
        self._check_graph("network", r.graph)
        self._to(client_id, self._network("status", self._status()))

    def _watched(self) -> list[Edge]:
        keys = dict.fromkeys(k for c in self._clients.values() for k in c.edges or ())
        return [Edge(src, tgt) for src, tgt in keys]

    def _watch_edges(self, client_id: ClientId, r: rq.WatchEdges) -> None:
        self._check_graph("network", r.graph)
        self._clients[client_id].edges = frozenset(r.edges)
        self._env.watch_edges(self._watched())
        edges: list[JsonValue] = [
            {"src": replies.port(s), "tgt": replies.port(t)} for s, t in r.edges
        ]
        self._to(client_id, self._network("edges", {"edges": edges}))

    def _list_components(self, client_id: ClientId, _: rq.ListComponents) -> None:
        components = self._env.components()
        for info in components:
            self._to(client_id, message("component", "component", replies.component(info)))
        self._to(client_id, message("component", "componentsready", len(components)))

    def _get_source(self, client_id: ClientId, r: rq.GetSource) -> None:
        if r.name in (MAIN_GRAPH, self._graph_id):
            library, _, name = r.name.rpartition("/")
            payload: replies.Payload = {"name": name, "language": "json"}
            if library:
                payload["library"] = library
            payload["code"] = to_json(self._env.graph)
        else:
            source = self._env.component_source(r.name)
            if source is None:
                raise ProtocolError("component", f"component {shown(r.name)} not found")
            payload = replies.source(source)
        self._to(client_id, message("component", "source", payload))

    def _unsupported(self, client_id: ClientId, r: rq.Unsupported) -> None:
        raise ProtocolError(r.protocol, f"{r.protocol}:{r.command} is not supported: {r.reason}")

    # -- commands (applied in order by run) -------------------------------------------------------

    @contextlib.contextmanager
    def _graph_command(self, old: Graph) -> Iterator[None]:
        """Around a command that changes the graph from ``old``. The live system may change
        the graph by itself meanwhile (``graph_changed``, e.g. a participant announced while
        the command waits for the one it started): that is reported after the command's own
        events, as the difference from the graph they told of, so that every event applies
        to the graph its clients know."""
        self._told, self._changed_meanwhile = old, False
        try:
            yield
        finally:
            told, self._told = self._told, None
            if self._changed_meanwhile:
                self._report_change(told, self._env.graph)

    def _graph_events(self, events: tuple[edits.Event, ...]) -> None:
        for command, payload in events:
            self._broadcast(message("graph", command, {**payload, "graph": self._graph_id}))

    async def _edit(self, client_id: ClientId, request: rq.GraphEdit) -> None:
        self._check_graph("graph", request.graph)
        old = self._env.graph
        edit = edits.apply(request, old)
        with self._graph_command(old):
            await self._env.change_graph(edit.graph)
            self._graph_events(edit.events)
            self._ports_changed(old, edit.graph)
            self._told = edit.graph

    async def _clear(self, client_id: ClientId, r: rq.ClearGraph) -> None:
        old = self._env.graph
        props = Properties(name=r.name or r.id, environment=old.properties.environment)
        new = Graph(properties=props, case_sensitive=old.case_sensitive)
        with self._graph_command(old):
            await self._env.change_graph(new)
            renamed, self._graph_id = r.id != self._graph_id, r.id
            self._broadcast(message("graph", "clear", replies.clear(r)))
            if renamed or old.inports or old.outports:
                self._broadcast(self._ports(new))
            self._told = new

    async def _start(self, client_id: ClientId, r: rq.StartNetwork) -> None:
        self._check_graph("network", r.graph)
        # Data reported while the network starts (the IIPs it sends) follows network:started,
        # as the fbp-protocol test suite expects (protocol.md 8.2, test 18).
        self._held = []
        try:
            await self._env.start_network()
            self._started_at = self._clock()
            timed = {"time": replies.iso_time(self._started_at), **self._status()}
            self._broadcast(self._network("started", timed))
        finally:
            held, self._held = self._held, None
            for emit in held:
                emit()

    async def _stop(self, client_id: ClientId, r: rq.StopNetwork) -> None:
        self._check_graph("network", r.graph)
        await self._env.stop_network()
        now, started_at, self._started_at = self._clock(), self._started_at, None
        payload: replies.Payload = {"time": replies.iso_time(now), **self._status()}
        if started_at is not None:
            payload["uptime"] = max((now - started_at).total_seconds(), 0.0)
        self._broadcast(self._network("stopped", payload))

    async def _packet(self, client_id: ClientId, r: rq.SendPacket) -> None:
        self._check_graph("runtime", r.graph)
        exported = self._env.graph.inports.get(r.port)
        if exported is None:
            raise ProtocolError("runtime", f"no exported inport {shown(r.port)}")
        payload: replies.Payload = {"port": r.port, "event": r.event, "graph": self._graph_id}
        if r.event == "data":  # MQTT has no brackets or connections: only data is sent
            self._env.send_packet(exported.process, exported.port, thaw(r.data))
            payload["payload"] = thaw(r.data)
        self._to(client_id, message("runtime", "packetsent", payload))

    # -- Listener: events from the live system ----------------------------------------------------

    def _hold(self, event: Callable[[], None]) -> None:
        """Keep ``event`` for after ``network:started`` (a start is in progress)."""
        assert self._held is not None
        if len(self._held) < _HELD_LIMIT:
            self._held.append(event)
        else:
            self._dropped += 1
            _log.warning("network data dropped while starting (%d so far)", self._dropped)

    def _watchers(self, key: rq.EdgeKey | None) -> list[ClientId]:
        """Clients that get data of edge ``key`` (None: an IIP delivery)."""
        started = self._started_at is not None
        return [
            cid
            for cid, c in self._clients.items()
            if c.authorized
            and ((c.edges is None and started) or (c.edges is not None and key in c.edges))
        ]

    def edge_data(self, edge: Edge, data: Json) -> None:
        if self._held is not None:
            self._hold(lambda: self.edge_data(edge, data))
            return
        targets = self._watchers((edge.src, edge.tgt))
        if targets:  # most messages pass unwatched: build nothing for them
            payload = {
                "id": edge_id(edge.src, edge.tgt),
                "src": replies.port(edge.src),
                "tgt": replies.port(edge.tgt),
                "data": data,
            }
            self._fanout(targets, self._network("data", payload))

    def initial_data(self, initial: Initial) -> None:
        if self._held is not None:
            self._hold(lambda: self.initial_data(initial))
            return
        targets = self._watchers(None)
        if targets:
            payload = {
                "id": initial_id(initial.tgt),
                "tgt": replies.port(initial.tgt),
                "data": thaw(initial.data),
            }
            self._fanout(targets, self._network("data", payload))

    def exported_output(self, public: str, data: Json) -> None:
        payload = {"port": public, "event": "data", "payload": data, "graph": self._graph_id}
        self._broadcast(message("runtime", "packet", payload))

    def participant_output(self, role: str, line: str) -> None:
        payload: replies.Payload = {"message": f"{role}: {line}", "type": "message"}
        self._broadcast(message("network", "output", payload))

    def participant_error(self, role: str, message: str) -> None:
        self._broadcast(self._network("error", {"message": f"{role}: {message}"}))

    def graph_changed(self, old: Graph, new: Graph) -> None:
        if self._told is not None:
            self._changed_meanwhile = True  # reported when the command in flight is done
            return
        self._report_change(old, new)

    def _report_change(self, old: Graph, new: Graph) -> None:
        self._graph_events(edits.diff(old, new).events)
        self._ports_changed(old, new)

    def idle_changed(self, running: bool) -> None:
        self._busy = running


_Query: TypeAlias = Callable[[ProtocolCore, ClientId, Any], None]
_Command: TypeAlias = Callable[[ProtocolCore, ClientId, Any], Any]

_QUERIES: dict[type, _Query] = {
    rq.GetRuntime: ProtocolCore._get_runtime,
    rq.GetStatus: ProtocolCore._get_status,
    rq.WatchEdges: ProtocolCore._watch_edges,
    rq.ListComponents: ProtocolCore._list_components,
    rq.GetSource: ProtocolCore._get_source,
    rq.Unsupported: ProtocolCore._unsupported,
}

_COMMANDS: dict[type, _Command] = {
    **dict.fromkeys(edits.EDIT_TYPES, ProtocolCore._edit),
    rq.ClearGraph: ProtocolCore._clear,
    rq.StartNetwork: ProtocolCore._start,
    rq.StopNetwork: ProtocolCore._stop,
    rq.SendPacket: ProtocolCore._packet,
}
