"""The broker's users and what each may do: the vocabulary behind mosquitto.passwd and .acl.

Every client authenticates (the broker has no anonymous listener). The coordinator, each
bridge and the human ``admin`` may use every topic: bridges announce devices whose roles are
not known in advance. A role user (a device on the WiFi, say) may use only its own
``<role>/#`` topics and announce itself on ``fbp``, the msgflo discovery topic. So may ``web``,
the user the dashboard hands a browser for its virtual devices (``web/#`` and ``fbp``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gateway.config.model import BridgesConfig, GatewayConfig
from gateway.errors import GatewayError
from gateway.graph.files import load_graph

log = logging.getLogger(__name__)

COORDINATOR = "coordinator"
ADMIN = "admin"
# The dashboard's virtual devices (a browser over MQTT on WebSockets): a role user whose topics
# are web/#, shared by every page; their queues are web/<page prefix>/... (docs/dashboard.md).
WEB = "web"
BRIDGE_PREFIX = "bridge-"
DISCOVERY_TOPIC = "fbp"  # msgflo participants announce themselves here


class Access(StrEnum):
    """Mosquitto ACL access words (mosquitto.conf(5), ``acl_file``)."""

    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"


@dataclass(frozen=True)
class TopicRule:
    access: Access
    pattern: str


@dataclass(frozen=True)
class MqttUser:
    """A broker user and the topic rules of its ACL entry."""

    name: str
    rules: tuple[TopicRule, ...]

    @classmethod
    def everything(cls, name: str) -> MqttUser:
        # "#" does not match topics that start with "$": the broker's own $SYS figures (the
        # health bridge's client count) need their own rule; they are only ever read.
        return cls(name, (TopicRule(Access.READWRITE, "#"), TopicRule(Access.READ, "$SYS/#")))

    @classmethod
    def role(cls, role: str) -> MqttUser:
        return cls(
            role,
            (TopicRule(Access.READWRITE, f"{role}/#"), TopicRule(Access.WRITE, DISCOVERY_TOPIC)),
        )


def bridge_users() -> tuple[str, ...]:
    """``bridge-<name>`` for every bridge the config knows, enabled or not (it may be later)."""
    return tuple(f"{BRIDGE_PREFIX}{f.name}" for f in dataclasses.fields(BridgesConfig))


def is_full_access(name: str) -> bool:
    return name in (COORDINATOR, ADMIN) or name.startswith(BRIDGE_PREFIX)


def user_for(name: str) -> MqttUser:
    """The ACL of user ``name``: the reserved names get everything, any other is a role."""
    return MqttUser.everything(name) if is_full_access(name) else MqttUser.role(name)


def usable_role(role: str) -> str | None:
    """Why ``role`` cannot be a broker user (``None`` if it can)."""
    if not role or role.startswith("$"):
        return "empty or starts with '$'"
    if any(c in role for c in ":+#") or any(c.isspace() for c in role):
        return "contains ':', '+', '#' or white space"
    if is_full_access(role) or role == WEB:
        return f"reserved for the gateway (coordinator, admin, {WEB}, {BRIDGE_PREFIX}*)"
    return None


def user_names(config: GatewayConfig, graph_roles: Iterable[str] = ()) -> tuple[str, ...]:
    """Every user first boot creates: gateway users, then roles (config, graph), deduplicated."""
    names = [COORDINATOR, ADMIN, WEB, *bridge_users()]
    for role in (*config.broker.roles, *graph_roles):
        problem = usable_role(role)
        if problem is not None:
            log.warning("role %r gets no MQTT user: its name %s", role, problem)
        elif role not in names:
            names.append(role)
    return tuple(names)


def graph_roles(path: Path) -> tuple[str, ...]:
    """The node names of the graph at ``path``; none (with a warning) if absent or invalid."""
    if not path.exists():
        return ()
    try:
        return tuple(load_graph(path).processes)
    except GatewayError as exc:
        log.warning("graph not read, its roles get no MQTT users: %s", exc)
        return ()
