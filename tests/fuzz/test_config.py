"""Fuzzing gateway.yaml (load_config): a typed result
or a one-line own error, in bounded time and memory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.common.yaml12 import MAX_YAML_VALUES
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError
from tests.fuzz.suite import make_suite
from tests.fuzz.targets import TARGETS, billion_laughs

TARGET = TARGETS["config"]
test_corpus, test_worst_inputs, test_fuzz = make_suite(TARGET, examples=100)


def test_billion_laughs_in_gateway_yaml_is_one_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(billion_laughs().replace(b"inports", b"broker"))
    start = time.process_time()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.process_time() - start < 2.0
    assert caught.value.problems == (
        f"{path}:6:7: invalid YAML: aliases expand to more than {MAX_YAML_VALUES} values",
    )


def test_deep_nesting_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("broker: " + "[" * 5000, "gateway.yaml")
    assert caught.value.problems == (
        "gateway.yaml:1:108: invalid YAML: values are nested more than 100 levels deep",
    )


def test_an_alias_for_a_small_value_still_works() -> None:
    config = parse_config("broker:\n  roles: &r [a, b]\nruntime:\n  label: x\n", "g.yaml")
    assert config.broker.roles == ("a", "b")
