"""Every validation rule of gateway.yaml: a bad value names the line and the key path."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewayConfig, parse_config


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gateway.yaml")
    return list(caught.value.problems)


def one_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# (yaml text, the one expected problem): the value under test is always on line 2 or 3.
BAD_VALUES = [
    (
        "broker:\n  port: abc\n",
        "gateway.yaml:2: broker.port: expected an integer 1-65535, got 'abc'",
    ),
    ("broker:\n  port: 0\n", "gateway.yaml:2: broker.port: expected an integer 1-65535, got 0"),
    (
        "broker:\n  port: 65536\n",
        "gateway.yaml:2: broker.port: expected an integer 1-65535, got 65536",
    ),
    (
        "broker:\n  port: true\n",
        "gateway.yaml:2: broker.port: expected an integer 1-65535, got true",
    ),
    (
        "broker:\n  port: 1883.0\n",
        "gateway.yaml:2: broker.port: expected an integer 1-65535, got 1883.0",
    ),
    (
        "broker:\n  port:\n",
        "gateway.yaml:2: broker.port: expected an integer 1-65535, got null",
    ),
    (
        "broker:\n  port: [1883]\n",
        "gateway.yaml:2: broker.port: expected an integer 1-65535, got a list",
    ),
    (
        "broker:\n  tls_port: -1\n",
        "gateway.yaml:2: broker.tls_port: expected an integer 1-65535, got -1",
    ),
    (
        "broker:\n  max_message_size: 0\n",
        "gateway.yaml:2: broker.max_message_size: expected an integer 1-268435455, got 0",
    ),
    (
        "broker:\n  max_queued_messages: -5\n",
        "gateway.yaml:2: broker.max_queued_messages: expected a positive integer, got -5",
    ),
    (
        "broker:\n  persistence: yes\n",
        "gateway.yaml:2: broker.persistence: expected true or false, got 'yes'",
    ),
    (
        "broker:\n  persistence: 1\n",
        "gateway.yaml:2: broker.persistence: expected true or false, got 1",
    ),
    (
        "broker:\n  autosave_interval: 0\n",
        "gateway.yaml:2: broker.autosave_interval: expected a positive integer, got 0",
    ),
    (
        "broker:\n  roles: lamp\n",
        "gateway.yaml:2: broker.roles: expected a list of role names, got 'lamp'",
    ),
    (
        "broker:\n  roles: [lamp, '']\n",
        "gateway.yaml:2: broker.roles[1]: expected a role name, got ''",
    ),
    (
        "broker:\n  roles:\n    - 'a#'\n",
        "gateway.yaml:3: broker.roles[0]: role 'a#' contains an MQTT wildcard ('#' or '+')",
    ),
    (
        "broker:\n  roles:\n    - a+b\n",
        "gateway.yaml:3: broker.roles[0]: role 'a+b' contains an MQTT wildcard ('#' or '+')",
    ),
    (
        "broker:\n  roles:\n    - /lamp\n",
        "gateway.yaml:3: broker.roles[0]: role '/lamp' starts with '/'",
    ),
    (
        "broker:\n  roles:\n    - 'my lamp'\n",
        "gateway.yaml:3: broker.roles[0]: role 'my lamp' contains whitespace or a control"
        " character",
    ),
    (
        "broker:\n  roles:\n    - 42\n",
        "gateway.yaml:3: broker.roles[0]: expected a role name, got 42",
    ),
    (
        "broker:\n  roles:\n    - lamp\n    - lamp\n",
        "gateway.yaml:4: broker.roles[1]: duplicate 'lamp' (first at line 3)",
    ),
    (
        "coordinator:\n  graph: ''\n",
        "gateway.yaml:2: coordinator.graph: expected a path, got ''",
    ),
    (
        "coordinator:\n  library: 5\n",
        "gateway.yaml:2: coordinator.library: expected a path, got 5",
    ),
    (
        "coordinator:\n  auto_save: off\n",
        "gateway.yaml:2: coordinator.auto_save: expected true or false, got 'off'",
    ),
    (
        "coordinator:\n  wait_timeout: 0\n",
        "gateway.yaml:2: coordinator.wait_timeout: expected a positive number of seconds, got 0",
    ),
    (
        "coordinator:\n  wait_timeout: .inf\n",
        "gateway.yaml:2: coordinator.wait_timeout: expected a positive number of seconds, got inf",
    ),
    (
        "data_dir: [a]\n",
        "gateway.yaml:1: data_dir: expected a path, got a list",
    ),
    (
        "runtime:\n  host: 'not a host'\n",
        "gateway.yaml:2: runtime.host: expected an IP address or host name, e.g. '127.0.0.1',"
        " got 'not a host'",
    ),
    (
        "runtime:\n  port: 70000\n",
        "gateway.yaml:2: runtime.port: expected an integer 1-65535, got 70000",
    ),
    (
        "runtime:\n  secret: ''\n",
        "gateway.yaml:2: runtime.secret: expected a non-empty string, got a string",
    ),
    (
        'runtime:\n  label: "two\\nlines"\n',
        "gateway.yaml:2: runtime.label: expected a single line of text, got a line break",
    ),
    (
        "bridges:\n  serial:\n    enabled: on\n",
        "gateway.yaml:3: bridges.serial.enabled: expected true or false, got 'on'",
    ),
    (
        "bridges:\n  serial:\n    globs: /dev/ttyUSB*\n",
        "gateway.yaml:3: bridges.serial.globs: expected a list of glob patterns,"
        " got '/dev/ttyUSB*'",
    ),
    (
        "bridges:\n  serial:\n    globs: [/dev/ttyUSB*, {a: 1}]\n",
        "gateway.yaml:3: bridges.serial.globs[1]: expected a non-empty glob pattern, got a mapping",
    ),
    (
        "bridges:\n  serial:\n    baud: -9600\n",
        "gateway.yaml:3: bridges.serial.baud: expected a positive integer, got -9600",
    ),
    (
        "bridges:\n  serial:\n    roles: [lamp]\n",
        "gateway.yaml:3: bridges.serial.roles: expected a mapping of serial numbers to roles,"
        " got a list",
    ),
    (
        "bridges:\n  serial:\n    roles:\n      A7X3: ''\n",
        "gateway.yaml:4: bridges.serial.roles.A7X3: expected a role name, got ''",
    ),
    (
        "bridges:\n  serial:\n    roles:\n      A7X3: 'lamp/#'\n",
        "gateway.yaml:4: bridges.serial.roles.A7X3: role 'lamp/#' contains an MQTT wildcard"
        " ('#' or '+')",
    ),
    (
        "bridges:\n  serial:\n    roles:\n      A7X3: lamp\n      B8Y4: lamp\n",
        "gateway.yaml:5: bridges.serial.roles.B8Y4: role 'lamp' already belongs to 'A7X3' (line 4)",
    ),
    (
        "bridges:\n  serial:\n    roles:\n      ~: lamp\n",
        "gateway.yaml:4: bridges.serial.roles: expected a key name, got null",
    ),
    (
        "access_point:\n  enabled: no\n",
        "gateway.yaml:2: access_point.enabled: expected true or false, got 'no'",
    ),
    (
        "access_point:\n  interface: wlan0/1\n",
        "gateway.yaml:2: access_point.interface: expected a network interface name such as"
        " 'wlan0', got 'wlan0/1'",
    ),
    (
        "access_point:\n  interface: abcdefghijklmnop\n",
        "gateway.yaml:2: access_point.interface: expected a network interface name such as"
        " 'wlan0', got 'abcdefghijklmnop'",
    ),
    (
        "access_point:\n  ssid: ''\n",
        "gateway.yaml:2: access_point.ssid: expected an SSID of 1-32 bytes, got '' (0 bytes)",
    ),
    (
        "access_point:\n  ssid: " + "x" * 33 + "\n",
        f"gateway.yaml:2: access_point.ssid: expected an SSID of 1-32 bytes, got {'x' * 33!r}"
        " (33 bytes)",
    ),
    (
        "access_point:\n  ssid: '" + "x" * 29 + "{suffix}'\n",
        "gateway.yaml:2: access_point.ssid: expected an SSID of 1-32 bytes,"
        f" got {'x' * 29 + '{suffix}'!r} (33 bytes with {{suffix}} as 4 characters)",
    ),
    (
        "access_point:\n  ssid: " + "ü" * 17 + "\n",
        f"gateway.yaml:2: access_point.ssid: expected an SSID of 1-32 bytes, got {'ü' * 17!r}"
        " (34 bytes)",
    ),
    (
        "access_point:\n  passphrase: short\n",
        "gateway.yaml:2: access_point.passphrase: expected a passphrase of 8-63 printable ASCII"
        " characters, got 5 characters",
    ),
    (
        "access_point:\n  passphrase: " + "p" * 64 + "\n",
        "gateway.yaml:2: access_point.passphrase: expected a passphrase of 8-63 printable ASCII"
        " characters, got 64 characters",
    ),
    (
        "access_point:\n  passphrase: 'geheimnis€x'\n",
        "gateway.yaml:2: access_point.passphrase: expected a passphrase of 8-63 printable ASCII"
        " characters, got another character at position 10",
    ),
    (
        "access_point:\n  passphrase: 12345678\n",
        "gateway.yaml:2: access_point.passphrase: expected a passphrase of 8-63 printable ASCII"
        " characters, got a number",
    ),
    (
        "access_point:\n  country: de\n",
        "gateway.yaml:2: access_point.country: expected a two-letter country code in capitals,"
        " e.g. 'DE', got 'de'",
    ),
    (
        "access_point:\n  country: DEU\n",
        "gateway.yaml:2: access_point.country: expected a two-letter country code in capitals,"
        " e.g. 'DE', got 'DEU'",
    ),
    (
        "access_point:\n  channel: 0\n",
        "gateway.yaml:2: access_point.channel: expected an integer 1-14, got 0",
    ),
    (
        "access_point:\n  channel: 15\n",
        "gateway.yaml:2: access_point.channel: expected an integer 1-14, got 15",
    ),
    (
        "access_point:\n  address: 192.168.4.1\n",
        "gateway.yaml:2: access_point.address: expected an IPv4 address with prefix length,"
        " e.g. '192.168.4.1/24', got '192.168.4.1'",
    ),
    (
        "access_point:\n  address: 192.168.4.300/24\n",
        "gateway.yaml:2: access_point.address: expected an IPv4 address with prefix length,"
        " e.g. '192.168.4.1/24', got '192.168.4.300/24'",
    ),
    (
        "access_point:\n  address: 192.168.4.0/24\n",
        "gateway.yaml:2: access_point.address: '192.168.4.0/24' is not a host address of"
        " 192.168.4.0/24 (use, say, 192.168.4.1/24)",
    ),
    (
        "access_point:\n  dhcp_start: 192.168.4\n",
        "gateway.yaml:2: access_point.dhcp_start: expected an IPv4 address,"
        " e.g. '192.168.4.10', got '192.168.4'",
    ),
    (
        "access_point:\n  dhcp_end: 192.168.5.20\n",
        "gateway.yaml:2: access_point.dhcp_end: 192.168.5.20 is outside the access point's"
        " network 192.168.4.0/24",
    ),
    (
        "access_point:\n  dhcp_end: 192.168.4.255\n",
        "gateway.yaml:2: access_point.dhcp_end: 192.168.4.255 is the network or broadcast"
        " address of 192.168.4.0/24",
    ),
    (
        "access_point:\n  dhcp_start: 192.168.4.100\n  dhcp_end: 192.168.4.50\n",
        "gateway.yaml:3: access_point.dhcp_end: 192.168.4.50 comes before dhcp_start 192.168.4.100",
    ),
    (
        "access_point:\n  dhcp_start: 192.168.4.1\n",
        "gateway.yaml:2: access_point.dhcp_start: the range 192.168.4.1-192.168.4.200 includes"
        " the gateway's own 192.168.4.1",
    ),
    (
        "access_point:\n  dhcp_start: 192.168.4.2\n  dhcp_end: 192.168.4.9\n"
        "  address: 192.168.4.5/24\n",
        "gateway.yaml:2: access_point.dhcp_start: the range 192.168.4.2-192.168.4.9 includes"
        " the gateway's own 192.168.4.5",
    ),
    (
        "access_point:\n  hostname: -gateway.msgflo\n",
        "gateway.yaml:2: access_point.hostname: expected a host name such as 'gateway.msgflo',"
        " got '-gateway.msgflo'",
    ),
    (
        "access_point:\n  hostname: gate_way\n",
        "gateway.yaml:2: access_point.hostname: expected a host name such as 'gateway.msgflo',"
        " got 'gate_way'",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), BAD_VALUES, ids=[e.split(":")[2] for _, e in BAD_VALUES]
)
def test_bad_value_names_line_and_key(text: str, expected: str) -> None:
    assert one_problem(text) == expected


def test_a_changed_address_reports_the_default_range_where_it_was_changed() -> None:
    assert problems("runtime: {port: 1}\naccess_point:\n  address: 10.0.0.1/24\n") == [
        "gateway.yaml:3: access_point.dhcp_start: 192.168.4.10 is outside the access point's"
        " network 10.0.0.0/24 (dhcp_start is not set; this is its default)",
        "gateway.yaml:3: access_point.dhcp_end: 192.168.4.200 is outside the access point's"
        " network 10.0.0.0/24 (dhcp_end is not set; this is its default)",
    ]


def test_a_bad_address_is_not_compared_with_the_range() -> None:
    assert problems("access_point:\n  address: nowhere\n") == [
        "gateway.yaml:2: access_point.address: expected an IPv4 address with prefix length,"
        " e.g. '192.168.4.1/24', got 'nowhere'"
    ]


def test_good_values_become_typed_objects(tmp_path: Path) -> None:
    text = (
        "data_dir: data\n"
        "broker: {port: 1884, tls_port: null, roles: [lamp, door]}\n"
        "coordinator: {library: /opt/lib.yaml, wait_timeout: 3}\n"
        "runtime: {host: '::', secret: s3cret}\n"
        "bridges:\n  serial:\n    roles: {Z9: zed, 0042: lamp, A1: alpha}\n"
        "access_point: {address: 10.1.0.1/16, dhcp_start: 10.1.2.0, dhcp_end: 10.1.3.255,"
        " passphrase: 'correct horse', ssid: 'Gärten-{suffix}'}\n"
    )
    config = parse_config(text, "gateway.yaml", base_dir=tmp_path)
    assert config.data_dir == tmp_path / "data"
    assert config.coordinator.graph == tmp_path / "data" / "graph.fbp"
    assert config.coordinator.library == Path("/opt/lib.yaml")
    assert config.coordinator.wait_timeout == 3.0
    assert config.broker.port == 1884
    assert config.broker.tls_port is None
    assert config.broker.roles == ("lamp", "door")
    assert config.runtime.host == "::"
    assert config.runtime.secret == "s3cret"
    # Sorted pairs; the serial number is kept as written, leading zeros and all.
    assert config.bridges.serial.roles == (("0042", "lamp"), ("A1", "alpha"), ("Z9", "zed"))
    ap = config.access_point
    assert ap.address == IPv4Interface("10.1.0.1/16")
    assert (ap.dhcp_start, ap.dhcp_end) == (IPv4Address("10.1.2.0"), IPv4Address("10.1.3.255"))
    assert ap.passphrase == "correct horse"
    assert ap.ssid == "Gärten-{suffix}"


def test_graph_given_explicitly_does_not_follow_data_dir(tmp_path: Path) -> None:
    config = parse_config("data_dir: d\ncoordinator: {graph: g.fbp}\n", "x", base_dir=tmp_path)
    assert config.coordinator.graph == tmp_path / "g.fbp"


def test_relative_paths_default_to_the_source_folder() -> None:
    config = parse_config("data_dir: data\n", "conf/gateway.yaml")
    assert config.data_dir == Path("conf/data")


def test_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    config = parse_config("data_dir: /srv/gw\n", "x", base_dir=tmp_path)
    assert config.data_dir == Path("/srv/gw")


@pytest.mark.parametrize(
    "text", ["", "\n", "# only a comment\n", "---\n", "~\n", "broker:\n", "broker: {}\n"]
)
def test_empty_file_or_sections_give_defaults(text: str) -> None:
    assert parse_config(text, "gateway.yaml") == GatewayConfig()


def test_empty_lists_and_maps_may_be_left_empty() -> None:
    config = parse_config("broker:\n  roles:\nbridges:\n  serial:\n    roles:\n", "x")
    assert config.broker.roles == ()
    assert config.bridges.serial.roles == ()


def test_secrets_are_never_echoed() -> None:
    found = problems("runtime: {secret: [hunter2]}\naccess_point: {passphrase: hunter2}\n")
    assert all("hunter2" not in problem for problem in found), found


def test_globs_keep_their_order_and_repeats() -> None:
    config = parse_config("bridges: {serial: {globs: [/dev/b*, /dev/a*, /dev/b*]}}\n", "x")
    assert config.bridges.serial.globs == ("/dev/b*", "/dev/a*", "/dev/b*")


@pytest.mark.parametrize("text", ["a\\x85b", "a\\u2028b", "a\\rb"])
def test_labels_have_no_line_breaks_of_any_kind(text: str) -> None:
    assert one_problem(f'runtime:\n  label: "{text}"\n') == (
        "gateway.yaml:2: runtime.label: expected a single line of text, got a line break"
    )


def test_labels_have_no_control_characters() -> None:
    assert one_problem('runtime:\n  label: "a\\tb"\n') == (
        "gateway.yaml:2: runtime.label: expected a single line of text, got a control character"
    )


def test_serial_numbers_are_printable() -> None:
    assert one_problem('bridges:\n  serial:\n    roles:\n      "\\t": lamp\n') == (
        "gateway.yaml:4: bridges.serial.roles: expected a serial number, got '\\t'"
    )
