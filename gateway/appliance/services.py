"""The long-running services ``gateway-run`` starts in-process, built from ``gateway.yaml``.

Kept apart from ``run.py`` so that the broker, access point and DHCP entry points, which only
render a file and exec a daemon, do not import the coordinator's whole runtime.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from gateway.appliance.activation import listen_fds, listening
from gateway.appliance.credentials import RoleBrokers, persistent
from gateway.appliance.devices import reload_unit
from gateway.appliance.users import WEB
from gateway.broker import BrokerUrl
from gateway.config import GatewayConfig
from gateway.coordinator.run import run_with_runtime_protocol
from gateway.coordinator.runtime_environment import RuntimeSettings
from gateway.coordinator.service import ServiceConfig, library_from_options, load_service_graph
from gateway.dashboard.boards import Boards
from gateway.dashboard.bridges import BridgeSeen
from gateway.dashboard.devices import SeenDevices
from gateway.dashboard.settings import DashboardSettings, WebMqtt
from gateway.errors import GatewayError
from gateway.runtime_protocol.server import is_loopback

log = logging.getLogger("gateway-run")
RoleBroker = Callable[[str], BrokerUrl]
REGISTRY_FILE = "participants.json"  # the coordinator's registry, beside its graph
# FileDescriptorName= of services/systemd/msgflo-dashboard.socket: port 80, bound by systemd.
DASHBOARD_SOCKET = "dashboard"


def component_dir(library: Path | None) -> Path | None:
    """Components live next to the library file, in ``components/`` (as in examples/)."""
    if library is None:
        return None
    directory = library.parent / "components"
    return directory if directory.is_dir() else None


def runtime_id(device_id: str) -> str:
    """A stable runtime id per device (Flowhub remembers runtimes by it)."""
    return str(uuid.UUID(hex=device_id[:32].ljust(32, "0")))


def run_coordinator(
    config: GatewayConfig,
    broker: BrokerUrl,
    secret: str,
    device_id: str,
    roles: RoleBroker | None = None,
    *,
    config_path: Path | None = None,
    adopt_requests: Path | None = None,
) -> int:
    # First, before any participant is started: they must not inherit the sockets.
    sockets = dashboard_sockets(config.runtime.host)
    c = config.coordinator
    graph_path = c.graph if c.graph.exists() else None
    service_config = ServiceConfig(
        broker=broker,
        graph_path=graph_path,
        library=library_from_options(c.library, component_dir(c.library)),
        auto_save=c.auto_save and graph_path is not None,
        wait_timeout=c.wait_timeout,
        # Beside the graph: the directory the sandboxed coordinator may write.
        registry_path=c.graph.parent / REGISTRY_FILE,
        strict=c.strict_discovery,
        participant_broker=lambda role: persistent(roles(role) if roles else broker),
    )
    r = config.runtime
    dashboard = DashboardSettings(
        web_mqtt=web_mqtt(config, roles),
        data_path=config.data_dir,
        devices=seen_devices(config, config_path, adopt_requests),
        # By request when adoptions are (the appliance: root adds the broker users).
        boards=Boards(config, by_request=adopt_requests is not None, reload=reload_unit()),
    )
    settings = RuntimeSettings(
        r.host,
        r.port,
        secret,
        runtime_id(device_id),
        r.label,
        dashboard=dashboard,
        sockets=sockets,
    )
    graph = load_service_graph(graph_path, auto_save=service_config.auto_save)
    print(f"gateway-run: coordinator on graph {graph_path or '(empty)'}", flush=True)
    run_with_runtime_protocol(service_config, graph, settings)
    return 0


def seen_devices(
    config: GatewayConfig, path: Path | None, requests: Path | None = None
) -> tuple[SeenDevices, ...]:
    """The devices the enabled bridges see without a role, adopted into ``path``, when any
    bridge runs. With ``requests`` (the appliance) adoptions go to that file for
    ``msgflo-adopt.service``."""
    enabled = config.bridges.enabled()
    if path is None or not enabled:
        return ()
    return (BridgeSeen(path, bridge_restart_pending, requests=requests, bridges=enabled),)


async def bridge_restart_pending(bridge: str) -> None:
    """Started without ``--adopt-by-request`` the coordinator writes the config itself but does
    not restart the bridge (another service): it says the bridge takes the role when restarted."""
    log.warning("%s device adopted: restart the %s bridge to apply it", bridge, bridge)


def dashboard_sockets(runtime_host: str) -> tuple[socket.socket, ...]:
    """The listening sockets systemd handed over for the dashboard (socket activation), served
    beside the runtime's own port; none when started otherwise.

    With ``runtime.host`` on loopback, one bound beyond loopback is not served: the config
    keeps the runtime to this machine, and port 80 must not open it to the WiFi anyway.
    """
    taken: list[socket.socket] = []
    for name, sock in listen_fds():
        address = sock.getsockname()
        where = str(address[0]) if isinstance(address, tuple) else str(address)
        if name != DASHBOARD_SOCKET:
            log.warning("ignoring a socket systemd passed named %r", name)
        elif not listening(sock):
            raise GatewayError(f"the {name!r} socket systemd passed is not a listening socket")
        elif is_loopback(runtime_host) and not is_loopback(where):
            log.warning(
                "runtime.host is %s: not serving the dashboard on %s as well "
                "(systemctl disable --now msgflo-dashboard.socket)",
                runtime_host,
                where,
            )
        else:
            taken.append(sock)
            continue
        sock.close()
    return tuple(taken)


def web_mqtt(config: GatewayConfig, roles: RoleBroker | None) -> WebMqtt | None:
    """The broker's WebSockets listener as a browser on the access point reaches it, with the
    ``web`` user's password (stored at first boot, else derived like a graph role's)."""
    port = config.broker.websockets_port
    if port is None or roles is None or not isinstance(roles, RoleBrokers):
        return None
    host = config.access_point.hostname if config.access_point.enabled else "127.0.0.1"
    return WebMqtt(f"ws://{host}:{port}/", WEB, roles.password(WEB))
