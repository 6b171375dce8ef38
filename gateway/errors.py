"""Every error the gateway raises on purpose, as one tree.

    GatewayError                 root; ``str()`` is one line a user can act on
    ├── ApplianceError           provisioning or a service's file failed (names file and problem)
    ├── BrokerUrlError           a broker URL that cannot be used (names the URL and the problem)
    ├── ConfigError              gateway.yaml problems, each ``file:line: key.path: problem``;
    │                            all of them in ``.problems`` (or a file that cannot be read)
    ├── DefinitionError          an invalid participant definition (names the key path)
    ├── DiscoveryError           a discovery message that cannot be accepted (names the reason)
    ├── FileWriteError           a file could not be written (names it; the old one is kept)
    ├── GraphError               a graph file problem, as ``file:line:col: problem`` (one problem)
    │   └── InvalidGraphError    a graph file with problems; all of them in ``.problems``
    ├── PortError                send/receive on a port the participant does not have
    ├── ProtocolError            an FBP runtime protocol request that cannot be served (names the
    │                            protocol whose ``error`` command carries it back to the client)
    ├── SerialLinkError          a serial link frame that was dropped (``kind``: bad_cobs, bad_crc,
    │                            too_short, too_long, unknown_type, bad_body); returned by the
    │                            decoder as an event, not raised at the caller
    ├── FrameTooLargeError       a frame bigger than the receiving device accepts; never sent
    ├── DescriptionError         a device's describe JSON that cannot be used (names the key path)
    ├── HostapdError             hostapd's control interface is unreachable, silent, refused a
    │                            command or answered garbage (names the socket and command)
    ├── TransportError           the broker connection failed or refused us
    │   └── MalformedPacketError the broker sent bytes that are not MQTT (defined with its
    │                            codec, gateway/transport/mqtt/packets.py)
    └── YamlError                a YAML text that cannot be read, as ``file:line:col: problem``

Input from the outside world (network, files, devices) raises these at the boundary where it is
parsed; code past the boundary only sees typed objects. Command-line tools turn a GatewayError
into a single ``program: error: ...`` line (one per problem for a graph file) and exit status 2
(``msgflo-graph`` and ``gateway-config`` exit 1 for an invalid file and keep 2 for usage errors,
as their docs say).
"""

from __future__ import annotations

from collections.abc import Sequence


class GatewayError(Exception):
    """Root of the gateway's errors. The message is a single line meant for a user."""


class ApplianceError(GatewayError):
    """Provisioning or a service file failed; the message names the file and the problem."""


class FileWriteError(GatewayError):
    """A file could not be written or a directory made (``gateway/common/atomic.py``): names the
    path and the reason; a file being replaced is left as it was."""

    def __init__(self, path: object, reason: str, what: str = "cannot write") -> None:
        super().__init__(f"{what} {path}: {reason}")
        self.path = str(path)
        self.reason = reason


class BrokerUrlError(GatewayError):
    """A broker URL is malformed or uses an unsupported scheme or option."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"invalid broker URL {url!r}: {problem}")
        self.url = url
        self.problem = problem


class ConfigError(GatewayError):
    """The gateway's config file cannot be used; every problem found is in ``problems``.

    Each problem is one line, ``file:line: key.path: problem (did you mean 'x'?)``, in file
    order. The exception reads like the first problem with a count of the others, as
    ``InvalidGraphError`` does, so code that only prints ``str(error)`` still shows one
    actionable line.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems = tuple(problems)
        more = len(self.problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"{self.problems[0]}{tail}")


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


