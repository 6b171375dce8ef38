"""Every error the gateway raises on purpose, as one tree.

    GatewayError                 root; ``str()`` is one line a user can act on
    ├── BrokerUrlError           a broker URL that cannot be used (names the URL and the problem)
    ├── DefinitionError          an invalid participant definition (names the key path)
    ├── DiscoveryError           a discovery message that cannot be accepted (names the reason)
    ├── PortError                send/receive on a port the participant does not have
    └── TransportError           the broker connection failed or refused us
        └── NotConnectedError    an operation that needs a live connection found none

Input from the outside world (network, files, devices) raises these at the boundary where it is
parsed; code past the boundary only sees typed objects. Command-line tools turn a GatewayError
into a single ``program: error: ...`` line and exit status 2.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of the gateway's errors. The message is a single line meant for a user."""


class BrokerUrlError(GatewayError):
    """A broker URL is malformed or uses an unsupported scheme or option."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"invalid broker URL {url!r}: {problem}")
        self.url = url
        self.problem = problem


class DefinitionError(GatewayError):
    """A participant definition is invalid; ``path`` says where (e.g. ``inports[1].id``)."""

    def __init__(self, path: str, problem: str) -> None:
        where = f"{path}: " if path else ""
        super().__init__(f"invalid participant definition: {where}{problem}")
        self.path = path
        self.problem = problem


class DiscoveryError(GatewayError):
    """A discovery message was rejected; ``reason`` is short enough for a log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"rejected discovery message: {reason}")
        self.reason = reason


class PortError(GatewayError):
    """A participant was asked to use a port it does not declare."""


class TransportError(GatewayError):
    """The broker connection failed, or the broker refused an operation."""


class NotConnectedError(TransportError):
    """The operation needs a live broker connection and there is none right now."""
