"""Line mode: the pure LineSession, its config in gateway.yaml, and the LinePrinter sketch on a
simulated Uno (simavr) read through a LineSession over its pty."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.bridges.serial.lines import (
    MAX_LINE,
    LineSession,
    NmeaError,
    key_values,
    line_device_for,
    parse_nmea,
    value_of,
)
from gateway.bridges.serial.session import (
    Action,
    Announce,
    LogLine,
    Publish,
    State,
    Withdraw,
    Write,
)
from gateway.config import ConfigError, dump_config, parse_config
from gateway.config.model import LineDevice, LinePort
from tests.bridges.test_simavr_hil import BUILD_AVR, LINK, Board, build_harness

ROOT = Path(__file__).resolve().parents[2]

DEVICE = LineDevice(
    role="thermo",
    outports=(
        LinePort("temp", pattern=r"temp=(\S+)"),
        LinePort("hum", key="hum"),
        LinePort("state", key="state"),
        LinePort("reading", pattern=r"T:(?P<unit>[CF]) (?P<value>\S+)"),
    ),
    inports=("led", "text"),
)
GPS = LineDevice(
    role="gps", outports=(LinePort("position", nmea="GGA"), LinePort("course", nmea="RMC"))
)
GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"


def nmea(body: str) -> str:
    """``body`` (between ``$`` and ``*``) as a sentence with its checksum."""
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f"${body}*{checksum:02X}"


def started(device: LineDevice = DEVICE, max_line: int = MAX_LINE) -> LineSession:
    session = LineSession(device, device.role or "dev", 0.0, max_line=max_line)
    actions = session.start()
    assert isinstance(actions[-1], Announce)
    return session


def published(actions: list[Action]) -> list[tuple[str, object]]:
    return [(a.topic, json.loads(a.payload)) for a in actions if isinstance(a, Publish)]


def logged(actions: list[Action]) -> list[str]:
    return [a.message for a in actions if isinstance(a, LogLine)]


# -- the session ----------------------------------------------------------------------------------


def test_start_announces_the_configured_participant() -> None:
    session = LineSession(DEVICE, "thermo", 0.0)
    assert session.state is State.AWAITING_HELLO
    actions = session.start()
    state: State = session.state
    assert logged(actions) == ["line mode as 'thermo' (SerialLines, 2 in, 4 out)"]
    announce = actions[-1]
    assert isinstance(announce, Announce)
    discovery = announce.definition.to_discovery()
    assert discovery["role"] == discovery["id"] == "thermo"
    assert discovery["component"] == "SerialLines"
    assert [(p["id"], p["queue"]) for p in discovery["outports"]] == [
        ("temp", "thermo/temp"),
        ("hum", "thermo/hum"),
        ("state", "thermo/state"),
        ("reading", "thermo/reading"),
    ]
    assert [p["queue"] for p in discovery["inports"]] == ["thermo/led", "thermo/text"]
    assert state is State.READY
    assert session.definition is announce.definition
    assert session.next_deadline() == float("inf")  # no pings, nothing to wait for


def test_a_role_unfit_for_a_queue_is_logged_and_not_announced() -> None:
    session = LineSession(DEVICE, "a#b", 0.0)
    actions = session.start()
    assert not any(isinstance(a, Announce) for a in actions)
    assert "cannot announce the device as role 'a#b'" in logged(actions)[0]
    assert session.feed(b"temp=1\n", 1.0) == []
    assert session.close() == []


def test_pattern_key_and_json_lines() -> None:
    session = started()
    actions = session.feed(b"temp=21.5 hum=40;state=ok\r\n", 1.0)
    assert published(actions) == [("thermo/temp", 21.5), ("thermo/hum", 40), ("thermo/state", "ok")]
    actions = session.feed(b'{"hum": 41.5, "state": {"door": "open"}, "temp": null}\n', 1.0)
    assert published(actions) == [("thermo/hum", 41.5), ("thermo/state", {"door": "open"})]
    assert published(session.feed(b"T:C -3.25\n", 1.0)) == [("thermo/reading", -3.25)]
    assert published(session.feed(b"hum=40,state=on\n", 1.0)) == [
        ("thermo/hum", 40),
        ("thermo/state", "on"),
    ]
    assert session.stats.to_mqtt == 8
    assert session.stats.lines == 4
    assert session.stats.unmatched == 0


def test_lines_come_in_pieces() -> None:
    session = started()
    data = b"temp=1\ntemp=2\r\n\ntemp=3\n"
    actions: list[Action] = []
    for byte in data:
        actions += session.feed(bytes([byte]), 1.0)
    assert published(actions) == [("thermo/temp", 1), ("thermo/temp", 2), ("thermo/temp", 3)]
    assert published(session.feed(b"te", 1.0) + session.feed(b"mp=4\n", 1.0)) == [
        ("thermo/temp", 4)
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("21.5", 21.5),
        ("-3", -3),
        ("+7", 7),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("007", 7),
        ("1e999", "1e999"),  # no infinity in JSON
        ("nan", "nan"),
        ("1_000", "1_000"),
        ("21.5C", "21.5C"),
        ("on", "on"),
    ],
)
def test_values_that_read_as_numbers_are_numbers(text: str, value: object) -> None:
    assert value_of(text) == value
    assert type(value_of(text)) is type(value)


def test_key_values() -> None:
    assert key_values("a=1 b=x, c=2.5;d==3 e= f") == {"a": 1, "b": "x", "c": 2.5, "d": "=3"}
    assert key_values('{"a": [1, 2]}') == {"a": [1, 2]}
    assert key_values('{"a": NaN}') == {}  # Python's json would read it; JSON has no NaN
    assert key_values("[1, 2]") == {}
    assert key_values("{broken") == {}


def test_lines_no_port_takes_are_counted_not_logged() -> None:
    session = started()
    actions = session.feed(b"LinePrinter 1.0\nhello world\ntemp=\n", 1.0)
    assert actions == []
    assert session.stats.unmatched == 3


def test_non_utf8_lines_are_counted_and_reported_rate_limited() -> None:
    session = started()
    first = session.feed(b"\xff\xfetemp=1\n", 1.0)
    assert logged(first) == [
        "dropped lines: line of 8 bytes is not UTF-8 (invalid start byte at byte 0)"
    ]
    assert published(first) == []
    later = session.feed(b"\xc3(\n" * 5 + b"temp=2\n", 2.0)
    assert logged(later) == []  # summarised, not one line each
    assert published(later) == [("thermo/temp", 2)]
    assert session.stats.not_utf8 == 6
    assert session.next_deadline() == 31.0
    assert session.tick(30.0) == []
    assert logged(session.tick(31.0)) == ["dropped lines: 5 more in the last 30 s (not UTF-8: 5)"]
    assert session.next_deadline() == float("inf")


def test_long_lines_are_cut_counted_and_never_held_whole() -> None:
    session = started(max_line=16)
    actions = session.feed(b"temp=" + b"9" * 100, 1.0)
    assert logged(actions) == ["dropped lines: line longer than 16 bytes"]
    for _ in range(1000):  # a device that never ends its line
        assert session.feed(b"9" * 64, 1.0) == []
    assert len(session._buffer) == 0
    assert published(session.feed(b"\ntemp=1\n", 1.0)) == [("thermo/temp", 1)]
    # Over the limit only once the newline comes: dropped, not cut to a wrong value.
    assert published(session.feed(b"temp=12345678", 2.0) + session.feed(b"9012\n", 2.0)) == []
    assert published(session.feed(b"temp=" + b"1" * 11 + b"\n", 2.0)) == [
        ("thermo/temp", 11111111111)
    ]  # exactly 16 bytes
    assert session.stats.too_long == 2


def test_inport_messages_are_written_as_lines() -> None:
    session = started()
    assert session.on_mqtt("thermo/led", b'"on"', 1.0) == [Write(b"on\n")]
    assert session.on_mqtt("thermo/led", b"1", 1.0) == [Write(b"1\n")]
    assert session.on_mqtt("thermo/text", b"plain text", 1.0) == [Write(b"plain text\n")]
    assert session.on_mqtt("thermo/text", b'{"a": 1}', 1.0) == [Write(b'{"a": 1}\n')]
    assert session.on_mqtt("thermo/text", '"grün"'.encode(), 1.0) == [Write("grün\n".encode())]
    assert session.on_mqtt("thermo/text", b"\xff\xfe", 1.0) == [Write(b"\xff\xfe\n")]
    assert session.stats.to_device == 6


def test_inport_messages_that_are_not_one_line_are_refused() -> None:
    session = started(max_line=16)
    first = session.on_mqtt("thermo/led", b'"on\\noff"', 1.0)
    assert logged(first) == [
        "refused messages: thermo/led: 9-byte payload refused (line breaks: one line only)"
    ]
    assert session.on_mqtt("thermo/led", b"a\rb", 1.0) == []
    assert session.on_mqtt("thermo/led", b"x" * 17, 1.0) == []
    assert session.on_mqtt("thermo/led", b'"\\udc80"', 1.0) == []
    assert session.on_mqtt("thermo/other", b"1", 1.0) == []
    assert session.stats.refused == 5
    assert session.stats.to_device == 0
    summary = logged(session.tick(31.0))
    assert summary == [
        "refused messages: 4 more in the last 30 s (line breaks: 1, no text: 1, too long: 1, "
        "unknown: 1)"
    ]


def test_close_withdraws_and_ends_the_session() -> None:
    session = started()
    definition = session.definition
    assert definition is not None
    assert session.close() == [Withdraw(definition)]
    assert session.state is State.CLOSED
    assert session.feed(b"temp=1\n", 1.0) == []
    assert logged(session.on_mqtt("thermo/led", b"1", 1.0)) == [
        "refused messages: thermo/led: device not ready, dropped"
    ]
    assert session.stats.dropped_while_not_ready == 1
    assert session.close() == []


# -- NMEA -----------------------------------------------------------------------------------------


def test_gga_and_rmc_sentences() -> None:
    session = started(GPS)
    actions = session.feed(f"{GGA}\r\n{RMC}\r\n".encode(), 1.0)
    assert published(actions) == [
        (
            "gps/position",
            {
                "lat": 48.1173,
                "lon": 11.5166667,
                "fix": True,
                "quality": 1,
                "satellites": 8,
                "hdop": 0.9,
                "altitude": 545.4,
                "time": "12:35:19",
            },
        ),
        (
            "gps/course",
            {
                "lat": 48.1173,
                "lon": 11.5166667,
                "fix": True,
                "knots": 22.4,
                "course": 84.4,
                "time": "12:35:19",
                "date": "2094-03-23",
            },
        ),
    ]


def test_any_talker_south_and_west_and_no_fix() -> None:
    session = started(GPS)
    south_west = nmea("GNGGA,010203.50,3351.5100,S,15112.6300,W,2,12,0.6,12.0,M,,M,,")
    assert published(session.feed(f"{south_west}\n".encode(), 1.0)) == [
        (
            "gps/position",
            {
                "lat": -33.8585,
                "lon": -151.2105,
                "fix": True,
                "quality": 2,
                "satellites": 12,
                "hdop": 0.6,
                "altitude": 12.0,
                "time": "01:02:03.50",
            },
        )
    ]
    no_fix = nmea("GPRMC,,V,,,,,,,,,,N")
    assert published(session.feed(f"{no_fix}\n".encode(), 1.0)) == [
        (
            "gps/course",
            {
                "lat": None,
                "lon": None,
                "fix": False,
                "knots": None,
                "course": None,
                "time": None,
                "date": None,
            },
        )
    ]


def test_bad_checksums_and_sentences_are_counted_and_other_sentences_ignored() -> None:
    session = started(GPS)
    bad = GGA[:-2] + "48"
    actions = session.feed(f"{bad}\n{GGA[:-3]}\n".encode(), 1.0)
    assert logged(actions) == ["dropped lines: GPGGA: checksum '48', computed 47"]
    assert published(actions) == []
    assert session.stats.bad_checksum == 2
    garbled = nmea("GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")
    assert published(session.feed(f"{garbled}\n".encode(), 1.0)) == []
    assert session.stats.bad_sentence == 1
    other = nmea("GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00")
    assert session.feed(f"{other}\nnot nmea\n".encode(), 1.0) == []
    assert session.stats.unmatched == 2
    assert published(session.feed(f"{GGA}\n".encode(), 2.0))[0][0] == "gps/position"


@pytest.mark.parametrize(
    "body",
    [
        "GPGGA,1235,4807.038,N,01131.000,E,1,08,0.9,545.4,M,,M,,",  # short time
        "GPGGA,123519,9107.038,N,01131.000,E,1,08,0.9,545.4,M,,M,,",  # 91 degrees north
        "GPGGA,123519,4867.038,N,01131.000,E,1,08,0.9,545.4,M,,M,,",  # 67 minutes
        "GPGGA,123519,4807.038,N,01131.000,E,x,08,0.9,545.4,M,,M,,",  # quality x
        "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,inf,M,,M,,",  # altitude inf
        "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,2303944,003.1,W",  # date
        "GPRMC,123519,A,4807.038,N,",  # cut short
        "GPGGA,123519,4807.038,N,,,1,08,0.9,545.4,M,46.9,M,,",  # half a position
    ],
)
def test_unreadable_fields_are_bad_sentences(body: str) -> None:
    session = started(GPS)
    actions = session.feed(f"{nmea(body)}\n".encode(), 1.0)
    assert published(actions) == []
    assert session.stats.bad_sentence == 1, logged(actions)


def test_parse_nmea() -> None:
    sentence = parse_nmea(GGA)
    assert sentence is not None
    assert (sentence.talker, sentence.type, sentence.fields[1]) == ("GP", "GGA", "4807.038")
    proprietary = parse_nmea(nmea("PUBX,00,081350.00"))
    assert proprietary is not None
    assert (proprietary.talker, proprietary.type) == ("P", "UBX")
    assert parse_nmea("temp=21.5") is None
    assert parse_nmea("$gpgga,1") is None
    with pytest.raises(NmeaError, match="without a checksum"):
        parse_nmea("$GPGGA,123519")


# -- which devices are in line mode ---------------------------------------------------------------


def test_line_device_for() -> None:
    by_serial, by_link, by_path, by_product = (LineDevice(role=r) for r in "abcd")
    lines = (
        ("75833353035351A0C1E1", by_serial),
        ("usb-FTDI_FT232R_USB_UART-if00-port0", by_link),
        ("/dev/ttyACM3", by_path),
        ("2341:0043", by_product),
    )
    arduino = ("75833353035351A0C1E1", "usb-Arduino__www.arduino.cc__0043_75833353035351A0C1E1")
    assert line_device_for(lines, (*arduino, "2341:0043"), "2341:0043") is by_serial
    ftdi = ("usb-FTDI_FT232R_USB_UART-if00-port0", "0403:6001")
    assert line_device_for(lines, ftdi, "0403:6001") is by_link
    assert line_device_for(lines, ("ttyACM3", "/dev/ttyACM3")) is by_path
    other = ("OTHER", "usb-Arduino__www.arduino.cc__0043_OTHER-if00")
    assert line_device_for(lines, (*other, "2341:0043"), "2341:0043") is by_product
    assert line_device_for(lines, other, "2341:0043") is by_product
    assert line_device_for(lines, other, "2341:0043".upper()) is by_product
    assert line_device_for((("2341:004A", by_product),), other, "2341:004a") is by_product
    assert line_device_for(lines, other) is None
    assert line_device_for(lines, other, "2341:0042") is None
    assert line_device_for((), arduino, "2341:0043") is None


# -- configuration --------------------------------------------------------------------------------

CONFIG = """\
bridges:
  serial:
    lines:
      "2341:0043":
        baud: 9600
        role: thermo
        component: ArduinoSensor
        outports:
          - {port: temp, pattern: 'temp=(\\S+)'}
          - {port: hum, key: hum}
          - port: position
            nmea: GGA
        inports: [led]
      "0042":
        outports: [{port: co2, key: co2}]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gateway.yaml")
    return list(caught.value.problems)


