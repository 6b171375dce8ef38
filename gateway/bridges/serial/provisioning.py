"""The gateway's side of provisioning a WiFi board over USB, as a pure state machine.

A board running the firmware library with the MQTT transport, and no credentials yet, speaks
Improv Wi-Fi on its USB serial port instead of the serial link (docs/provisioning.md). The
serial bridge runs a :class:`Provisioner` beside a port's link session when
``bridges.serial.provision`` names the port: when no hello has come by the time the session
gives up waiting for one, the provisioner probes, and once the board answers as Improv it
owns the port. The steps::

    WAITING --link silent--> PROBING --state ready--> QUERYING --result--> ISSUING
        (request current state)    (broker query: a msgflo board?)   (IssueCredentials action)
    ISSUING --credentials--> SENDING_BROKER --result--> JOINING --state provisioned--> DONE
    PROBING --no answer--> NOT_IMPROV (the link session carries on; nothing logged)
    QUERYING --unknown RPC--> LEFT (an Improv board that is not ours: ESPHome, WLED...)
    PROBING --state provisioned--> QUERYING --result--> LEFT (already provisioned, role given)
    any --error state, timeout, issuer failure--> FAILED

The driver (``bridge.py``) feeds it bytes and time and carries out its actions: bytes to
write, a line to log, :class:`IssueCredentials` (call the injected issuer for that role, then
:meth:`Provisioner.issued` or :meth:`Provisioner.issue_failed`) and :class:`Finished` (leave
the port alone until the board is unplugged). Secrets never reach a log line.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.bridges.serial.improv import (
    BROKER_VERSION,
    BrokerSettings,
    Command,
    CurrentState,
    ErrorState,
    ImprovError,
    ImprovErrorCode,
    ImprovState,
    Message,
    PacketDecoder,
    RpcResult,
    encode_broker,
    encode_rpc,
    encode_wifi_settings,
    parse,
)
from gateway.bridges.serial.session import Action, LogLine, RateLimitedReport, Write


@dataclass(frozen=True, slots=True)
class DeviceCredentials:
    """Everything a board needs to join the kit's WiFi and its broker as one role."""

    ssid: str
    passphrase: str
    broker_host: str
    broker_port: int
    user: str
    password: str
    role: str

    def __repr__(self) -> str:  # never the secrets, whoever prints it
        return (
            f"DeviceCredentials(ssid={self.ssid!r}, broker={self.broker_host}:{self.broker_port},"
            f" user={self.user!r}, role={self.role!r})"
        )


# Creates (or finds) the MQTT user of a role and returns what the board needs; may block
# (it rewrites mosquitto's files, or waits up to 30 s for root to): the bridge calls it in a
# thread. It raises to refuse. The gateway's: gateway.appliance.device_requests.provision_issuer.
IssueCredentials = Callable[[str], DeviceCredentials]


@dataclass(frozen=True, slots=True)
class IssueCredentialsAction:
    """Ask the issuer for the credentials of ``role``."""

    role: str


@dataclass(frozen=True, slots=True)
class Finished:
    """Provisioning is over (``provisioned`` says how); leave the port alone."""

    provisioned: bool
    reason: str


ProvisionAction = Write | LogLine | IssueCredentialsAction | Finished


class Phase(enum.Enum):
    WAITING = "waiting for the link to stay silent"
    PROBING = "probing"
    QUERYING = "asking for its role"
    ISSUING = "creating credentials"
    SENDING_BROKER = "sending the broker settings"
    JOINING = "joining the WiFi"
    DONE = "provisioned"
    LEFT = "left alone"
    NOT_IMPROV = "not an Improv board"
    FAILED = "failed"


FINAL = (Phase.DONE, Phase.LEFT, Phase.NOT_IMPROV, Phase.FAILED)


@dataclass(frozen=True, slots=True)
class ProvisionConfig:
    """Times in seconds."""

    role: str  # the role the board is given (configured, else derived like any serial device)
    # How long the link session may wait for a hello (and have a describe request answered)
    # before the probe: a board that speaks the link never sees Improv bytes.
    wait: float = 3.0
    probe_timeout: float = 1.0  # per probe; a board answers at once
    probes: int = 2  # probes before deciding it is not an Improv board
    answer_timeout: float = 3.0  # for the query and the broker command
    join_timeout: float = 60.0  # joining the WiFi takes a few seconds, a retry more
    report_interval: float = 30.0


