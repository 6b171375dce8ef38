"""The shape of gateway.yaml: unknown and repeated keys, syntax errors, every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config
from gateway.errors import GatewayError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gateway.yaml")
    return list(caught.value.problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("brokr:\n  port: 1\n", "gateway.yaml:1: brokr: unknown key (did you mean 'broker'?)"),
        ("data-dir: /x\n", "gateway.yaml:1: data-dir: unknown key (did you mean 'data_dir'?)"),
        ("broker:\n  prot: 1\n", "gateway.yaml:2: broker.prot: unknown key (did you mean 'port'?)"),
        (
            "runtime:\n  secrett: x\n",
            "gateway.yaml:2: runtime.secrett: unknown key (did you mean 'secret'?)",
        ),
        (
            "bridges:\n  serail: {}\n",
            "gateway.yaml:2: bridges.serail: unknown key (did you mean 'serial'?)",
        ),
        (
            "bridges:\n  serial:\n    glob: []\n",
            "gateway.yaml:3: bridges.serial.glob: unknown key (did you mean 'globs'?)",
        ),
        (
            "access_point:\n  dhcp_stop: 192.168.4.20\n",
            "gateway.yaml:2: access_point.dhcp_stop: unknown key (did you mean 'dhcp_start'?)",
        ),
        (
            "coordinator:\n  Graph: g.fbp\n",
            "gateway.yaml:2: coordinator.Graph: unknown key (did you mean 'graph'?)",
        ),
        ("mqtt:\n  port: 1\n", "gateway.yaml:1: mqtt: unknown key"),
        ("bridges:\n  zigbee: {}\n", "gateway.yaml:2: bridges.zigbee: unknown key"),
    ],
)
def test_unknown_keys_suggest_the_nearest_valid_one(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_the_example_from_the_docs() -> None:
    text = "\n".join(
        [
            "data_dir: /var/lib/msgflo-gateway",
            "broker:",
            "  port: abc",
            "runtime:",
            "  host: 0.0.0.0",
            "access_point:",
            "  chanel: 11",
        ]
    )
    assert problems(text) == [
        "gateway.yaml:3: broker.port: expected an integer 1-65535, got 'abc'",
        "gateway.yaml:7: access_point.chanel: unknown key (did you mean 'channel'?)",
    ]


def test_every_problem_is_collected_in_file_order() -> None:
    text = (
        "access_point:\n"  # 1
        "  channel: 99\n"  # 2
        "  country: germany\n"  # 3
        "broker:\n"  # 4
        "  port: -1\n"  # 5
        "  persistance: true\n"  # 6
        "bridges:\n"  # 7
        "  serial:\n"  # 8
        "    baud: fast\n"  # 9
    )
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["2", "3", "5", "6", "9"]
    assert [p.split(": ")[1] for p in found] == [
        "access_point.channel",
        "access_point.country",
        "broker.port",
        "broker.persistance",
        "bridges.serial.baud",
    ]
    assert found[3].endswith("unknown key (did you mean 'persistence'?)")


def test_error_reads_as_the_first_problem_with_a_count() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("broker: {port: 0, tls_port: 0, autosave_interval: 0}\n", "g.yaml")
    error = caught.value
    assert isinstance(error, GatewayError)
    assert len(error.problems) == 3
    assert str(error) == (
        "g.yaml:1: broker.port: expected an integer 1-65535, got 0 (and 2 more problems)"
    )


def test_one_problem_has_no_count() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("broker: {port: 0}\n", "g.yaml")
    assert str(caught.value) == "g.yaml:1: broker.port: expected an integer 1-65535, got 0"


def test_config_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        ConfigError([])


def test_two_problems_say_problem_in_the_singular() -> None:
    assert str(ConfigError(["a", "b"])) == "a (and 1 more problem)"


def test_duplicate_keys_are_problems() -> None:
    assert problems("broker:\n  port: 1\n  port: 2\n") == [
        "gateway.yaml:3: broker.port: duplicate key (first at line 2)"
    ]


def test_duplicate_serial_numbers_are_problems() -> None:
    text = "bridges:\n  serial:\n    roles:\n      A1: lamp\n      A1: door\n"
    assert problems(text) == [
        "gateway.yaml:5: bridges.serial.roles.A1: duplicate key (first at line 4)"
    ]


def test_keys_must_be_names() -> None:
    assert problems("? [a, b]\n: 1\n") == ["gateway.yaml:1: expected a key name, got a list"]


@pytest.mark.parametrize(
    ("text", "got"), [("- broker\n", "a list"), ("hello\n", "'hello'"), ("42\n", "42")]
)
def test_top_level_must_be_a_mapping(text: str, got: str) -> None:
    assert problems(text) == [
        "gateway.yaml:1: expected a mapping with keys data_dir, broker, coordinator, runtime,"
        f" bridges, access_point, got {got}"
    ]


def test_sections_must_be_mappings() -> None:
    assert problems("broker: 1883\n") == [
        "gateway.yaml:1: broker: expected a mapping with keys port, tls_port, websockets_port,"
        " max_message_size,"
        " max_queued_messages, max_connections, persistence, autosave_interval, roles,"
        " got 1883"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "broker:\n  port: 1883\n port: 1\n",
            "gateway.yaml:3:2: invalid YAML: expected <block end>,"
            " but found '<block mapping start>'",
        ),
        (
            "broker: [1, 2\n",
            "gateway.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        ("a: b: c\n", "gateway.yaml:1:5: invalid YAML: mapping values are not allowed here"),
        ("a: 1\n---\nb: 2\n", "gateway.yaml:2:1: invalid YAML: but found another document"),
        ("a: *nowhere\n", "gateway.yaml:1:4: invalid YAML: found undefined alias 'nowhere'"),
        ("a: \x07\n", "gateway.yaml:1: invalid YAML: character #x0007 is not allowed"),
    ],
)
def test_yaml_syntax_errors_give_line_and_column(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_unsupported_tags_are_problems() -> None:
    assert problems("broker:\n  port: !!python/int 5\n  tls_port: !!int x\n") == [
        "gateway.yaml:2: broker.port: unsupported YAML tag 'tag:yaml.org,2002:python/int'",
        "gateway.yaml:3: broker.tls_port: cannot read 'x' as int",
    ]


def test_yaml_12_scalars_on_off_yes_no_are_strings() -> None:
    config = parse_config("runtime: {label: on}\nbroker: {roles: [yes, no, off]}\n", "x")
    assert config.runtime.label == "on"
    assert config.broker.roles == ("yes", "no", "off")


def test_dates_are_read_as_text() -> None:
    assert parse_config("runtime: {label: 2024-05-01}\n", "x").runtime.label == "2024-05-01"


def test_aliases_are_followed() -> None:
    text = "broker:\n  roles: &r [lamp]\nbridges: {serial: {globs: *r}}\n"
    assert parse_config(text, "x").bridges.serial.globs == ("lamp",)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert caught.value.problems == (
        f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory",
    )
    with pytest.raises(ConfigError, match="cannot read: Is a directory"):
        load_config(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"a: \xff\n")
    with pytest.raises(ConfigError, match=r"binary.yaml: not UTF-8 text \(byte 3\)"):
        load_config(binary)


def test_load_config_names_the_file_and_resolves_paths_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("data_dir: state\nbroker:\n  port: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == (
        f"{path}:3: broker.port: expected an integer 1-65535, got 'x'",
    )
    path.write_text("data_dir: state\n")
    assert load_config(path).data_dir == tmp_path / "state"