class GraphError(GatewayError):
    """One problem in a graph file. ``line``/``col`` are 1-based; 0 means the position is unknown.

    ``source_line`` is the offending line of the file and ``hint`` a suggestion such as
    ``did you mean 'hub'?``; both may be empty. ``str()`` is the one-line form
    ``file:line:col: problem (hint)``; ``render()`` adds the source line and a caret under ``col``.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str = "",
        line: int = 0,
        col: int = 0,
        source_line: str = "",
        hint: str = "",
    ) -> None:
        self.problem = problem
        self.file = file
        self.line = line
        self.col = col
        self.source_line = source_line
        self.hint = hint
        super().__init__(self.headline())

    def location(self) -> str:
        """``file:line:col`` with the unknown parts left out (``<graph>`` if there is no file)."""
        parts = [self.file or "<graph>"]
        if self.line:
            parts.append(str(self.line))
            if self.col:
                parts.append(str(self.col))
        return ":".join(parts)

    def headline(self) -> str:
        """The single line a user sees: where, what, and the suggestion if there is one."""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.location()}: {self.problem}{hint}"

    def render(self) -> str:
        """The headline, then the offending line and a caret under the column, compiler style."""
        if not self.source_line:
            return self.headline()
        shown = self.source_line.expandtabs(1)
        caret = " " * max(self.col - 1, 0) + "^"
        return f"{self.headline()}\n    {shown}\n    {caret}"


class InvalidGraphError(GraphError):
    """A graph file has one or more problems; every one found is in ``problems``, in file order.

    The exception itself reads like the first problem, with a count of the others, so code that
    only prints ``str(error)`` still shows one actionable line.
    """

    def __init__(self, problems: tuple[GraphError, ...]) -> None:
        if not problems:
            raise ValueError("InvalidGraphError needs at least one problem")
        self.problems = problems
        first = problems[0]
        super().__init__(
            first.problem,
            file=first.file,
            line=first.line,
            col=first.col,
            source_line=first.source_line,
            hint=first.hint,
        )

    def headline(self) -> str:
        more = len(self.problems) - 1
        if not more:
            return super().headline()
        return f"{super().headline()} (and {more} more problem{'s' if more > 1 else ''})"


class ProtocolError(GatewayError):
    """An FBP runtime protocol request was invalid or cannot be carried out.

    ``protocol`` is the protocol whose ``error`` command answers it (``graph:error`` and so on;
    ``runtime`` when the frame had no usable protocol); ``str()`` is the one-line ``message`` the
    client receives. Messages never contain the runtime's secret.
    """

    def __init__(self, protocol: str, message: str) -> None:
        super().__init__(message)
        self.protocol = protocol
        self.message = message


class SerialLinkError(GatewayError):
    """A frame received on a serial link was dropped. ``kind`` is one of the decoder's error
    kinds (``gateway.bridges.serial.link.LinkErrorKind``); ``detail`` says what was seen."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"serial link: dropped frame ({kind}): {detail}")
        self.kind = kind
        self.detail = detail


class FrameTooLargeError(GatewayError):
    """A frame of ``size`` decoded bytes does not fit the receiver's ``limit``; it is not sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"serial link: frame of {size} bytes exceeds the device's {limit}")
        self.size = size
        self.limit = limit


class DescriptionError(GatewayError):
    """A device description (the ``D`` JSON) is unusable; ``path`` names the key, if any."""

    def __init__(self, path: str, problem: str) -> None:
        where = f"{path}: " if path else ""
        super().__init__(f"invalid device description: {where}{problem}")
        self.path = path
        self.problem = problem


class HostapdError(GatewayError):
    """hostapd's control interface failed us: no socket, no reply in time, ``FAIL``, ``UNKNOWN
    COMMAND``, or a reply that cannot be parsed. ``path`` is the control socket and ``command``
    the request; either may be empty when unknown (a parser does not know the socket)."""

    def __init__(self, problem: str, *, command: str = "", path: str = "") -> None:
        where = f" at {path}" if path else ""
        what = f"{command}: " if command else ""
        super().__init__(f"hostapd{where}: {what}{problem}")
        self.problem = problem
        self.command = command
        self.path = path


class YamlError(GatewayError):
    """A YAML text that is not YAML, or too big or deep to read (``gateway/common/yaml12.py``).

    ``where`` is ``file:line:col`` (or less when PyYAML does not say), ``problem`` the rest;
    callers that word it their own way (``gateway.yaml``'s ``invalid YAML:``) use both.
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem
