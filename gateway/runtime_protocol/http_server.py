"""aiohttp's HTTP server as the runtime protocol server (:mod:`~gateway.runtime_protocol.server`)
needs it.

* :class:`Runner`: an ``AppRunner`` whose connection manager tells a :class:`ConnectionWatcher`
  when each connection starts and ends. aiohttp's hooks are per request; the server's limits
  count connections, and its idle timeout runs from the accept, before any request arrives. A
  connection is known by its aiohttp ``RequestHandler`` (``request.protocol`` in a handler).
* :class:`AccessLog`: one DEBUG line per plain HTTP request with the method, the path (never the
  query) and the status; never a header, since ``Authorization`` carries the secret. WebSocket
  sessions are left out: the server logs its protocol clients itself.
* :class:`ErrorLog`: aiohttp's server logger. A malformed request (a port scan, a client speaking
  something else) costs a throttled INFO line naming the address and the kind of error, without
  its traceback or text (a request line or a header could hold the secret); errors in our own
  handlers pass through with their traceback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http import HttpProcessingError

from gateway.runtime_protocol.limits import ThrottledLog

__all__ = ["AccessLog", "ConnectionWatcher", "ErrorLog", "Runner"]


class ConnectionWatcher(Protocol):
    def opened(self, handler: object, transport: asyncio.Transport) -> None:
        """A connection was accepted; ``handler`` is its ``request.protocol``."""
        ...

    def closed(self, handler: object) -> None: ...


class _Server(web.Server):
    """aiohttp's connection manager, also reporting to ``watcher``."""

    def __init__(self, built: web.Server, watcher: ConnectionWatcher, options: Any) -> None:
        super().__init__(
            built.request_handler,
            request_factory=built.request_factory,
            handler_cancellation=built.handler_cancellation,
            **options,
        )
        self._watcher = watcher

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._watcher.opened(handler, transport)

    def connection_lost(self, handler: Any, exc: BaseException | None = None) -> None:
        self._watcher.closed(handler)
        super().connection_lost(handler, exc)


class Runner(web.AppRunner):
    """Runs ``app`` with the request handler ``options`` (``keepalive_timeout``, ``logger``,
    ``access_log``...), telling ``watcher`` about every connection."""

    def __init__(
        self,
        app: web.Application,
        watcher: ConnectionWatcher,
        *,
        shutdown_timeout: float,
        **options: Any,
    ) -> None:
        # Never aiohttp's debug mode: it puts tracebacks in error pages sent to clients.
        self._options = {**options, "debug": False}
        super().__init__(app, shutdown_timeout=shutdown_timeout, **options)
        self._watcher = watcher

    async def _make_server(self) -> web.Server:
        # The application's own server (startup signals run, routes frozen), rebuilt as one that
        # reports its connections: web.Server has no other way in.
        built = await super()._make_server()
        return _Server(built, self._watcher, self._options)


class AccessLog(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if response.status == 101:  # a WebSocket session, logged by the server as a client
            return
        self.logger.debug(
            "runtime protocol: HTTP %s %s from %s: %d (%.3f s)",
            request.method,
            request.rel_url.path,
            request.remote,
            response.status,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)


class ErrorLog(logging.LoggerAdapter[logging.Logger]):
    def __init__(self, logger: logging.Logger, throttled: ThrottledLog) -> None:
        super().__init__(logger, {})
        self._throttled = throttled

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if not isinstance(exc, HttpProcessingError):
            super().log(level, msg, *args, **kwargs)
            return
        # aiohttp's text names the address ("Error handling request from 127.0.0.2").
        said = str(msg) % args if args else str(msg)
        self._throttled.event(
            "malformed",
            f"runtime protocol: {said}: a malformed request ({type(exc).__name__}); closed it",
            logging.INFO,
        )
