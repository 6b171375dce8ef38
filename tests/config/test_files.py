"""The files the project ships, and ``dump_config`` reading back as what it wrote."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.config import GatewayConfig, dump_config, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_file_is_exactly_the_defaults() -> None:
    assert load_config(ROOT / "services" / "gateway.yaml") == GatewayConfig()


def test_shipped_file_lists_every_key() -> None:
    shipped = (ROOT / "services" / "gateway.yaml").read_text()
    keys = {line.split(":")[0].strip() for line in dump_config(GatewayConfig()).splitlines()}
    for key in keys - {"- /dev/serial/by-id/*"}:
        assert f"{key}:" in shipped, key


def test_laptop_example() -> None:
    folder = ROOT / "examples"
    config = load_config(folder / "gateway-laptop.yaml")
    defaults = GatewayConfig()
    assert config.data_dir == folder / "data"
    assert config.coordinator.graph == folder / "data" / "graph.fbp"
    assert not config.access_point.enabled
    assert config.runtime.host == "127.0.0.1"
    assert config.broker == defaults.broker
    # The health participant's disk and hostapd socket follow data_dir and the access point.
    assert config.bridges.health.disk == folder / "data"
    assert config.bridges.health.hostapd_ctrl is None
    assert replace(config.bridges, health=defaults.bridges.health) == defaults.bridges
    assert config.runtime.port == defaults.runtime.port


def test_dump_reads_back_as_the_same_config(tmp_path: Path) -> None:
    for config in (GatewayConfig(), load_config(ROOT / "examples" / "gateway-laptop.yaml")):
        assert parse_config(dump_config(config), "shown.yaml", base_dir=tmp_path) == config


def test_dump_quotes_strings_that_look_like_other_types() -> None:
    text = "broker: {roles: ['yes', 'on', '0x10', '0o7', 'true', '1.5', 'null']}\n"
    config = parse_config(text, "x")
    assert parse_config(dump_config(config), "x") == config