def test_config_is_read_and_dumps_back() -> None:
    config = parse_config(CONFIG, "gateway.yaml")
    assert config.bridges.serial.lines == (
        ("0042", LineDevice(outports=(LinePort("co2", key="co2"),))),
        (
            "2341:0043",
            LineDevice(
                baud=9600,
                role="thermo",
                component="ArduinoSensor",
                outports=(
                    LinePort("temp", pattern=r"temp=(\S+)"),
                    LinePort("hum", key="hum"),
                    LinePort("position", nmea="GGA"),
                ),
                inports=("led",),
            ),
        ),
    )
    assert parse_config(dump_config(config), "shown.yaml") == config


def test_the_docs_example_reads() -> None:
    text = (ROOT / "docs" / "serial-bridge.md").read_text()
    section = text[text.index("## Line mode") :]
    found = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert found is not None
    lines = dict(parse_config(found.group(1), "serial-bridge.md").bridges.serial.lines)
    assert set(lines) == {"2341:0043", "75833353035351A0C1E1", "1546:01a7"}
    assert [p.nmea for p in lines["1546:01a7"].outports] == ["GGA", "RMC"]
    session = started(lines["2341:0043"])
    assert published(session.feed(b"temp=21.5 hum=40\n", 1.0)) == [
        ("greenhouse/temp", 21.5),
        ("greenhouse/humidity", 40),
    ]


