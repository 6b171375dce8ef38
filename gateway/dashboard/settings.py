"""What the dashboard is told by whoever starts the coordinator (``msgflo``, the demo,
``gateway-run coordinator``): kept free of the coordinator's imports, so that
:class:`~gateway.coordinator.runtime_environment.RuntimeSettings` can hold it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from gateway.dashboard.devices import SeenDevices
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.dashboard.boards import Boards

STATIC_DIR = Path(__file__).parent / "static"


@dataclass(frozen=True)
class WebMqtt:
    """The broker's MQTT-over-WebSockets listener as the browser reaches it, and the user the
    page's virtual devices log in as (None: the listener needs no login)."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> WebMqtt:
        """``ws[s]://[user:password@]host:port/``: the credentials move out of the URL."""
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise GatewayError(f"MQTT over WebSockets URL {text!r}: {exc}") from None
        if parts.scheme not in ("ws", "wss") or not parts.hostname or port is None:
            raise GatewayError(
                f"MQTT over WebSockets URL {text!r}: expected ws://HOST:PORT/ or wss://HOST:PORT/"
            )
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        url = urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", "", ""))
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(url, username, password)


@dataclass(frozen=True)
class DashboardSettings:
    """``web_mqtt``: see :class:`WebMqtt` (None: ``/api/mqtt`` answers 404). ``data_path``:
    the file system whose free space is reported. ``hostapd_ctrl``: the access point's control
    socket, for the WiFi clients reading (None: no such reading). ``static_dir``: the page.
    ``devices``: the bridges' seen devices (:mod:`gateway.dashboard.devices`). ``boards``: the
    boards with their own broker user (:mod:`gateway.dashboard.boards`; None: a coordinator
    without the gateway's data directory, such as the laptop demo, cannot add one)."""

    web_mqtt: WebMqtt | None = None
    data_path: Path | None = None
    hostapd_ctrl: str | None = None
    static_dir: Path = STATIC_DIR
    devices: Sequence[SeenDevices] = ()
    boards: Boards | None = None
