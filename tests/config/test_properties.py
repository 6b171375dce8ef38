"""Property tests: any text at all either loads or raises ConfigError, nothing else."""

from __future__ import annotations

from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.config import ConfigError, GatewayConfig, dump_config, parse_config
from gateway.config.model import BridgesConfig, BrokerConfig, RuntimeConfig, SerialBridgeConfig

KEYS = ["broker", "port", "roles", "access_point", "channel", "serial", "bridges", "dhcp_end"]
YAMLISH = st.sampled_from(
    [
        *KEYS,
        ":",
        " ",
        "\n",
        "  ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "&a",
        "*a",
        "!!int",
        "!x",
        "~",
        "true",
        "0x1F",
        "1.5",
        "#",
        "---",
        "?",
    ]
)


def _survives(text: str) -> None:
    try:
        config = parse_config(text, "fuzz.yaml", base_dir=Path("/base"))
    except ConfigError as exc:
        assert exc.problems
        assert all("\n" not in p and p.startswith("fuzz.yaml") for p in exc.problems), exc
    else:
        assert isinstance(config, GatewayConfig)


@settings(max_examples=300)
@given(st.text())
def test_random_text_only_raises_config_error(text: str) -> None:
    _survives(text)


@settings(max_examples=500)
@given(st.lists(YAMLISH, max_size=40).map("".join))
def test_yaml_like_garbage_only_raises_config_error(text: str) -> None:
    _survives(text)


NAMES = st.text(min_size=1, max_size=20).filter(
    lambda s: (
        s.isprintable()
        and not any(c.isspace() for c in s)
        and "#" not in s
        and "+" not in s
        and not s.startswith("/")
    )
)


@settings(max_examples=500)
@given(
    roles=st.lists(NAMES, unique=True, max_size=4),
    label=st.text(min_size=1).filter(str.isprintable),
    serials=st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda s: s.isprintable() and not s.isspace()),
        NAMES,
        max_size=4,
    ),
)
def test_dump_round_trips(roles: list[str], label: str, serials: dict[str, str]) -> None:
    assume(len(set(serials.values())) == len(serials))  # one role per device
    config = GatewayConfig(
        broker=BrokerConfig(roles=tuple(roles)),
        runtime=RuntimeConfig(label=label),
        bridges=BridgesConfig(serial=SerialBridgeConfig(roles=tuple(sorted(serials.items())))),
    )
    assert parse_config(dump_config(config), "x") == config
