"""Broker URLs: ``mqtt://user:pass@host:port?options``, ``mqtts://``, and where they come from.

The URL is parsed once, at the boundary, into a frozen :class:`BrokerUrl`. Resolution order
follows the original tools (``--broker``, then ``$MSGFLO_BROKER``), with ``mqtt://localhost`` as
the last resort because the gateway is MQTT-first (the originals fall back to AMQP).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from gateway.errors import BrokerUrlError

DEFAULT_BROKER = "mqtt://localhost"
ENV_BROKER = "MSGFLO_BROKER"

# memory://<name> is gateway.transport.memory's in-process broker, for tests; it has no port.
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "amqp": 5672, "amqps": 5671, "memory": 0}

# Query options understood per scheme; anything else is rejected so that a typo (a misspelt
# ``ca_certs``) does not go unnoticed. TLS options follow msgflo-python (gateway.transport.tls),
# MQTT's clientId and keepAlive msgflo-cpp, AMQP's heartbeat amqplib (msgflo-nodejs) and
# prefetch the msgflo-nodejs participant option of that name.
TLS_OPTIONS = frozenset({"ca_certs", "certfile", "keyfile", "insecure"})
MQTT_OPTIONS = TLS_OPTIONS | {"clientId", "keepAlive", "sessionExpiry", "protocolVersion"}
AMQP_OPTIONS = TLS_OPTIONS | {"heartbeat", "prefetch"}


@dataclass(frozen=True)
class BrokerUrl:
    """A validated broker address. ``str()`` never shows the password."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    vhost: str = ""
    options: Mapping[str, str] = field(default_factory=dict)
    # The URL as given, password included: only for handing on to child processes.
    secret_url: str = field(default="", repr=False, compare=False)

    @property
    def tls(self) -> bool:
        return self.scheme.endswith("s")

    @property
    def is_mqtt(self) -> bool:
        return self.scheme in ("mqtt", "mqtts")

    def with_option(self, name: str, value: str) -> BrokerUrl:
        """This URL with one query option set (checked as if it had been in the URL)."""
        options = {**self.options, name: value}
        _check_options(self.redacted(), options, _known_options(self.scheme))
        parts = urlsplit(self.secret_url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
        secret = urlunsplit(parts._replace(query=urlencode([*query, (name, value)])))
        return replace(self, options=options, secret_url=secret)

    def redacted(self) -> str:
        """The URL for logs and messages: scheme, user, host and port, no password."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"

    def __str__(self) -> str:
        return self.redacted()


def parse_broker_url(url: str) -> BrokerUrl:
    """Parse and validate ``url``; raises :class:`BrokerUrlError` naming the URL and the problem."""
    shown = _redact_raw(url)
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise BrokerUrlError(shown, str(exc)) from None
    try:
        port = parts.port
    except ValueError:
        raw_port = parts.netloc.rpartition(":")[2]
        raise BrokerUrlError(shown, f"port must be a number 1..65535, not {raw_port!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        supported = ", ".join(f"{s}://" for s in DEFAULT_PORTS if s != "memory")  # not for users
        if not scheme or "://" not in url:
            raise BrokerUrlError(shown, f"expected scheme://host[:port] ({supported})")
        raise BrokerUrlError(shown, f"scheme {scheme!r} is not supported (use {supported})")
    if not parts.hostname:
        raise BrokerUrlError(shown, "no host name")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    _check_options(shown, options, _known_options(scheme))
    return BrokerUrl(
        scheme=scheme,
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        vhost=unquote(parts.path[1:]) if parts.path.startswith("/") else "",
        options=options,
        secret_url=url.strip(),
    )


def _known_options(scheme: str) -> frozenset[str]:
    if scheme == "memory":
        return frozenset()
    return MQTT_OPTIONS if scheme.startswith("mqtt") else AMQP_OPTIONS


def _check_options(shown: str, options: Mapping[str, str], known: frozenset[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        names = ", ".join(sorted(known))
        raise BrokerUrlError(shown, f"unknown option {unknown[0]!r} (known: {names})")
    keepalive = options.get("keepAlive")
    if keepalive is not None and not (keepalive.isdigit() and 0 < int(keepalive) <= 65535):
        raise BrokerUrlError(shown, f"keepAlive must be 1..65535 seconds, not {keepalive!r}")
    version = options.get("protocolVersion")
    if version is not None and version not in ("4", "5"):
        raise BrokerUrlError(shown, f"protocolVersion must be 4 (MQTT 3.1.1) or 5, not {version!r}")
    expiry = options.get("sessionExpiry")
    if expiry is not None and not (expiry.isdigit() and int(expiry) <= 0xFFFFFFFF):
        raise BrokerUrlError(shown, f"sessionExpiry must be 0..4294967295 seconds, not {expiry!r}")
    heartbeat = options.get("heartbeat")
    if heartbeat is not None and not (heartbeat.isdigit() and int(heartbeat) <= 65535):
        raise BrokerUrlError(shown, f"heartbeat must be 0..65535 seconds, not {heartbeat!r}")
    prefetch = options.get("prefetch")
    if prefetch is not None and not (prefetch.isdigit() and 0 < int(prefetch) <= 65535):
        raise BrokerUrlError(shown, f"prefetch must be 1..65535 messages, not {prefetch!r}")


def _redact_raw(url: str) -> str:
    """Hide a password in a URL we could not parse, so error messages never leak it."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, hostpart = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in userinfo else url


def resolve_broker(cli_value: str | None = None, env: Mapping[str, str] | None = None) -> BrokerUrl:
    """``--broker`` if given, else ``$MSGFLO_BROKER``, else ``mqtt://localhost``.

    Every command line resolves its broker here, so this is where memory:// is refused: its
    broker lives inside one process, and a daemon alone on it would talk to nobody."""
    environ = os.environ if env is None else env
    url = parse_broker_url(cli_value or environ.get(ENV_BROKER) or DEFAULT_BROKER)
    if url.scheme == "memory":
        raise BrokerUrlError(f"memory://{url.host}", "memory:// is in-process only, for tests")
    return url