BAD_CONFIGS = [
    (
        "        baud: 12345\n",
        "gateway.yaml:5: bridges.serial.lines.A1.baud: "
        "expected a baud rate this system supports, got 12345",
    ),
    (
        "        outports: [{port: t, pattern: 'temp=(\\S+'}]\n",
        "gateway.yaml:5: bridges.serial.lines.A1.outports[0].pattern: invalid regular "
        "expression 'temp=(\\\\S+': missing ), unterminated subpattern at position 5",
    ),
    (
        "        outports: [{port: t, pattern: '(a)=(b)'}]\n",
        "gateway.yaml:5: bridges.serial.lines.A1.outports[0].pattern: "
        "expected one group or a group named 'value' in '(a)=(b)', it has 2",
    ),
    (
        "        outports:\n          - port: t\n",
        "gateway.yaml:6: bridges.serial.lines.A1.outports[0]: expected one of pattern, key or nmea",
    ),
    (
        "        outports:\n          - port: t\n            key: t\n            nmea: GGA\n",
        "gateway.yaml:8: bridges.serial.lines.A1.outports[0].nmea: "
        "key and nmea given: a port takes one of pattern, key or nmea",
    ),
    (
        "        outports: [{key: t}]\n",
        "gateway.yaml:5: bridges.serial.lines.A1.outports[0]: expected a port name (port: ...)",
    ),
    (
        "        outports: [{port: t, nmea: GSV}]\n",
        "gateway.yaml:5: bridges.serial.lines.A1.outports[0].nmea: "
        "expected one of GGA, RMC, got 'GSV'",
    ),
    (
        "        outports:\n          - {port: t, key: a}\n          - {port: t, key: b}\n",
        "gateway.yaml:7: bridges.serial.lines.A1.outports[1].port: "
        "port 't' is named twice (first at line 6)",
    ),
    (
        "        outports: [{port: t, key: a}]\n        inports: [t]\n",
        "gateway.yaml:6: bridges.serial.lines.A1.inports[0]: "
        "port 't' is named twice (first at line 5)",
    ),
    (
        "        inports: [a, a]\n",
        "gateway.yaml:5: bridges.serial.lines.A1.inports[1]: duplicate 'a' (first at line 5)",
    ),
    (
        "        outports: [{port: 'a/b', key: a}]\n",
        "gateway.yaml:5: bridges.serial.lines.A1.outports[0].port: "
        "port 'a/b': expected letters, digits, '_' and '-'",
    ),
    (
        "        role: 'a#'\n",
        "gateway.yaml:5: bridges.serial.lines.A1.role: role 'a#' contains an MQTT wildcard "
        "('#' or '+')",
    ),
    (
        "        speed: 9600\n",
        "gateway.yaml:5: bridges.serial.lines.A1.speed: unknown key",
    ),
]


