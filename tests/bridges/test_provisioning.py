"""Improv Wi-Fi's serial codec against tests/vectors/provisioning.json (the firmware's codec
passes the same vectors), and the gateway's provisioning state machine, step by step, against
the answers the vectors' board gives."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from gateway.bridges.serial import improv
from gateway.bridges.serial.improv import (
    BrokerSettings,
    Command,
    CurrentState,
    ErrorState,
    ImprovError,
    Packet,
    PacketDecoder,
    RpcCommand,
    RpcResult,
)
from gateway.bridges.serial.provisioning import (
    DeviceCredentials,
    Finished,
    IssueCredentialsAction,
    Phase,
    ProvisionAction,
    ProvisionConfig,
    Provisioner,
)
from gateway.bridges.serial.session import LogLine, Write

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "provisioning.json").read_text(encoding="utf-8")
)


def decode_all(wire: bytes) -> list[Packet | ImprovError]:
    return list(PacketDecoder().feed(wire))


# -- the codec -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["checksum"], ids=lambda c: str(c["sum"]))
def test_checksum(case: dict[str, Any]) -> None:
    assert improv.checksum(bytes.fromhex(case["input"])) == case["sum"]


@pytest.mark.parametrize("case", VECTORS["packets"], ids=lambda c: c["name"])
def test_packets_encode_and_decode(case: dict[str, Any]) -> None:
    data, wire = bytes.fromhex(case["data"]), bytes.fromhex(case["wire"])
    assert improv.encode_packet(case["type"], data) == wire
    assert decode_all(wire) == [Packet(case["type"], data)]
    # Byte by byte, as a UART delivers it.
    decoder = PacketDecoder()
    events = [event for byte in wire for event in decoder.feed(bytes([byte]))]
    assert events == [Packet(case["type"], data)]
    fields = case["fields"]
    message = improv.parse(Packet(case["type"], data))
    if fields["kind"] == "current_state":
        assert message == CurrentState(fields["state"])
        assert improv.encode_state(fields["state"]) == wire
    elif fields["kind"] == "error_state":
        assert message == ErrorState(fields["code"])
        assert improv.encode_error(fields["code"]) == wire
    elif fields["kind"] == "rpc":
        assert message == RpcCommand(fields["command"], bytes.fromhex(fields["data"]))
        assert improv.encode_rpc(fields["command"], bytes.fromhex(fields["data"])) == wire
        if "strings" in fields:
            assert improv.decode_strings(bytes.fromhex(fields["data"])) == tuple(fields["strings"])
    else:
        assert message == RpcResult(fields["command"], tuple(fields["strings"]))
        assert improv.encode_result(fields["command"], fields["strings"]) == wire


def test_the_wifi_and_broker_commands_encode_as_the_vectors() -> None:
    by_name = {case["name"]: bytes.fromhex(case["wire"]) for case in VECTORS["packets"]}
    stored = VECTORS["stored"]
    assert (
        improv.encode_wifi_settings(stored["ssid"], stored["passphrase"])
        == by_name["wifi settings"]
    )
    settings = BrokerSettings(
        stored["role"], stored["host"], stored["port"], stored["user"], stored["password"]
    )
    assert improv.encode_broker(settings) == by_name["broker settings"]
    assert improv.encode_broker(None) == by_name["broker query"]
    assert improv.parse_broker(settings.strings()) == settings


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["name"])
def test_invalid_packets(case: dict[str, Any]) -> None:
    events = decode_all(bytes.fromhex(case["wire"]))
    assert len(events) == 1
    event = events[0]
    if isinstance(event, Packet):
        with pytest.raises(ImprovError) as raised:
            improv.parse(event)
        event = raised.value
    assert event.kind == case["error"]


@pytest.mark.parametrize("case", VECTORS["streams"], ids=lambda c: c["name"])
def test_streams(case: dict[str, Any]) -> None:
    events = decode_all(bytes.fromhex(case["wire"]))
    names = [
        f"packet:{event.type}" if isinstance(event, Packet) else f"error:{event.kind}"
        for event in events
    ]
    assert names == case["events"]


def test_limits_are_refused_when_encoding() -> None:
    with pytest.raises(ValueError, match="at most 255"):
        improv.encode_strings(["x" * 256])
    with pytest.raises(ValueError, match="at most 253"):
        improv.encode_rpc(Command.WIFI_SETTINGS, b"x" * 254)
    with pytest.raises(ImprovError, match="port"):
        improv.parse_broker(("1", "role", "host", "0", "user", "pass"))
    with pytest.raises(ImprovError, match="strings"):
        improv.parse_broker(("1", "role"))


def test_garbage_never_stops_the_decoder() -> None:
    rng = random.Random(18)
    decoder = PacketDecoder()
    noise = bytes(rng.randrange(256) for _ in range(200_000))
    # Noise with headers sprinkled in, so the packet paths run too.
    mixed = noise.replace(b"\x49", b"IMPROV\x01")
    events = list(decoder.feed(mixed))
    good = improv.encode_state(2)
    assert list(decoder.feed(b"\n" * 300 + good))[-1] == Packet(1, b"\x02")
    assert decoder.stats.ignored > 0
    assert len(events) == decoder.stats.packets - 1 + decoder.stats.bad_checksum + (
        decoder.stats.bad_version
    )


# -- the gateway's state machine -----------------------------------------------------------------

STORED = VECTORS["stored"]
CREDENTIALS = DeviceCredentials(
    ssid=STORED["ssid"],
    passphrase=STORED["passphrase"],
    broker_host=STORED["host"],
    broker_port=STORED["port"],
    user=STORED["user"],
    password=STORED["password"],
    role=STORED["role"],
)
CONFIG = ProvisionConfig(role=STORED["role"], wait=3.0, probe_timeout=1.0, probes=2)


def phase(machine: Provisioner) -> Phase:
    """Its phase now (a call, so that mypy does not keep an earlier assert's narrowing)."""
    return machine.phase


def writes(actions: list[ProvisionAction]) -> bytes:
    return b"".join(action.data for action in actions if isinstance(action, Write))


def logged(actions: list[ProvisionAction]) -> list[str]:
    return [action.message for action in actions if isinstance(action, LogLine)]


def board(step: int) -> bytes:
    """What the vectors' board answers at ``step`` of its first exchange."""
    return bytes.fromhex(VECTORS["device"][0]["steps"][step]["expect"])


def sent(step: int) -> bytes:
    return bytes.fromhex(VECTORS["device"][0]["steps"][step]["send"])


def started(now: float = 0.0) -> Provisioner:
    """A provisioner that has probed (the link stayed silent)."""
    machine = Provisioner(CONFIG, now)
    assert machine.tick(now + 1.0, link_silent=True) == []  # not yet: the link may answer
    assert writes(machine.tick(now + 3.0, link_silent=True)) == b"\n" + sent(0)
    assert phase(machine) is Phase.PROBING
    return machine


def test_a_board_is_provisioned_step_by_step() -> None:
    machine = started()
    # ready -> the broker query (is it a msgflo board?)
    assert writes(machine.feed(board(0), 3.1)) == sent(2)
    assert machine.claimed
    # its answer (no role yet) -> credentials for the configured role
    assert machine.feed(board(2), 3.2) == [IssueCredentialsAction(STORED["role"])]
    assert phase(machine) is Phase.ISSUING
    assert machine.tick(100.0, link_silent=True) == []  # the issuer takes its time
    assert writes(machine.issued(CREDENTIALS, 100.0)) == sent(3)
    assert writes(machine.feed(board(3), 100.1)) == sent(4)  # the broker taken: the WiFi
    assert machine.feed(board(4), 100.2) == []  # joining
    actions = machine.feed(board(5), 105.0)
    assert phase(machine) is Phase.DONE
    assert isinstance(actions[-1], Finished) and actions[-1].provisioned
    [line] = logged(actions)
    assert "role 'lab/sensor'" in line and "WiFi 'msgflo-kit'" in line
    assert STORED["password"] not in line and STORED["passphrase"] not in line
    assert STORED["password"] not in repr(CREDENTIALS)


def test_a_board_that_speaks_the_link_is_never_probed() -> None:
    machine = Provisioner(CONFIG, 0.0)
    assert machine.tick(2.9, link_silent=False) == []
    assert phase(machine) is Phase.NOT_IMPROV and machine.finished and not machine.claimed
    assert machine.tick(10.0, link_silent=True) == []


def test_no_answer_to_the_probe_is_not_an_error() -> None:
    machine = started()
    assert writes(machine.tick(4.0, link_silent=True)) == b"\n" + sent(0)  # a second probe
    actions = machine.tick(5.0, link_silent=True)
    assert phase(machine) is Phase.NOT_IMPROV
    assert [a.level for a in actions if isinstance(a, LogLine)] == [logging.DEBUG]


def test_an_improv_board_that_is_not_ours_is_left_alone() -> None:
    machine = started()
    machine.feed(board(0), 3.1)
    actions = machine.feed(improv.encode_error(0) + improv.encode_error(2), 3.2)
    assert phase(machine) is Phase.LEFT
    assert "without msgflo's broker command" in logged(actions)[0]
    assert isinstance(actions[-1], Finished) and not actions[-1].provisioned


def test_an_already_provisioned_board_is_left_alone_with_its_role() -> None:
    machine = started()
    assert writes(machine.feed(improv.encode_state(4), 3.1)) == improv.encode_broker(None)
    actions = machine.feed(improv.encode_result(Command.BROKER, ["1", "kitchen"]), 3.2)
    assert phase(machine) is Phase.LEFT and machine.board_role == "kitchen"
    assert "already provisioned as role 'kitchen'" in logged(actions)[0]


def test_a_failed_join_and_timeouts_end_in_one_line_each() -> None:
    machine = started()
    machine.feed(board(0) + board(2), 3.1)
    machine.issued(CREDENTIALS, 3.2)
    machine.feed(board(3), 3.3)
    actions = machine.feed(improv.encode_error(3), 10.0)
    assert phase(machine) is Phase.FAILED
    assert logged(actions) == [
        "provisioning failed: the board answered error unable_to_connect while joining the "
        "WiFi; leaving the port alone until it is replugged"
    ]
    silent = started()
    silent.feed(board(0), 3.1)  # then nothing
    actions = silent.tick(3.1 + CONFIG.answer_timeout, link_silent=True)
    assert phase(silent) is Phase.FAILED and silent.stats.timeouts == 1
    assert "no answer while asking for its role" in logged(actions)[0]


def test_an_issuer_failure_and_credentials_too_long() -> None:
    machine = started()
    machine.feed(board(0) + board(2), 3.1)
    actions = machine.issue_failed("mosquitto is not running", 3.2)
    assert "no credentials for role 'lab/sensor': mosquitto is not running" in logged(actions)[0]
    machine = started()
    machine.feed(board(0) + board(2), 3.1)
    long = DeviceCredentials("s", "p" * 63, "h" * 250, 1883, "u", "pw", "r")
    actions = machine.issued(long, 3.2)
    assert phase(machine) is Phase.FAILED and "do not fit" in logged(actions)[0]


def test_bad_packets_are_counted_and_logged_at_a_bounded_rate() -> None:
    machine = started()
    bad = bytearray(improv.encode_state(2))
    bad[-2] ^= 0xFF
    lines = logged(machine.feed(bytes(bad) * 50, 3.1))
    assert len(lines) == 1 and "bad_checksum" in lines[0]
    assert machine.stats.bad_packets == 50
    assert phase(machine) is Phase.PROBING  # still waiting for a real answer
    assert len(logged(machine.tick(3.1 + CONFIG.report_interval, link_silent=True))) >= 1


# -- the config key ------------------------------------------------------------------------------


def test_the_provision_key_is_off_by_default_and_takes_device_keys() -> None:
    from gateway.config.dump import dump_config
    from gateway.config.load import parse_config
    from gateway.errors import ConfigError

    assert parse_config("", "gateway.yaml").bridges.serial.provision == ()
    text = 'bridges:\n  serial:\n    provision: ["*", "2341:0043", "0042"]\n'
    config = parse_config(text, "gateway.yaml")
    assert config.bridges.serial.provision == ("*", "2341:0043", "0042")
    assert parse_config(dump_config(config), "gateway.yaml") == config
    with pytest.raises(ConfigError) as raised:
        parse_config("bridges:\n  serial:\n    provision: [42, x, x]\n", "gateway.yaml")
    assert list(raised.value.problems) == [
        "gateway.yaml:3: bridges.serial.provision[0]: expected a USB serial number, VID:PID, "
        "link name, path or * (quoted), got 42",
        "gateway.yaml:3: bridges.serial.provision[2]: duplicate 'x' (first at line 3)",
    ]
