"""The dashboard's server side: its private HTTP API and its page, on the runtime's port.

:class:`Dashboard` is what :class:`~gateway.runtime_protocol.server.RuntimeServer` takes as
``http``: ``setup`` adds the routes of docs/dashboard.md to the server's aiohttp application.
Everything under ``/api/`` needs the runtime's secret (``authorized``); the page itself does
not, since it has to load to ask for the secret.

While the server runs (the application's cleanup context), participant output and the
``gateway`` logger's warnings are fed into the log buffer; before and after, nothing is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.dashboard.devices import Attached, SeenDevices
from gateway.dashboard.health import HealthView
from gateway.dashboard.log import LOG_LINES, LogBuffer, warnings_into
from gateway.dashboard.settings import DashboardSettings
from gateway.dashboard.static import SECURITY_HEADERS, StaticFiles
from gateway.dashboard.status import participants
from gateway.errors import GatewayError
from gateway.health.sample import HealthSources
from gateway.participant.definition import Direction

if TYPE_CHECKING:
    from gateway.coordinator.runtime_environment import CoordinatorEnvironment

log = logging.getLogger(__name__)

NO_BOARDS = "boards with their own broker user are added on the gateway (gateway-run coordinator)"
PREFIX_BYTES = 4  # "web-" and 8 hex digits: a page's own namespace for its virtual devices

Authorized = Callable[[web.Request], bool]


class ApiError(Exception):
    """An answer other than 200, as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Dashboard:
    """The dashboard on a running coordinator environment (see the module docstring)."""

    def __init__(
        self,
        environment: CoordinatorEnvironment,
        settings: DashboardSettings | None = None,
        *,
        devices: Sequence[SeenDevices] = (),
        log_lines: int = LOG_LINES,
    ) -> None:
        self.environment = environment
        self.settings = settings or DashboardSettings()
        self.devices = [*self.settings.devices, *devices]
        self.log = LogBuffer(log_lines)
        self.health = HealthView(
            HealthSources(
                data_path=self.settings.data_path, hostapd_ctrl=self.settings.hostapd_ctrl
            )
        )
        self.static = StaticFiles(self.settings.static_dir)
        self._authorized: Authorized = lambda request: False

    def setup(self, app: web.Application, authorized: Authorized) -> None:
        self._authorized = authorized
        app.router.add_get("/api/status", self._api(self.status))
        app.router.add_get("/api/log", self._api(self.lines))
        app.router.add_post("/api/send", self._api(self.send))
        app.router.add_get("/api/mqtt", self._api(self.mqtt))
        app.router.add_post("/api/devices/adopt", self._api(self.adopt))
        app.router.add_get("/api/boards", self._api(self.boards))
        app.router.add_get("/api/boards/secrets", self._api(self.board_secrets))
        for action in ("add", "remove", "show"):
            app.router.add_post(f"/api/boards/{action}", self._api(self._board(action)))
        app.router.add_get("/", self.static.index)
        app.router.add_get("/static/{path:.+}", self.static.asset)
        app.cleanup_ctx.append(self._running)

    async def _running(self, app: web.Application) -> AsyncIterator[None]:
        hooks = self.environment.service.output_hooks
        hooks.append(self._output)
        await self.health.attach(self.environment)
        for source in self.devices:
            if isinstance(source, Attached):
                await source.attach(self.environment)
        try:
            with warnings_into(self.log):
                yield
        finally:
            hooks.remove(self._output)

    def _output(self, role: str, line: str) -> None:
        self.log.add(role, line)

    def _api(self, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def answer(request: web.Request) -> web.Response:
            try:
                if not self._authorized(request):
                    raise ApiError(401, "dashboard: missing or wrong secret")
                result = await handler(request)
            except ApiError as exc:
                return _json({"error": exc.message}, exc.status)
            return _json(result)

        return answer

    # -- the API ---------------------------------------------------------------------------------

    async def status(self, request: web.Request) -> dict[str, Any]:
        coordinator = self.environment.coordinator
        epoch = time.time()
        found = participants(coordinator.graph, coordinator.registry, coordinator.now(), epoch)
        return {
            "time": epoch,
            "participants": found,
            "health": await self.health.read(),
            "devices": [d.to_json() for source in self.devices for d in source.seen()],
        }

    async def lines(self, request: web.Request) -> dict[str, Any]:
        raw = request.query.get("after", "0")
        try:
            after = int(raw)
        except ValueError:
            raise ApiError(400, f"dashboard: log: after={raw!r} is not a number") from None
        return {"lines": [line.to_json() for line in self.log.after(after)]}

    async def send(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request, "send")
        role, port = _text(body, "role", "send"), _text(body, "port", "send")
        if "data" not in body:
            raise ApiError(400, "dashboard: send: no data")
        coordinator = self.environment.coordinator
        if not coordinator.registry.known(role):
            raise ApiError(400, f"dashboard: send: no participant {role!r} is known")
        if coordinator.queue_of(role, port, Direction.IN) is None:
            raise ApiError(400, f"dashboard: send: {role} has no inport {port!r}")
        try:
            self.environment.send_packet(role, port, body["data"])
        except GatewayError as exc:
            raise ApiError(400, f"dashboard: send: {exc}") from None
        return {"ok": True}

    async def mqtt(self, request: web.Request) -> dict[str, Any]:
        web_mqtt = self.settings.web_mqtt
        if web_mqtt is None:
            raise ApiError(404, "dashboard: the broker has no MQTT over WebSockets listener")
        return {
            "url": web_mqtt.url,
            "username": web_mqtt.username,
            "password": web_mqtt.password,
            "prefix": "web-" + secrets.token_hex(PREFIX_BYTES),
        }

    async def adopt(self, request: web.Request) -> dict[str, Any]:
        body = await _body(request, "adopt")
        bridge = _text(body, "bridge", "adopt")
        device_id = _text(body, "id", "adopt")
        role = _text(body, "role", "adopt")
        for source in self.devices:
            if any(d.bridge == bridge and d.id == device_id for d in source.seen()):
                try:
                    await source.adopt(bridge, device_id, role)
                except GatewayError as exc:
                    raise ApiError(400, f"dashboard: adopt: {exc}") from None
                return {"ok": True}
        raise ApiError(400, f"dashboard: adopt: no bridge lists device {device_id}")

    async def boards(self, request: web.Request) -> dict[str, Any]:
        boards = self.settings.boards
        if boards is None:
            return {"available": False, "problem": NO_BOARDS, "boards": []}
        coordinator = self.environment.coordinator
        listing = await asyncio.to_thread(
            boards.listing, coordinator.registry, coordinator.now(), time.time()
        )
        return {"time": time.time(), **listing}

    async def board_secrets(self, request: web.Request) -> dict[str, Any]:
        role = request.query.get("role", "")
        text = None if self.settings.boards is None else self.settings.boards.secrets_h(role)
        if not role or text is None:
            raise ApiError(404, f"dashboard: boards: no secrets.h for {role[:80]!r} (yet)")
        return {"role": role, "filename": "secrets.h", "text": text}

    def _board(self, action: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> dict[str, Any]:
            what = f"boards: {action}"
            boards = self.settings.boards
            if boards is None:
                raise ApiError(404, f"dashboard: {what}: {NO_BOARDS}")
            role = _text(await _body(request, what), "role", what)
            try:
                await getattr(boards, action)(role)
            except GatewayError as exc:
                raise ApiError(400, f"dashboard: {what}: {exc}") from None
            return {"ok": True, "pending": boards.by_request}

        return handle


async def _body(request: web.Request, what: str) -> dict[str, Any]:
    text = await request.text()
    try:
        body = json.loads(text)
    except ValueError:
        raise ApiError(400, f"dashboard: {what}: the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"dashboard: {what}: the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"dashboard: {what}: {key!r} must be a non-empty string")
    return value


def _json(data: Any, status: int = 200) -> web.Response:
    # Answers depend on the moment and may hold credentials: never cached.
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    response = web.json_response(data, status=status, headers=headers)
    # The page polls /api/status over the kit's WiFi: with 200 participants it is 96 KB of
    # JSON, a tenth of that compressed (when the client accepts it).
    response.enable_compression()
    return response