@pytest.mark.parametrize(("body", "problem"), BAD_CONFIGS)
def test_config_errors_name_file_line_and_key(body: str, problem: str) -> None:
    found = problems("bridges:\n  serial:\n    lines:\n      A1:\n" + body)
    assert len(found) == 1, found
    assert found[0].startswith(problem), found


def test_device_keys_are_printable() -> None:
    found = problems('bridges: {serial: {lines: {"\\t": {}}}}\n')
    assert found == ["gateway.yaml:1: bridges.serial.lines: expected a device key, got '\\t'"]


# -- the LinePrinter sketch on a simulated Uno ----------------------------------------------------

SERIAL = "SIMAVR0002"
PRINTER = LineDevice(
    role="printer",
    component="LinePrinter",
    outports=(
        LinePort("temp", pattern=r"temp=(\S+)"),
        LinePort("count", key="count"),
        LinePort("led", key="led"),
    ),
    inports=("command",),
)


def build_sketch(directory: Path, name: str) -> Path:
    command = [sys.executable, str(BUILD_AVR), "--build", str(directory), name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"the AVR build failed:\n{result.stdout}{result.stderr}"[-6000:])
    return directory / name / f"{name}.elf"


@contextlib.contextmanager
def opened(path: Path) -> Iterator[int]:
    """The board's pty, raw (the harness ignores the line speed)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        yield fd
    finally:
        os.close(fd)


class Reader:
    """A LineSession driven from a port, as the bridge's device task would drive it."""

    def __init__(self, session: LineSession, fd: int) -> None:
        self.session, self.fd = session, fd
        self.messages: list[tuple[str, object]] = []
        self.logs: list[str] = []

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Write):
                assert os.write(self.fd, action.data) == len(action.data)
            elif isinstance(action, Publish):
                self.messages.append((action.topic, json.loads(action.payload)))
            elif isinstance(action, LogLine):
                self.logs.append(action.message)

    def until(self, topic: str, value: object, timeout: float = 20.0) -> None:
        """Read and feed until ``value`` is published on ``topic`` (after what was seen)."""
        start = len(self.messages)
        deadline = time.monotonic() + timeout
        while (topic, value) not in self.messages[start:]:
            if time.monotonic() > deadline:
                pytest.fail(f"no {value!r} on {topic} within {timeout} s: {self.messages[-5:]}")
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            data = os.read(self.fd, 256) if ready else b""
            now = time.monotonic()
            self.apply(self.session.feed(data, now) + self.session.tick(now))