@dataclass
class ProvisionStats:
    probes: int = 0
    packets: int = 0
    bad_packets: int = 0  # bad checksums, versions, bodies
    timeouts: int = 0
    device_errors: int = 0


class Provisioner:
    """See the module docstring."""

    def __init__(self, config: ProvisionConfig, now: float) -> None:
        self.config = config
        self.phase = Phase.WAITING
        self.stats = ProvisionStats()
        self.decoder = PacketDecoder()
        self.board_role: str | None = None  # what the board said it is (query answer)
        self.credentials: DeviceCredentials | None = None
        self._deadline = now + config.wait
        self._already = False  # the probe found it provisioned: only its role is asked
        self._wifi = b""  # the WiFi command, sent once the broker settings are taken
        self._bad = RateLimitedReport("provisioning: dropped packets", config.report_interval)

    @property
    def claimed(self) -> bool:
        """The board answered as Improv: the port is the provisioner's, not the link's."""
        return self.phase not in (Phase.WAITING, Phase.PROBING, Phase.NOT_IMPROV)

    @property
    def finished(self) -> bool:
        return self.phase in FINAL

    def next_deadline(self) -> float:
        return min(self._deadline, self._bad.deadline or float("inf"))

    # -- inputs ----------------------------------------------------------------------------------

    def tick(self, now: float, link_silent: bool) -> list[ProvisionAction]:
        """Time passed. ``link_silent``: the link session has still heard no hello; when it is
        false in WAITING the board speaks the link and provisioning is off for this port."""
        actions: list[ProvisionAction] = _lines(self._bad.flush(now))
        if self.phase in (Phase.WAITING, Phase.PROBING) and not link_silent:
            self.phase = Phase.NOT_IMPROV  # it speaks the serial link
            self._deadline = float("inf")
            return actions
        if now < self._deadline or self.finished:
            return actions
        if self.phase is Phase.WAITING:
            return actions + self._probe(now)
        return actions + self._timeout(now)

    def _timeout(self, now: float) -> list[ProvisionAction]:
        actions: list[ProvisionAction] = []
        if self.phase is Phase.PROBING:
            if self.stats.probes < self.config.probes:
                return actions + self._probe(now)
            self.phase = Phase.NOT_IMPROV  # not an error: most boards speak no Improv
            return [*actions, LogLine(logging.DEBUG, "no answer to the Improv probe")]
        if self.phase is Phase.ISSUING:
            return actions  # the driver is calling the issuer; it reports either way
        self.stats.timeouts += 1
        return actions + self._fail(f"no answer while {self.phase.value}")

    def feed(self, data: bytes, now: float) -> list[ProvisionAction]:
        actions: list[ProvisionAction] = []
        if self.finished or self.phase is Phase.WAITING:
            return actions
        for event in self.decoder.feed(data):
            if isinstance(event, ImprovError):
                actions += self._dropped(event, now)
                continue
            try:
                message = parse(event)
            except ImprovError as error:
                actions += self._dropped(error, now)
                continue
            self.stats.packets += 1
            actions += self._on(message, now)
            if self.finished:
                break
        return actions

    def issued(self, credentials: DeviceCredentials, now: float) -> list[ProvisionAction]:
        """The issuer's answer: send the broker settings."""
        if self.phase is not Phase.ISSUING:
            return []
        self.credentials = credentials
        settings = BrokerSettings(
            credentials.role,
            credentials.broker_host,
            credentials.broker_port,
            credentials.user,
            credentials.password,
        )
        try:
            data = encode_broker(settings)
            self._wifi = encode_wifi_settings(credentials.ssid, credentials.passphrase)
        except ValueError as error:
            return self._fail(f"the credentials do not fit Improv's packets: {error}")
        self.phase = Phase.SENDING_BROKER
        self._deadline = now + self.config.answer_timeout
        return [Write(data)]

    def issue_failed(self, reason: str, now: float) -> list[ProvisionAction]:
        if self.phase is not Phase.ISSUING:
            return []
        return self._fail(f"no credentials for role {self.config.role!r}: {reason}")

    # -- what the board says ---------------------------------------------------------------------

    def _on(self, message: Message, now: float) -> list[ProvisionAction]:
        if isinstance(message, ErrorState):
            return self._on_error(message)
        if isinstance(message, CurrentState):
            return self._on_state(message, now)
        if isinstance(message, RpcResult):
            return self._on_result(message, now)
        return []  # an RPC command from a board: not for us

    def _on_error(self, message: ErrorState) -> list[ProvisionAction]:
        code = message.code
        if code == ImprovErrorCode.NONE:
            return []  # sent before each answer: "the command arrived"
        self.stats.device_errors += 1
        if code == ImprovErrorCode.UNKNOWN_RPC and self.phase is Phase.QUERYING:
            return self._leave(
                "an Improv board without msgflo's broker command (ESPHome, WLED...?): "
                "not provisioned",
                logging.WARNING,
            )
        if self.phase in (Phase.PROBING, Phase.WAITING, Phase.ISSUING):
            return []
        what = _error_name(code)
        return self._fail(f"the board answered {what} while {self.phase.value}")

    def _on_state(self, message: CurrentState, now: float) -> list[ProvisionAction]:
        state = message.state
        if self.phase is Phase.PROBING:
            if state in (ImprovState.READY, ImprovState.PROVISIONED):
                self._already = state == ImprovState.PROVISIONED
                self.phase = Phase.QUERYING
                self._deadline = now + self.config.answer_timeout
                return [Write(encode_broker(None))]
            return self._leave(f"an Improv board in state {_state_name(state)}: not provisioned")
        if self.phase is Phase.JOINING and state == ImprovState.PROVISIONED:
            return self._done()
        return []  # PROVISIONING while joining, repeats: progress only

    def _on_result(self, message: RpcResult, now: float) -> list[ProvisionAction]:
        if message.command != Command.BROKER:
            return []  # the WiFi command's result (a URL) and others: nothing to do
        if self.phase is Phase.QUERYING:
            strings = message.strings
            self.board_role = strings[1] if len(strings) > 1 else ""
            if self._already:
                role = self.board_role or "?"
                return self._leave(f"an Improv board already provisioned as role {role!r}")
            self.phase = Phase.ISSUING
            self._deadline = float("inf")
            return [IssueCredentialsAction(self.config.role)]
        if self.phase is Phase.SENDING_BROKER:
            if not message.strings or message.strings[0] != BROKER_VERSION:
                return self._fail(f"the board answered the broker command with {message.strings}")
            self.phase = Phase.JOINING
            self._deadline = now + self.config.join_timeout
            return [Write(self._wifi)]
        return []

    # -- steps -----------------------------------------------------------------------------------

    def _probe(self, now: float) -> list[ProvisionAction]:
        self.phase = Phase.PROBING
        self.stats.probes += 1
        self._deadline = now + self.config.probe_timeout
        # A lone line feed first ends any half line the board's console holds.
        return [Write(b"\n" + encode_rpc(Command.REQUEST_STATE))]

    def _done(self) -> list[ProvisionAction]:
        self.phase = Phase.DONE
        self._deadline = float("inf")
        c = self.credentials
        assert c is not None
        line = f"provisioned over Improv as role {c.role!r}: WiFi {c.ssid!r}, broker "
        line += f"{c.broker_host}:{c.broker_port}, MQTT user {c.user!r}; leaving the port alone"
        return [LogLine(logging.INFO, line), Finished(True, line)]

    def _leave(self, reason: str, level: int = logging.INFO) -> list[ProvisionAction]:
        self.phase = Phase.LEFT
        self._deadline = float("inf")
        line = f"{reason}; leaving the port alone"
        return [LogLine(level, line), Finished(False, line)]

    def _fail(self, reason: str) -> list[ProvisionAction]:
        self.phase = Phase.FAILED
        self._deadline = float("inf")
        line = f"provisioning failed: {reason}; leaving the port alone until it is replugged"
        return [LogLine(logging.WARNING, line), Finished(False, line)]

    def _dropped(self, error: ImprovError, now: float) -> list[ProvisionAction]:
        self.stats.bad_packets += 1
        return _lines(self._bad.add(error.kind.value, str(error), now))


def _lines(actions: list[Action]) -> list[ProvisionAction]:
    """The report's log lines (it makes nothing else)."""
    return [action for action in actions if isinstance(action, LogLine)]


def _state_name(state: int) -> str:
    try:
        return ImprovState(state).name.lower()
    except ValueError:
        return f"{state:#04x}"


def _error_name(code: int) -> str:
    try:
        return f"error {ImprovErrorCode(code).name.lower()}"
    except ValueError:
        return f"error {code:#04x}"


__all__ = [
    "DeviceCredentials",
    "Finished",
    "IssueCredentials",
    "IssueCredentialsAction",
    "Phase",
    "ProvisionAction",
    "ProvisionConfig",
    "Provisioner",
]