def test_line_printer_on_simavr_through_a_line_session(tmp_path: Path) -> None:
    for tool in ("avr-gcc", "avr-g++", "gcc"):
        assert shutil.which(tool), f"{tool} missing: run ./bootstrap.sh setup"
    harness = build_harness(tmp_path)
    elf = build_sketch(tmp_path / "avr", "LinePrinter")
    board = Board(harness, elf, tmp_path / LINK.format(serial=SERIAL))
    lines = (("2341:0043", PRINTER),)
    board.plug()
    try:
        keys = (SERIAL, board.link.name, str(board.link))  # a pty has no USB descriptors
        device = line_device_for(lines, keys, "2341:0043")
        assert device is PRINTER
        session = LineSession(device, device.role or "-", time.monotonic())
        with opened(board.link) as fd:
            reader = Reader(session, fd)
            reader.apply(session.start())
            reader.until("printer/temp", 21.5)
            counts = [v for t, v in reader.messages if t == "printer/count"]
            assert counts and all(isinstance(n, int) for n in counts), reader.messages
            last = counts[-1]
            assert isinstance(last, int)
            reader.until("printer/count", last + 1)  # still printing, in order

            reader.apply(session.on_mqtt("printer/command", b'"on"', time.monotonic()))
            reader.until("printer/led", 1)
            reader.apply(session.on_mqtt("printer/command", b'"toggle"', time.monotonic()))
            reader.until("printer/led", 0)
            reader.apply(session.on_mqtt("printer/command", b"x" * 40, time.monotonic()))
            reader.apply(session.on_mqtt("printer/command", b'"on"', time.monotonic()))
            reader.until("printer/led", 1)  # the sketch skipped the line too long for it

            assert session.stats.to_device == 4
            assert session.stats.not_utf8 == session.stats.too_long == 0
            assert session.stats.unmatched <= 1  # the banner, if it came after the open
            assert reader.logs == ["line mode as 'printer' (LinePrinter, 1 in, 3 out)"]
            definition = session.definition
            assert definition is not None
            assert session.close() == [Withdraw(definition)]
    finally:
        board.unplug()
